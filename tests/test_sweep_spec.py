"""Sweep specs, the store, the table and the sweep limit: no training beyond a few tiny cells in this process."""
import json
import math
import time

import numpy as np
import pandas as pd
import pytest

from core.limits import Limits
from core.schema import FIELDS, ConfigError, RunConfig
from core.sweep import ResultStore, SweepSpec, cell_key, export_bytes, run_sweep, sweep_table
from core.sweep.backends import SerialBackend
from core.sweep.cells import run_cell, trained_threshold
from core.sweep.spec import Axis
from core.sweep.store import STORE_DIR_ENV, store_dir

TINY = RunConfig(depth=2, width=8, steps=4, batch_size=16, record_every=2, eval_every=2, init="normal")


# -- parsing ---------------------------------------------------------------------------------------

def test_range_is_count_values_both_ends_included():
    assert Axis.parse("sigma_w=0.5:2:4").values == (0.5, 1.0, 1.5, 2.0)
    assert Axis.parse("depth=10:60:6").values == (10, 20, 30, 40, 50, 60)
    assert Axis.parse("lr=0.1:0.3:3").values == (0.1, 0.2, 0.3)  # no 0.30000000000000004
    assert Axis.parse("depth=7:7:1").values == (7,)


def test_list_values_are_parsed_by_the_field_itself():
    assert Axis.parse("init=xavier_normal, kaiming_normal").values == ("xavier_normal", "kaiming_normal")
    assert Axis.parse("batchnorm=true,false").values == (True, False)
    assert Axis.parse("input_dim=none,16").values == (None, 16)
    # every sweepable field takes a list of its own default
    for name, spec in FIELDS.items():
        if spec.kind is tuple:
            continue
        default = getattr(RunConfig(), name)
        if default is not None:
            assert Axis.parse(f"{name}={spec.format(default)}").values == (default,)


@pytest.mark.parametrize("text, words", [
    ("depth", "write FIELD=a,b,c"),
    ("colour=1,2", "Invalid axis field 'colour'"),
    ("widths=8,8", "list-valued"),
    ("depth=", "give its values"),
    ("init=zeros:normal:2", "needs a numeric setting"),
    ("depth=1:5", "start:stop:count"),
    ("depth=a:5:3", "must be numbers"),
    ("depth=1:5:0", "count must be"),
    ("depth=1:5:x", "count must be"),
    ("depth=1:5:1", "use a count of 2"),
    ("depth=1:3:10", "appears more than once"),
    ("depth=0,5", "Invalid depth 0"),
    ("activation=relu,bogus", "Invalid activation 'bogus'"),
    ("sigma_w=nan", "Invalid sigma_w"),
])
def test_bad_axes_are_one_sentence_naming_the_axis(text, words):
    with pytest.raises(ConfigError) as e:
        Axis.parse(text)
    assert words in e.value.message
    assert e.value.field == "axis" and "\n" not in e.value.message


def test_spec_errors():
    with pytest.raises(ConfigError, match="given twice"):
        SweepSpec.parse(["depth=2,3", "depth=4"])
    with pytest.raises(ConfigError, match="one or two axes"):
        SweepSpec.parse(["depth=2", "width=4", "seed=1"])
    with pytest.raises(ConfigError, match="one or two axes"):
        SweepSpec.parse([])
    with pytest.raises(ConfigError, match="Invalid cell batch_size=2000"):
        SweepSpec.parse(["batch_size=64,2000"], RunConfig(dataset="digits"))
    with pytest.raises(ConfigError, match="at most 10,000"):
        SweepSpec.parse(["seed=0:999:1000", "depth=1:11:11"])
    with pytest.raises(ConfigError, match="widths is set"):
        SweepSpec.parse(["depth=2,3"], RunConfig(widths=(8, 8)))


def test_cells_are_the_base_with_each_combination_first_axis_slowest():
    spec = SweepSpec.parse(["depth=2,3", "init=xavier_normal,orthogonal"], TINY)
    cells = spec.cells()
    assert [(c.depth, c.init) for c in cells] == [(2, "xavier_normal"), (2, "orthogonal"), (3, "xavier_normal"), (3, "orthogonal")]
    assert all(c.replace(depth=TINY.depth, init=TINY.init) == TINY for c in cells)
    assert SweepSpec.parse(spec.axis_texts(), TINY) == spec  # the URL / CLI text round-trips


# -- the store -------------------------------------------------------------------------------------

def test_store_dir_from_env(tmp_path):
    assert store_dir({STORE_DIR_ENV: str(tmp_path)}) == tmp_path
    assert store_dir({}).name == "gradient-flow-lab"


def test_cell_key_changes_with_every_setting():
    keys = {cell_key(TINY)}
    numeric = [n for n, s in FIELDS.items() if s.kind in (int, float) and n not in ("widths", "input_dim")
               and TINY.applies(n)]  # (an option of another arch cannot change on this one)
    for name in numeric:
        changed = TINY.replace(**{name: getattr(TINY, name) + 1})
        keys.add(cell_key(changed))
    assert len(keys) == 1 + len(numeric)
    assert cell_key(TINY) == cell_key(RunConfig.from_query(TINY.to_query())[0])


class CountingSerial(SerialBackend):
    def __init__(self):
        super().__init__()
        self.trained = []

    def run(self, tasks, stop=None):
        for index, cfg in tasks:
            self.trained.append(cfg)
            yield index, *run_cell(cfg)


def test_resume_trains_only_the_missing_cells(tmp_path):
    store = ResultStore(tmp_path)
    spec = SweepSpec.parse(["depth=1,2", "sigma_w=0.5,1.5"], TINY)
    part = SweepSpec.parse(["depth=1", "sigma_w=0.5,1.5"], TINY)
    first = CountingSerial()
    r1 = run_sweep(part, store=store, backend_obj=first)
    assert len(first.trained) == 2 and r1.computed == 2
    second = CountingSerial()
    r2 = run_sweep(spec, store=store, backend_obj=second)
    assert [c.depth for c in second.trained] == [2, 2] and r2.computed == 2
    # the stored rows come back exactly (the same `seconds`: they were not trained again)
    t1, t2 = r1.table, r2.table
    pd.testing.assert_frame_equal(t2.iloc[:2].drop(columns="depth"), t1.drop(columns="depth"))
    third = CountingSerial()
    r3 = run_sweep(spec, store=ResultStore(tmp_path), backend_obj=third)  # a new connection, as after a restart
    assert third.trained == [] and r3.computed == 0
    pd.testing.assert_frame_equal(r3.table, r2.table)


def test_interrupted_sweep_keeps_what_finished(tmp_path):
    from core.sweep import iter_sweep

    store = ResultStore(tmp_path)
    spec = SweepSpec.parse(["sigma_w=0.5,1.0,1.5"], TINY)
    gen = iter_sweep(spec, store=store, backend_obj=CountingSerial())
    next(gen)
    gen.close()  # interrupted after one cell
    again = CountingSerial()
    result = run_sweep(spec, store=store, backend_obj=again)
    assert [c.sigma_w for c in again.trained] == [1.0, 1.5] and result.computed == 2


def test_failed_cells_are_not_stored(tmp_path):
    store = ResultStore(tmp_path)
    row, profile = run_cell(TINY)
    store.put(TINY, dict(row, status="failed: test"), profile)
    assert len(store) == 0
    store.put(TINY, row, profile)
    assert len(store) == 1


# -- the table -------------------------------------------------------------------------------------

def test_metrics_match_the_run_table():
    """The oracle: the per-layer table of the same run, read by hand."""
    from core.run.engine import train

    cfg = TINY.replace(depth=3)
    row, profile = run_cell(cfg)
    layers = train(cfg).layers
    last = layers[layers["step"] == layers["step"].max()].iloc[0]
    step0 = layers[layers["step"] == 0].sort_values("layer")
    assert row["final_loss"] == last["loss"]
    assert row["final_train_accuracy"] == last["train_accuracy"]
    assert row["final_test_accuracy"] == last["test_accuracy"]
    g = step0["grad_preact_var"].to_numpy()
    assert row["grad_ratio_init"] == pytest.approx(math.log10(g[0] / g[-1]), rel=1e-12)
    assert row["trained"] == (last["test_accuracy"] >= 0.1 + 0.25 * 0.9)
    assert profile["preact_var"] == list(step0["preact_var"])
    assert row["status"] == "ok" and row["diverged_step"] is None


def test_theory_columns_equal_the_theory_cli_numbers():
    from core import theory as T

    cfg = TINY.replace(activation="tanh", sigma_w=1.5, sigma_b=0.3)
    row, _ = run_cell(cfg)
    s = T.summary("tanh", 1.5, 0.3)
    assert row["depth_scale_q"] == pytest.approx(s["depth_scale_q"], rel=1e-9)
    assert row["depth_scale_c"] == pytest.approx(s["depth_scale_c"], rel=1e-9)
    assert row["phase"] == s["phase"] == "chaotic"
    # Xavier on equal widths is σ_w² = 1: critical for tanh without bias variance
    assert run_cell(TINY.replace(activation="tanh", init="xavier_normal"))[0]["phase"] == "critical"
    assert run_cell(TINY.replace(batchnorm=True))[0]["phase"] == "not covered"


def test_trained_threshold():
    assert trained_threshold(RunConfig(dataset="digits")) == pytest.approx(0.1 + 0.25 * 0.9)


def test_diverged_cell_says_where():
    cfg = TINY.replace(activation="relu", sigma_w=30.0, depth=4, lr=10.0, steps=20, record_every=1)
    row, _ = run_cell(cfg)
    assert row["diverged_step"] is not None and row["trained"] is False


def test_exports_round_trip(tmp_path):
    spec = SweepSpec.parse(["sigma_w=0.5,1.5"], TINY)
    rows = {0: run_cell(spec.cells()[0])[0], 1: dict(run_cell(spec.cells()[1])[0], final_loss=math.inf)}
    table = sweep_table(spec, rows)
    assert list(table.columns) == ["sigma_w", "final_loss", "final_train_accuracy", "final_test_accuracy", "trained",
                                   "diverged_step", "grad_ratio_init", "depth_scale_q", "depth_scale_c", "phase",
                                   "seconds", "status"]
    csv = export_bytes(table, "csv").decode().splitlines()
    assert csv[0].startswith("sigma_w,final_loss") and ",inf," in csv[2] and ",," in csv[1]  # empty diverged_step
    back = pd.read_parquet(__import__("io").BytesIO(export_bytes(table, "parquet")))
    pd.testing.assert_frame_equal(back, table)
    js = json.loads(export_bytes(table, "json", spec))
    assert js["sweep"]["axes"] == ["sigma_w=0.5,1.5"] and js["cells"][1]["final_loss"] == "inf"
    assert js["cells"][0]["final_loss"] == table["final_loss"][0] and js["cells"][0]["diverged_step"] is None


def test_pending_cells_in_a_live_table():
    spec = SweepSpec.parse(["sigma_w=0.5,1.5"], TINY)
    table = sweep_table(spec, {})
    assert list(table["status"]) == ["pending", "pending"] and table["final_loss"].isna().all()


# -- limits ----------------------------------------------------------------------------------------

def test_sweep_work_limit_names_the_variable():
    spec = SweepSpec.parse(["depth=2,4"], TINY)
    work = sum(c.parameter_count() * c.batch_size * (c.steps + 1) for c in spec.cells())
    assert Limits(max_sweep_work=work).sweep_violation(spec.cells()) is None
    field, sentence = Limits(max_sweep_work=work - 1).sweep_violation(spec.cells())
    assert field == "sweep" and "GFL_MAX_SWEEP_WORK" in sentence
    assert Limits.from_env({"GFL_MAX_SWEEP_WORK": "5"}).max_sweep_work == 5
    field, sentence = Limits(max_depth=3).sweep_violation(spec.cells())
    assert field == "depth" and "GFL_MAX_DEPTH" in sentence


def test_store_lookup_is_one_query(tmp_path):
    store = ResultStore(tmp_path)
    spec = SweepSpec.parse(["seed=0:119:120"], TINY)
    row, profile = run_cell(TINY)
    for cfg in spec.cells():
        store.put(cfg, row, profile)
    found = ResultStore(tmp_path).get_many(spec.cells())  # how fast: bench/bench_sweep.py
    assert len(found) == 120
    assert np.all([found[cell_key(c)][0] == row for c in spec.cells()])


# -- the background sweep (what the page drives) ---------------------------------------------------

def test_background_sweep_waits_in_the_run_queue_and_fills_in(tmp_path):
    import threading

    from core.run.background import RunSlots
    from core.sweep import SweepRun

    slots = RunSlots(1)
    busy = threading.Event()
    assert slots.acquire(object(), busy, lambda pos: None)  # a run holds the server's only place
    spec = SweepSpec.parse(["sigma_w=0.5,1.0,1.5"], TINY)
    run = SweepRun(spec, workers=2, store=ResultStore(tmp_path), slots=slots, backend="serial").start()
    deadline = time.monotonic() + 10
    while run.snapshot().queue_position != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    snap = run.snapshot()
    assert snap.status == "queued" and snap.queue_position == 1 and snap.done == 0
    slots.release()
    assert run.join(timeout=120)
    snap = run.snapshot()
    assert snap.status == "finished" and snap.done == 3 and snap.computed == 3 and snap.workers == 1
    assert slots.active == 0  # its place was given back
    assert list(snap.table["status"]) == ["ok"] * 3
    again = SweepRun(spec, store=ResultStore(tmp_path), slots=slots, backend="serial").start()
    assert again.join(timeout=30) and again.snapshot().computed == 0 and again.snapshot().done == 3


def test_background_sweep_stops_when_nobody_watches(tmp_path):
    from core.sweep import SweepRun

    spec = SweepSpec.parse(["seed=0:399:400"], TINY)  # far more cells than a loaded machine finishes in 0.3 s
    run = SweepRun(spec, store=ResultStore(tmp_path), heartbeat_timeout=0.3, backend="serial").start()
    assert run.join(timeout=300)
    snap = run.snapshot()
    assert snap.status == "stopped" and "nobody was watching" in snap.message and snap.done < 400

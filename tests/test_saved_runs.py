"""Saved runs that reload: a JSON export opened again in Explore and Compare.

`ui.saved.open_run_file` turns uploaded bytes into what the page shows (a
SavedRun, or a Refused with core.io.export's one sentence); the pages are driven
with AppTest, whose `file_uploader(...).set_value((name, bytes, mime))`
uploads a file in this Streamlit version (1.67), so the real upload path
(widget → callback → session state → charts) is what is tested.
"""
from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import numpy as np
import pytest

import _charts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from core import figures as F
from core.schema import RunConfig
from core.run.engine import train
from core.io.export import (MAX_IMPORT_BYTES, ImportErrorForPeople, layers_equal, read_saved_run, result_from_json,
                            to_json, to_parquet)
from core.limits import SAVED_RUN_MAX_MB
from ui.markdown import escape_markdown
from ui.saved import Refused, SavedRun, open_run_file

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = str(ROOT / "pages" / "1_Explore.py")
COMPARE = str(ROOT / "pages" / "2_Compare.py")
TIMEOUT = 60

SMALL = RunConfig(depth=3, width=16, steps=6, batch_size=16, eval_every=3, activation="relu", init="kaiming_normal",
                  seed=4)
EXPLODING = RunConfig(depth=12, width=16, steps=5, batch_size=16, activation="relu", init="normal", sigma_w=10.0)


@pytest.fixture(scope="module")
def small_run():
    return train(SMALL)


@pytest.fixture(scope="module")
def small_file(small_run) -> bytes:
    return to_json(small_run)


def values(array) -> np.ndarray:
    """A plotly trace's x/y/z as numbers (numpy arrays travel as base64 typed arrays)."""
    if isinstance(array, dict) and "bdata" in array:
        a = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = array.get("shape")
        if shape is not None:
            a = a.reshape([int(n) for n in (shape if isinstance(shape, list) else str(shape).split(","))])
        return a
    return np.asarray(array, dtype=np.float64)


def per_layer_lines(fig_dict: dict) -> list[dict]:
    return [t for t in fig_dict["data"] if t.get("mode") == "lines+markers"]


# -- the function the page uses -----------------------------------------------------------------------

def test_round_trip_a_real_run_opens_as_the_same_table(small_run, small_file):
    opened = open_run_file(small_file, "run.json", "id-1")
    assert isinstance(opened, SavedRun), opened
    assert layers_equal(opened.record, small_run)
    assert opened.record.layers.equals(small_run.layers)
    snap = opened.record
    assert (snap.config, snap.status, snap.steps_taken) == (SMALL, "finished", SMALL.steps)
    # the charts built from it have one point per layer
    fig = F.fig_variance_by_layer(snap.stats, snap.steps).to_plotly_json()
    lines = per_layer_lines(fig)
    assert lines
    for t in lines:
        assert list(values(t["x"])) == [1, 2, 3] and values(t["y"]).size == 3
    heat = F.fig_layer_step_heatmap(snap.stats, snap.steps, "preact_var").to_plotly_json()["data"][0]
    assert values(heat["z"]).shape == (SMALL.depth, len(small_run.steps))


def test_a_diverged_run_keeps_inf_and_nan_and_where_it_diverged():
    result = train(EXPLODING)
    assert result.status == "diverged"
    opened = open_run_file(to_json(result), "boom.json")
    assert isinstance(opened, SavedRun)
    assert layers_equal(opened.record, result)
    assert not np.isfinite(opened.record.stats).all()
    assert opened.record.divergence == result.divergence
    snap = opened.record
    assert snap.status == "diverged" and snap.message == result.divergence.sentence(result.config)


def _doc(data: bytes) -> dict:
    return json.loads(data)


def _bytes(doc) -> bytes:
    return json.dumps(doc).encode()


def _hostile(small_file: bytes) -> dict[str, bytes]:
    doc = _doc(small_file)
    bad_config = copy.deepcopy(doc)
    bad_config["config"]["activation"] = "__import__('os').system('rm -rf /')"
    bad_depth = copy.deepcopy(doc)
    bad_depth["config"]["depth"] = -3
    nan_sigma = small_file.replace(b'"sigma_w": 1.0', b'"sigma_w": NaN')
    assert nan_sigma != small_file
    short_rows = copy.deepcopy(doc)
    short_rows["layers"] = short_rows["layers"][:-1]
    text_cell = copy.deepcopy(doc)
    text_cell["layers"][0]["preact_var"] = "<script>alert(1)</script>"
    return {
        "not JSON": b"this is not a run file",
        "empty": b"",
        "binary": bytes(range(256)) * 4,
        "truncated": small_file[: len(small_file) // 2],
        "wrong schema": _bytes({"hello": "world"}),
        "a list": _bytes([1, 2, 3]),
        "other format": _bytes({**doc, "format": "tensorboard"}),
        "future version": _bytes({**doc, "version": 2}),
        "bad settings": _bytes(bad_config),
        "out-of-range setting": _bytes(bad_depth),
        "NaN setting": nan_sigma,
        "rows missing": _bytes(short_rows),
        "text in a number": _bytes(text_cell),
        "deeply nested": b"[" * 200_000 + b"]" * 200_000,
        "huge": b" " * (MAX_IMPORT_BYTES + 1),
    }


def test_hostile_files_are_refused_with_core_exports_sentence(small_file):
    for what, data in _hostile(small_file).items():
        opened = open_run_file(data, "x.json")
        assert isinstance(opened, Refused), what
        with pytest.raises(ImportErrorForPeople) as e:
            result_from_json(data)
        assert opened.sentence == str(e.value), what
        s = opened.sentence
        assert s and "\n" not in s and "Traceback" not in s and len(s) < 400, (what, s)


def test_a_csv_or_script_is_refused_by_name(small_file):
    for name in ("run.csv", "run.CSV", "snippet.py"):
        opened = open_run_file(small_file, name)
        assert isinstance(opened, Refused) and "only the Parquet or JSON download" in opened.sentence


def test_the_bytes_not_the_name_tell_parquet_from_json(small_run, small_file):
    for data, name in ((small_file, "run.parquet"), (to_parquet(small_run), "run.json")):
        opened = open_run_file(data, name)
        assert isinstance(opened, SavedRun), opened
        assert layers_equal(opened.record, small_run)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_run_file_opens_or_is_refused_never_raises(small_file, data):
    """Replace one value anywhere in a real run file by random JSON: the file
    opens (the value was acceptable) or is refused with a sentence."""
    doc = _doc(small_file)
    node, path = doc, []
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans(), "deeper"):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))), "key")
        path.append(key)
        if not isinstance(node[key], (dict, list)) or not node[key]:
            break
        node = node[key]
    target = doc
    for key in path[:-1]:
        target = target[key]
    if path:
        target[path[-1]] = data.draw(_JSON, "value")
    else:
        doc = data.draw(_JSON, "value")
    opened = open_run_file(json.dumps(doc).encode(), "fuzz.json")
    assert isinstance(opened, (SavedRun, Refused))
    if isinstance(opened, Refused):
        assert "could not be read" not in opened.sentence, f"a reader bug, not a refusal: {opened.sentence}"
        assert "\n" not in opened.sentence and len(opened.sentence) < 400


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_refused_with_a_sentence(data):
    opened = open_run_file(data, "noise.json")
    assert isinstance(opened, Refused) and "could not be read" not in opened.sentence


# -- Explore ----------------------------------------------------------------------------------------------

def explore() -> AppTest:
    return AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()


def upload(at: AppTest, key: str, name: str, data: bytes) -> AppTest:
    return at.file_uploader(key=key).set_value((name, data, "application/json")).run()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def charts(at: AppTest) -> dict[str, dict]:
    return _charts.charts(at)  # st.plotly_chart and live charts alike


@pytest.fixture
def stop_runs():
    apps: list[AppTest] = []
    yield apps
    for at in apps:
        for key in ("explore__run", "compare_a__run", "compare_b__run"):
            run = at.session_state[key] if key in at.session_state else None
            if run is not None:
                run.stop()
                run.join(timeout=10)


def test_explore_uploader_has_a_label_and_help():
    at = explore()
    up = at.file_uploader(key="explore__file")
    assert "saved run" in up.label.lower() and ".json" in up.label and ".parquet" in up.label
    assert "JSON" in up.help and "Parquet" in up.help and "Use these settings" in up.help
    assert up.proto.max_upload_size_mb == SAVED_RUN_MAX_MB and f"{SAVED_RUN_MAX_MB} MB" in up.help


def test_explore_opens_the_parquet_download_with_the_json_ones_words(small_run, small_file, stop_runs):
    pages = []
    for name, data in (("run.parquet", to_parquet(small_run)), ("run.json", small_file)):
        at = upload(explore(), "explore__file", name, data)
        stop_runs.append(at)
        assert not at.exception and "Saved run" in texts(at.info)
        pages.append(texts(at.info).replace(name, "NAME"))
    assert pages[0] == pages[1]
    assert "7 records, last at step 6 · 6 / 6 steps taken" in pages[0]


def test_explore_notes_a_finished_file_whose_records_stop_short(small_file):
    doc = _doc(small_file)
    doc["steps"], doc["layers"] = doc["steps"][:4], doc["layers"][:4 * SMALL.depth]
    at = upload(explore(), "explore__file", "cut.json", _bytes(doc))
    assert not at.exception and "Saved run" in texts(at.info)
    assert "records stop at step 3" in texts(at.warning)


def test_explore_shows_an_uploaded_run_like_a_live_one(small_file, stop_runs):
    at = upload(explore(), "explore__file", "my run.json", small_file)
    stop_runs.append(at)
    assert not at.exception
    assert "Saved run" in texts(at.info) and "my run.json" in texts(at.info)
    figs = charts(at)
    assert {"explore__fig_variance", "explore__fig_heat_forward", "explore__fig_heat_backward", "explore__fig_loss",
            "explore__fig_saturation", "explore__fig_update"} <= set(figs)
    for t in per_layer_lines(figs["explore__fig_variance"]):
        assert list(values(t["x"])) == [1, 2, 3]
    verdicts = texts([*at.success, *at.warning, *at.error])
    assert "Healthy" in verdicts or "Health check" in verdicts
    assert {"CSV", "PARQUET", "JSON"} <= {str(b.proto.label) for b in at.get("download_button")}
    assert "not part of a saved run" in texts(at.caption)

    # Use these settings → the sidebar holds the file's settings → Run replays the same table
    at.button(key="explore__use_saved").click().run()
    assert at.slider(key="explore_depth").value == SMALL.depth
    assert at.selectbox(key="explore_init").value == SMALL.init
    assert at.number_input(key="explore_seed").value == SMALL.seed
    assert at.button(key="explore__use_saved").disabled, "the sidebar already has the file's settings"
    at.button(key="explore__btn_run").click().run()
    run = at.session_state["explore__run"]
    assert run.join(timeout=60)
    at.run()
    assert not at.exception
    assert "Saved run" not in texts(at.info), "a new run is what the page shows"
    saved = at.session_state["explore__opened"]
    assert layers_equal(run.snapshot(), saved.record), "the replay has the saved run's table"

    # back to the saved run, then close it
    at.button(key="explore__show_file").click().run()
    assert "Saved run" in texts(at.info)
    at.button(key="explore__show_live").click().run()
    assert "Finished" in at.get("progress")[0].proto.text
    at.button(key="explore__close_saved").click().run()
    assert at.session_state["explore__opened"] is None and not at.exception  # (ui.state declares it, default None)
    assert at.file_uploader[0].value is None, "closing empties the uploader"
    assert "Saved run" not in texts(at.info)


def test_a_saved_run_has_the_step_scrubber_over_its_records(small_run, small_file, stop_runs):
    at = upload(explore(), "explore__file", "run.json", small_file)
    stop_runs.append(at)
    scrub = at.select_slider(key="explore__scrub_step")
    assert [int(o) for o in scrub.options] == sorted(small_run.layers.step.unique())  # step 0 included
    assert int(scrub.value) == SMALL.steps                                             # opens at the last record
    for step in (0, 3):
        at.select_slider(key="explore__scrub_step").set_value(step).run()
        assert not at.exception
        fig = charts(at)["explore__fig_variance"]
        assert fig["layout"]["title"]["text"].startswith(f"Variance by layer at step {step}")
        want = small_run.layers[small_run.layers.step == step].sort_values("layer")   # the run trained in-process
        lines = {t["name"]: values(t["y"]) for t in per_layer_lines(fig)}
        np.testing.assert_allclose(lines["Var(h), pre-activation"], want.preact_var, rtol=1e-3)
        np.testing.assert_allclose(lines["Var(∂L/∂h)"], want.grad_preact_var, rtol=1e-3)
    at.button(key="explore__play").click().run()                   # Play from step 3 moves on by a frame a poll
    assert not at.exception and int(at.select_slider(key="explore__scrub_step").value) > 3


def test_explore_opening_a_file_stops_a_training_run(small_file, stop_runs):
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update({"depth": "3", "width": "16", "steps": "5000", "batch_size": "16", "record_every": "50",
                            "eval_every": "0"})
    at.run()
    stop_runs.append(at)
    at.button(key="explore__btn_run").click().run()
    run = at.session_state["explore__run"]
    upload(at, "explore__file", "run.json", small_file)
    assert run.join(timeout=10) and run.status == "stopped"
    assert "Saved run" in texts(at.info) and not at.exception
    assert "differ from this run" not in texts(at.info), "no note about a run that is not on screen"


@pytest.mark.parametrize("what", ["not JSON", "truncated", "wrong schema", "bad settings", "rows missing",
                                  "deeply nested", "huge"])
def test_explore_refuses_a_hostile_file_with_one_sentence(small_file, what):
    data = _hostile(small_file)[what]
    at = upload(explore(), "explore__file", "evil.json", data)
    assert not at.exception
    with pytest.raises(ImportErrorForPeople) as e:
        result_from_json(data)
    errors = texts(at.error)
    assert escape_markdown(str(e.value)) in errors and "Not opened" in errors
    assert "Traceback" not in errors
    assert "Saved run" not in texts(at.info)
    assert "explore__fig_variance" not in charts(at)


def test_explore_a_refused_file_replaces_an_opened_one(small_file):
    at = upload(explore(), "explore__file", "good.json", small_file)
    assert "Saved run" in texts(at.info)
    upload(at, "explore__file", "bad.json", b"{")
    assert "Not opened" in texts(at.error) and "Saved run" not in texts(at.info) and not at.exception


# -- Compare ----------------------------------------------------------------------------------------------

def test_compare_opens_a_and_b_from_files(small_file):
    b_cfg = SMALL.replace(depth=4, activation="tanh", init="xavier_normal")
    b_file = to_json(train(b_cfg))
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    assert [u.label for u in at.file_uploader] == ["Saved run for A (.parquet or .json)", "Saved run for B (.parquet or .json)"]
    upload(at, "compare_a__file", "a.json", small_file)
    upload(at, "compare_b__file", "b.json", b_file)
    assert not at.exception
    info = texts(at.info)
    assert "a.json" in info and "b.json" in info
    figs = charts(at)
    assert {"compare__fig_variance", "compare__fig_heat_preact_var_A", "compare__fig_heat_preact_var_B",
            "compare__fig_loss"} <= set(figs)
    depths = {values(t["x"]).size for t in figs["compare__fig_variance"]["data"] if values(t["x"]).size > 1}
    assert depths == {3, 4}, "one point per layer of each run"
    # Use these settings: B first, then A; B keeps its file's settings (it does not follow A's)
    at.button(key="compare_b__use_saved").click().run()
    at.button(key="compare_a__use_saved").click().run()
    assert at.slider(key="compare_a_depth").value == 3 and at.slider(key="compare_b_depth").value == 4
    assert at.selectbox(key="compare_a_activation").value == "relu"
    assert at.selectbox(key="compare_b_activation").value == "tanh"
    assert set(at.table[0].value["setting"]) == {"Depth", "Activation", "Initializer"}


def test_compare_refuses_a_bad_file_for_b_and_still_shows_a(small_file):
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT).run()
    upload(at, "compare_a__file", "a.json", small_file)
    upload(at, "compare_b__file", "b.json", small_file[:100])
    assert not at.exception
    assert "Not opened" in texts(at.error) and "truncated" in texts(at.error)
    assert "compare__fig_heat_preact_var_A" in charts(at)

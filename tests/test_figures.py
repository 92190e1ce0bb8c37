"""core.figures: the charts, built from a real small run and from edge cases; and that only core builds them.

Checks what a reader of the charts relies on: one point per layer, log axes
where variances span decades, gaps (not exceptions, not fake numbers) for
0/inf/nan with a note saying where, downsampled long runs that keep the
first and last step, and a payload small enough to send several times a second.
"""
from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.io as pio
import pytest

from core import figures as F
from core.schema import RunConfig
from core.run.background import Run
from core.run.record import STEP_COLUMNS
from core.measure.probes import COL, STAT_COLUMNS
from core.theory import predicted_profile

CFG = RunConfig(depth=5, width=32, activation="tanh", init="xavier_normal", steps=12, batch_size=32, eval_every=4)


@pytest.fixture(scope="module")
def snap():
    run = Run(CFG).start()
    assert run.join(timeout=120)
    s = run.snapshot()
    assert s.status == "finished", s.message
    return s


def decoded(fig) -> dict:
    """The figure as the browser gets it, typed arrays decoded to numpy."""
    def walk(v):
        if isinstance(v, dict):
            if "bdata" in v and "dtype" in v:
                a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
                if "shape" in v:
                    a = a.reshape([int(n) for n in str(v["shape"]).split(",")])
                return a
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v
    return walk(json.loads(pio.to_json(fig, validate=False)))


def annotations(fig) -> str:
    """Every annotation's text, its line breaks (a phone's width) read as spaces."""
    return " | ".join((a.text or "").replace("<br>", " ") for a in fig.layout.annotations)


def measured(fig) -> list:
    return [t for t in decoded(fig)["data"] if t.get("mode") == "lines+markers"]


# -- variance by layer ----------------------------------------------------------------------------

def test_variance_by_layer_has_one_point_per_layer_on_log_axes(snap):
    fig = F.fig_variance_by_layer(snap.stats, snap.steps, theory=predicted_profile(CFG))
    traces = measured(fig)
    assert {t["name"] for t in traces} == {F.NAMES["preact_var"], F.NAMES["act_var"], F.NAMES["grad_preact_var"]}
    for t in traces:
        assert list(t["x"]) == list(range(1, CFG.depth + 1))
        assert len(t["y"]) == CFG.depth and t["y"].dtype == np.float32
    layout = decoded(fig)["layout"]
    assert layout["yaxis"]["type"] == "log" and layout["yaxis2"]["type"] == "log"
    names = [t.name for t in fig.data]
    assert F.THEORY_LABEL in names, "the theory line is drawn where it applies"
    assert "at step 0 (faint)" in names, "the step-0 ghost is drawn"
    # The measured values are the snapshot's, at its latest record.
    h = next(t for t in traces if t["name"] == F.NAMES["preact_var"])
    np.testing.assert_allclose(h["y"], snap.stats[-1, :, COL["preact_var"]], rtol=1e-6)


def test_theory_gradient_is_scaled_to_the_measured_last_layer_at_step_0(snap):
    theory = predicted_profile(CFG)
    q, grad = F.theory_traces(theory, snap.stats, snap.steps)
    np.testing.assert_allclose(q, theory["q"])
    assert grad[-1] == pytest.approx(snap.stats[0, -1, COL["grad_preact_var"]])


def test_theory_hidden_with_a_note_where_it_does_not_apply(snap):
    theory = predicted_profile(CFG.replace(batchnorm=True))
    assert not theory.attrs["applies"]
    fig = F.fig_variance_by_layer(snap.stats, snap.steps, theory=theory)
    assert F.THEORY_LABEL not in [t.name for t in fig.data]
    assert "theory line hidden" in annotations(fig)


def test_non_finite_and_zero_values_become_gaps_with_a_note(snap):
    stats = snap.stats.copy()
    stats[-1, 1, COL["preact_var"]] = np.inf
    stats[-1, 2, COL["preact_var"]] = np.nan
    stats[-1, 3, COL["grad_preact_var"]] = 0.0
    stats[-1, 4, COL["grad_preact_var"]] = 1e300  # overflows float32: must still be drawn, as float64
    stats[-1, 0, COL["act_var"]] = 1e-42            # underflows float32: the same
    fig = F.fig_variance_by_layer(stats, snap.steps)
    h = next(t for t in measured(fig) if t["name"] == F.NAMES["preact_var"])
    a = next(t for t in measured(fig) if t["name"] == F.NAMES["act_var"])
    g = next(t for t in measured(fig) if t["name"] == F.NAMES["grad_preact_var"])
    assert np.isnan(h["y"][1]) and np.isnan(h["y"][2]) and np.isfinite(h["y"][[0, 3, 4]]).all()
    assert h["y"].dtype == np.float32, "ordinary values travel as float32"
    assert np.isnan(g["y"][3]) and g["y"][4] == 1e300
    assert a["y"][0] == 1e-42
    note = annotations(fig)
    assert "inf/nan in layers 2–3" in note and "is 0 in layer 4" in note
    # Every chart survives the same table.
    F.fig_layer_step_heatmap(stats, snap.steps, "grad_preact_var")
    F.fig_saturation(stats, snap.steps)
    F.fig_update_ratio(stats, snap.steps)


def test_a_diverged_run_draws_what_was_recorded():
    run = Run(RunConfig(depth=6, width=32, activation="relu", init="normal", sigma_w=6.0, lr=5.0, steps=40,
                        batch_size=32)).start()
    assert run.join(timeout=120)
    s = run.snapshot()
    assert s.status == "diverged"
    figs = [F.fig_variance_by_layer(s.stats, s.steps), F.fig_layer_step_heatmap(s.stats, s.steps, "preact_var"),
            F.fig_layer_step_heatmap(s.stats, s.steps, "grad_preact_var"), F.fig_loss_accuracy(s.steps),
            F.fig_histograms(s.hist, "act"), F.fig_histograms(s.hist, "grad_preact"),
            F.fig_saturation(s.stats, s.steps), F.fig_update_ratio(s.stats, s.steps)]
    for fig in figs:
        json.loads(pio.to_json(fig, validate=False))  # valid JSON: no bare Infinity/NaN tokens
    assert "⚠" in " ".join(annotations(f) + f.layout.title.text for f in figs)


# -- heatmaps, lines, downsampling ------------------------------------------------------------------

def test_heatmap_is_layers_by_steps_with_fixed_colour_limits(snap):
    fig = F.fig_layer_step_heatmap(snap.stats, snap.steps, "preact_var")
    hm = decoded(fig)["data"][0]
    assert hm["z"].shape == (CFG.depth, len(snap.steps)) and hm["z"].dtype == np.float32
    assert (hm["zmin"], hm["zmax"]) == F.heatmap_zrange(snap.stats, "preact_var") == (-6.0, 6.0)
    np.testing.assert_allclose(hm["z"][:, -1], np.log10(snap.stats[-1, :, COL["preact_var"]]), rtol=1e-5)
    lo, hi = F.heatmap_zrange(snap.stats, "grad_preact_var")
    assert hi - lo == 2 * F.HEATMAP_SPAN
    assert lo < np.log10(snap.stats[0, -1, COL["grad_preact_var"]]) < hi


@pytest.mark.parametrize("n", [0, 1, 2, 3, 199, 200, 201, 500, 5001])
def test_sample_indices_keep_first_and_last_and_bound_the_size(n):
    idx = F.sample_indices(n, 200)
    assert len(idx) == min(n, 200)
    if n:
        assert idx[0] == 0 and idx[-1] == n - 1
        assert np.all(np.diff(idx) > 0)


def synthetic(records: int = 500, layers: int = 50, seed: int = 0):
    """A long run's arrays, with variances spread over decades (a vanishing gradient)."""
    rng = np.random.default_rng(seed)
    stats = np.abs(rng.lognormal(0, 1, (records, layers, len(STAT_COLUMNS))))
    stats[:, :, COL["grad_preact_var"]] *= 10.0 ** np.linspace(-12, -6, layers)
    stats[:, :, COL["saturation"]] = rng.uniform(0, 1, (records, layers))
    stats[:, :, COL["dead_units"]] = rng.uniform(0, 0.2, (records, layers))
    stats[0, :, COL["update_ratio"]] = np.nan
    steps = np.zeros((records, len(STEP_COLUMNS)))
    steps[:, 0] = np.arange(records)
    steps[:, 1] = np.linspace(2.3, 0.3, records)
    steps[:, 2] = np.linspace(0.1, 0.9, records)
    steps[:, 3] = np.nan
    steps[::10, 3] = np.linspace(0.1, 0.9, len(steps[::10]))
    hist = {k: [(np.linspace(-3, 3, 41) * 10.0 ** -(l / 10), rng.integers(0, 100, 40).astype(float))
                for l in range(layers)] for k in ("act", "grad_preact", "preact")}
    hist["step"] = records - 1
    return stats, steps, hist


def test_long_runs_are_downsampled_keeping_first_and_last_step():
    stats, steps, _ = synthetic()
    hm = decoded(F.fig_layer_step_heatmap(stats, steps, "grad_preact_var"))["data"][0]
    assert hm["z"].shape == (50, F.MAX_POINTS)
    assert hm["x"][0] == 0 and hm["x"][-1] == 499
    for t in decoded(F.fig_loss_accuracy(steps))["data"]:
        assert len(t["x"]) <= F.MAX_POINTS
    upd = decoded(F.fig_update_ratio(stats, steps))["data"]
    assert all(len(t["x"]) <= F.MAX_POINTS and t["x"][-1] == 499 for t in upd)
    assert upd[0]["x"][0] == 1, "step 0 has no update and is left out"


def test_payload_of_one_refresh_is_small_for_50_layers_and_500_records():
    stats, steps, hist = synthetic()
    cfg = RunConfig(depth=50, activation="tanh")
    figs = [F.fig_variance_by_layer(stats, steps, theory=predicted_profile(cfg)),
            F.fig_layer_step_heatmap(stats, steps, "preact_var"), F.fig_layer_step_heatmap(stats, steps, "grad_preact_var"),
            F.fig_loss_accuracy(steps), F.fig_histograms(hist, "act"), F.fig_histograms(hist, "grad_preact"),
            F.fig_saturation(stats, steps), F.fig_update_ratio(stats, steps)]
    sizes = [len(pio.to_json(f, validate=False)) for f in figs]
    assert sum(sizes) < 300_000, sizes
    for f in figs:  # no 6.5 KB default template in any of them
        assert len(pio.to_json(f.layout.template, validate=False)) < 1000


def test_loss_and_accuracy(snap):
    fig = decoded(F.fig_loss_accuracy(snap.steps))
    names = [t["name"] for t in fig["data"]]
    assert names == ["training loss (batch)", "training batch accuracy", "held-out accuracy"]
    held_out = fig["data"][2]
    assert list(held_out["x"]) == [0, 4, 8, 12]  # eval_every = 4, and after the last step
    steps = snap.steps.copy()
    steps[-1, 1] = np.inf
    assert "loss became inf/nan at step 12" in annotations(F.fig_loss_accuracy(steps))


# -- distributions, saturation, update ratio ----------------------------------------------------------

def test_histograms_one_ridge_per_layer(snap):
    assert snap.hist is not None and snap.hist["step"] == CFG.steps
    for kind in ("act", "grad_preact"):
        fig = F.fig_histograms(snap.hist, kind)
        assert [t.name for t in fig.data] == [f"layer {l}" for l in range(1, CFG.depth + 1)]
        assert f"at step {CFG.steps}" in fig.layout.title.text
    tanh = F.fig_histograms(snap.hist, "act")
    lo, hi = tanh.layout.xaxis.range
    assert -1.1 <= lo and hi <= 1.1, "tanh activations are drawn on their range"


def test_histograms_cap_the_ridges_and_handle_empty_layers():
    _, _, hist = synthetic(layers=50)
    fig = F.fig_histograms(hist, "grad_preact")
    assert len(fig.data) == F.MAX_RIDGES
    assert fig.data[0].name == "layer 1" and fig.data[-1].name == "layer 50"
    _, _, hist = synthetic(layers=10)
    hist["act"][3] = (np.array([0.0, 1.0]), np.zeros(1))  # what probes.histograms gives for all-inf layers
    fig = F.fig_histograms(hist, "act")
    assert len(fig.data) == 9 and "no finite values in layer 4" in fig.layout.title.text
    assert "No distributions" in annotations(F.fig_histograms(None))


def test_saturation_and_dead_units_by_layer(snap):
    fig = decoded(F.fig_saturation(snap.stats, snap.steps, activation="tanh"))
    traces = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert [t["name"] for t in traces] == [F.NAMES["saturation"], F.NAMES["dead_units"]]
    for t in traces:
        assert len(t["y"]) == CFG.depth and np.nanmax(t["y"]) <= 100
    assert "no flat region" in annotations(F.fig_saturation(snap.stats, snap.steps, activation="linear"))


def test_update_ratio_has_the_1e_3_reference(snap):
    fig = F.fig_update_ratio(snap.stats, snap.steps)
    assert fig.layout.yaxis.type == "log"
    assert any(s.y0 == 1e-3 and s.line.dash == "dash" for s in fig.layout.shapes)
    assert len(fig.data) == CFG.depth
    only_init = F.fig_update_ratio(snap.stats[:1], snap.steps[:1])
    assert "after the first step" in annotations(only_init)


def test_empty_run_gives_a_message_not_an_exception():
    stats, steps = np.zeros((0, 4, len(STAT_COLUMNS))), np.zeros((0, 4))
    for fig in (F.fig_variance_by_layer(stats, steps), F.fig_layer_step_heatmap(stats, steps),
                F.fig_loss_accuracy(steps), F.fig_saturation(stats, steps), F.fig_update_ratio(stats, steps)):
        assert annotations(fig)


def test_compare_overlay(snap):
    fig = F.fig_variance_compare({"A": (snap.stats, snap.steps), "B": (snap.stats[:1], snap.steps[:1])})
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == 4 and all(len(t.y) == CFG.depth for t in lines)
    assert {t.line.dash for t in lines} == {"solid", "dash"}


def test_figures_module_does_not_import_streamlit():
    code = "import sys, core.figures.runs; sys.exit(1 if 'streamlit' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=".").returncode == 0


def test_theory_preview_before_any_run():
    fig = F.fig_theory_profile(predicted_profile(CFG))
    assert [len(t.y) for t in fig.data] == [CFG.depth, CFG.depth]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    hidden = F.fig_theory_profile(predicted_profile(CFG.replace(batchnorm=True)))
    assert "does not cover" in annotations(hidden)


# -- Compare's and Learn's charts (core.figures.compare, core.figures.learn) ---------------------------

def test_loss_compare_draws_each_runs_recorded_loss_and_held_out_accuracy(snap):
    short = snap.steps[:5]
    fig = F.fig_loss_compare({"A": snap.steps, "B": short})
    data = decoded(fig)["data"]
    loss = {t["name"]: t for t in data if t["name"].endswith(": loss")}
    np.testing.assert_array_equal(loss["A: loss"]["x"], snap.steps[:, 0])
    np.testing.assert_allclose(loss["A: loss"]["y"], snap.steps[:, 1], rtol=1e-6)   # float32 on the wire
    np.testing.assert_allclose(loss["B: loss"]["y"], short[:, 1], rtol=1e-6)
    acc = {t["name"]: t for t in data if "held-out" in t["name"]}
    tested = np.isfinite(snap.steps[:, 3])
    np.testing.assert_array_equal(acc["A: held-out accuracy"]["x"], snap.steps[tested, 0])
    # one colour language (issue 11): the colour is the quantity, the line style the run, as on the variance chart
    assert {t["line"]["color"] for t in loss.values()} == {F.COLOURS["loss"]}
    assert [loss[k]["line"]["dash"] for k in ("A: loss", "B: loss")] == [F.RUN_DASHES["A"], F.RUN_DASHES["B"]]
    quantity_colours = {F.COLOURS[c] for c in ("preact_var", "act_var", "grad_preact_var")}
    assert not {t["line"]["color"] for t in data} & quantity_colours
    assert fig.layout.template == F.TEMPLATE


def test_shared_zrange_is_the_first_recorded_runs_and_the_default_without_records(snap):
    empty = np.zeros((0, CFG.depth, len(STAT_COLUMNS)))
    assert F.shared_zrange({"A": empty, "B": snap.stats}, "grad_preact_var") == \
        F.heatmap_zrange(snap.stats, "grad_preact_var")
    centre = round(np.log10(snap.stats[0, -1, COL["grad_preact_var"]]))  # the last layer's gradient at step 0
    assert F.shared_zrange({"B": snap.stats}, "grad_preact_var") == (centre - F.HEATMAP_SPAN, centre + F.HEATMAP_SPAN)
    assert F.shared_zrange({"A": None}, "preact_var") == (-F.HEATMAP_SPAN, F.HEATMAP_SPAN)


def test_fig_lines_one_line_per_series_with_gaps_for_what_a_log_axis_cannot_show():
    fig = F.fig_lines({"a": [1.0, 0.0, 1e-3], "b": [np.inf, 2.0, 4.0]}, title="t", marks=[(2.0, "He")])
    a, b = decoded(fig)["data"]
    np.testing.assert_array_equal(a["x"], [1, 2, 3])
    assert a["y"][0] == 1.0 and np.isnan(a["y"][1]) and a["y"][2] == pytest.approx(1e-3)
    assert np.isnan(b["y"][0]) and list(b["y"][1:]) == [2.0, 4.0]
    assert fig.layout.yaxis.type == "log" and fig.layout.shapes[0].x0 == 2.0
    lin = F.fig_lines({"s": [-1.0, 0.5]}, x={"s": [-6.0, 6.0]}, log_y=False, title="slopes")
    assert list(lin.data[0].x) == [-6.0, 6.0] and list(lin.data[0].y) == [-1.0, 0.5] and lin.layout.yaxis.type is None
    by_layer = F.fig_by_layer({"x": [1.0, 2.0]}, 2)
    assert "depth 2" in by_layer.layout.title.text


def test_every_figure_uses_the_one_template(snap):
    prof = predicted_profile(CFG)
    figs = [F.fig_variance_by_layer(snap.stats, snap.steps), F.fig_loss_accuracy(snap.steps),
            F.fig_variance_compare({"A": (snap.stats, snap.steps)}), F.fig_loss_compare({"A": snap.steps}),
            F.fig_lines({"a": [1.0]}, title="t"), F.fig_variance_map("tanh", 1.0, 0.0),
            F.fig_phase_diagram("tanh", 1.0, 0.0, n=8), F.fig_jacobian_spectrum([0.5, 1.0, 2.0], 1.0),
            F.fig_predicted_profile(prof)]
    assert all(f.layout.template == F.TEMPLATE for f in figs)


# -- figures only in core: ui/ and pages/ lay them out --------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, and `module.name` for each `from module import name`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def ui_files() -> list[Path]:
    return sorted([*(ROOT / "ui").glob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"])


def test_no_ui_module_or_page_builds_a_figure_or_runs_torch():
    files = ui_files()
    assert len(files) >= 15
    figures = {"plotly.graph_objects", "plotly.graph_objs", "plotly.subplots", "plotly.subplots.make_subplots",
               "plotly.express"}
    builds = {p.relative_to(ROOT).as_posix(): sorted(imports_of(p) & figures) for p in files}
    assert {k: v for k, v in builds.items() if v} == {}, "figures are built in core.figures"
    computes = {p.relative_to(ROOT).as_posix(): sorted(m for m in imports_of(p) if m.split(".")[0] == "torch")
                for p in files}
    assert {k: v for k, v in computes.items() if v} == {}, "statistics and theory are computed in core"


def test_the_import_checker_sees_figure_and_torch_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("import plotly.graph_objects as go\nfrom plotly.subplots import make_subplots\n"
                     "def f():\n    import torch.autograd\n")
    assert {"plotly.graph_objects", "plotly.subplots.make_subplots", "torch.autograd"} <= imports_of(probe)


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for p in [*ui_files(), *(ROOT / "core" / "figures").glob("*.py")]:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                offenders += [f"{p.name}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []

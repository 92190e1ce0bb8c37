"""core.figures.live: a live chart's first figure plus its patches equals the figure built the old way.

The oracle is the still chart (`core.figures.runs` / `compare` over the same records): a base figure
drawn at an early count, then patched refresh by refresh (as the browser does, `apply_patch`), must
hold the same points, titles and notes as the figure built at the final count; patches carry only
records the browser lacks; axis ranges are whole decades that hold every value and only grow.
"""
from __future__ import annotations

import json
import math

import numpy as np
import plotly.io as pio
import pytest

from core import figures as F
from core.figures import live as LF
from core.measure.probes import COL
from core.run.background import Run
from core.schema import RunConfig
from core.theory import predicted_profile

CFG = RunConfig(depth=5, width=32, activation="tanh", init="xavier_normal", steps=40, batch_size=32, eval_every=8)


@pytest.fixture(scope="module")
def snap():
    run = Run(CFG).start()
    assert run.join(timeout=120)
    s = run.snapshot()
    assert s.status == "finished", s.message
    return s


def fig_json(fig) -> dict:
    """A figure's JSON with typed arrays as lists (None for gaps): what the browser plots."""
    return LF_plain(json.loads(pio.to_json(fig, validate=False)))


def LF_plain(v):
    if isinstance(v, dict):
        if "bdata" in v and "dtype" in v:
            return LF._plain(v)
        return {k: LF_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [LF_plain(x) for x in v]
    return v


def values(a) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in np.ravel(np.array(a, dtype=object))], dtype=np.float64)


def assert_close(got, want, what: str, rtol: float = 2e-3) -> None:
    g, w = values(got), values(want)
    assert g.shape == w.shape, f"{what}: {g.shape} points, expected {w.shape}"
    assert np.array_equal(np.isnan(g), np.isnan(w)), f"{what}: gaps differ"
    ok = ~np.isnan(w)
    np.testing.assert_allclose(g[ok], w[ok], rtol=rtol, err_msg=what)  # packed numbers keep 4 digits


def notes(fig: dict) -> list[str]:
    return sorted(a["text"] for a in fig["layout"].get("annotations", []) if a.get("visible", True) is not False
                  and "⚠" in a.get("text", ""))


def replay(make, counts, *, since_lag: int = 1):
    """Draw `make(n)` at counts[0] and patch it at each later count, from what the browser holds
    (or, with `since_lag` > 1, from an older count: overlapping patches). Returns the figure and patches."""
    first = make(counts[0])
    fig = json.loads(first.figure_json())
    fig = LF_plain(fig)
    held = [first.n]
    patches = []
    for n in counts[1:]:
        chart = make(n)
        assert chart.base == first.base, "the structure must not change between these counts"
        since = held[max(0, len(held) - since_lag)]
        p = json.loads(json.dumps(chart.update(since)))  # through JSON, as the browser gets it
        LF.apply_patch(fig, p, have=held[-1])
        held.append(chart.n)
        patches.append(p)
    return fig, patches


def test_pack_keeps_four_digits_and_gaps():
    a = np.array([1.23456, 0.0, np.inf, np.nan, -2e-7, 3e40])
    got = LF.unpack(LF.pack(a))
    assert got[2] is None and got[3] is None
    np.testing.assert_allclose([got[0], got[4], got[5]], [1.235, -2e-7, 3e40], rtol=1e-3)
    assert got[1] == 0.0


def test_decade_range_holds_every_value_in_whole_decades():
    rng = LF.decade_range(np.array([0.03, 2.0, np.inf, 0.0, np.nan]))
    assert rng == [-2.0, 1.0]
    lo, hi = rng
    assert 10 ** lo <= 0.03 and 2.0 <= 10 ** hi and float(lo).is_integer() and float(hi).is_integer()
    assert LF.decade_range(np.array([np.inf, 0.0])) is None
    assert LF.decade_range(np.array([1.0]))[1] - LF.decade_range(np.array([1.0]))[0] >= 1


def test_record_grid_keeps_at_most_cap_and_doubles():
    for n in (1, 5, 200, 201, 999, 5000):
        stride, kept = LF.record_grid(n, 200)
        assert len(kept) <= 200 and kept[0] == 0 and np.all(np.diff(kept) == stride)
        assert stride == 1 or math.ceil(n / (stride // 2)) > 200  # the smallest power of two that fits
    assert LF.record_grid(200, 200)[0] == 1 and LF.record_grid(201, 200)[0] == 2


def test_variance_patches_equal_the_figure_built_at_that_step(snap):
    theory = predicted_profile(snap.config, 1.0)
    S, P = snap.stats, snap.steps
    make = lambda n: LF.live_variance(S[:n], P[:n], owner="t", theory=theory)  # noqa: E731
    fig, patches = replay(make, [5, 9, 17, len(P)])
    want = fig_json(F.fig_variance_by_layer(S, P, theory=theory))
    assert fig["layout"]["title"]["text"] == want["layout"]["title"]["text"] == f"Variance by layer at step {int(P[-1, 0])}"
    assert len(fig["data"]) == len(want["data"])
    for got, exp in zip(fig["data"], want["data"]):
        assert got["name"] == exp["name"]
        assert_close(got["y"], exp["y"], got["name"])
        assert got.get("hovertemplate") == exp.get("hovertemplate")
    # A by-layer patch sends one value per layer for each measured curve, nothing of the ghosts or theory.
    assert all(len(LF.unpack(y)) == S.shape[1] for y in patches[-1]["set"]["y"])
    assert len(patches[-1]["set"]["traces"]) == 3
    # y axes: whole decades holding every record so far (and the theory line), never less than the last refresh.
    for axis, cols in (("yaxis", ["preact_var", "act_var"]), ("yaxis2", ["grad_preact_var"])):
        lo, hi = fig["layout"][axis]["range"]
        v = S[:, :, [COL[c] for c in cols]]
        v = v[np.isfinite(v) & (v > 0)]
        assert float(lo).is_integer() and float(hi).is_integer()
        assert 10 ** lo <= v.min() and v.max() <= 10 ** hi
    widths = [p["ranges"]["yaxis"]["range"] for p in patches]
    assert all(a[0] >= b[0] and a[1] <= b[1] for a, b in zip(widths, widths[1:])), widths


def test_variance_at_a_scrubbed_step_equals_the_old_figure_at_that_record(snap):
    S, P = snap.stats, snap.steps
    k = 3
    chart = LF.live_variance(S, P, owner="t", record=k)
    fig = LF_plain(json.loads(LF.live_variance(S, P, owner="t", record=len(P) - 1).figure_json()))
    LF.apply_patch(fig, json.loads(json.dumps(chart.update(chart.n))))
    want = fig_json(F.fig_variance_by_layer(S, P, record=k))
    assert fig["layout"]["title"]["text"] == f"Variance by layer at step {int(P[k, 0])}"
    for got, exp in zip(fig["data"], want["data"]):
        assert_close(got["y"], exp["y"], exp["name"])


def test_heatmap_patches_send_only_new_records_and_equal_the_old_heatmap(snap):
    S, P = snap.stats, snap.steps
    n = len(P)
    make = lambda m: LF.live_heatmap(S[:m], P[:m], "grad_preact_var", owner="t", title="B")  # noqa: E731
    fig, patches = replay(make, [4, 11, 12, 30, n])
    want = fig_json(F.fig_layer_step_heatmap(S, P, "grad_preact_var", title="B"))
    got_z = np.array(values(fig["data"][0]["z"])).reshape(n, S.shape[1]).T  # records-major, transposed back
    assert_close(got_z, want["data"][0]["z"], "z")
    assert_close(fig["data"][0]["x"], want["data"][0]["x"], "x")
    assert fig["data"][0]["transpose"] is True
    assert fig["data"][0]["zmin"] == want["data"][0]["zmin"] and fig["data"][0]["zmax"] == want["data"][0]["zmax"]
    # only the new records travel: 11 -> 12 is one record of L values
    one = patches[1]["extend"]
    assert one["r"] == [[11]] and len(one["z"][0]) == 1 and len(LF.unpack(one["z"][0][0])) == S.shape[1]
    assert "fig" not in patches[1]


def test_overlapping_patches_append_each_record_once(snap):
    S, P = snap.stats, snap.steps
    make = lambda m: LF.live_loss(P[:m], owner="t")  # noqa: E731
    fig, patches = replay(make, [3, 6, 9, 14, 20, len(P)], since_lag=3)
    want = fig_json(F.fig_loss_accuracy(P))
    for got, exp in zip(fig["data"], want["data"]):
        assert got["name"] == exp["name"]
        assert_close(got["x"], exp["x"], exp["name"] + " x")
        assert_close(got["y"], exp["y"], exp["name"] + " y")
    assert len(fig["data"]) == 3  # loss, batch accuracy, held-out accuracy (every eval_every steps)
    assert patches[-1]["extend"]["r"][0][0] < len(P) - 1  # the patch overlapped records the browser had


def test_heatmap_grid_is_capped_and_a_new_stride_is_a_new_base(snap):
    S, P = snap.stats, snap.steps
    a = LF.live_heatmap(S[:10], P[:10], "preact_var", owner="t", title="F", cap=10)
    b = LF.live_heatmap(S[:11], P[:11], "preact_var", owner="t", title="F", cap=10)
    assert a.base != b.base
    fig = LF_plain(json.loads(b.figure_json()))
    assert fig["data"][0]["x"] == [0, 2, 4, 6, 8, 10]


def test_a_diverged_run_is_gaps_with_a_note_and_keeps_its_axes():
    L = 4
    stats = np.ones((2, L, len(COL)))
    stats[1, :, :] = np.inf
    steps = np.array([[0, 2.3, 0.1, np.nan], [1, np.inf, 0.1, np.nan]])
    chart = LF.live_variance(stats, steps, owner="d")
    fig = LF_plain(json.loads(chart.figure_json()))
    grad = [t for t in fig["data"] if t["name"] == "Var(∂L/∂h)"][0]
    assert all(v is None for v in grad["y"])
    assert any("inf/nan in layers 1–4" in s for s in notes(fig)), notes(fig)
    assert fig["layout"]["yaxis2"]["range"] == [-1.0, 1.0]  # from step 0's finite values, not inf
    loss = LF_plain(json.loads(LF.live_loss(steps, owner="d").figure_json()))
    assert any("loss became inf/nan at step 1" in s for s in notes(loss))


def test_compare_overlay_has_ghosts_theory_and_the_same_step(snap):
    S, P = snap.stats, snap.steps
    theory = predicted_profile(snap.config, 1.0)
    runs = {"A": (S, P), "B": (S[:20], P[:20])}
    fig = F.fig_variance_compare(runs, step=10, theories={"A": theory, "B": theory})
    names = [t.name for t in fig.data]
    assert "A at step 0 (faint)" in names and "B at step 0 (faint)" in names
    assert names.count("A: theory") == 2 and names.count("B: theory") == 2
    assert fig.layout.title.text == "Variance by layer at step 10"
    live = LF.live_variance_compare(runs, owner="c", step=10, theories={"A": theory, "B": theory})
    got = LF_plain(json.loads(live.figure_json()))
    want = fig_json(fig)
    for g, w in zip(got["data"], want["data"]):
        assert g["name"] == w["name"]
        assert_close(g["y"], w["y"], w["name"])
    # scrubbed to another step: the patch moves both runs there
    later = LF.live_variance_compare(runs, owner="c", step=15, theories={"A": theory, "B": theory})
    assert later.base == live.base
    LF.apply_patch(got, json.loads(json.dumps(later.update(later.n))))
    want15 = fig_json(F.fig_variance_compare(runs, step=15, theories={"A": theory, "B": theory}))
    assert got["layout"]["title"]["text"] == "Variance by layer at step 15"
    for g, w in zip(got["data"], want15["data"]):
        assert g["name"] == w["name"]
        assert_close(g["y"], w["y"], w["name"])


def test_compare_loss_patches_equal_the_old_figure(snap):
    P = snap.steps
    make = lambda m: LF.live_loss_compare({"A": P[:m], "B": P[:max(1, m - 5)]}, owner="c")  # noqa: E731
    fig, _ = replay(make, [8, 15, 30, len(P)], since_lag=2)
    want = fig_json(F.fig_loss_compare({"A": P, "B": P[:len(P) - 5]}))
    assert [t["name"] for t in fig["data"]] == [t["name"] for t in want["data"]]
    for got, exp in zip(fig["data"], want["data"]):
        assert_close(got["x"], exp["x"], exp["name"] + " x")
        assert_close(got["y"], exp["y"], exp["name"] + " y")


def test_update_ratio_patches_extend_each_layer_and_equal_the_old_figure(snap):
    S, P = snap.stats, snap.steps
    n = len(P)
    make = lambda m: LF.live_update_ratio(S[:m], P[:m], owner="u")  # noqa: E731
    fig, patches = replay(make, [3, 9, 10, 25, n], since_lag=2)
    want = fig_json(F.fig_update_ratio(S, P))
    assert [t["name"] for t in fig["data"]] == [t["name"] for t in want["data"]] == [f"layer {l}" for l in range(1, 6)]
    for got, exp in zip(fig["data"], want["data"]):
        assert_close(got["x"], exp["x"], exp["name"] + " x")
        assert_close(got["y"], exp["y"], exp["name"] + " y")
        assert got["mode"] == exp["mode"]
    # std(ΔW)/std(W) of layer 1 at the last step, from the run's own columns: the figure draws that column
    assert values(fig["data"][0]["y"])[-1] == pytest.approx(S[-1, 0, COL["update_ratio"]], rel=2e-3)
    assert make(10).update((9,))["extend"]["r"][0] == [9], "9 -> 10 records: only record 9 travels"
    assert patches[1]["extend"]["r"][0][0] < 9, "a patch from an older count overlapped what the browser had"
    lo, hi = patches[-1]["ranges"]["yaxis"]["range"]
    finite = S[1:, :, COL["update_ratio"]]
    assert lo <= math.log10(min(finite.min(), 1e-3)) and hi >= math.log10(max(finite.max(), 1e-3))
    assert lo == math.floor(lo) and hi == math.ceil(hi)  # whole decades, the 10⁻³ line inside


def _hist(step: int, scale: float, layers: int = 4, seed: int = 0) -> dict:
    """Histograms of N(0, scale² · l) samples per layer, as the trainer records them (edges, counts)."""
    rng = np.random.default_rng(seed)
    out = []
    for l in range(1, layers + 1):
        counts, edges = np.histogram(rng.normal(0, scale * l, 4000), bins=30)
        out.append((edges.tolist(), counts.tolist()))
    return {"step": step, "act": out, "grad_preact": out}


def test_histogram_patches_set_every_ridge_and_equal_the_old_figure():
    first, later = _hist(0, 1.0), _hist(40, 0.3, seed=1)
    a, b = LF.live_histograms(first, "act", owner="h"), LF.live_histograms(later, "act", owner="h")
    assert a.base == b.base                                            # the same layers drawn: patched, not redrawn
    fig = LF_plain(json.loads(a.figure_json()))
    LF.apply_patch(fig, json.loads(json.dumps(b.update(a.n))))
    want = fig_json(F.fig_histograms(later, "act"))
    assert len(fig["data"]) == len(want["data"]) == 4
    for got, exp in zip(fig["data"], want["data"]):
        assert_close(got["x"], exp["x"], exp["name"] + " x")
        assert_close(got["y"], exp["y"], exp["name"] + " y")
    assert fig["layout"]["title"]["text"] == want["layout"]["title"]["text"] == "Distribution of activations a = φ(h) at step 40"
    np.testing.assert_allclose(fig["layout"]["xaxis"]["range"], want["layout"]["xaxis"]["range"])
    # a layer with nothing finite is not drawn: another structure, so another base (a full figure)
    broken = _hist(41, 0.3)
    broken["act"][2] = (broken["act"][2][0], [0] * 30)
    assert LF.live_histograms(broken, "act", owner="h").base != a.base

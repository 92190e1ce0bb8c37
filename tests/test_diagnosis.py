"""The health verdict: findings that match the table they read, with layer and step in the words."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from core.schema import RunConfig
from core.io.diagnosis import DEAD, DECADES, SATURATED, Diagnosis, diagnose
from core.run.engine import train
from core.measure.probes import COL

G = dict(dataset="gaussian", batch_size=64, width=64)


def run(**kw):
    result = train(RunConfig(**{**G, **kw}))
    return result, diagnose(result)


def assert_names_layer_and_step(f):
    assert f"step {f.step}" in f.sentence, f.sentence
    if f.layer is not None:
        assert f"layer {f.layer}" in f.sentence, f.sentence
    assert f.advice and f.advice.endswith(".")


def decades_in(sentence: str) -> float:
    return float(re.search(r"10\^(-?[0-9.]+)", sentence).group(1))


def test_sigmoid_depth_20_gradients_vanish():
    result, d = run(depth=20, activation="sigmoid", init="xavier_normal", steps=3)
    assert d.verdict == "vanishing"
    f = next(f for f in d.findings if f.kind == "vanishing")
    assert (f.step, f.layer) == (0, 1)
    assert_names_layer_and_step(f)
    # the number in the sentence is the table's: log10 of Var(∂L/∂h) in layer 1 over layer 20, at step 0
    g = result.stats[0, :, COL["grad_preact_var"]]
    assert decades_in(f.sentence) == pytest.approx(math.log10(g[0] / g[-1]), abs=0.05)
    assert math.log10(g[0] / g[-1]) < -DECADES
    assert "sigmoid" in f.advice.lower() or "Sigmoid" in f.advice
    assert d.headline == f.sentence


def test_too_small_tanh_init_vanishes_forward_and_backward():
    result, d = run(depth=20, activation="tanh", init="normal", sigma_w=0.4, steps=2)
    kinds = {(f.kind, f.layer) for f in d.findings}
    assert ("vanishing", 1) in kinds and ("vanishing", 20) in kinds
    f = next(f for f in d.findings if f.kind == "vanishing" and f.layer == 20)
    q = result.stats[0, :, COL["preact_var"]]
    assert decades_in(f.sentence) == pytest.approx(math.log10(q[-1] / q[0]), abs=0.05)
    for f in d.findings:
        assert_names_layer_and_step(f)


def test_too_large_init_explodes():
    result, d = run(depth=20, activation="tanh", init="normal", sigma_w=3.0, steps=3)
    assert result.status == "finished"
    assert d.verdict == "exploding"
    f = next(f for f in d.findings if f.kind == "exploding")
    g = result.stats[0, :, COL["grad_preact_var"]]
    assert decades_in(f.sentence) == pytest.approx(math.log10(g[0] / g[-1]), abs=0.05)
    sat = next(f for f in d.findings if f.kind == "saturated")
    s = result.stats[0, :, COL["saturation"]]
    assert sat.layer == int(np.argmax(s)) + 1 and s.max() > SATURATED
    assert f"{s.max():.0%}" in sat.sentence
    for f in d.findings:
        assert_names_layer_and_step(f)


def test_diverged_run_is_the_verdict_with_its_step_and_layer():
    result, d = run(depth=50, width=16, batch_size=16, activation="relu", init="normal", sigma_w=10.0, steps=3)
    assert result.status == "diverged"
    assert d.verdict == "diverged" and d.findings[0].kind == "diverged"
    f = d.findings[0]
    assert (f.step, f.layer) == (result.divergence.step, result.divergence.layer)
    assert_names_layer_and_step(f)
    # severity order: the most severe first
    from core.io.diagnosis import SEVERITY
    sev = [SEVERITY[f.kind] for f in d.findings]
    assert sev == sorted(sev, reverse=True)


def test_dead_relu_units_from_large_biases():
    result, d = run(depth=10, width=32, activation="relu", init="normal", sigma_b=3.0, steps=1)
    dead = [f for f in d.findings if f.kind == "dead"]
    assert dead
    for f in dead:
        i = list(result.steps[:, 0]).index(f.step)
        frac = result.stats[i, :, COL["dead_units"]]
        assert frac[f.layer - 1] == frac.max() > DEAD
        assert f"{frac.max():.0%}" in f.sentence
        assert_names_layer_and_step(f)


@pytest.mark.parametrize("kw", [
    dict(depth=8, activation="tanh", init="xavier_normal", dataset="digits", steps=5),
    dict(depth=6, activation="relu", init="kaiming_normal", dataset="digits", steps=5),
    dict(depth=10, width=128, activation="relu", init="kaiming_normal", steps=5),
], ids=["tanh-xavier", "relu-he-digits", "relu-he-gaussian"])
def test_healthy_runs_are_called_healthy(kw):
    result, d = run(**kw)
    assert d.verdict == "healthy" and d.findings == ()
    # and the table agrees: within three decades forward and backward, nothing saturated or dead
    rec = result.stats[0]
    g, q = rec[:, COL["grad_preact_var"]], rec[:, COL["preact_var"]]
    assert abs(math.log10(g[0] / g[-1])) < DECADES and abs(math.log10(q[-1] / q[0])) < DECADES


def test_slow_updates():
    result, d = run(depth=4, width=32, activation="tanh", init="xavier_normal", steps=3, lr=1e-6)
    assert d.verdict == "slow"
    med = float(np.median(result.stats[-1, :, COL["update_ratio"]]))
    assert f"{med:.1e}" in d.headline and "step 3" in d.headline


def test_nothing_recorded_is_pending_and_round_trip():
    result = train(RunConfig(**{**G, "depth": 3, "steps": 2, "record_every": 0}))
    assert diagnose(result).verdict == "pending"
    _, d = run(depth=20, activation="sigmoid", init="xavier_normal", steps=1)
    assert Diagnosis.from_dict(d.to_dict()) == d


@pytest.mark.parametrize("activation", ["tanh", "linear", "relu", "sigmoid"])
def test_zero_init_is_never_called_healthy(activation):
    """W = 0: no signal reaches the top and no gradient reaches the bottom; there is no ratio to take,
    but it is the most vanished a network can be."""
    result, d = run(depth=5, width=32, activation=activation, init="zeros", steps=2)
    assert d.verdict != "healthy"
    g = result.stats[0, :, COL["grad_preact_var"]]
    assert g[0] == 0
    f = next(f for f in d.findings if f.kind == "vanishing" and f.layer == 1)
    assert f.step == 0 and "exactly zero" in f.sentence
    assert_names_layer_and_step(f)

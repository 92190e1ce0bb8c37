"""The health verdict: findings that match the table they read, with layer and step in the words."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from core.fmt import from_superscript, sci
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
    """The exponent of the power of ten a verdict writes in superscripts (10⁻²³·⁹ → -23.9)."""
    assert "^" not in sentence, sentence
    return float(from_superscript(re.search(r"10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹·]+)", sentence).group(1)))


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
    assert sci(med) in d.headline and "step 3" in d.headline and "e-" not in d.headline


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


# -- advice comes from the settings ------------------------------------------------------------------
import itertools
import json
from types import SimpleNamespace

from core.io.diagnosis import Suggestion
from core.measure.records import STAT_COLUMNS
from core.registry import ACTIVATIONS, INITIALIZERS

L_SYN = 6


def synthetic(cfg: RunConfig, **columns) -> SimpleNamespace:
    """A result with two records (steps 0 and 10) of L_SYN layers: healthy unless a column is given
    (a function of the layer index 0..L-1), so each finding is triggered on purpose."""
    stats = np.ones((2, L_SYN, len(STAT_COLUMNS)))
    stats[:, :, COL["saturation"]] = 0.0
    stats[:, :, COL["dead_units"]] = 0.0
    stats[:, :, COL["update_ratio"]] = 1e-3
    for name, f in columns.items():
        if name != "divergence":
            stats[:, :, COL[name]] = [f(l) for l in range(L_SYN)]
    steps = np.array([[0.0], [10.0]])
    return SimpleNamespace(config=cfg, stats=stats, steps=steps, divergence=columns.get("divergence"))


_DIVERGED = SimpleNamespace(step=7, layer=3, sentence=lambda cfg: "The activations of layer 3 became non-finite (inf/nan) at step 7.")
PROFILES = {
    "gradients vanish": dict(grad_preact_var=lambda l: 10.0 ** (2 * (l - L_SYN + 1))),
    "gradients explode": dict(grad_preact_var=lambda l: 10.0 ** (2 * (L_SYN - 1 - l))),
    "no gradient": dict(grad_preact_var=lambda l: 0.0 if l == 0 else 1.0),
    "activations vanish": dict(preact_var=lambda l: 10.0 ** (-2 * l)),
    "activations explode": dict(preact_var=lambda l: 10.0 ** (2 * l)),
    "saturated": dict(saturation=lambda l: 0.9),
    "dead": dict(dead_units=lambda l: 0.9),
    "slow": dict(update_ratio=lambda l: 1e-7),
    "fast": dict(update_ratio=lambda l: 1.0),
    "diverged": dict(divergence=_DIVERGED),
}

SETTINGS = [
    dict(activation=a, init=i, batchnorm=bn, sigma_w=sw, sigma_b=sb)
    for a, i, bn in itertools.product(ACTIVATIONS, INITIALIZERS, [False, True])
    for sw, sb in ([(1.0, 0.0), (0.5, 0.0), (2.0, 0.5)] if INITIALIZERS[i].uses_sigma_w else [(1.0, 0.0)])
]


def _current(cfg: RunConfig, key: str):
    return len(cfg.hidden_widths) if key == "depth" else getattr(cfg, key)


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(f"{v}" for v in s.values()))
def test_no_suggestion_is_what_is_already_set(settings):
    cfg = RunConfig(dataset="gaussian", depth=L_SYN, width=32, steps=10, **settings)
    for profile, columns in PROFILES.items():
        d = diagnose(synthetic(cfg, **columns))
        # saturation is a finding only for activations flat on both sides (tanh, sigmoid)
        assert d.findings or (profile == "saturated" and not ACTIVATIONS[cfg.activation].saturates), profile
        for f in d.findings:
            if f.kind in ("vanishing", "exploding", "diverged", "fast"):
                assert f.suggestions, (profile, f.kind, f.advice)
            for s in f.suggestions:
                assert isinstance(s, Suggestion) and s.changes
                assert any(_current(cfg, k) != v for k, v in s.changes.items()), (profile, s)
                new = s.apply(cfg)  # a valid config (RunConfig validates) ...
                assert new != cfg, (profile, s)  # ... that differs from the current one
                for k, v in s.changes.items():
                    assert _current(new, k) == v
                if "init" in s.changes:  # another scheme, not the same one under another name
                    w = cfg.width
                    assert INITIALIZERS[s.changes["init"]].weight_std(w, w) != INITIALIZERS[cfg.init].weight_std(w, w) \
                        or INITIALIZERS[cfg.init].sigma_w == "intrinsic", (profile, s)
                if cfg.batchnorm:
                    assert s.changes.get("batchnorm") is not True
                assert s.label.lower() in f.advice.lower() and s.why in f.advice
            assert f.advice.endswith("."), f.advice


def test_relu_he_batchnorm_depth_50_is_not_told_to_use_he_or_batchnorm():
    """Reported: ReLU + He + BatchNorm at depth 50 said "try He for ReLU, or turn BatchNorm on"."""
    cfg = RunConfig(dataset="gaussian", depth=50, width=64, activation="relu", init="kaiming_normal", batchnorm=True,
                    steps=1)
    result = train(cfg)
    d = diagnose(result)
    f = next(f for f in d.findings if f.kind == "exploding" and f.layer == 1)  # BatchNorm's own gradient growth
    assert "He" not in f.advice.split(":")[0] and "turn batchnorm on" not in f.advice.lower()
    assert f.suggestions[0].changes == {"batchnorm": False}
    # and the suggestion fixes it: without BatchNorm, He keeps ReLU's gradients within three decades
    fixed = diagnose(train(f.suggestions[0].apply(cfg)))
    assert not any(g.kind == "exploding" for g in fixed.findings)


def test_cli_relu_he_run_does_not_advise_he(tmp_path):
    """Reported: `python -m core run ... --activation relu --init kaiming_normal` advised "Use He (kaiming_normal)"."""
    from core.io.cli import main

    out = tmp_path / "run.json"
    code = main(["run", "--depth", "50", "--width", "64", "--activation", "relu", "--init", "kaiming_normal",
                 "--dataset", "gaussian", "--steps", "40", "--record-every", "10", "--out", str(out)])
    assert code in (0, None)
    findings = json.loads(out.read_text())["diagnosis"]["findings"]
    assert findings  # ReLU at depth 50 loses units: there is something to advise
    for f in findings:
        assert "Use He" not in f["advice"]
        for s in f["suggestions"]:
            assert s["changes"].get("init") != "kaiming_normal"


@pytest.mark.parametrize("profile,settings,first", [
    ("gradients vanish", dict(activation="relu", init="xavier_normal"), {"init": "kaiming_normal"}),
    ("gradients vanish", dict(activation="relu", init="kaiming_normal", sigma_w=0.5), {"sigma_w": 1.0}),
    ("gradients vanish", dict(activation="sigmoid", init="xavier_normal"), {"activation": "tanh"}),
    ("gradients vanish", dict(activation="relu", init="kaiming_uniform", sigma_w=0.5), {"sigma_w": 1.0}),
    ("gradients vanish", dict(activation="tanh", init="orthogonal"), {"batchnorm": True}),
    ("activations explode", dict(activation="selu", init="kaiming_normal"), {"init": "lecun_normal"}),
    ("gradients vanish", dict(activation="tanh", init="normal", sigma_w=0.4), {"sigma_w": 1.0}),
    ("activations explode", dict(activation="relu", init="kaiming_normal"), {"sigma_w": 0.8}),
    ("activations explode", dict(activation="relu", init="kaiming_normal", sigma_w=1.5), {"sigma_w": 1.0}),
    ("gradients explode", dict(activation="relu", init="kaiming_normal", batchnorm=True), {"batchnorm": False}),
    ("gradients explode", dict(activation="tanh", init="xavier_normal", sigma_w=3.0), {"sigma_w": 1.0}),
    ("dead", dict(activation="relu", init="normal", sigma_w=1.414, sigma_b=3.0), {"sigma_b": 0.0}),
    ("dead", dict(activation="relu", init="kaiming_normal"), {"activation": "leaky_relu"}),
    ("fast", dict(activation="tanh", init="xavier_normal", lr=0.05), {"lr": 0.005}),
])
def test_the_nearest_change_comes_first(profile, settings, first):
    cfg = RunConfig(dataset="gaussian", depth=L_SYN, width=32, steps=10, **settings)
    d = diagnose(synthetic(cfg, **PROFILES[profile]))
    f = d.findings[0]
    assert f.suggestions[0].changes == first, f.advice


@pytest.mark.parametrize("kind,kw", [
    ("vanishing", dict(depth=30, activation="relu", init="xavier_normal")),
    ("vanishing", dict(depth=20, activation="tanh", init="normal", sigma_w=0.4)),
    ("vanishing", dict(depth=20, activation="sigmoid", init="xavier_normal")),
    ("exploding", dict(depth=20, activation="tanh", init="normal", sigma_w=3.0)),
    ("dead", dict(depth=10, width=32, activation="relu", init="normal", sigma_w=1.414, sigma_b=3.0)),
], ids=["relu-xavier", "tanh-small", "sigmoid", "tanh-large", "relu-large-bias"])
def test_following_the_first_suggestion_fixes_it(kind, kw):
    """The oracle is the table of a real run with the suggested settings: the finding is gone."""
    result, d = run(steps=1, **kw)
    f = next(f for f in d.findings if f.kind == kind)
    fixed = diagnose(train(f.suggestions[0].apply(result.config)))
    assert not any(g.kind == kind for g in fixed.findings), (f.suggestions[0], fixed.findings)


def test_suggestions_round_trip_through_json():
    cfg = RunConfig(dataset="gaussian", depth=L_SYN, width=32, steps=10, activation="relu", init="xavier_normal")
    d = diagnose(synthetic(cfg, **PROFILES["gradients vanish"]))
    back = Diagnosis.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back == d and back.findings[0].suggestions[0].changes == {"init": "kaiming_normal"}
    # a verdict saved before suggestions existed still reads
    old = {"verdict": "vanishing", "headline": "h", "findings": [dict(kind="vanishing", step=0, layer=1, sentence="s",
                                                                        advice="a.")]}
    assert Diagnosis.from_dict(old).findings[0].suggestions == ()

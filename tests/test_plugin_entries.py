"""A new activation and a new initializer are one registry entry each: registered from this file alone,
they go through the CLI, training (Numba kernels and the PyTorch fallback, against the hand-written
oracle), the theory, the verdict and code generation.

The entries: hardtanh (φ = clamp(h, -1, 1), flat for |h| > 1, not in the registry) and He uniform
scaled by fan_out (Var W = 2/fan_out drawn uniformly, not in the registry).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate
from torch import nn

import _oracle
from _oracle import next_batch, oracle_stats
from core import theory as T
from core.io.codegen import keras_code, pytorch_code
from core.io.diagnosis import diagnose
from core.measure import kernels
from core.models import init as init_blocks
from core.registry import ACTIVATIONS, INITIALIZERS, Activation, Advice, Initializer, keras_variance_scaling
from core.run.engine import Trainer, train
from core.schema import ConfigError, RunConfig

HARDTANH = Activation(
    "hardtanh", "Hardtanh", "φ(h) = clamp(h, -1, 1): tanh's piecewise-linear cousin.",
    F.hardtanh, None, 1.0, "tanh", "hard_tanh", "nn.Hardtanh()",
    derivative=lambda h: ((h > -1) & (h < 1)).to(h.dtype), output_range=(-1.0, 1.0),
    advice=Advice("xavier_normal", "it keeps the variance of a unit with slope 1 at 0 the same forward and backward."),
)
HE_UNIFORM_FAN_OUT = Initializer(
    "kaiming_uniform_fan_out", "He/Kaiming uniform (fan_out)", "He et al. (2015), uniform draws scaled by fan_out.",
    "W ~ U(±√(6/fan_out))",
    weight=init_blocks.scaled(lambda w, g: nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu", generator=g)),
    std=lambda fan_in, fan_out: math.sqrt(2.0 / fan_out),
    torch_code=('nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="relu")',),
    torch_comment="He, backward-preserving: U(±√(6/fan_out))",
    keras_kernel=keras_variance_scaling(None, 2.0, "fan_out", "uniform"),
)
ACT, INIT = HARDTANH.name, HE_UNIFORM_FAN_OUT.name


@pytest.fixture
def plugin(monkeypatch):
    """The two entries, registered for one test and gone afterwards."""
    monkeypatch.setitem(ACTIVATIONS, ACT, HARDTANH)
    monkeypatch.setitem(INITIALIZERS, INIT, HE_UNIFORM_FAN_OUT)
    # the oracle's φ, from its definition (the oracle never reads the registry)
    monkeypatch.setitem(_oracle.PHI, ACT, lambda h: torch.where(h > 1, torch.ones_like(h),
                                                                torch.where(h < -1, -torch.ones_like(h), h)))
    yield


@pytest.fixture(params=["kernels", "pytorch"])
def path(request, monkeypatch):
    if request.param == "kernels":
        if not kernels.AVAILABLE:
            pytest.skip("Numba is not available here")
    else:
        monkeypatch.setattr(kernels, "AVAILABLE", False)  # what GFL_NO_NUMBA=1 selects
    return request.param


def test_the_entries_are_new():
    assert ACT not in ACTIVATIONS and INIT not in INITIALIZERS


def test_config_reads_the_registry_when_it_validates(plugin, monkeypatch):
    cfg = RunConfig(activation=ACT, init=INIT)
    assert RunConfig.from_query(cfg.to_query())[0] == cfg
    monkeypatch.delitem(ACTIVATIONS, ACT)
    with pytest.raises(ConfigError, match="activation"):
        RunConfig(activation=ACT)


def test_cli_runs_and_writes_them(plugin, tmp_path):
    from core.io.cli import main

    out = tmp_path / "run.json"
    code = main(["run", "--activation", ACT, "--init", INIT, "--depth", "3", "--width", "16", "--dataset", "gaussian",
                 "--steps", "3", "--quiet", "--out", str(out)])
    assert code in (0, None)
    saved = json.loads(out.read_text())
    assert (saved["config"]["activation"], saved["config"]["init"]) == (ACT, INIT)
    assert "diagnosis" in saved
    theory_out = tmp_path / "theory.json"
    assert main(["theory", "--activation", ACT, "--sigma-w", "1.2", "--sigma-b", "0.1", "--depth", "4",
                 "--out", str(theory_out)]) in (0, None)
    assert theory_out.stat().st_size > 0


def test_training_matches_the_oracle_on_both_paths(plugin, path):
    cfg = RunConfig(widths=(48, 40), activation=ACT, init=INIT, dataset="gaussian", batch_size=32, steps=2, lr=0.1,
                    sigma_w=1.3, seed=3, eval_every=0)
    trainer = Trainer(cfg, strategy="numba" if path == "kernels" else "torch")  # so short a run would pick PyTorch
    assert trainer.strategy.name == ("batched" if path == "kernels" else "torch")
    assert trainer.hist_range == (-1.0, 1.0)
    while not trainer.done:
        x, y = next_batch(trainer)
        oracle = oracle_stats(trainer.net, HARDTANH, x, y)
        rec = trainer.advance()
        from core.measure.records import COL
        for c in ("preact_var", "act_var", "grad_preact_var", "grad_act_var", "weight_var", "saturation", "dead_units"):
            np.testing.assert_allclose(rec.stats[:, COL[c]], oracle[c], rtol=2e-4, atol=1e-12, err_msg=f"{c} {path}")
    # the initializer drew what its entry says: std √2/√fan_out times σ_w (first layer, before any step)
    w = train(cfg.replace(steps=0)).stats[0, :, COL["weight_var"]]
    fans = [(cfg.features, 48), (48, 40)]
    for got, (fi, fo) in zip(w, fans):
        assert math.sqrt(got) == pytest.approx(1.3 * math.sqrt(2 / fo), rel=0.08)


def test_theory_uses_the_entry(plugin):
    # E[φ(√q z)²] and E[φ'(√q z)²] against scipy's adaptive quadrature of the definition
    for q in (0.3, 2.0):
        m = T.gaussian_moments(ACT, q)
        pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        v = integrate.quad(lambda z: min(1.0, max(-1.0, math.sqrt(q) * z)) ** 2 * pdf(z), -40, 40,
                           points=[-1 / math.sqrt(q), 1 / math.sqrt(q)], limit=200)[0]
        d = 2 * integrate.quad(pdf, 0, 1 / math.sqrt(q))[0]  # φ' = 1 on |√q z| < 1
        # hardtanh's kinks (and φ''s jumps) sit at z = ±1/√q, not at 0 where the split rule has its seam:
        # the fixed rule is good to ~1e-3 on E[φ²] and ~1e-2 on E[φ'²] here (1e-13 for kinks at 0)
        assert m["phi2"] == pytest.approx(v, rel=2e-3)
        assert m["dphi2"] == pytest.approx(d, rel=2e-2)
    s = T.summary(ACT, 1.2, 0.1, depth=5)
    assert s["activation"] == ACT and s["phase"] in ("ordered", "critical", "chaotic", "unbounded")
    json.dumps(s, allow_nan=False)
    prof = T.predicted_profile(RunConfig(activation=ACT, init=INIT, dataset="gaussian", depth=4, width=64))
    assert prof.attrs["applies"] and np.all(np.isfinite(prof["q"]))
    # the effective σ_w² is the entry's: fan_in · 2/fan_out
    assert T.effective_sigma2(INIT, 64, 128) == pytest.approx((1.0, 0.0))


def test_verdict_advises_from_the_entries(plugin):
    cfg = RunConfig(activation=ACT, init=INIT, dataset="gaussian", depth=4, width=32, steps=2)
    d = diagnose(train(cfg))
    assert d.verdict
    # saturating (flat on both sides) → a saturation finding is possible; its advice is the entry's init
    too_big = cfg.replace(init="normal", sigma_w=4.0, depth=8)
    d = diagnose(train(too_big))
    sat = next(f for f in d.findings if f.kind == "saturated")
    assert sat.suggestions and all(s.apply(too_big) != too_big for s in sat.suggestions)


def test_code_generation_executes(plugin):
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras_module = pytest.importorskip("keras")
    from test_codegen import WIDE, hidden_linears, rms, run_keras, run_pytorch

    cfg = WIDE.replace(activation=ACT, init=INIT, sigma_w=1.5)
    model = run_pytorch(cfg, train_step=False)["model"]
    assert sum(isinstance(m, nn.Hardtanh) for m in model) == len(cfg.hidden_widths)
    sizes = (cfg.features, *cfg.hidden_widths)
    for lin, fi, fo in zip(hidden_linears(model), sizes[:-1], sizes[1:]):
        assert rms(lin.weight) == pytest.approx(HE_UNIFORM_FAN_OUT.weight_std(fi, fo, 1.5), rel=0.03)
    assert "loss before the step" in run_pytorch(cfg)["_stdout"]
    import numpy as np

    model = run_keras(cfg)["model"]  # real Keras 3 on the torch backend
    dense = [l for l in model.layers if type(l).__name__ == "Dense"]
    for d, fi, fo in zip(dense, sizes[:-1], sizes[1:]):
        k = keras_module.ops.convert_to_numpy(d.kernel).astype(np.float64)
        assert float(np.sqrt((k * k).mean())) == pytest.approx(HE_UNIFORM_FAN_OUT.weight_std(fi, fo, 1.5), rel=0.03)
    acts = [l for l in model.layers if type(l).__name__ == "Activation"]
    assert acts and all(a.get_config()["activation"] == "hard_tanh" for a in acts)
    assert 'Activation("hard_tanh")' in keras_code(cfg) and "nn.Hardtanh()" in pytorch_code(cfg)


def test_an_entry_registered_again_is_not_served_from_the_theory_caches(monkeypatch):
    """The theory caches per entry, not per name: the same name with another φ gives its own numbers."""
    monkeypatch.setitem(ACTIVATIONS, ACT, HARDTANH)
    first = T.summary(ACT, 1.5, 0.2, depth=3)
    m_first = T.gaussian_moments(ACT, 0.0)  # the q → 0 limits (cached constants)
    grid_first = T.fixed_point(ACT, 1.5 ** 2, 0.2 ** 2)
    half = Activation(ACT, "Half hardtanh", "0.5 · clamp(h, -1, 1)", lambda h: 0.5 * F.hardtanh(h), None, 1.0, "linear",
                      "linear", "nn.Identity()", derivative=lambda h: 0.5 * ((h > -1) & (h < 1)).to(h.dtype),
                      advice=HARDTANH.advice)
    monkeypatch.setitem(ACTIVATIONS, ACT, half)
    second = T.summary(ACT, 1.5, 0.2, depth=3)
    assert second["q_star"] < first["q_star"]  # φ halved: a smaller fixed point
    assert T.fixed_point(ACT, 1.5 ** 2, 0.2 ** 2) < grid_first
    assert T.gaussian_moments(ACT, 0.0)["dphi2"] == pytest.approx(0.25 * m_first["dphi2"], rel=1e-12)

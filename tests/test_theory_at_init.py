"""core.theory's page-facing results: the network measured at initialization, the setting's summary,
the gradient window, the Jacobian's budget and the sentences — what ui/ used to compute itself.

Oracles: a manual float64 forward pass with autograd gradients (tests/_oracle.py) on the same
network and batch; the predictions' own formulas (σ_w² = fan_in · Var(W), χ₁ = σ_w²·E[φ'²]);
finite differences of φ.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from _oracle import manual_step, moments, next_batch
from core import theory as T
from core.registry import ACTIVATIONS, INITIALIZERS
from core.run.engine import Trainer
from core.schema import RunConfig

CFG = RunConfig(depth=4, width=24, activation="tanh", init="xavier_normal", dataset="gaussian", batch_size=32,
                steps=50, seed=3)


def test_measured_profile_is_step_0_of_the_real_network():
    prof = T.measured_profile(CFG)
    trainer = Trainer(T.at_init_config(CFG))
    x, y = next_batch(trainer)
    t = manual_step(trainer.net, CFG.activation, x, y)
    q = np.array([moments(h)[1] for h in t["h"]])
    g = np.array([moments(d)[1] for d in t["grad_h"]])
    assert list(prof["layer"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(prof["q"], q, rtol=1e-4)
    np.testing.assert_allclose(prof["grad_rel"], g / g[-1], rtol=1e-3)
    assert prof["grad_rel"].iloc[-1] == 1.0


def test_measured_profile_of_zero_weights_has_no_gradient_below_the_last_layer():
    prof = T.measured_profile(CFG.replace(init="zeros"))  # all hidden weights 0: h = 0, nothing flows down
    assert list(prof["q"]) == [0.0] * 4 and list(prof["grad_rel"]) == [0.0, 0.0, 0.0, 1.0]


def test_at_init_config_keeps_the_network_and_drops_the_training():
    cfg = RunConfig(widths=(8, 4), steps=300, record_every=7, eval_every=3, seed=9)
    a = T.at_init_config(cfg)
    assert (a.hidden_widths, a.seed, a.steps, a.record_every, a.eval_every) == ((8, 4), 9, 0, 1, 0)


def test_slope_curves_are_the_derivatives_of_the_registrys_functions():
    h, d = T.slope_curves(("tanh", "relu", "sigmoid"), -3.0, 3.0, 61)
    np.testing.assert_allclose(d["tanh"], 1 - np.tanh(h) ** 2, atol=1e-12)
    np.testing.assert_array_equal(d["relu"], (h > 0).astype(float))
    s = 1 / (1 + np.exp(-h))
    np.testing.assert_allclose(d["sigmoid"], s * (1 - s), atol=1e-12)


@pytest.mark.parametrize("init,expected_sw2", [("kaiming_normal", 2.0), ("lecun_normal", 1.0),
                                               ("xavier_normal", 1.0), ("torch_default", 1 / 3)])
def test_setting_summary_uses_the_effective_sigma_w2_of_a_square_layer(init, expected_sw2):
    cfg = RunConfig(depth=10, width=64, activation="relu", init=init)
    s = T.setting_summary(cfg)
    assert s.sigma_w2 == pytest.approx(expected_sw2, rel=1e-6)
    assert s.summary == T.summary("relu", math.sqrt(s.sigma_w2), math.sqrt(s.sigma_b2), depth=10, q0=1.0)
    assert INITIALIZERS[init].label in s.source


def test_setting_summary_of_a_data_driven_init_is_its_orthogonal_start():
    s = T.setting_summary(RunConfig(init="lsuv", sigma_w=3.0, bias=False))
    assert (s.sigma_w2, s.sigma_b2) == (pytest.approx(1.0), 0.0)
    assert "starting point" in s.source
    assert any("does not apply" in x for x in T.limitations(RunConfig(init="lsuv"), T.predicted_profile(RunConfig())))


def test_gradient_window_is_the_profiles_first_layer_and_relu_he_keeps_it_at_one():
    w = T.gradient_window("relu", (10, 30), (1.8, 2.0, 2.2))
    for L in (10, 30):
        ref = [T.profile_table("relu", math.sqrt(s), 0.0, L)["grad_rel"].iloc[0] for s in (1.8, 2.0, 2.2)]
        np.testing.assert_allclose(w[L], ref)
    assert w[30][1] == pytest.approx(1.0, rel=1e-6)        # χ₁ = 1 at He's σ_w² = 2
    assert w[30][0] == pytest.approx(0.9 ** 29, rel=1e-3)   # χ₁ = σ_w²/2 per layer for ReLU


def test_jacobian_budget_and_refusals():
    cfg = RunConfig(depth=3, width=32, dataset="gaussian")
    assert T.jacobian_cost(cfg) == (32 * 32 * 3) * 32
    assert T.jacobian_inputs(cfg) == 8                              # 256 singular values, at most 8 points
    assert T.jacobian_inputs(cfg, max_cost=2.5 * T.jacobian_cost(cfg)) == 2
    svs, mean = T.jacobian_at_init(cfg)
    assert svs.size == 8 * 32 and mean == pytest.approx(T.jacobian_theory_mean(cfg, 1.0))
    assert "BatchNorm" in T.jacobian_at_init(cfg.replace(batchnorm=True))
    assert "too large" in T.jacobian_at_init(cfg, max_cost=T.jacobian_cost(cfg) / 5)


def test_gradient_sentence_reads_the_profiles_first_layer():
    shrink = T.predicted_profile(RunConfig(depth=20, activation="sigmoid", init="xavier_normal"))
    g = float(shrink["grad_rel"].iloc[0])
    assert "shrinks" in T.gradient_sentence(shrink) and T.pow10(g) in T.gradient_sentence(shrink)
    he = T.predicted_profile(RunConfig(depth=20, width=256, activation="relu", init="kaiming_normal"))
    assert "keeps its size" in T.gradient_sentence(he)
    assert T.gradient_sentence(T.predicted_profile(RunConfig(batchnorm=True))) is None
    assert (T.pow10(1.3e-24), T.pow10(0.0), T.ratio_text(0.051), T.ratio_text(2e-5)) == \
        ("10⁻²⁴", "—", "0.051", "about 10⁻⁵")


def test_limitations_name_batchnorm_and_pass_on_the_profiles_note():
    bn = RunConfig(batchnorm=True)
    assert any("BatchNorm is on" in s for s in T.limitations(bn, T.predicted_profile(bn)))
    narrow = RunConfig(width=16, activation=next(iter(ACTIVATIONS)))
    prof = T.predicted_profile(narrow)
    assert T.limitations(narrow, prof) == ([prof.attrs["note"]] if prof.attrs["note"] else [])

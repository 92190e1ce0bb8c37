"""The registry's entries: each fact an entry carries is held to an independent oracle
(autograd for φ', the function's own values for its range and homogeneity, sample statistics
of real draws for an initializer's standard deviations)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.models.init import INIT_FUNCTIONS
from core.registry import ACTIVATIONS, INITIALIZERS, DEFAULT_ACTIVATION, DEFAULT_INIT
from core.schema import RunConfig

ALL_ACTS = list(ACTIVATIONS)
ALL_INITS = list(INITIALIZERS)


def autograd_derivative(fn, h: torch.Tensor) -> torch.Tensor:
    h = h.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(h).sum(), h)
    return g


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", ALL_ACTS)
def test_derivative_is_what_autograd_says(name, dtype):
    act = ACTIVATIONS[name]
    # a fine grid, the kinks themselves (0), and far tails where a careless closed form overflows
    h = torch.cat([torch.linspace(-30, 30, 6001, dtype=torch.float64), torch.tensor([0.0, -0.0, 1e-8, -1e-8, -80.0, 80.0],
                                                                                  dtype=torch.float64)]).to(dtype)
    got = act.derivative(h)
    assert got.dtype == dtype and got.shape == h.shape
    want = autograd_derivative(act.fn, h)
    tol = dict(rtol=1e-12, atol=1e-15) if dtype == torch.float64 else dict(rtol=2e-6, atol=1e-7)
    torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("name", ALL_ACTS)
def test_output_range_bounds_the_function(name):
    act = ACTIVATIONS[name]
    h = torch.linspace(-1e3, 1e3, 200001, dtype=torch.float64)
    y = act.fn(h)
    if act.output_range is None:
        assert float(y.abs().max()) > 100  # unbounded on at least one side
        return
    lo, hi = act.output_range
    assert float(y.min()) >= lo and float(y.max()) <= hi
    ends = act.fn(torch.tensor([-50.0, 50.0], dtype=torch.float64))
    assert float(ends[0]) == pytest.approx(lo, abs=1e-9) and float(ends[1]) == pytest.approx(hi, abs=1e-9)


@pytest.mark.parametrize("name", ALL_ACTS)
def test_homogeneous_slope_is_exactly_the_function(name):
    act = ACTIVATIONS[name]
    h = torch.linspace(-7, 7, 1401, dtype=torch.float64)
    s = act.homogeneous_slope
    if s is None:
        # not of the form h (h > 0), s·h (h < 0): φ(2h) ≠ 2φ(h) somewhere
        assert not torch.allclose(act.fn(2 * h), 2 * act.fn(h), rtol=1e-9, atol=1e-12)
        return
    torch.testing.assert_close(act.fn(h), torch.where(h > 0, h, s * h), rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", ALL_ACTS)
def test_advice_names_registered_settings(name):
    adv = ACTIVATIONS[name].advice
    assert adv.init in INITIALIZERS and adv.init_why.endswith(".")
    for other, why in ((adv.vanishing, adv.vanishing_why), (adv.dead, adv.dead_why)):
        if other is not None:
            assert other in ACTIVATIONS and other != name and why.endswith(".")


@pytest.mark.parametrize("name", ALL_ACTS)
def test_code_builds_the_same_function(name):
    act = ACTIVATIONS[name]
    module = eval(act.module_code, {"nn": nn})
    h = torch.linspace(-6, 6, 241)
    torch.testing.assert_close(module(h), act.fn(h))
    assert act.keras_code.startswith("keras.layers.")


@pytest.mark.parametrize("name", ALL_INITS)
def test_initializer_draws_its_own_stated_std(name):
    """Self-consistency for any entry (test_init holds the built-ins to the published formulas too)."""
    ini = INITIALIZERS[name]
    layer = nn.Linear(300, 700)
    cfg = RunConfig(init=name, sigma_w=1.5, sigma_b=0.2, depth=1, width=8)
    with torch.no_grad():
        ini.apply(layer, cfg, torch.Generator().manual_seed(0))
    want = ini.weight_std(300, 700, 1.5)
    got = float(layer.weight.detach().double().pow(2).mean().sqrt())
    if want is None:
        assert ini.needs_data
    else:
        assert got == pytest.approx(want, rel=0.02, abs=1e-12)
        eff = ini.effective_sigma2(300, 700, 1.5, 0.2)
        assert eff[0] == pytest.approx(300 * want * want)
    b = float(layer.bias.detach().double().pow(2).mean().sqrt())
    assert b == pytest.approx(ini.bias_std(300, 0.2), rel=0.2, abs=1e-12)  # 700 biases: ~5% standard error
    if ini.sigma_w == "ignored" and want is not None:
        assert ini.weight_std(300, 700, 3.0) == want


def test_init_functions_follow_the_registry(monkeypatch):
    """core.models.init.INIT_FUNCTIONS is a view of the registry, so an entry added later is found."""
    assert set(INIT_FUNCTIONS) == set(INITIALIZERS)
    monkeypatch.setitem(INITIALIZERS, "another", INITIALIZERS["kaiming_normal"])
    assert INIT_FUNCTIONS["another"] == INITIALIZERS["kaiming_normal"].apply
    assert "another" in INIT_FUNCTIONS


def test_defaults_are_registered():
    assert RunConfig().activation == DEFAULT_ACTIVATION in ACTIVATIONS
    assert RunConfig().init == DEFAULT_INIT in INITIALIZERS
    # the default init is the one made for the default activation
    assert ACTIVATIONS[DEFAULT_ACTIVATION].advice.init == DEFAULT_INIT

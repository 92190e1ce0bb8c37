"""Mean-field theory (core.theory.meanfield, core.figures.theory): published numbers, independent
numerical cross-checks, and real networks measured against the predictions."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate

from core import theory as T
from core.theory.quadrature import _dphi_t
from core.figures import theory as TF
from core.schema import RunConfig
from core.models.mlp import build_network
from core.registry import ACTIVATIONS

ALL = list(ACTIVATIONS)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def phi(name, x):
    return ACTIVATIONS[name].fn(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def dphi(name, x):
    h = torch.as_tensor(np.asarray(x, dtype=np.float64)).clone().requires_grad_(True)
    (g,) = torch.autograd.grad(ACTIVATIONS[name].fn(h).sum(), h)
    return g.numpy()


# -- published numbers --------------------------------------------------------------------------------
def test_tanh_edge_of_chaos_at_sigma_b2_0_05():
    # Schoenholz et al. 2017 (Fig. 1) / Poole et al. 2016: tanh, σ_b² = 0.05 → σ_w² ≈ 1.76
    crit = T.critical_sigma_w2("tanh", 0.05)
    assert crit == pytest.approx(1.761, abs=1e-3)
    assert T.chi1("tanh", crit, 0.05) == pytest.approx(1.0, abs=1e-10)
    assert T.depth_scales("tanh", crit, 0.05)[1] == math.inf
    assert T.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-9)


def test_tanh_fixed_point_and_chi1():
    q = T.fixed_point("tanh", 1.0, 0.05)
    assert q == pytest.approx(0.1936, abs=1e-4)
    assert T.variance_map("tanh", 1.0, 0.05, q) == pytest.approx(q, rel=1e-13)
    assert T.chi1("tanh", 1.0, 0.05) == pytest.approx(0.759, abs=1e-3)


def test_relu_chi1_is_half_sigma_w2_and_he_is_critical():
    for sw2 in [0.5, 1.0, 2.0, 3.0]:
        for sb2 in [0.0, 0.1]:
            assert T.chi1("relu", sw2, sb2) == sw2 / 2
            assert T.chi1("relu", sw2, sb2, q=0.37) == sw2 / 2
    assert T.critical_sigma_w2("relu", 0.0) == 2.0
    assert T.critical_sigma_w2("relu", 0.1) is None  # χ₁ = 1 only where q grows without bound
    assert T.phase("relu", 2.0, 0.0) == "critical"
    assert T.depth_scales("relu", 2.0, 0.0) == (math.inf, math.inf)
    assert T.fixed_point("relu", 2.0, 0.0, q_init=0.7) == 0.7  # every q is fixed
    assert T.fixed_point("relu", 1.0, 0.1) == pytest.approx(0.2)  # σ_b²/(1 - σ_w²/2)
    assert T.fixed_point("relu", 2.0, 0.1) == math.inf
    assert T.fixed_point("linear", 1.5, 0.0) == math.inf
    assert T.fixed_point("linear", 0.5, 0.0) == 0.0
    assert T.chi1("leaky_relu", 2.0, 0.0) == pytest.approx(1 + 0.01**2)


def test_sigmoid_chi1_published_value_is_at_sigma_b2_zero():
    # χ₁ ≈ 0.0557 for sigmoid at σ_w² = 1 holds at σ_b² = 0 (q* ≈ 0.2647); σ_b² = 0.05 gives 0.0546.
    assert T.chi1("sigmoid", 1.0, 0.0) == pytest.approx(0.0557, abs=1e-4)
    assert T.fixed_point("sigmoid", 1.0, 0.0) == pytest.approx(0.2647, abs=1e-4)
    assert T.chi1("sigmoid", 1.0, 0.05) == pytest.approx(0.0546, abs=1e-4)


def test_selu_lecun_fixed_point_is_one():
    # Klambauer et al. 2017: SELU with Var(W) = 1/fan_in keeps E[h²] = 1.
    assert T.fixed_point("selu", 1.0, 0.0) == pytest.approx(1.0, abs=1e-9)
    assert T.fixed_point("selu", 1.0, 0.0, q_init=3.0) == pytest.approx(1.0, abs=1e-9)
    assert T.fixed_point("selu", 1.0, 0.0, q_init=0.2) == pytest.approx(1.0, abs=1e-9)


# -- quadrature against independent integrals ---------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_quadrature_matches_monte_carlo(name):
    z = np.random.default_rng(123).standard_normal(400_000)
    for q in [0.25, 1.0, 4.0]:
        m = T.gaussian_moments(name, q)
        for est, samples in [(m["phi2"], phi(name, math.sqrt(q) * z) ** 2),
                             (m["dphi2"], dphi(name, math.sqrt(q) * z) ** 2)]:
            se = samples.std() / math.sqrt(samples.size)
            assert abs(est - samples.mean()) <= 5 * se + 1e-12, (name, q, est, samples.mean(), se)


@pytest.mark.parametrize("name", [a for a in ALL if a not in ("linear", "relu", "leaky_relu")])
def test_quadrature_matches_adaptive_integration(name):
    for q in [1e-3, 0.5, 3.0, 30.0]:
        def f(z):
            return float(phi(name, math.sqrt(q) * z)) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        ref = sum(integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=400)[0] for lo, hi in [(-40, 0), (0, 40)])
        assert T.gaussian_moments(name, q)["phi2"] == pytest.approx(ref, rel=1e-10, abs=1e-300), (name, q)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "silu", "softplus"])
def test_split_rule_agrees_with_gauss_hermite_at_small_q(name):
    x, w = T.quadrature_rule("hermite", 200)
    assert w.sum() == pytest.approx(1.0, rel=1e-14)
    for q in [0.01, 0.3, 1.0]:
        gh = float((w * phi(name, math.sqrt(q) * x) ** 2).sum())
        assert T.gaussian_moments(name, q)["phi2"] == pytest.approx(gh, rel=1e-11)


def test_closed_forms_relu_leaky_linear():
    for q in [0.0, 0.3, 2.0]:
        assert T.gaussian_moments("relu", q) == {"phi2": q / 2, "dphi2_dq": 0.5, "dphi2": 0.5}
        assert T.gaussian_moments("linear", q)["phi2"] == q
        assert T.gaussian_moments("leaky_relu", q)["phi2"] == pytest.approx(q * (1 + 1e-4) / 2)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_closed_form_derivatives_equal_autograd(name):
    u = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    np.testing.assert_allclose(_dphi_t(name, u).numpy(), dphi(name, u.numpy()), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ALL)
def test_variance_map_slope_is_its_derivative(name):
    for q in [0.05, 0.7, 3.0]:
        h = 1e-5 * q
        fd = (T.variance_map(name, 1.3, 0.1, q + h) - T.variance_map(name, 1.3, 0.1, q - h)) / (2 * h)
        assert T.variance_map_slope(name, 1.3, 0.1, q) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_broadcasting_and_scalars():
    q = T.variance_map("tanh", np.array([1.0, 2.0]), 0.05, np.array([[0.5], [1.0], [2.0]]))
    assert q.shape == (3, 2)
    assert isinstance(T.fixed_point("tanh", 1.0, 0.05), float)
    qs = T.fixed_point("tanh", np.array([0.5, 1.0, 2.0]), 0.05)
    assert qs[1] == pytest.approx(T.fixed_point("tanh", 1.0, 0.05), rel=1e-14)  # vectorized sums may round apart


# -- correlations and depth scales --------------------------------------------------------------------
def _kernel_2d(name, q, c, n=120):
    """E[φ(u₁)φ(u₂)] by a tensor Gauss-Hermite rule (independent of the Mehler series)."""
    x, w = T.quadrature_rule("hermite", n)
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    return float((np.outer(w, w) * phi(name, u1) * phi(name, u2)).sum())


@pytest.mark.parametrize("name,q", [("tanh", 0.5), ("tanh", 2.0), ("gelu", 1.0), ("softplus", 1.0)])
def test_correlation_map_matches_2d_quadrature(name, q):
    V = T.gaussian_moments(name, q)["phi2"]
    for c in [0.0, 0.4, 0.8, 0.95]:
        got = T.correlation_map(name, 1.0, 0.0, c, q=q) * V  # σ_w²=1, σ_b²=0: c' = E[φφ]/E[φ²]
        assert got == pytest.approx(_kernel_2d(name, q, c), rel=1e-7, abs=1e-12), (name, q, c)


def test_correlation_map_relu_arc_cosine_and_selu_monte_carlo():
    rng = np.random.default_rng(7)
    z1, z2 = rng.standard_normal((2, 400_000))
    for name in ["relu", "selu", "elu"]:
        for c in [0.2, 0.7]:
            u1, u2 = z1, c * z1 + math.sqrt(1 - c * c) * z2
            s = phi(name, u1) * phi(name, u2)
            got = T.correlation_map(name, 1.0, 0.0, c, q=1.0) * T.gaussian_moments(name, 1.0)["phi2"]
            assert abs(got - s.mean()) < 5 * s.std() / math.sqrt(s.size), (name, c)


def test_correlation_map_fixed_point_one_and_slope_chi1():
    for name, sw2, sb2 in [("tanh", 1.0, 0.05), ("tanh", 2.5, 0.05), ("elu", 1.2, 0.1), ("relu", 1.5, 0.2)]:
        assert T.correlation_map(name, sw2, sb2, 1.0) == pytest.approx(1.0, abs=1e-12)
        h = 1e-8  # ReLU's arc-cosine kernel has a (1-c)^{3/2} term: one-sided differences converge like √h
        slope = (T.correlation_map(name, sw2, sb2, 1.0) - T.correlation_map(name, sw2, sb2, 1.0 - h)) / h
        assert slope == pytest.approx(T.chi1(name, sw2, sb2), rel=1e-3)


def test_chaotic_correlation_fixed_point_and_depth_scales():
    sw2, sb2 = 3.0, 0.05
    c_star, chi_c = T.correlation_fixed_point("tanh", sw2, sb2)
    assert 0 < c_star < 1 and chi_c < 1 < T.chi1("tanh", sw2, sb2)
    # c* is a fixed point of the map computed by an independent 2-D rule
    q = T.fixed_point("tanh", sw2, sb2)
    assert (sw2 * _kernel_2d("tanh", q, c_star) + sb2) / q == pytest.approx(c_star, abs=1e-8)
    assert T.depth_scales("tanh", sw2, sb2)[1] == pytest.approx(-1 / math.log(chi_c))
    # ordered phase: c* = 1, ξ_c = -1/log χ₁
    assert T.correlation_fixed_point("tanh", 1.0, 0.05) == (1.0, T.chi1("tanh", 1.0, 0.05))
    assert T.depth_scales("tanh", 1.0, 0.05)[1] == pytest.approx(-1 / math.log(T.chi1("tanh", 1.0, 0.05)))


def test_xi_q_is_the_convergence_rate_of_q():
    sw2, sb2 = 1.5, 0.1
    q = T.q_path("tanh", sw2, sb2, 3.0, 14)
    q_star = T.fixed_point("tanh", sw2, sb2)
    d = np.abs(q - q_star)
    rate = d[12] / d[11]
    assert rate == pytest.approx(math.exp(-1 / T.depth_scales("tanh", sw2, sb2)[0]), rel=1e-3)


def test_unbounded_and_bistable_cases():
    assert T.depth_scales("relu", 3.0, 0.1) == (pytest.approx(math.nan, nan_ok=True),) * 2
    assert T.phase("relu", 3.0, 0.1) == "unbounded"
    assert T.chi1("relu", 3.0, 0.1) == 1.5
    assert T.critical_sigma_w2("softplus", 0.0) is None  # χ₁ reaches 1 only where q* = ∞
    assert T.critical_sigma_w2("elu", 0.0) == pytest.approx(1.0, abs=1e-8)
    assert T.critical_sigma_w2("gelu", 0.05) is None  # q* jumps to ∞ while χ₁ < 1


def test_phase_diagram_equals_scalar_functions():
    w = np.linspace(0.2, 4.0, 9)
    b = np.linspace(0.0, 1.0, 5)
    for name in ["tanh", "relu", "sigmoid"]:
        d = T.phase_diagram(name, w, b)
        assert d["chi1"].shape == (5, 9) and d["q_star"].shape == (5, 9) and d["xi_c"].shape == (5, 9)
        for i, j in [(0, 0), (1, 3), (2, 6), (4, 8)]:
            assert d["q_star"][i, j] == pytest.approx(T.fixed_point(name, w[j], b[i]), rel=1e-12)
            assert d["chi1"][i, j] == pytest.approx(T.chi1(name, w[j], b[i]), rel=1e-12)
            xi_c = T.depth_scales(name, w[j], b[i])[1]
            assert d["xi_c"][i, j] == pytest.approx(xi_c, rel=1e-9, nan_ok=True)
    d = T.phase_diagram("tanh", np.linspace(1.0, 2.5, 61), np.array([0.05]))
    assert T.critical_line(d)[0][0] == pytest.approx(T.critical_sigma_w2("tanh", 0.05), abs=2e-3)


# -- per-layer predictions ----------------------------------------------------------------------------
def test_gradient_profile_linear_and_path():
    g = T.gradient_profile("linear", 0.8, 0.0, 1.0, 5)
    np.testing.assert_allclose(g, 0.8 ** np.arange(4, -1, -1.0))
    q = T.q_path("tanh", 1.2, 0.1, 1.3, 6)
    assert q[0] == 1.3 and q[1] == pytest.approx(T.variance_map("tanh", 1.2, 0.1, 1.3))
    g = T.gradient_profile("tanh", 1.2, 0.1, 1.3, 6)
    assert g[-1] == 1.0 and g[-2] == pytest.approx(1.2 * T.gaussian_moments("tanh", q[-2])["dphi2"])


def test_effective_sigma2():
    assert T.effective_sigma2("kaiming_normal", 100, 100, 1.0, 0.3) == pytest.approx((2.0, 0.0))
    assert T.effective_sigma2("xavier_normal", 100, 100) == pytest.approx((1.0, 0.0))
    assert T.effective_sigma2("orthogonal", 50, 100) == pytest.approx((0.5, 0.0))
    assert T.effective_sigma2("normal", 64, 128, 1.5, 0.1) == pytest.approx((2.25, 0.01))
    assert T.effective_sigma2("torch_default", 30, 10) == pytest.approx((1 / 3, 1 / 90))
    assert T.effective_sigma2("zeros", 10, 10) == (0.0, 0.0)
    assert T.effective_sigma2("lsuv", 10, 10) is None


def test_predicted_profile_api_and_notes():
    cfg = RunConfig(dataset="digits", width=128, depth=4, init="kaiming_normal", activation="relu")
    p = T.predicted_profile(cfg, 2.0)
    assert list(p.columns) == ["layer", "q", "grad_rel"] and p.attrs["applies"] is True
    assert p["q"].iloc[0] == pytest.approx(2.0 * 2.0)  # σ_w²(1)·E[x²], fan_in = 64 input pixels
    np.testing.assert_allclose(p["q"], 4.0)
    np.testing.assert_allclose(p["grad_rel"], 1.0)
    bn = T.predicted_profile(cfg.replace(batchnorm=True))
    assert bn.attrs["applies"] is False and "BatchNorm" in bn.attrs["note"]
    assert (bn["q"] == 1.0).all() and bn["grad_rel"].isna().all()
    ls = T.predicted_profile(cfg.replace(init="lsuv"))
    assert ls.attrs["applies"] is False and "LSUV" in ls.attrs["note"] and ls["q"].isna().all()
    uneq = T.predicted_profile(cfg.replace(widths=(128, 64, 32)))
    assert "widths differ" in uneq.attrs["note"] and len(uneq) == 3
    z = T.predicted_profile(RunConfig(dataset="gaussian", width=64, depth=3, init="zeros"))
    assert (z["q"] == 0).all() and list(z["grad_rel"]) == [0.0, 0.0, 1.0]


def _measure(cfg: RunConfig, seeds=(0, 1, 2), batch=256):
    """Per-layer Var(h) over all entries, and E[(∂L/∂h)²] relative to the last hidden layer."""
    qs, gs, m2 = [], [], []
    for seed in seeds:
        c = cfg.replace(seed=seed)
        net = build_network(c).double()
        gen = torch.Generator().manual_seed(10_000 + seed)
        x = torch.randn(batch, c.features, generator=gen, dtype=torch.float64)
        _, hs, acts = net(x, keep=True)
        # ∂L/∂a^L = r, i.i.d. N(0, 1) and independent of the network: a random linear readout, the
        # setting in which the gradient-independence assumption of the backward recursion is exact.
        r = torch.randn(acts[-1].shape, generator=gen, dtype=torch.float64)
        grads = torch.autograd.grad((acts[-1] * r).sum(), hs)
        qs.append([float(h.detach().var(unbiased=False)) for h in hs])
        g = np.array([float(d.pow(2).mean()) for d in grads])
        gs.append(g / g[-1])
        m2.append(float(x.pow(2).mean()))
    return np.mean(qs, 0), np.exp(np.mean(np.log(gs), 0)), float(np.mean(m2))


@pytest.mark.parametrize("activation,sigma_w,sigma_b", [
    ("tanh", 1.0, 0.3),           # ordered: gradients shrink ~50× over 10 layers
    ("relu", math.sqrt(2), 0.0),  # He: critical, flat
    ("sigmoid", 1.0, 0.0),        # gradients shrink by ~1e11
    ("selu", 1.0, 0.0),           # self-normalizing, slightly chaotic
])
def test_measured_matches_predicted(activation, sigma_w, sigma_b):
    cfg = RunConfig(dataset="gaussian", width=512, depth=10, init="normal", sigma_w=sigma_w, sigma_b=sigma_b,
                    activation=activation)
    q, g, m2 = _measure(cfg)
    p = T.predicted_profile(cfg, m2)
    assert p.attrs["applies"]
    assert np.abs(np.log10(q / p["q"].to_numpy())).max() < 0.15
    assert np.abs(np.log10(g / p["grad_rel"].to_numpy())).max() < 0.15


def test_measured_matches_predicted_unequal_widths():
    cfg = RunConfig(dataset="gaussian", widths=(256, 512, 384, 512, 256, 320), input_dim=200, init="xavier_normal",
                    activation="tanh", sigma_w=1.4)
    q, g, m2 = _measure(cfg)
    p = T.predicted_profile(cfg, m2)
    assert np.abs(np.log10(q / p["q"].to_numpy())).max() < 0.15
    assert np.abs(np.log10(g / p["grad_rel"].to_numpy())).max() < 0.15


# -- Jacobian -----------------------------------------------------------------------------------------
def test_orthogonal_deep_linear_network_is_an_isometry():
    cfg = RunConfig(dataset="gaussian", width=128, depth=8, init="orthogonal", activation="linear")
    s = T.jacobian_singular_values(cfg, n_inputs=2)
    assert s.size == 256
    np.testing.assert_allclose(s, 1.0, atol=1e-8)
    assert T.jacobian_theory_mean(cfg) == pytest.approx(1.0)
    # the float64 re-orthogonalization only removes float32 rounding
    ref = build_network(cfg).double()
    U, _, Vh = torch.linalg.svd(ref.linears[0].weight)
    assert float((U @ Vh - ref.linears[0].weight).abs().max().detach()) < 1e-6


def test_jacobian_matches_jacrev_and_theory_mean():
    cfg = RunConfig(dataset="digits", widths=(32, 48, 16, 40), init="normal", sigma_w=1.3, sigma_b=0.2,
                    activation="gelu")
    s = T.jacobian_singular_values(cfg, seed=5)
    net = build_network(cfg).double()
    x = torch.randn(1, cfg.features, generator=torch.Generator().manual_seed(5), dtype=torch.float64)[0]
    J = torch.func.jacrev(lambda v: net.hidden_forward(v[None])[0])(x)
    np.testing.assert_allclose(s, torch.linalg.svdvals(J).detach().numpy(), rtol=1e-10, atol=1e-12)

    cfg = RunConfig(dataset="gaussian", width=256, depth=10, init="normal", sigma_w=1.0, activation="tanh")
    s = T.jacobian_singular_values(cfg, n_inputs=3)
    assert abs(math.log10(np.mean(s**2) / T.jacobian_theory_mean(cfg))) < 0.1
    with pytest.raises(ValueError):
        T.jacobian_singular_values(cfg.replace(batchnorm=True))


# -- summary, table, figures --------------------------------------------------------------------------
@pytest.mark.parametrize("activation,sigma_w,sigma_b,phase", [
    ("tanh", 1.0, math.sqrt(0.05), "ordered"),
    ("tanh", 2.0, 0.1, "chaotic"),
    ("relu", math.sqrt(2), 0.0, "critical"),
    ("relu", 2.0, 0.5, "unbounded"),
    ("sigmoid", 1.0, 0.0, "ordered"),
])
def test_summary_is_strict_json(activation, sigma_w, sigma_b, phase):
    s = T.summary(activation, sigma_w, sigma_b, depth=12, q0=1.0)
    text = json.dumps(s, allow_nan=False)
    back = json.loads(text)
    for key in ["q_star", "chi1", "critical_sigma_w2", "depth_scale_q", "depth_scale_c", "phase", "note"]:
        assert key in back
    assert back["phase"] == phase
    if phase == "critical":
        assert back["depth_scale_c"] is None and back["critical_sigma_w2"] == 2.0
    if phase == "unbounded":
        assert back["q_star"] is None and back["depth_scale_q"] is None
    if activation == "tanh" and phase == "ordered":
        assert back["q_star"] == pytest.approx(0.1936, abs=1e-4)
        assert back["critical_sigma_w2"] == pytest.approx(1.761, abs=1e-3)


def test_profile_table():
    t = T.profile_table("tanh", 1.2, 0.3, 7, q0=2.0)
    assert list(t.columns[:3]) == ["layer", "q", "grad_rel"] and list(t["layer"]) == list(range(1, 8))
    assert t["q"].iloc[0] == pytest.approx(1.44 * 2.0 + 0.09)
    assert t["grad_rel"].iloc[-1] == 1.0


def test_figures():
    f = TF.fig_variance_map("tanh", 1.0, 0.05)
    assert f.layout.template.layout.paper_bgcolor is not None and any("q*" in (t.name or "") for t in f.data)
    f = TF.fig_phase_diagram("tanh", 1.0, 0.05, n=40)
    names = [t.name for t in f.data]
    assert "this setting" in names and "χ₁ = 1 (edge of chaos)" in names
    assert "σ_w²" in f.layout.xaxis.title.text and "σ_b²" in f.layout.yaxis.title.text
    f = TF.fig_phase_diagram("relu", 2.0, 0.0, quantity="xi_c", n=30)
    assert any("critical point" in (t.name or "") for t in f.data)
    f = TF.fig_jacobian_spectrum(np.array([0.5, 1.0, 1.5]), theory_mean=1.0)
    assert any("theory" in (t.name or "") for t in f.data)
    json.loads(f.to_json())

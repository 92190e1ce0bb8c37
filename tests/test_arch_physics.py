"""Physics at initialization for the residual MLP and the CNN: wide layers, several seeds, log-scale
tolerances, against the theory's recursions (`core.theory.architectures`) and closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.run.engine import train
from core.schema import RunConfig
from core.figures import fig_theory_profile
from core.theory.architectures import layer_profile, residual_stream

SEEDS = (0, 1, 2)


def _at_init(**kw) -> "object":
    return train(RunConfig(steps=0, **kw)).layers


def _resmlp(scale: str, depth: int, seed: int, width: int = 384):
    return _at_init(arch="resmlp", residual_scale=scale, depth=depth, width=width, activation="relu",
                    init="kaiming_normal", bias=False, dataset="gaussian", input_dim=width, batch_size=256, seed=seed)


def test_plain_residual_relu_he_grows_the_stream_geometrically():
    """α = 1, He on both branch layers: Var(F(x)) = 2·Var(x), so each block multiplies the stream's
    variance by 1 + 2 = 3 (the theory's recursion); the measured growth per block matches it."""
    depth = 12
    th = residual_stream(RunConfig(arch="resmlp", depth=depth, width=384, activation="relu", init="kaiming_normal",
                                   bias=False, dataset="gaussian", input_dim=384), input_second_moment=1.0)
    gain = th.stream_var.iloc[-1] / th.stream_var.iloc[0]
    assert gain == pytest.approx(3.0 ** (depth - 1), rel=1e-6)
    slopes = []
    for seed in SEEDS:
        v = np.log(_resmlp("none", depth, seed).stream_var.to_numpy())
        slopes.append(np.polyfit(np.arange(depth), v, 1)[0])  # geometric: log-variance linear in the block
        assert abs((v[-1] - v[0]) - math.log(gain)) < 0.1 * math.log(gain)
    assert np.mean(slopes) == pytest.approx(math.log(3.0), rel=0.05)


@pytest.mark.parametrize("depth", [8, 32])
def test_one_over_sqrt_depth_keeps_the_stream_within_a_constant_factor(depth):
    """α = 1/√L: Var grows by (1 + 2/L)^L ≤ e² ≈ 7.4 whatever the depth."""
    bound = (1 + 2 / depth) ** depth
    for seed in SEEDS:
        v = _resmlp("sqrt_depth", depth, seed).stream_var.to_numpy()
        growth = v[-1] / v[0] * (1 + 2 / depth)  # v[0] is after block 1
        assert abs(math.log(growth / bound)) < 0.25
        assert growth < math.e ** 2 * 1.3


@pytest.mark.parametrize("scale", ["fixup", "rezero"])
def test_fixup_and_rezero_leave_the_stream_unchanged(scale):
    for seed in SEEDS:
        df = _resmlp(scale, 24, seed)
        v = df.stream_var.to_numpy()
        np.testing.assert_allclose(v, v[0], rtol=1e-6)
        assert (df.branch_var == 0).all()
        g = df.grad_stream_var.to_numpy()
        np.testing.assert_allclose(g, g[-1], rtol=1e-6)  # the gradient reaches every block undiminished


@pytest.mark.parametrize("scale", ["fixup", "rezero"])
def test_where_no_gradient_reaches_a_branch_at_init_the_theory_says_so(scale):
    """Measured: ∂L/∂h of every branch is exactly 0 at step 0; the theory draws no backward curve and its
    note (the caption under the preview) says why instead of leaving the panel silently empty."""
    df = _resmlp(scale, 6, 0, width=64)
    assert (df.grad_preact_var == 0).all()
    th = residual_stream(RunConfig(arch="resmlp", residual_scale=scale, depth=6, width=64, activation="relu",
                                   init="kaiming_normal"), input_second_moment=1.0)
    assert th.grad_rel.isna().all()
    np.testing.assert_allclose(th.grad_stream_rel.to_numpy(), 1.0)
    assert "∂L/∂h is exactly 0" in th.attrs["note"]
    cfg = RunConfig(arch="resmlp", residual_scale=scale, depth=6, width=64, activation="relu", init="kaiming_normal")
    fig = fig_theory_profile(layer_profile(cfg))       # the preview: no legend entry for a curve it cannot draw
    assert [t.name for t in fig.data if t.showlegend is not False] == ["predicted Var(h)"]
    assert any("∂L/∂h = 0" in a.text and a.xref == "x2 domain" for a in fig.layout.annotations)
    plain = residual_stream(RunConfig(arch="resmlp", residual_scale="none", depth=6, width=64, activation="relu",
                                      init="kaiming_normal"), input_second_moment=1.0)
    assert "exactly 0" not in plain.attrs["note"]


def test_the_stream_gradient_follows_the_theory_backward():
    depth = 10
    cfg = RunConfig(arch="resmlp", depth=depth, width=384, activation="relu", init="kaiming_normal", bias=False,
                    dataset="gaussian", input_dim=384, residual_scale="sqrt_depth")
    want = np.log(residual_stream(cfg, input_second_moment=1.0).grad_stream_rel.to_numpy())
    got = np.mean([np.log(_resmlp("sqrt_depth", depth, s).grad_stream_var.to_numpy()) for s in SEEDS], axis=0)
    np.testing.assert_allclose(got - got[-1], want, atol=0.15)


def _cnn(init: str, seed: int, depth: int = 30, **kw):
    return _at_init(arch="cnn", depth=depth, width=64, activation=kw.pop("activation", "relu"), init=init,
                    bias=False, batch_size=64, seed=seed, **kw)


@pytest.mark.slow  # wide, deep, three seeds: ~10-20 s
def test_relu_cnn_he_keeps_its_variance_where_xavier_shrinks_it_by_two_to_the_29():
    """30 ReLU convolutions on 8×8 digits. He (Var W = 2/fan_in, fan_in = 64·9) preserves the variance up to
    what the zero padding takes at the image's borders (the theory's per-pixel recursion: ×0.08 over 30
    layers on an 8×8 image); Xavier (Var W = 2/(fan_in+fan_out) = 1/fan_in) halves it at every ReLU:
    2^−29 more from layer 1 to layer 30. The theory is the mean over weight draws; one network's
    fluctuations compound over 30 layers, so single networks sit somewhat below it (log tolerance)."""
    cfg = RunConfig(arch="cnn", depth=30, width=64, activation="relu", init="kaiming_normal", bias=False)
    th = cfg.architecture.theory_table(cfg).preact_var.to_numpy()
    he_logs = []
    for seed in SEEDS:
        he = _cnn("kaiming_normal", seed).preact_var.to_numpy()
        xavier = _cnn("xavier_normal", seed).preact_var.to_numpy()
        he_ratio, xavier_ratio = he[-1] / he[0], xavier[-1] / xavier[0]
        he_logs.append(math.log(he_ratio))
        assert he_ratio > 0.01                                                 # kept, up to the borders' share
        assert math.log2(xavier_ratio / he_ratio) == pytest.approx(-29, abs=0.01)  # ReLU is homogeneous
        assert xavier_ratio < 1e-9
    assert abs(np.mean(he_logs) - math.log(th[-1] / th[0])) < math.log(3.0)  # the theory, padding included


def test_linear_cnn_with_delta_orthogonal_kernels_is_an_isometry():
    """Each kernel acts on every pixel as one orthogonal matrix: the second moment of h is the same in
    every convolution after the first, to float32 rounding (Xiao et al., 2018)."""
    for seed in SEEDS:
        df = _cnn("delta_orthogonal", seed, depth=20, activation="linear")
        m2 = (df.preact_var + df.preact_mean ** 2).to_numpy()
        np.testing.assert_allclose(m2[1:], m2[1], rtol=1e-4)
        g2 = df.grad_preact_var.to_numpy()
        assert abs(math.log(g2[0] / g2[-1])) < 0.05


@pytest.mark.slow  # wide, deep, three seeds: ~10-20 s
def test_tanh_cnn_with_delta_orthogonal_kernels_follows_the_mlp_theory():
    """At the pixel level a delta-orthogonal CNN is an MLP: the per-layer mean-field prediction holds."""
    cfg = RunConfig(arch="cnn", depth=20, width=64, activation="tanh", init="delta_orthogonal", sigma_w=1.2,
                    bias=False)
    th = cfg.architecture.theory_table(cfg)
    assert th.attrs["applies"] and "MLP" in th.attrs["note"]
    got = np.mean([np.log(_cnn("delta_orthogonal", s, depth=20, activation="tanh", sigma_w=1.2).preact_var)
                   for s in SEEDS], axis=0)
    np.testing.assert_allclose(got, np.log(th.preact_var.to_numpy()), atol=0.15)


@pytest.mark.slow  # wide, deep, three seeds: ~10-20 s
def test_the_residual_scenario_explodes_plain_and_keeps_fixup():
    """The shipped scenario, at initialization: 100 plain blocks take the stream's variance to ~3^100
    (finite in float32 values, 10^47 as a variance); Fixup keeps every block's stream the same."""
    from core.scenarios import SCENARIOS

    sc = SCENARIOS["residual_100_blocks"]
    plain = train(sc.config.replace(steps=0)).layers
    fixup = train(sc.compare.replace(steps=0)).layers
    growth = plain.stream_var.iloc[-1] / plain.stream_var.iloc[0]
    assert math.log(growth) == pytest.approx(99 * math.log(3.0), rel=0.05)
    v = fixup.stream_var.to_numpy()
    np.testing.assert_allclose(v, v[0], rtol=1e-6)

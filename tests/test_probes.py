"""The recorded statistics equal independent oracles: a manual layer-by-layer forward pass,
torch.autograd.grad, and float64 moments computed here — for every measuring strategy (the
Numba ones, streaming and batched, and plain PyTorch), and the hook-based LayerProbe."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _oracle import PHI, flat_counts, manual_step, moments, next_batch, oracle_stats
from core.measure import kernels
from core.measure import probes
from core.schema import RunConfig
from core.run.engine import Trainer
from core.models.mlp import build_network
from core.measure.probes import COL, STAT_COLUMNS, LayerProbe
from core.registry import ACTIVATIONS, phi_prime_max

ALL_ACTIVATIONS = list(ACTIVATIONS)
FUSED = (True, False) if kernels.AVAILABLE else (False,)  # the kernels, and PyTorch alone
VAR_COLUMNS = ("preact_var", "act_var", "grad_preact_var", "grad_act_var", "weight_var", "weight_grad_var", "grad_ratio")


@pytest.fixture(params=["numba", "torch"])
def path(request):
    """The measuring strategy to ask for: the Numba kernels (streaming or batched, by the layers'
    size), or plain PyTorch."""
    if request.param == "numba" and not kernels.AVAILABLE:
        pytest.skip("Numba is not available here")
    return request.param


def expected_strategy(path: str, batch: int, widths) -> str:
    if path == "torch":
        return "torch"
    return "streaming" if batch * min(widths) >= probes.SMALL else "batched"


def assert_matches_oracle(stats: np.ndarray, oracle: dict, batch: int, widths, context=""):
    for c in VAR_COLUMNS:
        np.testing.assert_allclose(stats[:, COL[c]], oracle[c], rtol=2e-4, atol=0, err_msg=f"{c} {context}")
    for c, var in (("preact_mean", "preact_var"), ("act_mean", "act_var")):
        scale = np.sqrt(oracle[var] + oracle[c] ** 2)
        assert np.all(np.abs(stats[:, COL[c]] - oracle[c]) <= 2e-5 * scale + 1e-30), (c, context, stats[:, COL[c]], oracle[c])
    # a float32 rounding difference may move one entry across a threshold, no more
    entries = np.array([batch * w for w in widths], dtype=float)
    assert np.all(np.abs(stats[:, COL["saturation"]] - oracle["saturation"]) <= 1.01 / entries), context
    assert np.all(np.abs(stats[:, COL["dead_units"]] - oracle["dead_units"]) <= 1.01 / np.array(widths)), context


# -- our φ oracle is φ ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_registry_activation_is_the_textbook_function(name):
    h = torch.linspace(-30, 30, 20001, dtype=torch.float64)
    torch.testing.assert_close(ACTIVATIONS[name].fn(h), PHI[name](h), rtol=1e-6, atol=1e-7)
    assert ACTIVATIONS[name].name == name


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_flat_region_is_where_the_slope_falls_below_a_tenth_of_its_peak(name):
    """Activation's documented rule: h ≤ flat_below or |h| > flat_beyond is where |φ'| < max|φ'|/10,
    on the saturating side, and the threshold is that boundary (not somewhere deeper in the tail)."""
    act = ACTIVATIONS[name]
    peak = phi_prime_max(act)
    h = torch.linspace(-40, 40, 800001, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(PHI[name](h).sum(), h)
    slope, h = slope.abs().numpy(), h.detach().numpy()
    small = slope < 0.1 * peak * (1 + 1e-3)
    if act.flat_beyond is None and act.flat_below is None:
        assert not (slope < 0.1 * peak).any()  # linear: nowhere flat
        return
    flat = act.flat(torch.as_tensor(h)).numpy()
    assert small[flat].all(), f"{name}: part of the flat region has a slope above a tenth of the peak"
    # tight: just outside the threshold (0.01 in h) the slope is not small yet
    t = act.flat_beyond if act.flat_beyond is not None else act.flat_below
    probe_points = [t + 0.01] if act.flat_beyond is None else [t - 0.01, -t + 0.01]
    for p in probe_points:
        i = np.searchsorted(h, p)
        assert slope[i] >= 0.1 * peak * (1 - 1e-2), f"{name}: threshold {t} is deeper than the rule's boundary"


# -- the engine's record at a step equals the oracle ---------------------------------------------

CASES = [
    # activation, init, batchnorm, bias, dataset, widths
    ("tanh", "xavier_normal", False, True, "digits", (32, 24, 16)),
    ("relu", "kaiming_normal", False, True, "gaussian", (32, 32, 32, 32)),
    ("sigmoid", "normal", False, True, "moons", (16, 40, 8)),
    ("selu", "lecun_normal", True, True, "gaussian", (24, 24, 24)),
    ("gelu", "orthogonal", True, False, "spirals", (20, 12)),
    ("silu", "torch_default", False, True, "circles", (16, 16, 16)),
    ("elu", "uniform", False, True, "digits", (48, 16)),
    ("leaky_relu", "lsuv", False, True, "digits", (32, 32, 32)),
    ("softplus", "kaiming_uniform", True, True, "gaussian", (16, 16)),
    ("linear", "xavier_uniform", False, True, "gaussian", (16, 32, 16)),
]
# Wide enough (batch × width ≥ probes.SMALL) that the Numba kernels reduce each tensor the moment
# it appears, in the forward pass and in backward hooks (streaming), instead of all together at the end.
BATCH = 48
WIDE_BATCH = 128
WIDE = max(256, -(-getattr(probes, "SMALL", 0) // WIDE_BATCH))
CASES += [
    ("tanh", "xavier_normal", False, True, "gaussian", (WIDE, WIDE + 64, WIDE)),
    ("relu", "kaiming_normal", True, True, "digits", (WIDE, WIDE)),
    ("sigmoid", "normal", False, True, "moons", (WIDE, WIDE)),
    ("linear", "orthogonal", False, False, "gaussian", (WIDE, WIDE)),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}{'-bn' if c[2] else ''}-{c[5][0]}" for c in CASES])
def test_engine_records_equal_the_manual_forward_and_autograd(case, path):
    activation, init, bn, bias, dataset, widths = case
    cfg = RunConfig(widths=widths, activation=activation, init=init, batchnorm=bn, bias=bias, dataset=dataset,
                    batch_size=WIDE_BATCH if min(widths) >= WIDE else BATCH, steps=4, lr=0.1, optimizer="momentum", sigma_b=0.2, seed=7, eval_every=0)
    trainer = Trainer(cfg, strategy=path)
    assert trainer.strategy.name == expected_strategy(path, cfg.batch_size, widths)
    act = ACTIVATIONS[activation]
    checked = 0
    while not trainer.done:
        x, y = next_batch(trainer)
        oracle = oracle_stats(trainer.net, act, x, y)  # the weights as they are now, before this step's update
        step = trainer.step
        rec = trainer.advance()
        assert rec is not None and rec.step == step
        assert rec.stats.shape == (len(widths), len(STAT_COLUMNS))
        assert_matches_oracle(rec.stats, oracle, cfg.batch_size, widths, f"{path} step {step}")
        assert rec.loss == pytest.approx(oracle["loss"][0], rel=1e-5)
        checked += 1
    assert checked == cfg.steps + 1


def test_zero_weights_give_exact_zero_preactivations_and_flat_counts(path):
    """zeros init: every h is exactly 0, on the boundary of ReLU's flat region (h ≤ 0 is flat)."""
    for name in ALL_ACTIVATIONS:
        cfg = RunConfig(depth=3, width=8, activation=name, init="zeros", dataset="gaussian", batch_size=16, steps=0)
        trainer = Trainer(cfg, strategy=path)
        x, y = next_batch(trainer)
        oracle = oracle_stats(trainer.net, ACTIVATIONS[name], x, y)
        rec = trainer.advance()
        assert np.all(rec.stats[:, COL["preact_var"]] == 0) and np.all(rec.stats[:, COL["preact_mean"]] == 0)
        np.testing.assert_array_equal(rec.stats[:, COL["saturation"]], oracle["saturation"], err_msg=name)
        np.testing.assert_array_equal(rec.stats[:, COL["dead_units"]], oracle["dead_units"], err_msg=name)
        expect = 1.0 if name in ("relu", "leaky_relu") else 0.0
        assert np.all(rec.stats[:, COL["saturation"]] == expect), name


# -- the PyTorch functions directly ----------------------------------------------------------------

def tensors_for(seed=0, shapes=((64, 32), (64, 32), (64, 32), (64, 700), (64, 700), (16, 8))):
    """Same-shape runs (stacked), large layers (listed), and odd shapes, as _groups sees them."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*s, generator=g) * (0.3 + i) + 0.1 * i).contiguous() for i, s in enumerate(shapes)]


def test_var_mean_per_tensor_equals_float64():
    ts = tensors_for()
    var, mean = probes.var_mean_per_tensor(ts)
    var2, mean2 = probes.var_mean_per_tensor(ts, buffers={})
    for i, t in enumerate(ts):
        m, v = moments(t)
        assert float(var[i]) == pytest.approx(v, rel=1e-5) and float(var2[i]) == pytest.approx(v, rel=1e-5)
        assert abs(float(mean[i]) - m) <= 1e-6 * math.sqrt(v + m * m)
    for fused in FUSED:
        var3, mean3 = probes.moments_per_tensor(ts, fused=fused)
        for i, t in enumerate(ts):
            m, v = moments(t)
            assert var3[i] == pytest.approx(v, rel=1e-5), fused


def special_preacts(act, seed=0) -> list[torch.Tensor]:
    """Random values on both sides of the thresholds, exact zeros, a dead column, and values at
    the float32 threshold and one ulp either side."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for shape in [(64, 32), (64, 32), (64, 600), (33, 7)]:
        h = torch.randn(*shape, generator=g) * 3
        h[:5] = 0.0  # exact zeros
        t = act.flat_beyond if act.flat_beyond is not None else (act.flat_below if act.flat_below is not None else 0.0)
        t32 = torch.tensor(t, dtype=torch.float32)
        edge = torch.stack([t32, torch.nextafter(t32, torch.tensor(math.inf)), torch.nextafter(t32, torch.tensor(-math.inf)),
                            -t32, -torch.nextafter(t32, torch.tensor(math.inf))])
        h[5, : len(edge)] = edge
        h[:, 1] = -50.0 if act.flat_below is not None else 50.0  # a dead (flat for every example) column
        h[:, 2] = 0.0  # a column of exact zeros: dead for ReLU (0 ≤ 0), alive elsewhere
        out.append(h.contiguous())
    return out


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_flat_counters_equal_the_boolean_mask_definition(name):
    act = ACTIVATIONS[name]
    hs = special_preacts(act)
    want = np.array([flat_counts(h, act) for h in hs])
    sat, dead = probes.flat_fractions(hs, act)
    np.testing.assert_array_equal(sat.numpy(), want[:, 0])
    np.testing.assert_array_equal(dead.numpy(), want[:, 1])
    sat, dead = probes.flat_fractions(hs, act, buffers={})
    np.testing.assert_array_equal(sat.numpy(), want[:, 0])
    for fused in FUSED:
        var, mean, sat, dead = probes.preact_statistics(hs, act, fused=fused)
        np.testing.assert_array_equal(sat, want[:, 0], err_msg=f"kernels={fused}")
        np.testing.assert_array_equal(dead, want[:, 1], err_msg=f"kernels={fused}")
        for i, h in enumerate(hs):
            m, v = moments(h)
            assert var[i] == pytest.approx(v, rel=1e-5) and mean[i] == pytest.approx(m, abs=1e-6 * math.sqrt(v + m * m))
    if act.flat_below is not None or act.flat_beyond is not None:
        assert want[:, 1].min() > 0  # the dead column is there, so the counters were really exercised


def test_layer_statistics_equals_oracle():
    """probes.layer_statistics on the oracle's own tensors."""
    cfg = RunConfig(widths=(24, 600, 16), activation="tanh", init="normal", sigma_w=1.8, dataset="gaussian",
                    batch_size=64, seed=3)
    net = build_network(cfg)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, cfg.features, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    act = ACTIVATIONS["tanh"]
    oracle = oracle_stats(net, act, x, y)
    t = oracle["_tensors"]
    w_var = np.array([moments(w)[1] for w in t["W"]])
    for fused in FUSED:
        stats = probes.layer_statistics(t["h"], t["a"], t["grad_h"], t["grad_a"], t["grad_W"],
                                        (w_var, np.full(3, np.nan)), act, fused=fused)
        assert_matches_oracle(stats, oracle, 64, cfg.hidden_widths, f"kernels={fused}")
        assert np.isnan(stats[:, COL["update_ratio"]]).all()


# -- overflow and cancellation: redone exactly in float64 -------------------------------------------

def exact_var_mean(t):
    v, m = torch.var_mean(t.double(), correction=0)
    return float(v), float(m)


def hard_tensors():
    g = torch.Generator().manual_seed(5)
    return {
        "huge": (torch.randn(64, 32, generator=g) * 1e20).float(),                # squares overflow float32
        "huge_wide": (torch.randn(64, 1000, generator=g) * 3e19).float(),
        "mean_dwarfs_std": (1000 + 1e-3 * torch.randn(64, 32, generator=g)).float(),
        "mean_dwarfs_std_wide": (-5e4 + 0.1 * torch.randn(128, 700, generator=g)).float(),
        "constant": torch.full((16, 8), 3.25),
    }


@pytest.mark.parametrize("kind", list(hard_tensors()))
def test_overflow_and_cancellation_give_float64_exact_variances(kind):
    t = hard_tensors()[kind]
    assert torch.isfinite(t).all()
    v, m = exact_var_mean(t)
    for fused in FUSED:
        var, mean = probes.moments_per_tensor([t, t.clone()], fused=fused)
        for i in range(2):
            assert var[i] == pytest.approx(v, rel=1e-9, abs=1e-300), (kind, fused)
            assert mean[i] == pytest.approx(m, rel=1e-9, abs=1e-12), (kind, fused)
        pvar, pmean, _, _ = probes.preact_statistics([t], ACTIVATIONS["tanh"], fused=fused)
        assert pvar[0] == pytest.approx(v, rel=1e-9, abs=1e-300), (kind, fused)
    tv, tm = probes.var_mean_per_tensor([t])
    assert float(tv[0]) == pytest.approx(v, rel=1e-9, abs=1e-300)


# The redo threshold's promise ("float32 keeps ~7 digits: if var is under 1e-4 of E[x²], fewer than 3
# are left"): above the threshold, at least 3 digits are right, on every path.
MEAN_OVER_STD = [10, 30, 60, 95]


@pytest.mark.parametrize("ratio", MEAN_OVER_STD)
@pytest.mark.parametrize("impl", ["kernels", "pytorch"])
def test_moderate_cancellation_keeps_three_digits(ratio, impl):
    if impl == "kernels" and not kernels.AVAILABLE:
        pytest.skip("Numba is not available here")
    g = torch.Generator().manual_seed(ratio)
    ts = [(ratio + torch.randn(*shape, generator=g)).float().contiguous() for shape in [(256, 1024), (128, 64), (64, 8)]]
    var, _ = probes.moments_per_tensor(ts, fused=impl == "kernels")
    for i, t in enumerate(ts):
        v, _ = exact_var_mean(t)
        assert abs(var[i] / v - 1) < 1e-3, (tuple(t.shape), var[i], v)


# -- the update ratio, measured by copying the weights ------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("record_every", [1, 3])
def test_update_ratio_is_std_of_the_weight_change_over_std_of_weights(optimizer, record_every, path):
    lr = 0.01 if optimizer == "adam" else 0.2
    cfg = RunConfig(widths=(24, 16, 16), activation="tanh", init="xavier_normal", dataset="digits", batch_size=32,
                    steps=7, lr=lr, optimizer=optimizer, record_every=record_every, seed=2, eval_every=0)
    trainer = Trainer(cfg, strategy=path)
    history = {}  # step -> the weights after that many updates
    records = []
    while not trainer.done:
        history[trainer.step] = [lin.weight.detach().double().clone() for lin in trainer.net.linears]
        rec = trainer.advance()
        if rec is not None:
            records.append(rec)
    expected_steps = sorted({0, *range(0, cfg.steps + 1, record_every), cfg.steps})
    assert [r.step for r in records] == expected_steps
    for rec in records:
        s = rec.step
        W = history[s]
        np.testing.assert_allclose(rec.stats[:, COL["weight_var"]], [moments(w)[1] for w in W], rtol=1e-6)
        if s == 0:
            assert np.isnan(rec.stats[:, COL["update_ratio"]]).all()
            continue
        want = [float((w - p).std(unbiased=False) / w.std(unbiased=False)) for w, p in zip(W, history[s - 1])]
        # ΔW's float32 rounding: relative error ≈ 1e-7 · |W| / |ΔW|
        np.testing.assert_allclose(rec.stats[:, COL["update_ratio"]], want, rtol=2e-3, err_msg=f"step {s}")
        assert all(0 < r < 1 for r in want)  # a real update happened, smaller than the weights


# -- LayerProbe: hooks in a with block ----------------------------------------------------------------

def hooks_left(modules) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in modules)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # the first layer's input needs no gradient
@pytest.mark.parametrize("batchnorm", [False, True])
def test_layer_probe_equals_manual_forward_and_autograd(batchnorm):
    cfg = RunConfig(widths=(16, 24, 8), activation="tanh", init="xavier_normal", batchnorm=batchnorm,
                    dataset="gaussian", batch_size=32, seed=1)
    net = build_network(cfg)
    net.train()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, cfg.features, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    t = manual_step(net, "tanh", x, y)
    modules = list(net.norms) if batchnorm else list(net.linears)
    with LayerProbe(modules) as probe:
        assert len(probe) == 3 and hooks_left(modules) > 0
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
    assert hooks_left(modules) == 0
    for l, (out, grad) in enumerate(probe):
        torch.testing.assert_close(out, t["h"][l], rtol=1e-5, atol=1e-6)
        # float32 against float64: BatchNorm's backward cancels, so entries near 0 get an absolute
        # tolerance on the tensor's own scale (1 part in 10⁵ of its largest entry)
        scale = float(t["grad_h"][l].abs().max())
        torch.testing.assert_close(grad, t["grad_h"][l], rtol=1e-4, atol=1e-5 * scale)


def test_layer_probe_removes_its_hooks_when_the_block_raises():
    cfg = RunConfig(depth=3, width=8, dataset="gaussian", batch_size=8)
    net = build_network(cfg)
    modules = list(net.linears)
    before = hooks_left(modules)
    with pytest.raises(RuntimeError, match="boom"):
        with LayerProbe(modules) as probe:
            net(torch.randn(4, cfg.features))
            raise RuntimeError("boom")
    assert hooks_left(modules) == before == 0
    seen = [o.clone() for o in probe.outputs]
    net(torch.randn(4, cfg.features) * 10)  # no hook records this
    assert all(torch.equal(a, b) for a, b in zip(seen, probe.outputs))
    assert "removed" in repr(probe)


# -- histograms -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation,init,widths", [("tanh", "xavier_normal", (32, 16)), ("relu", "kaiming_normal", (32, 16)),
                                                    ("tanh", "normal", (WIDE, WIDE))])
def test_histograms_count_the_oracle_tensors(activation, init, widths, path):
    cfg = RunConfig(widths=widths, activation=activation, init=init, dataset="gaussian",
                    batch_size=WIDE_BATCH if min(widths) >= WIDE else BATCH, steps=1, seed=4, eval_every=0)
    trainer = Trainer(cfg, strategy=path)
    x, y = next_batch(trainer)
    t = manual_step(trainer.net, activation, x, y)
    rec = trainer.advance(want_hist=True)
    assert rec.hist is not None
    for kind, tensors in [("act", t["a"]), ("preact", t["h"]), ("grad_preact", t["grad_h"])]:
        assert len(rec.hist[kind]) == len(widths)
        for (edges, counts), tensor in zip(rec.hist[kind], tensors):
            values = tensor.detach().double().numpy().ravel()
            assert counts.sum() == values.size  # every entry counted once
            values = np.clip(values, edges[0], edges[-1])
            if kind == "act" and activation == "tanh":
                assert edges[0] == -1.0 and edges[-1] == 1.0  # fixed range for a bounded φ
            else:
                slack = 1e-5 * np.abs(values).max()  # the oracle's h differs from the engine's by float32 rounding
                assert edges[0] <= values.min() + slack and edges[-1] >= values.max() - slack
            want, _ = np.histogram(values, bins=edges)
            # an entry within rounding of an edge may land in the neighbouring bin, no more
            assert np.abs(counts - want).sum() <= 2 * max(1, int(1e-4 * values.size)), kind

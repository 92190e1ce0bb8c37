"""The residual MLP and the CNN: statistics against hand-written float64 passes and torch.autograd.grad,
every measuring strategy; the settings that apply to each architecture; complete, reproducible tables."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.io.cli import main
from core.measure.records import ARCH_COLUMNS, COL, STAT_COLUMNS
from core.registry import ARCHITECTURES, DATASETS, INITIALIZERS, RESIDUAL_SCALES
from core.run.engine import Trainer, train
from core.run.record import LAYER_COLUMNS
from core.schema import ConfigError, RunConfig
from tests._oracle import BN_EPS, PHI, moments, next_batch

STRATEGIES = ["torch", "batched", "streaming"]
MINE = ["resmlp", "cnn"]


def _bn(z: torch.Tensor, bn) -> torch.Tensor:
    """BatchNorm in training mode over dim 0, written out (z: entries × units)."""
    mu = z.mean(dim=0, keepdim=True)
    var = ((z - mu) ** 2).mean(dim=0, keepdim=True)
    return (z - mu) / torch.sqrt(var + BN_EPS) * bn.weight.detach().double() + bn.bias.detach().double()


def _lin(x, layer):
    w = layer.weight.detach().double()
    out = x @ w.T
    return out if layer.bias is None else out + layer.bias.detach().double()


def resmlp_oracle(net, cfg: RunConfig, x, y) -> dict[str, np.ndarray]:
    """x0 = W_in x + b; per block h = [BN](W1 (x + c0) + b1) + c1, a = φ(h),
    x ← x + α·(m·(W2 (a + c2) + b2) + c3) (c, m: Fixup's scalars, else 0 and 1); float64 by hand,
    gradients by torch.autograd.grad."""
    phi = PHI[cfg.activation]
    scale = RESIDUAL_SCALES[cfg.residual_scale]
    L = cfg.depth
    alpha = net.alpha.detach().double()
    fb = net.fixup_bias.detach().double() if scale.fixup else torch.zeros(L, 4, dtype=torch.float64)
    fm = net.fixup_mult.detach().double() if scale.fixup else torch.ones(L, dtype=torch.float64)
    W1 = [m.weight.detach().double().clone().requires_grad_(True) for m in net.first]
    s = _lin(x.double(), net.inp)
    hs, acts, streams, branches = [], [], [], []
    for l in range(L):
        b1 = net.first[l].bias
        z = (s + fb[l, 0]) @ W1[l].T + (0 if b1 is None else b1.detach().double())
        h = (z if net.norms is None else _bn(z, net.norms[l])) + fb[l, 1]
        a = phi(h)
        f = _lin(a + fb[l, 2], net.second[l]) * fm[l] + fb[l, 3]
        branch = alpha[l] * f
        s = s + branch
        hs.append(h)
        acts.append(a)
        streams.append(s)
        branches.append(branch)
    logits = _lin(s, net.out)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, [*hs, *acts, *streams, *W1])
    g_h, g_a, g_s, g_w = grads[:L], grads[L:2 * L], grads[2 * L:3 * L], grads[3 * L:]
    return {
        "preact_var": np.array([moments(t)[1] for t in hs]), "preact_mean": np.array([moments(t)[0] for t in hs]),
        "act_var": np.array([moments(t)[1] for t in acts]), "act_mean": np.array([moments(t)[0] for t in acts]),
        "grad_preact_var": np.array([moments(t)[1] for t in g_h]),
        "grad_act_var": np.array([moments(t)[1] for t in g_a]),
        "weight_var": np.array([moments(w)[1] for w in W1]),
        "weight_grad_var": np.array([moments(t)[1] for t in g_w]),
        "stream_var": np.array([moments(t)[1] for t in streams]),
        "grad_stream_var": np.array([moments(t)[1] for t in g_s]),
        "branch_var": np.array([moments(t)[1] for t in branches]),
        "loss": float(loss.detach()),
    }


def cnn_oracle(net, cfg: RunConfig, x, y) -> dict[str, np.ndarray]:
    """Each 3×3 "same" convolution as a matrix product with the image's zero-padded patches (unfold),
    BatchNorm per channel over batch × pixels, φ, global average pooling, the output Linear; float64
    by hand, gradients by torch.autograd.grad. Dead units: channels flat for every example and pixel."""
    phi = PHI[cfg.activation]
    act = net.activation
    c0, hgt, wid = DATASETS[cfg.dataset].image_shape
    B = x.shape[0]
    a = x.double().reshape(B, c0, hgt, wid)
    Ws = [c.weight.detach().double().clone().requires_grad_(True) for c in net.convs]
    hs, acts = [], []
    for l, conv in enumerate(net.convs):
        patches = F.unfold(a, 3, padding=1)                        # (B, Cin·9, pixels)
        z = torch.einsum("ck,bkp->bpc", Ws[l].reshape(Ws[l].shape[0], -1), patches)  # (B, pixels, C)
        if conv.bias is not None:
            z = z + conv.bias.detach().double()
        h = z if net.norms is None else _bn(z.reshape(-1, z.shape[-1]), net.norms[l]).reshape(z.shape)
        a_flat = phi(h)
        hs.append(h)
        acts.append(a_flat)
        a = a_flat.permute(0, 2, 1).reshape(B, -1, hgt, wid)
    logits = _lin(acts[-1].mean(dim=1), net.out)
    loss = F.cross_entropy(logits, y)
    L = len(hs)
    grads = torch.autograd.grad(loss, [*hs, *acts, *Ws])
    flat = [act.flat(h.detach()).numpy() for h in hs]                 # (B, pixels, C)
    return {
        "preact_var": np.array([moments(t)[1] for t in hs]), "preact_mean": np.array([moments(t)[0] for t in hs]),
        "act_var": np.array([moments(t)[1] for t in acts]), "act_mean": np.array([moments(t)[0] for t in acts]),
        "grad_preact_var": np.array([moments(t)[1] for t in grads[:L]]),
        "grad_act_var": np.array([moments(t)[1] for t in grads[L:2 * L]]),
        "weight_var": np.array([moments(w)[1] for w in Ws]),
        "weight_grad_var": np.array([moments(t)[1] for t in grads[2 * L:]]),
        "saturation": np.array([m.mean() for m in flat]),
        "dead_units": np.array([m.all(axis=(0, 1)).mean() for m in flat]),
        "loss": float(loss.detach()),
    }


def _step0(cfg: RunConfig, strategy: str):
    tr = Trainer(cfg, strategy=strategy)
    net0 = copy.deepcopy(tr.net)
    x, y = next_batch(tr)
    rec = tr.advance()
    return rec, net0, x, y


def _close(measured: np.ndarray, want: np.ndarray, name: str, spread: np.ndarray | None = None):
    """Relative agreement (float32 tensors against float64), a mean to a small fraction of its std."""
    atol = 1e-5 * float(np.sqrt(np.min(spread))) if spread is not None else 1e-12
    np.testing.assert_allclose(measured, want, rtol=2e-4, atol=atol, err_msg=name)


def _check(rec, want: dict):
    for name, values in want.items():
        if name != "loss":
            spread = want[name.replace("_mean", "_var")] if name.endswith("_mean") else None
            _close(rec.stats[:, COL[name]], values, name, spread)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("scale,batchnorm,activation", [
    ("none", False, "relu"), ("sqrt_depth", True, "tanh"), ("fixup", False, "gelu"), ("rezero", False, "tanh"),
])
def test_resmlp_statistics_match_a_float64_pass_and_autograd(strategy, scale, batchnorm, activation):
    cfg = RunConfig(arch="resmlp", residual_scale=scale, depth=3, width=24, activation=activation,
                    init="kaiming_normal", batchnorm=batchnorm, dataset="gaussian", input_dim=10, batch_size=16,
                    steps=1, seed=5)
    rec, net0, x, y = _step0(cfg, strategy)
    if scale in ("fixup", "rezero"):
        # every block starts as the identity: give the branch something to say, so the oracle checks it
        with torch.no_grad():
            for m in net0.second:
                m.weight.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
            if net0.fixup_mult is not None:
                net0.fixup_mult.fill_(0.7)
                net0.fixup_bias.copy_(torch.linspace(-0.2, 0.3, net0.fixup_bias.numel()).reshape_as(net0.fixup_bias))
            else:
                net0.alpha.fill_(0.5)
        tr = Trainer(cfg, strategy=strategy)
        tr.net.load_state_dict(net0.state_dict())
        rec = tr.advance()
    want = resmlp_oracle(net0, cfg, x, y)
    assert rec.loss == pytest.approx(want["loss"], rel=1e-5)
    _check(rec, want)
    for name in set(ARCH_COLUMNS) - set(cfg.architecture.columns):
        assert np.isnan(rec.stats[:, COL[name]]).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("init,batchnorm,activation,bias", [
    ("kaiming_normal", False, "relu", True), ("delta_orthogonal", True, "tanh", False),
    ("normal", False, "sigmoid", True), ("xavier_uniform", False, "leaky_relu", False),
])
def test_cnn_statistics_match_a_float64_pass_and_autograd(strategy, init, batchnorm, activation, bias):
    cfg = RunConfig(arch="cnn", depth=3, width=8, activation=activation, init=init, batchnorm=batchnorm, bias=bias,
                    sigma_b=0.3, batch_size=12, steps=1, seed=2)
    rec, net0, x, y = _step0(cfg, strategy)
    want = cnn_oracle(net0, cfg, x, y)
    assert rec.loss == pytest.approx(want["loss"], rel=1e-5)
    _check(rec, want)


def test_cnn_dead_units_are_channels():
    """A ReLU channel whose bias pushes it below zero everywhere is one dead unit of `width`."""
    cfg = RunConfig(arch="cnn", depth=2, width=8, activation="relu", init="kaiming_normal", batch_size=16, steps=0)
    tr = Trainer(cfg, strategy="torch")
    with torch.no_grad():
        tr.net.convs[0].bias[:3] = -1e3  # three dead channels in the first convolution
    rec = tr.advance()
    assert rec.stats[0, COL["dead_units"]] == pytest.approx(3 / 8)
    assert rec.stats[0, COL["saturation"]] >= 3 / 8


# -- initializers on convolutions ------------------------------------------------------------------

@pytest.mark.parametrize("init", ["kaiming_normal", "xavier_normal", "lecun_normal", "normal", "orthogonal",
                                  "delta_orthogonal", "torch_default"])
@pytest.mark.parametrize("sigma_w", [1.0, 1.7])
def test_conv_weights_follow_the_scheme_with_the_conv_fan_in(init, sigma_w):
    cfg = RunConfig(arch="cnn", depth=3, width=96, init=init, sigma_w=sigma_w, steps=0)
    net = cfg.architecture.build(cfg)
    ini = INITIALIZERS[init]
    for conv in net.convs:
        w = conv.weight.detach().double()
        want = ini.conv_weight_std(w.shape[1], w.shape[0], 9, sigma_w)
        assert w.std(unbiased=False).item() == pytest.approx(want, rel=_sampling(w.numel()))


def test_delta_orthogonal_is_orthogonal_at_the_centre_and_zero_elsewhere():
    cfg = RunConfig(arch="cnn", depth=2, width=16, init="delta_orthogonal", sigma_w=1.3, steps=0)
    w = cfg.architecture.build(cfg).convs[1].weight.detach().double()
    q = w[:, :, 1, 1]
    np.testing.assert_allclose((q @ q.T).numpy(), 1.3 ** 2 * np.eye(16), atol=1e-5)
    w[:, :, 1, 1] = 0
    assert w.abs().max() == 0
    # on a Linear layer it is plain orthogonal
    lin = RunConfig(init="delta_orthogonal", depth=2, width=32, steps=0).architecture.build(
        RunConfig(init="delta_orthogonal", depth=2, width=32, steps=0)).linears[1].weight.detach().double()
    np.testing.assert_allclose((lin @ lin.T).numpy(), np.eye(32), atol=1e-5)


def test_fixup_and_rezero_start_every_block_as_the_identity():
    for scale in ("fixup", "rezero"):
        cfg = RunConfig(arch="resmlp", residual_scale=scale, depth=4, width=32, init="kaiming_normal", steps=0)
        net = cfg.architecture.build(cfg)
        x = torch.randn(8, cfg.features)
        with torch.no_grad():
            assert torch.equal(net(x), net.out(net.inp(x)))
    cfg = RunConfig(arch="resmlp", residual_scale="fixup", depth=16, width=64, init="kaiming_normal", steps=0)
    net = cfg.architecture.build(cfg)
    w = net.first[3].weight.detach().double()
    assert w.std(unbiased=False).item() == pytest.approx(math.sqrt(2 / 64) / 4, rel=0.05)  # He × 16^(-1/2)
    assert net.second[3].weight.abs().max() == 0


# -- settings ----------------------------------------------------------------------------------------

def test_an_option_of_another_arch_is_refused_with_one_sentence():
    with pytest.raises(ConfigError) as e:
        RunConfig(residual_scale="fixup")
    assert e.value.field == "residual_scale" and "resmlp" in e.value.message and "mlp" in e.value.message
    with pytest.raises(ConfigError) as e:
        RunConfig(arch="cnn", widths=(8, 8))
    assert e.value.field == "widths"
    with pytest.raises(ConfigError) as e:
        RunConfig(arch="resmlp", init="lsuv")
    assert e.value.field == "init" and "mlp" in e.value.message
    with pytest.raises(ConfigError) as e:
        RunConfig(arch="cnn", dataset="spirals")
    assert e.value.field == "dataset" and "digits" in e.value.message and "bars" in e.value.message


def test_links_carry_only_the_options_that_apply():
    assert "arch" not in RunConfig().to_query() and "residual_scale" not in RunConfig().to_query()
    cfg = RunConfig(arch="resmlp", residual_scale="rezero", depth=7)
    q = cfg.to_query()
    assert q["arch"] == "resmlp" and q["residual_scale"] == "rezero"
    assert "seq_len" not in q and "forget_bias" not in q and "widths" not in q
    assert RunConfig.from_query(q) == (cfg, [])
    assert RunConfig.from_strings(q) == cfg
    # a link that asks a CNN to read 2-D points falls back to the CNN's dataset, and says so
    back, notes = RunConfig.from_query({"arch": "cnn", "dataset": "moons"})
    assert back.arch == "cnn" and back.dataset == ARCHITECTURES["cnn"].default_dataset and len(notes) == 1
    # switching arch resets what the new one does not take
    assert RunConfig(arch="resmlp", residual_scale="fixup", batchnorm=True).for_arch("cnn") == RunConfig(
        arch="cnn", batchnorm=True)


def test_cli_runs_a_fixup_resmlp_and_refuses_the_option_on_an_mlp(tmp_path, capsys):
    out = tmp_path / "run.csv"
    code = main(["run", "--arch", "resmlp", "--residual-scale", "fixup", "--depth", "3", "--width", "16",
                 "--steps", "2", "--batch-size", "16", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    import pandas as pd

    df = pd.read_csv(out)
    assert list(df.columns) == list(LAYER_COLUMNS) and len(df) == 3 * 3
    assert df["stream_var"].notna().all() and df["time"].isna().all() and df["gate_saturation"].isna().all()
    code = main(["run", "--residual-scale", "fixup", "--steps", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--residual-scale" in err and "resmlp" in err


# -- every architecture of this module runs, completely and reproducibly -----------------------------

GRID = [
    RunConfig(arch="resmlp", residual_scale=s, depth=3, width=16, activation=act, init=ini, batchnorm=bn, steps=2,
              batch_size=16, optimizer=opt)
    for s, act, ini, bn, opt in [("none", "relu", "kaiming_normal", False, "sgd"),
                                 ("sqrt_depth", "tanh", "xavier_normal", True, "momentum"),
                                 ("fixup", "selu", "lecun_normal", False, "adam"),
                                 ("rezero", "gelu", "orthogonal", False, "sgd")]
] + [
    RunConfig(arch="cnn", depth=3, width=8, activation=act, init=ini, batchnorm=bn, steps=2, batch_size=16,
              dataset=ds, optimizer=opt)
    for act, ini, bn, ds, opt in [("relu", "kaiming_normal", False, "digits", "sgd"),
                                  ("tanh", "delta_orthogonal", False, "bars", "momentum"),
                                  ("sigmoid", "xavier_uniform", True, "digits", "adam"),
                                  ("leaky_relu", "torch_default", False, "bars", "sgd")]
]


@pytest.mark.parametrize("cfg", GRID, ids=lambda c: f"{c.arch}-{c.residual_scale}-{c.activation}-{c.init}")
def test_two_steps_give_a_complete_table_and_the_same_seed_the_same_table(cfg):
    a, b = train(cfg), train(cfg)
    assert a.status == "finished" and a.stats.shape == (3, cfg.depth, len(STAT_COLUMNS))
    df = a.layers
    required = [c for c in STAT_COLUMNS if c not in ARCH_COLUMNS and c != "update_ratio"]
    assert np.isfinite(df[required].to_numpy()).all()
    assert np.isfinite(df.loc[df.step > 0, "update_ratio"]).all()
    for c in ARCH_COLUMNS:
        assert df[c].notna().all() == (c in cfg.architecture.columns), c
    assert np.array_equal(a.stats, b.stats, equal_nan=True) and np.array_equal(a.steps, b.steps, equal_nan=True)


def test_bars_are_deterministic_and_learnable_by_orientation():
    from core.data import load_data

    cfg = RunConfig(arch="cnn", dataset="bars", steps=0)
    d1, d2 = load_data(cfg), load_data(cfg.replace(seed=0))
    assert torch.equal(d1.x_train, d2.x_train) and set(d1.y_train.tolist()) == {0, 1, 2, 3}
    assert d1.x_train.shape[1] == 64 and not torch.equal(d1.x_train, load_data(cfg.replace(seed=1)).x_train)


# -- the architecture's own charts and theory line -------------------------------------------------------

def test_resmlp_charts_draw_the_stream_the_branch_and_their_ratio_with_the_theory():
    from core.figures.architectures import arch_figures
    from core.theory.architectures import layer_profile

    cfg = RunConfig(arch="resmlp", depth=5, width=32, activation="relu", init="kaiming_normal", steps=2,
                    batch_size=32)
    rec = train(cfg)
    figs = dict(arch_figures(cfg, rec.stats, rec.steps))
    assert set(figs) == {"fig_residual_stream", "fig_branch_ratio"}
    stream = figs["fig_residual_stream"]
    measured = [t for t in stream.data if t.mode == "lines+markers"]
    assert len(measured) == 3  # stream, branch, ∂L/∂x
    np.testing.assert_allclose(measured[0].y, rec.stats[-1, :, COL["stream_var"]], rtol=1e-6)
    assert any(t.line.dash == "dash" for t in stream.data)  # the theory's recursion
    ratio = [t for t in figs["fig_branch_ratio"].data if t.mode == "lines+markers"][0]
    s, b = rec.stats[-1, :, COL["stream_var"]], rec.stats[-1, :, COL["branch_var"]]
    np.testing.assert_allclose(ratio.y, b / (s - b), rtol=1e-5)
    # the by-layer chart's theory line is the stream recursion's, not the MLP's
    prof = layer_profile(cfg)
    assert prof.attrs["applies"] and "stream" in prof.attrs["note"]
    assert arch_figures(RunConfig(arch="cnn", depth=2, width=8), rec.stats[:, :2], rec.steps) == []


# -- generated code, executed: PyTorch and Keras 3 (on the torch backend) -----------------------------------

def _exec(src: str) -> dict:
    import contextlib
    import io

    ns: dict = {"__name__": "__snippet__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(src, "<generated>", "exec"), ns)
    return ns


CODE_CASES = [
    RunConfig(arch="resmlp", residual_scale=s, depth=3, width=256, activation=a, init=i, sigma_w=sw, batchnorm=bn,
              optimizer=opt)
    for s, a, i, sw, bn, opt in [("none", "relu", "kaiming_normal", 1.0, False, "sgd"),
                                 ("sqrt_depth", "tanh", "xavier_uniform", 1.3, True, "momentum"),
                                 ("fixup", "relu", "kaiming_uniform", 1.0, False, "adam"),
                                 ("rezero", "gelu", "normal", 1.5, False, "sgd")]
] + [
    RunConfig(arch="cnn", depth=3, width=64, activation=a, init=i, sigma_w=sw, batchnorm=bn, dataset=ds)
    for a, i, sw, bn, ds in [("relu", "kaiming_normal", 1.0, False, "digits"),
                             ("tanh", "delta_orthogonal", 1.2, False, "bars"),
                             ("relu", "lecun_normal", 1.0, True, "digits"),
                             ("sigmoid", "normal", 2.0, False, "bars"),
                             ("tanh", "orthogonal", 1.0, False, "digits")]
]


def _sampling(n: int) -> float:
    """Relative tolerance on the std of n draws: 5 standard errors (≈ 1/√(2n)), at least 2 %."""
    return max(0.02, 5 / math.sqrt(2 * n))


def _expected_std(cfg: RunConfig, fan_in: int, fan_out: int, conv: bool) -> float:
    ini = INITIALIZERS[cfg.init]
    if conv:
        return ini.conv_weight_std(fan_in, fan_out, 9, cfg.sigma_w)
    return ini.weight_std(fan_in, fan_out, cfg.sigma_w)


@pytest.mark.parametrize("cfg", CODE_CASES, ids=lambda c: f"{c.arch}-{c.residual_scale}-{c.init}")
def test_pytorch_code_runs_and_holds_each_weight_to_the_formula(cfg):
    from torch import nn

    from core.io.codegen import pytorch_code

    src = pytorch_code(cfg)
    ns = _exec(src[: src.index("optimizer =")])  # the network as initialized
    model = ns["model"]
    assert sum(p.numel() for p in model.parameters()) == cfg.parameter_count()
    conv = cfg.arch == "cnn"
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)] if conv else [
        model[0], *[m for b in model[1:-1] for m in (b.first, b.second)]]
    scale = RESIDUAL_SCALES[cfg.residual_scale]
    for n, m in enumerate(layers):
        w = m.weight.detach().double()
        want = _expected_std(cfg, w.shape[1], w.shape[0], conv)
        if not conv and n > 0:
            if n % 2 == 0 and scale.zero_last:
                want = 0.0
            elif n % 2 == 1:
                want *= scale.branch_in_scale(cfg.depth)
        got = w.std(unbiased=False).item()
        assert got == pytest.approx(want, rel=_sampling(w.numel()), abs=1e-12), (n, got, want)
    _exec(src)  # and its training step runs


@pytest.mark.parametrize("cfg", CODE_CASES, ids=lambda c: f"{c.arch}-{c.residual_scale}-{c.init}")
def test_keras_code_runs_on_the_torch_backend_and_holds_each_weight_to_the_formula(cfg, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    from core.io.codegen import keras_code

    ns = _exec(keras_code(cfg))
    model = ns["model"]
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == cfg.parameter_count()
    conv = cfg.arch == "cnn"
    kind = keras.layers.Conv2D if conv else keras.layers.Dense
    layers = [l for l in model.layers if isinstance(l, kind)]
    scale = RESIDUAL_SCALES[cfg.residual_scale]
    for n, layer in enumerate(layers):
        k = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
        fan_in, fan_out = k.shape[-2], k.shape[-1]  # Keras kernels are (…, in, out)
        want = _expected_std(cfg, fan_in, fan_out, conv)
        if not conv and n > 0 and layer is not layers[-1]:
            if n % 2 == 0 and scale.zero_last:
                want = 0.0
            elif n % 2 == 1:
                want *= scale.branch_in_scale(cfg.depth)
        if layer is layers[-1] and not conv:
            continue  # the output layer keeps Keras' default
        assert k.std() == pytest.approx(want, rel=_sampling(k.size), abs=1e-12), (n, k.std(), want)
    if cfg.init == "delta_orthogonal":
        k = keras.ops.convert_to_numpy(layers[1].kernel)
        assert np.abs(k[0, 0]).max() == 0 and np.abs(k[1, 1]).max() > 0


def test_the_verdict_reads_the_residual_stream():
    """Fixup's branches start at zero, so their ∂L/∂h is 0 at step 0 by design: the verdict judges the stream
    (its variance and ∂L/∂x), healthy for Fixup, exploding for plain blocks."""
    base = dict(arch="resmlp", depth=24, width=64, activation="relu", init="kaiming_normal", steps=1, batch_size=64)
    fixup = train(RunConfig(residual_scale="fixup", **base)).diagnosis
    assert fixup.verdict == "healthy", fixup.headline
    plain = train(RunConfig(residual_scale="none", **base)).diagnosis
    kinds = {f.kind for f in plain.findings}
    assert "exploding" in kinds and any("∂L/∂x" in f.sentence and "block" in f.sentence for f in plain.findings)


# -- the sidebar -----------------------------------------------------------------------------------------

def test_explore_sidebar_shows_the_architecture_and_only_its_options():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    page = str(Path(__file__).resolve().parent.parent / "pages" / "1_Explore.py")
    at = AppTest.from_file(page, default_timeout=60)
    for k, v in {"arch": "resmlp", "residual_scale": "fixup", "depth": "3", "width": "16"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    assert at.selectbox(key="explore_arch").value == "resmlp"
    assert at.selectbox(key="explore_residual_scale").value == "fixup"
    assert not at.warning and not at.error
    at.selectbox(key="explore_arch").set_value("cnn").run()  # a CNN takes no residual scaling
    assert not at.exception and not at.error
    assert "explore_residual_scale" not in [w.key for w in at.selectbox]
    assert at.selectbox(key="explore_dataset").options == [e.label for e in DATASETS.values()  # images only
                                                           if ARCHITECTURES["cnn"].accepts(e)]

"""core.io.codegen: the generated code is the artifact people copy, so it is executed and measured.

PyTorch: every initializer (with and without a σ_w multiplier), BatchNorm on
and off, uneven widths - the snippet runs, builds the same network as
core.models.mlp.build_network (layers, shapes, parameter count) and each hidden
weight's standard deviation matches Initializer.weight_std (core.registry) within sampling error.

Keras 3: every snippet compiles and names the right initializer; executed on the
torch backend (KERAS_BACKEND=torch, the torch that is already here) it builds the
same layer sequence and parameter count, each hidden kernel's standard deviation
matches Initializer.weight_std (core.registry) within sampling error and each bias
Initializer.bias_std; LSUV's Keras helper leaves every hidden Dense output at
variance ≈ 1.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.io.codegen import keras_code, pytorch_code
from core.schema import RunConfig
from core.models.mlp import build_network
from core.registry import ACTIVATIONS, INITIALIZERS

ALL_INITS = list(INITIALIZERS)
# Uneven widths and an input size of its own, so fan_in ≠ fan_out everywhere and
# fan_in/fan_out/fan_avg/max mix-ups show; wide enough that one layer's sample std
# is within ~0.3% of the true one.
WIDE = RunConfig(dataset="gaussian", input_dim=300, widths=(512, 256, 384), activation="tanh", steps=0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TRAIN_STEP = "# One training step"


def run_pytorch(cfg: RunConfig, train_step: bool = True) -> dict:
    """Execute the snippet; without `train_step`, stop before its training step
    (which moves the weights) to measure the initialization itself."""
    src = pytorch_code(cfg)
    assert TRAIN_STEP in src
    if not train_step:
        src = src[: src.index(TRAIN_STEP)]
    ns: dict = {"__name__": "__snippet__"}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(src, "<pytorch snippet>", "exec"), ns)
    ns["_stdout"] = out.getvalue()
    return ns


def hidden_linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)][:-1]


def rms(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean().sqrt())


# -- PyTorch: structure ----------------------------------------------------------------------------

@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_pytorch_structure_matches_build_network(activation, batchnorm):
    cfg = RunConfig(dataset="digits", widths=(24, 16, 8), activation=activation, batchnorm=batchnorm,
                    init="kaiming_normal", steps=0)
    ns = run_pytorch(cfg)
    model = ns["model"]
    assert isinstance(model, nn.Sequential)
    expected_act = type(eval(ACTIVATIONS[activation].module_code, {"nn": nn}))
    mods = list(model)
    sizes = (cfg.features, *cfg.hidden_widths)
    per_layer = 3 if batchnorm else 2
    assert len(mods) == per_layer * cfg.depth + 1
    for l in range(cfg.depth):
        block = mods[per_layer * l: per_layer * (l + 1)]
        lin = block[0]
        assert isinstance(lin, nn.Linear) and (lin.in_features, lin.out_features) == (sizes[l], sizes[l + 1])
        if batchnorm:
            assert isinstance(block[1], nn.BatchNorm1d) and block[1].num_features == sizes[l + 1]
        assert type(block[-1]) is expected_act
    out = mods[-1]
    assert isinstance(out, nn.Linear) and (out.in_features, out.out_features) == (sizes[-1], cfg.classes)
    # The same parameters as the lab's network (order aside).
    ours = sorted(tuple(p.shape) for p in model.parameters())
    lab = sorted(tuple(p.shape) for p in build_network(cfg).parameters())
    assert ours == lab
    assert sum(p.numel() for p in model.parameters()) == cfg.parameter_count()
    assert "loss before the step" in ns["_stdout"]


def test_pytorch_leaky_relu_slope_and_no_bias():
    cfg = RunConfig(activation="leaky_relu", bias=False, depth=3, width=16, steps=0)
    model = run_pytorch(cfg)["model"]
    assert all(m.bias is None for m in hidden_linears(model))
    assert [m.negative_slope for m in model if isinstance(m, nn.LeakyReLU)] == [0.01] * 3


@pytest.mark.parametrize("optimizer,cls,momentum", [("sgd", torch.optim.SGD, 0.0), ("momentum", torch.optim.SGD, 0.9),
                                                   ("adam", torch.optim.Adam, None)])
def test_pytorch_optimizer_and_lr(optimizer, cls, momentum):
    cfg = RunConfig(depth=2, width=8, optimizer=optimizer, lr=0.0123, steps=0)
    opt = run_pytorch(cfg)["optimizer"]
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0123)
    if momentum is not None:
        assert opt.param_groups[0]["momentum"] == momentum


# -- PyTorch: the initial weights, measured ---------------------------------------------------------

@pytest.mark.parametrize("sigma_w", [1.0, 1.7])
@pytest.mark.parametrize("init", ALL_INITS)
def test_pytorch_weight_std_matches_weight_std(init, sigma_w):
    cfg = WIDE.replace(init=init, sigma_w=sigma_w, sigma_b=0.3)
    model = run_pytorch(cfg, train_step=False)["model"]
    linears = hidden_linears(model)
    assert len(linears) == 3
    sizes = (cfg.features, *cfg.hidden_widths)
    if init == "lsuv":
        # Data-driven: each hidden Linear's output has variance ≈ 1 on fresh N(0, I) inputs.
        x = torch.randn(2048, cfg.features, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            for i, m in enumerate(model[:-1]):
                if isinstance(m, nn.Linear):
                    assert float(model[: i + 1](x).var()) == pytest.approx(1.0, abs=0.15)
        return
    for lin, fan_in, fan_out in zip(linears, sizes[:-1], sizes[1:]):
        want = INITIALIZERS[init].weight_std(fan_in, fan_out, sigma_w)
        got = rms(lin.weight)
        if want == 0:
            assert got == 0
        else:
            # 3% is > 10 standard errors of a sample std over ≥ 98k entries.
            assert got == pytest.approx(want, rel=0.03), f"{init} layer {fan_in}→{fan_out}"
    # Biases: all hidden biases together (1,152 entries: ~2% standard error).
    b = torch.cat([lin.bias for lin in linears])
    want_b = [INITIALIZERS[init].bias_std(fi, 0.3) for fi in sizes[:-1]]
    if max(want_b) == 0:
        assert rms(b) == 0
    else:
        pooled = math.sqrt(sum(s * s * w for s, w in zip(want_b, cfg.hidden_widths)) / sum(cfg.hidden_widths))
        assert rms(b) == pytest.approx(pooled, rel=0.12)


def test_pytorch_torch_default_leaves_linear_alone():
    src = pytorch_code(RunConfig(init="torch_default"))
    assert "nn.init." not in src and "Nothing to do" in src


def test_pytorch_he_is_written_with_torch_nn_init():
    src = pytorch_code(RunConfig(activation="relu", init="kaiming_normal"))
    assert 'nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")' in src


def test_pytorch_snippet_is_self_contained_and_names_the_settings():
    cfg = RunConfig(depth=7, width=33, activation="selu", init="lecun_normal", seed=42)
    src = pytorch_code(cfg, share_url="http://lab.example/Explore?depth=7")
    imports = [l for l in src.splitlines() if l.startswith(("import ", "from "))]
    assert imports == ["import math", "import torch", "from torch import nn"]
    assert "depth=7&width=33&activation=selu&init=lecun_normal" in src
    assert "http://lab.example/Explore?depth=7" in src
    assert "python -m core run --depth 7 --width 33" in src
    assert "torch.manual_seed(42)" in src


# -- Keras -------------------------------------------------------------------------------------------

# The initializer each built-in scheme must name when σ_w = 1 (σ_w ≠ 1: VarianceScaling, Orthogonal(gain=...)).
# A scheme added later is held by value (the weight scale test below), not by name here.
KERAS_NAMES = {
    "zeros": 'kernel_initializer="zeros"',
    "normal": "RandomNormal(stddev=SIGMA_W / math.sqrt(fan_in))",
    "uniform": "RandomUniform(",
    "xavier_uniform": "GlorotUniform()",
    "xavier_normal": "GlorotNormal()",
    "kaiming_uniform": "HeUniform()",
    "kaiming_normal": "HeNormal()",
    "kaiming_normal_fan_out": 'mode="fan_out"',
    "lecun_normal": "LecunNormal()",
    "lecun_uniform": "LecunUniform()",
    "orthogonal": "Orthogonal(",
    "torch_default": 'VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform")',
    "lsuv": "Orthogonal(",
}
assert set(KERAS_NAMES) <= set(INITIALIZERS)

GRID = list(itertools.product(ALL_INITS, [1.0, 1.5], [False, True], [True, False],
                              ["relu", "tanh", "leaky_relu", "selu"]))


@pytest.mark.parametrize("init,sigma_w,batchnorm,bias,activation", GRID)
def test_keras_compiles_and_names_the_initializer(init, sigma_w, batchnorm, bias, activation):
    cfg = RunConfig(depth=4, width=32, init=init, sigma_w=sigma_w, sigma_b=0.2, batchnorm=batchnorm, bias=bias,
                    activation=activation, optimizer="momentum", lr=0.02)
    src = keras_code(cfg)
    compile(src, "<keras>", "exec")
    if init not in KERAS_NAMES:
        pass
    elif sigma_w == 1.0 or init in ("zeros", "normal", "uniform", "lsuv", "kaiming_normal_fan_out"):
        assert KERAS_NAMES[init] in src
    elif init == "orthogonal":
        assert "Orthogonal(gain=SIGMA_W)" in src
    else:
        assert "VarianceScaling(scale=" in src and "SIGMA_W**2" in src
    assert ("BatchNormalization(epsilon=1e-5, momentum=0.9)" in src) == batchnorm
    assert ("use_bias=False" in src) == (not bias)
    if activation == "leaky_relu":
        assert "LeakyReLU(negative_slope=0.01)" in src
    else:
        assert f'Activation("{ACTIVATIONS[activation].keras_name}")' in src
    assert "SGD(learning_rate=0.02, momentum=0.9)" in src
    assert "import keras" in src and "import tensorflow" not in src and "tf." not in src


@pytest.mark.parametrize("init", ["kaiming_normal", "xavier_normal", "lecun_normal"])
def test_keras_says_its_normals_are_truncated(init):
    src = keras_code(RunConfig(init=init))
    assert "truncated normal" in src and 'distribution="untruncated_normal"' in src


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras runs on another backend in this process")
    return keras


def run_keras(cfg: RunConfig) -> dict:
    ns: dict = {"__name__": "__snippet__"}
    with contextlib.redirect_stdout(io.StringIO()):  # model.summary()
        exec(compile(keras_code(cfg), "<keras snippet>", "exec"), ns)
    return ns


def _np(keras, v) -> np.ndarray:
    return keras.ops.convert_to_numpy(v).astype(np.float64)


KERAS_INITS = [i for i in ALL_INITS if INITIALIZERS[i].calibrate is None]  # LSUV: its own test below


@pytest.mark.parametrize("sigma_w", [1.0, 1.7])
@pytest.mark.parametrize("init", KERAS_INITS)
def test_keras_runs_on_torch_and_draws_each_weight_with_the_formulas_std(keras, init, sigma_w):
    cfg = WIDE.replace(init=init, sigma_w=sigma_w, sigma_b=0.3, batchnorm=True, seed=3, optimizer="momentum",
                       lr=0.02)
    ns = run_keras(cfg)
    model = ns["model"]
    kinds = [type(l).__name__ for l in model.layers]
    hidden_act = "LeakyReLU" if cfg.activation == "leaky_relu" else "Activation"
    assert kinds == ["Dense", "BatchNormalization", hidden_act] * 3 + ["Dense"]
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert [d.units for d in dense] == [*cfg.hidden_widths, cfg.classes]
    # the lab's parameters (BatchNorm's running statistics are non-trainable in both)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == cfg.parameter_count()
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.02)
    sizes = (cfg.features, *cfg.hidden_widths)
    for d, fan_in, fan_out in zip(dense, sizes[:-1], sizes[1:]):
        k = _np(keras, d.kernel)
        assert k.shape == (fan_in, fan_out)  # Keras kernels are (in, out)
        want = INITIALIZERS[init].weight_std(fan_in, fan_out, sigma_w)
        got = float(np.sqrt((k * k).mean()))
        if want == 0:
            assert got == 0
        else:  # 3% is > 10 standard errors of a sample std over ≥ 98k entries
            assert got == pytest.approx(want, rel=0.03), f"{init} {fan_in}→{fan_out}"
    b = np.concatenate([_np(keras, d.bias) for d in dense[:-1]])
    want_b = [INITIALIZERS[init].bias_std(fi, 0.3) for fi in sizes[:-1]]
    if max(want_b) == 0:
        assert not b.any()
    else:
        pooled = math.sqrt(sum(s * s * w for s, w in zip(want_b, cfg.hidden_widths)) / sum(cfg.hidden_widths))
        assert float(np.sqrt((b * b).mean())) == pytest.approx(pooled, rel=0.12)
    x = np.random.default_rng(0).standard_normal((4, cfg.features)).astype("float32")
    assert tuple(model(x).shape) == (4, cfg.classes)


def test_keras_orthogonal_kernel_is_orthogonal_times_sigma_w(keras):
    ns = run_keras(WIDE.replace(init="orthogonal", sigma_w=1.7))
    for d in [l for l in ns["model"].layers if isinstance(l, keras.layers.Dense)][:-1]:
        k = _np(keras, d.kernel)  # (in, out): orthonormal along the shorter side, times σ_w
        small = k.T @ k if k.shape[1] <= k.shape[0] else k @ k.T
        np.testing.assert_allclose(small, 1.7 ** 2 * np.eye(small.shape[0]), atol=1e-4)


def test_keras_lsuv_calibrates_each_hidden_layer_to_unit_variance(keras):
    ns = run_keras(WIDE.replace(init="lsuv", widths=(256, 128), batchnorm=False))
    model = ns["model"]
    x = keras.random.normal((2048, WIDE.features), seed=5)
    for d in [l for l in model.layers if isinstance(l, keras.layers.Dense)][:-1]:
        out = keras.Model(model.inputs, d.output)(x)
        assert float(keras.ops.convert_to_numpy(keras.ops.var(out))) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "selu", "gelu"])
def test_keras_activations_and_no_bias_run(keras, activation):
    cfg = RunConfig(depth=3, width=16, activation=activation, bias=False, optimizer="adam", steps=0)
    model = run_keras(cfg)["model"]
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert all(not d.use_bias for d in dense[:-1]) and dense[-1].use_bias
    if activation == "leaky_relu":
        assert [l.negative_slope for l in model.layers if isinstance(l, keras.layers.LeakyReLU)] == [
            pytest.approx(0.01)] * 3
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == cfg.parameter_count()


@pytest.mark.parametrize("init", ALL_INITS)
def test_pytorch_whole_snippet_runs_for_every_initializer(init):
    cfg = RunConfig(dataset="spirals", widths=(16, 12), init=init, sigma_w=1.2, sigma_b=0.1, batchnorm=True, steps=0)
    ns = run_pytorch(cfg)
    assert math.isfinite(ns["loss"].item()) and "loss before the step" in ns["_stdout"]


def test_codegen_is_plain_python():
    src = (Path(__file__).resolve().parent.parent / "core" / "io" / "codegen.py").read_text()
    assert "streamlit" not in src

"""The generated code of the recurrent nets is executed, in PyTorch and in Keras 3 (KERAS_BACKEND=torch),
and the weights it draws are held to the schemes' formulas: the input kernels' std to
`Initializer.weight_std(fan_in, gates·H)`, every H×H gate block of the recurrent kernel to
`RECURRENT_INITS[...].weight_std(H, H, σ_w)` (orthogonal: each block σ_w·Q exactly), the LSTM's
forget-gate bias to `forget_bias`, the other biases to their scheme.
"""
from __future__ import annotations

import contextlib
import io
import math
import os

import numpy as np
import pytest
import torch

from core.io.codegen import keras_code, pytorch_code
from core.registry import ARCHITECTURES, INITIALIZERS, RECURRENT_INITS
from core.schema import RunConfig

RECURRENT = [name for name, a in ARCHITECTURES.items() if a.per_time]
CASES = [
    dict(init="xavier_normal", recurrent_init="orthogonal", sigma_w=0.8),
    dict(init="kaiming_normal", recurrent_init="normal", sigma_w=1.2, depth=2),
    dict(init="normal", sigma_b=0.5, recurrent_init="identity", sigma_w=0.5),
    dict(init="lecun_uniform", recurrent_init="xavier_uniform", sigma_w=1.5),
]
H = 256


def cfg_for(arch: str, **kw) -> RunConfig:
    base = dict(arch=arch, depth=1, width=H, seq_len=7, dataset="recall", batch_size=8, steps=0)
    if arch == "lstm":
        base["forget_bias"] = 1.5
    base.update(kw)
    return RunConfig(**base)


def _run(src: str, train_step: bool = True) -> dict:
    if not train_step and "# One training step" in src:
        src = src[: src.index("# One training step")]
    ns: dict = {"__name__": "__snippet__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(src, "<snippet>", "exec"), ns)
    return ns


def _check_blocks(cfg, w_ih: np.ndarray, w_hh: np.ndarray, gates: int, layer: int, ctx: str) -> None:
    """w_ih: (gates·H, fan_in) and w_hh: (gates·H, H), torch's layout."""
    ini, rec = INITIALIZERS[cfg.init], RECURRENT_INITS[cfg.recurrent_init]
    fan_in = cfg.features if layer == 0 else H
    assert w_ih.shape == (gates * H, fan_in), ctx
    assert w_ih.std() == pytest.approx(ini.weight_std(fan_in, gates * H, 1.0), rel=0.05), ctx
    for block in np.split(w_hh, gates, axis=0):
        want = rec.weight_std(H, H, cfg.sigma_w)
        if rec.orthogonal:
            np.testing.assert_allclose(block @ block.T, cfg.sigma_w ** 2 * np.eye(H), atol=1e-5, err_msg=ctx)
        elif np.count_nonzero(block) == H:  # the identity
            np.testing.assert_allclose(block, cfg.sigma_w * np.eye(H), atol=1e-7, err_msg=ctx)
        else:
            assert block.std() == pytest.approx(want, rel=0.03), ctx


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("arch", RECURRENT)
def test_pytorch_code_runs_and_draws_the_labs_distributions(arch, case):
    cfg = cfg_for(arch, **CASES[case])
    ns = _run(pytorch_code(cfg), train_step=False)
    rnn = ns["model"].rnn
    lab = ARCHITECTURES[arch].build(cfg)
    assert type(rnn).__name__ == lab.torch_module.split(".")[-1]
    assert rnn.num_layers == cfg.depth and rnn.hidden_size == H
    for l in range(cfg.depth):
        w_ih = getattr(rnn, f"weight_ih_l{l}").detach().double().numpy()
        w_hh = getattr(rnn, f"weight_hh_l{l}").detach().double().numpy()
        _check_blocks(cfg, w_ih, w_hh, lab.gates, l, f"{arch} {CASES[case]} layer {l}")
        b = getattr(rnn, f"bias_ih_l{l}").detach().double().numpy()
        assert not getattr(rnn, f"bias_hh_l{l}").detach().any()
        if lab.forget_block is not None:
            f = lab.forget_block
            assert np.all(b[f * H:(f + 1) * H] == cfg.forget_bias)
            b = np.delete(b, np.s_[f * H:(f + 1) * H])
        assert b.std() == pytest.approx(INITIALIZERS[cfg.init].bias_std(w_ih.shape[1], cfg.sigma_b), abs=0.05)
    # the whole script, its training step included, runs and the lab's network has as many parameters
    # (torch keeps a second bias per gate)
    ns = _run(pytorch_code(cfg))
    second_bias = 0 if lab.recurrent_bias else lab.gates * H * cfg.depth
    assert sum(p.numel() for p in ns["model"].parameters()) == cfg.parameter_count() + second_bias


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras runs on another backend in this process")
    return keras


@pytest.mark.parametrize("case", [0, 1, 2])
@pytest.mark.parametrize("arch", RECURRENT)
def test_keras_code_runs_on_the_torch_backend_and_draws_the_labs_distributions(keras, arch, case):
    cfg = cfg_for(arch, **CASES[case])
    ns = _run(keras_code(cfg))
    model = ns["model"]
    lab = ARCHITECTURES[arch].build(cfg)
    layers = model.layers[:-1]
    assert len(layers) == cfg.depth and all(type(layer).__name__ == lab.keras_layer for layer in layers)
    for l, layer in enumerate(layers):
        cell = layer.cell
        kernel = keras.ops.convert_to_numpy(cell.kernel).astype(np.float64).T      # → torch's (gates·H, fan_in)
        recurrent = keras.ops.convert_to_numpy(cell.recurrent_kernel).astype(np.float64)  # (H, gates·H)
        blocks = np.concatenate([b.T for b in np.split(recurrent, lab.gates, axis=1)], axis=0)
        _check_blocks(cfg, kernel, blocks, lab.gates, l, f"keras {arch} {CASES[case]} layer {l}")
        bias = keras.ops.convert_to_numpy(cell.bias).astype(np.float64)
        if lab.recurrent_bias:
            assert not bias[1].any()  # the GRU's recurrent bias from 0, as the lab's
            bias = bias[0]
        if lab.forget_block is not None:
            f = lab.forget_block
            assert np.all(bias[f * H:(f + 1) * H] == pytest.approx(cfg.forget_bias))
            bias = np.delete(bias, np.s_[f * H:(f + 1) * H])
        assert bias.std() == pytest.approx(INITIALIZERS[cfg.init].bias_std(kernel.shape[1], cfg.sigma_b), abs=0.05)
    out = model(np.zeros((2, cfg.seq_len, cfg.features), dtype="float32"))
    assert tuple(out.shape) == (2, cfg.classes)

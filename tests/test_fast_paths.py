"""The engine's fast paths give the same numbers as the plain ones, and are the ones taken.

- ∂L/∂h from ∂L/∂a and a (`Activation.slope_from_output`) equals torch.autograd's ∂L/∂h;
- the pair kernel redoes overflow and cancellation exactly, like every other reduction;
- the one-call record assembly equals the numpy one, NaN and inf included;
- large layers use the lean backward hook, small layers one kernel call with h and W
  reduced in the forward pass (so a regression to a slow path fails here, not only in bench/).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _oracle import moments, next_batch, oracle_stats
from core.run import trainer
from core.measure import kernels
from core.measure import probes
from core.schema import RunConfig
from core.run.engine import Trainer
from core.measure.probes import COL, STAT_COLUMNS, StepProbe
from core.registry import ACTIVATIONS

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="Numba is not available here")
SLOPED = [name for name, act in ACTIVATIONS.items() if act.slope_from_output]


def test_the_activations_whose_backward_reads_the_output_say_so():
    assert set(SLOPED) == {"linear", "relu", "leaky_relu", "tanh", "sigmoid"}
    for name, act in ACTIVATIONS.items():
        assert (kernels.slope_args(act) is None) == (act.slope_from_output is None), name


def grads_through(name: str, shape=(96, 40), seed=0):
    """h (with exact zeros and both signs), a = φ(h), an incoming ∂L/∂a and autograd's ∂L/∂h."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(*shape, generator=g) * 2.5
    h[:3] = 0.0
    h = h.requires_grad_(True)
    a = ACTIVATIONS[name].fn(h)
    grad_a = torch.randn(*shape, generator=g)
    (grad_h,) = torch.autograd.grad(a, h, grad_a)
    return h.detach(), a.detach().contiguous(), grad_a.contiguous(), grad_h


@pytest.mark.parametrize("name", SLOPED)
def test_slope_from_output_is_what_autograd_uses(name):
    act = ACTIVATIONS[name]
    _, a, grad_a, grad_h = grads_through(name)
    # the PyTorch formula (the path without Numba)
    torch.testing.assert_close(probes.slope_times(act, a, grad_a), grad_h, rtol=1e-6, atol=1e-7)
    if not kernels.AVAILABLE:
        return
    # the pair kernel: ∂L/∂a's, ∂L/∂h's and a's moments from one pass over ∂L/∂a and a
    out = np.full((1, 16), np.nan)
    p, q = grad_a.data_ptr(), a.data_ptr()
    shape = [np.array([v], np.int64) for v in grad_a.shape]
    kernels.reduce_table(np.array([p], np.int64), np.array([q], np.int64), *shape, np.array([0]), np.array([6]),
                         np.array([2]), kernels.flat_args(None, None), kernels.slope_args(act), np.zeros(1, np.float32),
                         out, 12, 4, 2)
    for col, tensor in ((6, grad_a), (4, grad_h), (2, a)):
        mean, var = moments(tensor)
        assert out[0, col] == pytest.approx(var, rel=1e-6), col
        assert abs(out[0, col + 1] - mean) <= 1e-6 * math.sqrt(var + mean * mean), col


@needs_numba
@pytest.mark.parametrize("kind", ["huge", "mean_dwarfs_std"])
def test_the_pair_kernel_redoes_overflow_and_cancellation_exactly(kind):
    g = torch.Generator().manual_seed(1)
    grad_a = (torch.randn(64, 48, generator=g) * 1e20) if kind == "huge" else (1000 + 1e-3 * torch.randn(64, 48, generator=g))
    # tanh's output: ∂L/∂h = ∂L/∂a · (1 − a²); with a = 0 it inherits ∂L/∂a's cancellation
    a = torch.rand(64, 48, generator=g) * 0.5 if kind == "huge" else torch.zeros(64, 48)
    out = np.full((1, 16), np.nan)
    kernels.reduce_table(np.array([grad_a.data_ptr()]), np.array([a.data_ptr()]), np.array([64]), np.array([48]),
                         np.array([0]), np.array([6]), np.array([2]), kernels.flat_args(None, None),
                         kernels.slope_args(ACTIVATIONS["tanh"]), np.zeros(1, np.float32), out, 12, 4, 2)
    # ∂L/∂h's entries are rounded to float32 as the kernel forms them (to within an ulp of PyTorch's)
    for col, tensor, rel in ((6, grad_a, 1e-9), (4, grad_a * (1 - a * a), 1e-6)):
        v, m = torch.var_mean(tensor.double(), correction=0)
        assert out[0, col] == pytest.approx(float(v), rel=rel), (kind, col)
        assert out[0, col + 1] == pytest.approx(float(m), rel=rel), (kind, col)


def test_record_assembly_in_one_call_equals_numpy(monkeypatch):
    """NaN (no update yet), inf (a diverged layer), Var(W) = 0 (zeros init) and ordinary rows."""
    g = np.random.default_rng(3)
    m = g.random((5, probes.M_COLUMNS)) + 0.1
    m[1, probes.M_GH] = np.inf
    m[3, probes.M_GW] = 0.0
    w_var = np.array([0.5, 1.0, 0.0, 2.0, 0.3])
    d_var = np.array([np.nan, 1e-6, 1e-6, 0.0, 4e-4])
    results = []
    for available in ([True, False] if kernels.AVAILABLE else [False]):
        monkeypatch.setattr(kernels, "AVAILABLE", available)
        results.append(probes.assemble(m, (w_var, d_var)))
    out, finite = results[-1]
    assert not finite  # the inf in a checked column
    assert out.shape == (5, len(STAT_COLUMNS))
    np.testing.assert_array_equal(out[:, COL["preact_var"]], m[:, probes.M_H])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out[:, COL["update_ratio"]], np.sqrt(d_var / w_var))
        np.testing.assert_array_equal(out[:, COL["grad_ratio"]], np.sqrt(m[:, probes.M_GW] / w_var))
    for other, other_finite in results[:-1]:
        np.testing.assert_array_equal(other, out)  # NaN == NaN here
        assert other_finite == finite
    m[1, probes.M_GH] = 1.0
    assert probes.assemble(m, (w_var, d_var))[1]  # NaN update ratio and inf grad ratio are not checked


@needs_numba
def test_large_layers_take_the_lean_backward_hook(monkeypatch):
    """Only the first layer (no ∂L/∂a below it) and the output layer use the careful hook."""
    calls = []
    careful = StepProbe._linear_hook

    def counting(self, l, grad_inputs, grad_outputs):
        calls.append(l)
        return careful(self, l, grad_inputs, grad_outputs)

    monkeypatch.setattr(StepProbe, "_linear_hook", counting)
    widths = (256, 256, 256, 256)
    cfg = RunConfig(widths=widths, activation="tanh", dataset="gaussian", batch_size=128, steps=2, seed=2,
                    eval_every=0)
    trainer = Trainer(cfg)
    assert trainer.probe.as_they_appear
    x, y = next_batch(trainer)
    oracle = oracle_stats(trainer.net, ACTIVATIONS["tanh"], x, y)
    rec = trainer.advance()
    assert sorted(calls) == [0, len(widths)]
    for c in ("grad_preact_var", "grad_act_var", "weight_grad_var"):
        np.testing.assert_allclose(rec.stats[:, COL[c]], oracle[c], rtol=2e-4, err_msg=c)


@needs_numba
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_small_layers_reduce_h_and_w_forward_and_the_rest_in_one_call(activation, monkeypatch):
    def no_fallback(*args):
        raise AssertionError("the PyTorch fallback ran")

    monkeypatch.setattr(StepProbe, "_reduce_together_torch", no_fallback)
    cfg = RunConfig(widths=(32, 24, 32), activation=activation, dataset="gaussian", batch_size=48, steps=2, seed=4,
                    eval_every=0, record_every=1)
    trainer = Trainer(cfg)
    probe = trainer.probe
    assert not probe.as_they_appear
    x, y = next_batch(trainer)
    oracle = oracle_stats(trainer.net, ACTIVATIONS[activation], x, y)
    rec = trainer.advance()
    sloped = ACTIVATIONS[activation].slope_from_output is not None
    # with φ' from a: h and W reduced in the forward pass by the lean per-layer call, ∂L/∂h never asked of autograd
    assert (probe._forward_done == 3) == sloped
    assert (probe.__dict__.get("on_forward") is probe._lean_forward) == sloped
    for c in ("preact_var", "act_var", "grad_preact_var", "grad_act_var", "weight_var", "weight_grad_var"):
        np.testing.assert_allclose(rec.stats[:, COL[c]], oracle[c], rtol=2e-4, err_msg=c)
    np.testing.assert_allclose(rec.stats[:, COL["saturation"]], oracle["saturation"], atol=1.01 / (48 * 24))


def test_keep_freed_memory_is_set_once_and_harmless():
    trainer.keep_freed_memory()
    trainer.keep_freed_memory()
    assert trainer._allocator_tuned
    x = torch.randn(1024, 1024)  # a 4 MB block still allocates, fills and frees
    assert float((x * 0 + 1).sum()) == 1024 * 1024


@needs_numba
def test_this_process_loaded_the_kernels_from_numbas_cache():
    assert not kernels._cache_is_cold()


SAME_TABLE_IN_TWO_PROCESSES = """
import subprocess, sys
import numpy as np
from core.schema import RunConfig
from core.run.engine import train
from core.io.export import result_from_json
cfg = RunConfig(depth=6, width=32, activation="relu", init="kaiming_normal", steps=30, seed=3, dataset="moons")
ours = train(cfg)
p = subprocess.run([sys.executable, "-m", "core", "run", *cfg.to_cli_args(), "--out", "t.json"],
                   capture_output=True, text=True)
assert p.returncode == 0, p.stderr
theirs = result_from_json(open("t.json", "rb").read())
assert np.array_equal(theirs.stats, ours.stats, equal_nan=True), "the tables differ"
"""


@needs_numba
@pytest.mark.slow
def test_a_fresh_checkout_gives_the_same_table_in_every_process(tmp_path):
    """With Numba's cache empty, the first process must not compile the kernels itself: code
    compiled afresh rounded float32 partial sums differently from code loaded from the cache,
    so a dashboard run and the same run in another process differed in the last bits."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    shutil.copytree(Path(kernels.__file__).parent, tmp_path / "core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "check.py").write_text(SAME_TABLE_IN_TWO_PROCESSES)
    p = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]

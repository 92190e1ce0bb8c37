"""The measuring strategies' fast paths give the oracle's numbers, and the kernels behave as promised.

- φ'(h) from a = φ(h) (`Activation.slope_from_output`, the registry's scalar function) is what
  torch.autograd uses, and the kernel compiled from it gives ∂L/∂h's moments from ∂L/∂a and a;
- that kernel redoes overflow and cancellation exactly, like every other reduction, and a zero
  slope gives 0 where ∂L/∂a is infinite (ReLU's backward selects);
- the record's derived columns (the ratios) are made in one place, NaN and inf included;
- the strategy is chosen before the first step from the run's size and named publicly; large
  layers stream, small ones are batched, a run too short for the kernels to pay uses PyTorch,
  and each gives the oracle's table;
- importing the kernels starts no process and compiles nothing; a run gives the same table in
  every process once the cache is filled (`python -m core.measure.warm_up`).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _oracle import moments, next_batch, oracle_stats
from core.measure import kernels, probes
from core.measure.probes import COL, STAT_COLUMNS
from core.measure.strategy import choose, expected_records, kernels_pay
from core.registry import ACTIVATIONS
from core.run import trainer as trainer_module
from core.run.engine import Trainer
from core.schema import RunConfig

ROOT = Path(__file__).resolve().parent.parent
needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="Numba is not available here")
SLOPED = [name for name, act in ACTIVATIONS.items() if act.slope_from_output]


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


def pair_kernel(act, grad_a: torch.Tensor, a: torch.Tensor) -> np.ndarray:
    """The activation's table kernel on one (∂L/∂a, a) pair: row 0 of a moments table."""
    out = np.full((1, 16), np.nan)
    one = np.ones(1, np.int64)
    kernels.table_kernel(act.slope_from_output)(
        one * grad_a.data_ptr(), one * a.data_ptr(), one * grad_a.shape[0], one * grad_a.shape[1], one * 0, one * 6,
        one * 2, *kernels.flat_args(None, None), np.zeros(1, np.float32), out, 12, 4, 2)
    return out


def test_slope_from_output_is_phi_prime_written_in_terms_of_phi():
    """φ'(h) = slope_from_output(φ(h)) on a grid, in float64, against autograd."""
    assert SLOPED  # tanh, ReLU, ...
    for name, act in ACTIVATIONS.items():
        h = torch.linspace(-6, 6, 2001, dtype=torch.float64, requires_grad=True)
        a = act.fn(h)
        (slope,) = torch.autograd.grad(a.sum(), h)
        if act.slope_from_output is not None:
            got = np.array([act.slope_from_output(float(v)) for v in a.detach().numpy()])
            np.testing.assert_allclose(got, slope.numpy(), atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", SLOPED)
def test_slope_from_output_is_what_autograd_uses(name):
    act = ACTIVATIONS[name]
    _, a, grad_a, grad_h = grads_through(name)
    # the registry's scalar function, entry by entry, in float32 as the kernels use it
    slope = np.array([np.float32(act.slope_from_output(np.float32(v))) for v in a.numpy().ravel()],
                     dtype=np.float32).reshape(a.shape)
    torch.testing.assert_close(grad_a * torch.from_numpy(slope), grad_h, rtol=1e-6, atol=1e-7)
    if not kernels.AVAILABLE:
        return
    # the kernel compiled from it: ∂L/∂a's, ∂L/∂h's and a's moments from one pass over ∂L/∂a and a
    out = pair_kernel(act, grad_a, a)
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
    out = pair_kernel(ACTIVATIONS["tanh"], grad_a, a)
    # ∂L/∂h's entries are rounded to float32 as the kernel forms them (to within an ulp of PyTorch's)
    for col, tensor, rel in ((6, grad_a, 1e-9), (4, grad_a * (1 - a * a), 1e-6)):
        v, m = torch.var_mean(tensor.double(), correction=0)
        assert out[0, col] == pytest.approx(float(v), rel=rel), (kind, col)
        assert out[0, col + 1] == pytest.approx(float(m), rel=rel), (kind, col)


@needs_numba
def test_a_zero_slope_keeps_an_infinite_gradient_out_as_relu_backward_does():
    _, a, grad_a, _ = grads_through("relu", shape=(32, 64))
    grad_a[a == 0] = math.inf  # infinite only where ReLU is flat
    h = a.clone().requires_grad_(True)  # a = relu(h) for h = a ≥ 0... with the zeros flat
    (grad_h,) = torch.autograd.grad(torch.relu(h), h, grad_a)
    assert torch.isfinite(grad_h).all()
    out = pair_kernel(ACTIVATIONS["relu"], grad_a, a)
    mean, var = moments(grad_h)
    assert out[0, 4] == pytest.approx(var, rel=1e-6) and math.isfinite(out[0, 5])
    assert not math.isfinite(out[0, 6])  # ∂L/∂a itself is infinite, and says so


def test_the_ratios_are_derived_in_one_place():
    """NaN (no update yet), inf (a diverged layer), Var(W) = 0 (zeros init) and ordinary rows."""
    g = np.random.default_rng(3)
    m = g.random((5, probes.M_COLUMNS)) + 0.1
    m[1, probes.M_GH] = np.inf
    m[3, probes.M_GW] = 0.0
    w_var = np.array([0.5, 1.0, 0.0, 2.0, 0.3])
    d_var = np.array([np.nan, 1e-6, 1e-6, 0.0, 4e-4])
    out, finite = probes.assemble(m, (w_var, d_var))
    assert not finite  # the inf in a checked column
    assert out.shape == (5, len(STAT_COLUMNS))
    np.testing.assert_array_equal(out[:, COL["preact_var"]], m[:, probes.M_H])
    np.testing.assert_array_equal(out[:, COL["weight_var"]], w_var)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out[:, COL["update_ratio"]], np.sqrt(d_var / w_var))
        np.testing.assert_array_equal(out[:, COL["grad_ratio"]], np.sqrt(m[:, probes.M_GW] / w_var))
    m[1, probes.M_GH] = 1.0
    assert probes.assemble(m, (w_var, d_var))[1]  # NaN update ratio and inf grad ratio are not checked


# -- the strategy: chosen once, named, and equal to the oracle ---------------------------------------

def first_record_against_oracle(cfg: RunConfig, strategy: str | None = None):
    trainer = Trainer(cfg, strategy=strategy)
    x, y = next_batch(trainer)
    oracle = oracle_stats(trainer.net, ACTIVATIONS[cfg.activation], x, y)
    rec = trainer.advance()
    for c in ("preact_var", "act_var", "grad_preact_var", "grad_act_var", "weight_var", "weight_grad_var"):
        np.testing.assert_allclose(rec.stats[:, COL[c]], oracle[c], rtol=2e-4, err_msg=f"{trainer.strategy.name} {c}")
    np.testing.assert_allclose(rec.stats[:, COL["saturation"]], oracle["saturation"],
                               atol=1.01 / (cfg.batch_size * min(cfg.hidden_widths)))
    return trainer


@needs_numba
@pytest.mark.parametrize("activation,batchnorm", [("tanh", False), ("relu", True), ("gelu", False)])
def test_large_layers_stream_and_give_the_oracles_table(activation, batchnorm):
    cfg = RunConfig(widths=(256, 256, 256), activation=activation, batchnorm=batchnorm, dataset="gaussian",
                    batch_size=128, steps=2000, seed=2, eval_every=0)
    assert first_record_against_oracle(cfg).strategy.name == "streaming"


@needs_numba
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "gelu"])  # φ' from a, and not
def test_small_layers_are_batched_and_give_the_oracles_table(activation):
    cfg = RunConfig(widths=(32, 24, 32), activation=activation, dataset="gaussian", batch_size=48, steps=20000,
                    seed=4, eval_every=0, record_every=1)
    assert first_record_against_oracle(cfg).strategy.name == "batched"


@pytest.mark.parametrize("activation", ["tanh", "silu"])
def test_a_run_too_short_for_the_kernels_to_pay_uses_pytorch(activation):
    cfg = RunConfig(depth=3, width=32, activation=activation, dataset="gaussian", batch_size=32, steps=0)
    assert expected_records(cfg.steps, cfg.record_every) == 1 and not kernels_pay(1, 6 * 32 * 96)
    assert first_record_against_oracle(cfg).strategy.name == "torch"


def test_the_strategy_asked_for_is_the_one_used(monkeypatch):
    cfg = RunConfig(depth=2, width=16, dataset="gaussian", batch_size=16, steps=1, eval_every=0)
    assert Trainer(cfg, strategy="torch").strategy.name == "torch"
    monkeypatch.setenv("GFL_MEASURE", "torch")
    assert Trainer(cfg).strategy.name == "torch"
    if kernels.AVAILABLE:
        assert Trainer(cfg, strategy="numba").strategy.name == "batched"
    with pytest.raises(ValueError, match="Unknown measuring strategy 'fast'"):
        choose(ACTIVATIONS["tanh"], [torch.zeros(2, 2)], 8, name="fast")


def test_records_expected_by_a_run():
    assert expected_records(0, 1) == 1
    assert expected_records(10, 1) == 11
    assert expected_records(10, 3) == 5  # 0, 3, 6, 9 and the last
    assert expected_records(10, 0) == 0


def test_keep_freed_memory_is_harmless_when_called_again():
    trainer_module.keep_freed_memory()
    trainer_module.keep_freed_memory()
    x = torch.randn(1024, 1024)  # a 4 MB block still allocates, fills and frees
    assert float((x * 0 + 1).sum()) == 1024 * 1024


# -- Numba's cache: an explicit step, never an import ---------------------------------------------

IMPORT_STARTS_NOTHING = """
import subprocess, sys, time, os
def refuse(*a, **k):
    raise AssertionError("a process was started")
subprocess.Popen.__init__ = refuse
os.fork = refuse
t = time.perf_counter()
import core.measure.kernels as k
import core.measure.streaming, core.measure.batched
print(k.AVAILABLE, k.cache_is_warm(), round(time.perf_counter() - t, 2))
"""


@needs_numba
def test_importing_the_kernels_with_a_cold_cache_starts_no_process_and_compiles_nothing(tmp_path):
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    p = subprocess.run([sys.executable, "-c", IMPORT_STARTS_NOTHING], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    available, warm, _seconds = p.stdout.split()
    assert (available, warm) == ("True", "False")
    assert not any(cache.rglob("*.nbi"))  # nothing compiled, nothing written


SAME_TABLE_IN_TWO_PROCESSES = """
import os, subprocess, sys
import numpy as np
from core.schema import RunConfig
from core.run.engine import train
from core.io.export import result_from_json
for strategy, cfg in [("batched", RunConfig(depth=6, width=32, activation="relu", init="kaiming_normal", steps=30,
                                              seed=3, dataset="moons")),
                      ("streaming", RunConfig(depth=3, width=256, activation="tanh", steps=5, seed=3,
                                              dataset="gaussian", eval_every=0))]:
    os.environ["GFL_MEASURE"] = strategy
    ours = train(cfg)
    p = subprocess.run([sys.executable, "-m", "core", "run", *cfg.to_cli_args(), "--out", "t.json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    theirs = result_from_json(open("t.json", "rb").read())
    assert np.array_equal(theirs.stats, ours.stats, equal_nan=True), f"the tables differ ({strategy})"
"""


@needs_numba
@pytest.mark.slow
def test_a_fresh_checkout_gives_the_same_table_in_every_process(tmp_path):
    """Code compiled afresh can round float32 partial sums differently from code loaded from
    Numba's cache; once `python -m core.measure.warm_up` has filled the cache, every process
    loads the same code, and a run in this process equals the same run from the command line."""
    import shutil

    shutil.copytree(ROOT / "core", tmp_path / "core", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "GFL_MEASURE")}
    warm = subprocess.run([sys.executable, "-m", "core.measure.warm_up"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert warm.returncode == 0, warm.stderr[-2000:]
    (tmp_path / "check.py").write_text(SAME_TABLE_IN_TWO_PROCESSES)
    p = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]


@needs_numba
def test_a_servers_warm_up_leaves_the_cache_complete():
    from core.measure.warm_up import prepare

    assert prepare() and kernels.cache_is_warm()

"""Physics the engine must reproduce at initialization, on wide layers, over several seeds.

Finite-width noise is multiplicative, so the checks are on a log scale. For ReLU with He
init, log‖a_L‖² has variance ≈ 5L/N (Hanin & Rolnick, 2018): with L = 29 transitions and
N = 256 that is an sd of ≈ 1.1 in log2 per seed, ≈ 0.55 for the mean of 4 seeds. The
tolerances below are about 3 of those sds, and the two initializers differ by 29.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.schema import RunConfig
from core.run.engine import Trainer, train
from core.measure.probes import COL

SEEDS = range(4)
WIDTH = 256
DEPTH = 30
LOG2_SD_ONE_SEED = math.sqrt(5 * (DEPTH - 1) / WIDTH) / math.log(2)  # ≈ 1.09


def log2_last_over_first(init: str, seed: int) -> float:
    cfg = RunConfig(depth=DEPTH, width=WIDTH, activation="relu", init=init, dataset="gaussian", batch_size=256,
                    steps=0, seed=seed)
    result = train(cfg)
    assert result.steps[:, 0].tolist() == [0]  # steps=0: only the network at initialization
    q = result.stats[0, :, COL["preact_var"]]
    assert np.isfinite(q).all() and (q > 0).all()
    return math.log2(q[-1] / q[0])


def test_relu_depth_30_he_keeps_the_variance_xavier_halves_it_every_layer():
    he = [log2_last_over_first("kaiming_normal", s) for s in SEEDS]
    xavier = [log2_last_over_first("xavier_normal", s) for s in SEEDS]
    tol_one, tol_mean = 3 * LOG2_SD_ONE_SEED, 3 * LOG2_SD_ONE_SEED / math.sqrt(len(SEEDS))
    # He: Var(W) = 2/fan_in exactly makes up for ReLU halving the second moment.
    assert all(abs(r) < tol_one for r in he), he
    assert abs(np.mean(he)) < tol_mean, he
    # Xavier: Var(W) = 2/(fan_in + fan_out) = 1/N here, so each of the 29 layers halves it: 2^-29.
    assert all(abs(r + 29) < tol_one for r in xavier), xavier
    assert abs(np.mean(xavier) + 29) < tol_mean, xavier
    # the first layer itself: Var(h1) = fan_in · Var(W) · E[x²] = 2 (He) and 1 (Xavier) for N(0, 1) inputs


def test_first_layer_preactivation_variance_is_sigma_w_squared():
    for init, expect in [("kaiming_normal", 2.0), ("xavier_normal", 1.0), ("lecun_normal", 1.0)]:
        for seed in range(2):
            cfg = RunConfig(depth=2, width=512, activation="relu", init=init, dataset="gaussian", batch_size=512,
                            steps=0, seed=seed)
            q1 = train(cfg).stats[0, 0, COL["preact_var"]]
            # E over inputs and weights; the weights' own fluctuation is ~sqrt(2/N) ≈ 6%
            assert abs(math.log(q1 / expect)) < 0.2, (init, q1)


def test_selu_with_lecun_normal_self_normalizes():
    for seed in range(3):
        cfg = RunConfig(depth=20, width=WIDTH, activation="selu", init="lecun_normal", dataset="gaussian",
                        batch_size=256, steps=0, seed=seed)
        stats = train(cfg).stats[0]
        mean, var = stats[:, COL["act_mean"]], stats[:, COL["act_var"]]
        # the fixed point (0, 1) of SELU's moment map, up to finite-width noise (≈ 0.06 at N = 256)
        assert np.abs(mean).max() < 0.05, mean
        assert np.abs(var - 1).max() < 0.15, var
        # and with He instead, the same network drifts away from it (the check can tell the difference)
    he = train(cfg.replace(init="kaiming_normal")).stats[0]
    assert np.abs(he[:, COL["act_var"]] - 1).max() > 0.5


@pytest.mark.parametrize("activation,dataset", [("tanh", "digits"), ("relu", "gaussian"), ("selu", "digits"),
                                                ("sigmoid", "gaussian")])
def test_lsuv_unit_variance_in_the_engine(activation, dataset):
    cfg = RunConfig(depth=20, width=WIDTH, activation=activation, init="lsuv", dataset=dataset, batch_size=256,
                    steps=0, seed=1)
    trainer = Trainer(cfg)
    calib = trainer.data.x_train[:512]  # the batch LSUV was calibrated on (engine.Trainer)
    with torch.no_grad():
        a = calib
        for lin in trainer.net.linears:
            z = lin(a)
            v = float(z.double().var(unbiased=False))
            assert abs(v - 1) < 0.1, v
            a = trainer.net.activation.fn(z)
    rec = trainer.advance()
    # a different batch of 256 from the same data: the calibration holds within sampling error
    assert np.abs(rec.stats[:, COL["preact_var"]] - 1).max() < 0.15

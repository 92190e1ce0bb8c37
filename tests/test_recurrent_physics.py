"""Physics at initialization: the gradient through time of a vanilla tanh RNN decays geometrically with
the lag at the rate mean-field theory gives, ρ(W_hh)² E[φ′²] per step; an LSTM with forget bias 1
keeps orders of magnitude more of it at the same lag (same W_hh scale: orthogonal, ρ = 0.9).

Wide layers (256 units), several seeds, log-scale tolerances; the statistics are the engine's own
records at step 0 (`python -m core run --steps 0`).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.measure.records import COL
from core.run.engine import train
from core.schema import RunConfig
from core.theory.meanfield import _dphi2
from core.theory.recurrent import gradient_through_time

T = 40
SEEDS = (0, 1, 2)


def grad_through_time(cfg: RunConfig) -> np.ndarray:
    """log10 Var(∂L/∂h_t), t = 1..T, of the (one) layer at step 0, averaged over SEEDS."""
    logs = []
    for seed in SEEDS:
        rec = train(cfg.replace(seed=seed))
        logs.append(np.log10(rec.stats[0, :, COL["grad_act_var"]]))
    return np.mean(logs, axis=0)


def _rnn(sigma_w: float) -> RunConfig:
    return RunConfig(arch="rnn", depth=1, width=256, seq_len=T, dataset="recall", activation="tanh",
                     recurrent_init="orthogonal", sigma_w=sigma_w, batch_size=256, steps=0)


@pytest.mark.parametrize("sigma_w", [0.7, 0.9])
def test_a_tanh_rnn_loses_its_gradient_through_time_at_the_predicted_rate(sigma_w):
    cfg = _rnn(sigma_w)
    g = grad_through_time(cfg)
    lag = T - np.arange(1, T + 1)  # 0 at the last step
    # geometric: a straight line in log scale, once the state's variance has settled (t ≥ 5)
    settled = slice(5, T - 1)
    slope, intercept = np.polyfit(lag[settled], g[settled], 1)
    residual = g[settled] - (slope * lag[settled] + intercept)
    assert np.abs(residual).max() < 0.3
    # the rate: log10 of ρ² E[φ'(√q ε)²], with q the state's settled pre-activation second moment
    theory = gradient_through_time(cfg)
    q_star = float(theory["q"].iloc[-1])
    predicted = math.log10(sigma_w ** 2 * float(_dphi2("tanh", np.array([q_star]))[0]))
    assert slope == pytest.approx(predicted, abs=0.03), (slope, predicted)
    assert slope < math.log10(sigma_w ** 2) + 1e-3  # never slower than the linear RNN's ρ^(2·lag)
    # and the theory's whole profile follows the measurement within half a decade
    rel = np.log10(np.asarray(theory["grad_rel"]))
    assert np.abs((g - g[-1]) - rel)[1:].max() < 0.5


def test_an_lstm_with_forget_bias_1_keeps_orders_of_magnitude_more_at_the_same_lag():
    rnn = grad_through_time(_rnn(0.9))
    lstm = grad_through_time(RunConfig(arch="lstm", depth=1, width=256, seq_len=T, dataset="recall",
                                       recurrent_init="orthogonal", sigma_w=0.9, forget_bias=1.0, batch_size=256,
                                       steps=0))
    lag = 30
    kept_rnn = rnn[T - 1 - lag] - rnn[-1]   # log10 of Var(∂L/∂h_{T-lag}) / Var(∂L/∂h_T)
    kept_lstm = lstm[T - 1 - lag] - lstm[-1]
    assert kept_rnn < -5.0
    assert kept_lstm - kept_rnn > 2.0, (kept_lstm, kept_rnn)  # > 100× more of the gradient at lag 30

"""The gradient through time of a vanilla RNN at initialization, in mean-field theory.

For wide layers, h_t = φ(z_t) with z_t = W_hh h_{t-1} + W_ih x_t + b, the
pre-activations of a step are nearly Gaussian with second moment

    q_t = σ_hh² E[φ(√q_{t-1} ε)²] + σ_ih² m_t + σ_b²,     q_1 = σ_ih² m_1 + σ_b²   (h_0 = 0),

σ_hh² = H · E[W_hh²] (orthogonal or identity times σ_w: exactly σ_w², the
spectral radius squared), σ_ih² = fan_in · Var(W_ih), m_t = mean(x_t²) of the
data. Backward, ∂L/∂h_{t-1} = W_hhᵀ (φ'(z_t) ⊙ ∂L/∂h_t): under the usual
independence assumption (Chen, Pennington & Schoenholz, 2018) its second
moment is

    g_{t-1} = σ_hh² · E[φ'(√q_t ε)²] · g_t,

a geometric decay with the lag, at the rate ρ(W_hh)² E[φ'²] per step once q_t
has settled (for a linear RNN, ρ^(2·lag) exactly). A stacked layer below also
receives ∂L/∂h from the layer above: g^l_t += σ_ih(l+1)² E[φ'(z^{l+1}_t)²] g^{l+1}_t.
LSTM and GRU gates multiply the gradient by data-dependent factors with no such
closed form: their registry entries carry no theory, only the reason.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.registry import INITIALIZERS, RECURRENT_INITS
from core.theory.meanfield import _dphi2
from core.theory.quadrature import gaussian_moments

__all__ = ["gradient_through_time", "decay_per_step", "recurrent_sigma2", "input_second_moments"]


def recurrent_sigma2(cfg) -> float:
    """σ_hh² = H · E[W_hh²] of one gate block: what ‖W_hhᵀ v‖² / ‖v‖² is on average (σ_w² for orthogonal)."""
    eff = RECURRENT_INITS[cfg.recurrent_init].effective_sigma2(cfg.width, cfg.width, cfg.sigma_w)
    return float("nan") if eff is None else float(eff[0])


def _input_sigma2(cfg, fan_in: int, fan_out: int) -> tuple[float, float]:
    """(σ_ih², σ_b²) of an input projection, drawn at the scheme's published scale (`core.models.recurrent`)."""
    eff = INITIALIZERS[cfg.init].effective_sigma2(fan_in, fan_out, 1.0, cfg.sigma_b)
    if eff is None:
        return float("nan"), float("nan")
    return float(eff[0]), float(eff[1]) if cfg.bias else 0.0


def input_second_moments(cfg) -> np.ndarray:
    """mean(x_t²) of the training inputs at every time step (over examples and features)."""
    from core.data import load_data

    x = load_data(cfg).x_train.double()
    return (x * x).mean(dim=(0, 2)).numpy()


def decay_per_step(activation: str, sigma_hh2: float, q: float) -> float:
    """The factor by which Var(∂L/∂h_t) shrinks per step back in time at pre-activation second moment q:
    σ_hh² E[φ'(√q ε)²] (ρ² E[φ'²] for an orthogonal W_hh of spectral radius ρ)."""
    return float(sigma_hh2 * _dphi2(activation, np.asarray([q], dtype=np.float64))[0])


def gradient_through_time(cfg, input_moments: np.ndarray | None = None) -> pd.DataFrame:
    """The prediction for `cfg` (a vanilla RNN) at initialization, one row per (layer, time step):

    `layer`, `time` (1-based), `q` (the pre-activation's second moment: compare with `preact_var`),
    `grad_rel` (Var(∂L/∂h_t) relative to the top layer's last step: compare with `grad_act_var`).
    attrs: `applies`, `note` (sentences for people), `decay` (the settled per-step factor of the top layer)."""
    T, L, H = cfg.seq_len, cfg.depth, cfg.width
    m = np.asarray(input_second_moments(cfg) if input_moments is None else input_moments, dtype=np.float64)
    s_hh = recurrent_sigma2(cfg)
    q = np.empty((L, T))
    D = np.empty((L, T))
    inputs = m
    for l in range(L):
        s_ih, s_b = _input_sigma2(cfg, cfg.features if l == 0 else H, H)
        prev = 0.0  # E[φ(z_0)²]: h_0 = 0
        for t in range(T):
            q[l, t] = s_hh * prev + s_ih * inputs[t] + s_b
            prev = float(gaussian_moments(cfg.activation, q[l, t])["phi2"])
        D[l] = _dphi2(cfg.activation, q[l])
        inputs = np.array([gaussian_moments(cfg.activation, v)["phi2"] for v in q[l]])  # mean(h_t²) of layer l
    g = np.zeros((L, T))
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(L - 1, -1, -1):
            s_up = _input_sigma2(cfg, H, H)[0] if l < L - 1 else 0.0
            for t in range(T - 1, -1, -1):
                if l == L - 1 and t == T - 1:
                    g[l, t] = 1.0  # the output layer reads h_T of the top layer: the reference
                    continue
                through_time = s_hh * D[l, t + 1] * g[l, t + 1] if t + 1 < T else 0.0
                from_above = s_up * D[l + 1, t] * g[l + 1, t] if l + 1 < L else 0.0
                g[l, t] = through_time + from_above
    notes = []
    if H < 64:
        notes.append(f"{H} units per layer: the theory assumes wide layers, so expect deviations.")
    df = pd.DataFrame({"layer": np.repeat(np.arange(1, L + 1), T), "time": np.tile(np.arange(1, T + 1), L),
                       "q": q.ravel(), "grad_rel": g.ravel()})
    df.attrs.update(applies=True, note=" ".join(notes), decay=float(s_hh * D[-1, -1]))
    return df

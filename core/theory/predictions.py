"""The mean-field theory's per-layer predictions for a configured network.

Built on `core.theory.meanfield` (the variance map, its slope, χ₁): the q^l path from
each layer's effective σ_w² (`effective_sigma2`, from the initializer's
published std on its registry entry), the relative gradient second moments back down, the table
`python -m core theory` writes, and the mean squared singular value of the
input-output Jacobian. The names are importable from `core.theory.meanfield` too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from core.theory.quadrature import _as_array, _check_activation
from core.registry import INITIALIZERS
from core.theory.meanfield import _chi1_flat, _dphi2, q_path, summary

if TYPE_CHECKING:  # pragma: no cover
    from core.schema import RunConfig


# -- per-layer predictions ---------------------------------------------------------------------------
def gradient_profile(activation: str, sigma_w2, sigma_b2, q1: float, depth: int) -> np.ndarray:
    """Predicted E[(∂L/∂h^l)²] for l = 1..depth, relative to the last layer (last = 1).

    Schoenholz et al. (2017) eq. 11 under the gradient-independence assumption,
    along the actual q^l path from q^1 (not only at q*):
        E[δ^l²] = E[δ^{l+1}²] · σ_w² · E[φ'(√q^l z)²].
    This holds for layers of equal width; with widths N_l the factor is
    σ_w²(l+1) · N_{l+1}/N_l (see `predicted_profile`). `sigma_w2`/`sigma_b2`
    may be per-layer sequences of length depth.
    """
    depth = int(depth)
    q = q_path(activation, sigma_w2, sigma_b2, q1, depth)
    sw2 = np.broadcast_to(_as_array(sigma_w2), (depth,))
    return _grad_rel(_dphi2(activation, q), sw2)


def _grad_rel(D: np.ndarray, back_factor: np.ndarray) -> np.ndarray:
    """grad[L-1] = 1, grad[l] = grad[l+1] · back_factor[l+1] · D[l] (0-based), D[l] = E[φ'(√q^l z)²]."""
    depth = D.size
    g = np.ones(depth)
    with np.errstate(over="ignore", invalid="ignore"):
        for l in range(depth - 2, -1, -1):
            f = back_factor[l + 1] * D[l]
            g[l] = 0.0 if f == 0 else g[l + 1] * f
    return g


def effective_sigma2(init_name: str, fan_in: int, fan_out: int, sigma_w: float = 1.0,
                     sigma_b: float = 0.0) -> tuple[float, float] | None:
    """(σ_w²_eff, σ_b²_eff) = (fan_in · Var(W), Var(b)) of one layer under `init_name`.

    The mean-field theory sees an initializer only through these two numbers
    (uniform draws and orthogonal matrices included: orthogonal gives
    fan_in/max(fan_in, fan_out)): `Initializer.effective_sigma2`. None for
    data-driven LSUV; zeros gives (0, 0).
    """
    if init_name not in INITIALIZERS:
        raise ValueError(f"Unknown init {init_name!r}.")
    return INITIALIZERS[init_name].effective_sigma2(int(fan_in), int(fan_out), float(sigma_w), float(sigma_b))


def _layer_sigma2(cfg: "RunConfig") -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    sizes = [cfg.features, *cfg.hidden_widths]
    sw2, sb2 = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        eff = effective_sigma2(cfg.init, fan_in, fan_out, cfg.sigma_w, cfg.sigma_b)
        if eff is None:
            return None
        sw2.append(eff[0])
        sb2.append(eff[1] if cfg.bias else 0.0)
    return np.array(sw2), np.array(sb2), sizes


def _forward_path(activation, sw2, sb2, input_second_moment):
    """q^1..q^L for per-layer (σ_w², σ_b²), q^1 = σ_w²(1) · input_second_moment + σ_b²(1)."""
    return q_path(activation, sw2, sb2, sw2[0] * input_second_moment + sb2[0], sw2.size)


def predicted_profile(cfg: "RunConfig", input_second_moment: float = 1.0) -> pd.DataFrame:
    """The theory's per-layer prediction for `cfg` at initialization.

    Returns a DataFrame with one row per hidden layer and columns
      `layer`    1 = nearest the input,
      `q`        predicted second moment of the pre-activation h (what
                 `preact_var` measures, over all entries),
      `grad_rel` predicted second moment of ∂L/∂h relative to the last hidden
                 layer (compare with `grad_preact_var / grad_preact_var[last]`),
    and two entries in `DataFrame.attrs`:
      `applies` (bool) - False when the mean-field theory does not cover the
                 setting; the columns then hold what can still be said (NaN
                 otherwise),
      `note`    (str)  - "" or sentences for people: why it does not apply, or
                 what to keep in mind (narrow layers, unequal widths...).
    `input_second_moment` is mean(x²) of the inputs (1 for the `gaussian`
    dataset). Each layer uses its own effective σ_w² = fan_in · Var(W) (the
    first layer's fan_in is the input size): q^1 = σ_w²(1) · input_second_moment + σ_b²,
    q^{l+1} = σ_w²(l+1) E[φ(√q^l z)²] + σ_b²; backward, E[δ^l²] =
    E[δ^{l+1}²] · σ_w²(l+1) · (N_{l+1}/N_l) · E[φ'(√q^l z)²]
    (N_{l+1}·Var(W^{l+1}) is the fan-out sum of the backward pass).
    BatchNorm: h is normalized to variance 1 per unit, so q = 1 exactly, but
    the backward pass through BatchNorm is not covered (grad_rel NaN). LSUV:
    data-driven scales, not covered (all NaN).
    """
    _check_activation(cfg.activation)
    depth = len(cfg.hidden_widths)
    layer = np.arange(1, depth + 1)
    notes: list[str] = []
    widths = list(cfg.hidden_widths)
    ini = INITIALIZERS[cfg.init]
    if ini.needs_data:
        df = pd.DataFrame({"layer": layer, "q": np.nan, "grad_rel": np.nan})
        df.attrs.update(applies=False, note=(
            "LSUV sets each layer's scale from a data batch, so the mean-field prediction, which needs the "
            "weight variance in advance, does not apply (LSUV itself aims at pre-activation variance 1 ± 0.1)."))
        return df
    if cfg.batchnorm:
        df = pd.DataFrame({"layer": layer, "q": 1.0, "grad_rel": np.nan})
        df.attrs.update(applies=False, note=(
            "BatchNorm normalizes every unit's pre-activation to mean 0, variance 1 over the batch, so the "
            "forward variance is 1 in every layer whatever the init; the mean-field theory of the backward pass "
            "does not cover BatchNorm (its gradients can grow with depth, Yang et al. 2019)."))
        return df
    sw2, sb2, sizes = _layer_sigma2(cfg)
    q = _forward_path(cfg.activation, sw2, sb2, float(input_second_moment))
    n = np.asarray(sizes, dtype=float)
    back = np.concatenate([[np.nan], sw2[1:] * n[2:] / n[1:-1]])  # σ_w²(l+1) · N_{l+1}/N_l; entry 0 unused
    grad = _grad_rel(_dphi2(cfg.activation, q), back)
    if ini.weight_std(sizes[0], sizes[1]) == 0:
        notes.append("All weights are zero: every unit computes the same thing, h = 0 in every layer, and no "
                     "gradient reaches the layers below the last one.")
    if len(set(widths)) > 1:
        notes.append("Layer widths differ: each layer uses its own fan-in forward and its fan-out backward.")
    if min(widths) < 64:
        notes.append(f"The narrowest layer has {min(widths)} units: mean-field theory assumes wide layers, "
                     "so expect deviations (roughly 1/√width per layer, compounding with depth).")
    if not np.all(np.isfinite(q)):
        notes.append("The predicted variance overflows: it grows without bound with depth.")
    df = pd.DataFrame({"layer": layer, "q": q, "grad_rel": grad})
    df.attrs.update(applies=True, note=" ".join(notes))
    return df


def profile_table(activation: str, sigma_w: float, sigma_b: float, depth: int, q0: float = 1.0) -> pd.DataFrame:
    """Per-layer predictions for a width-equal network under W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²).

    Columns `layer` (1..depth), `q` (pre-activation second moment, q^1 =
    σ_w² q0 + σ_b²), `grad_rel` (E[(∂L/∂h)²] relative to the last layer) and
    `chi1` (σ_w² E[φ'(√q^l z)²], the layer's backward factor). What
    `python -m core theory --out` writes. Takes σ_w and σ_b, not squared.
    """
    sw2, sb2 = float(sigma_w) ** 2, float(sigma_b) ** 2
    q1 = sw2 * float(q0) + sb2
    q = q_path(activation, sw2, sb2, q1, depth)
    D = _dphi2(activation, q)
    sw2s = np.full(q.size, sw2)
    grad = _grad_rel(D, sw2s)
    chi = _chi1_flat(activation, sw2s, q, D)
    return pd.DataFrame({"layer": np.arange(1, q.size + 1), "q": q, "grad_rel": grad, "chi1": chi})


# -- input-output Jacobian (dynamical isometry) ------------------------------------------------------
def jacobian_theory_mean(cfg: "RunConfig", input_second_moment: float = 1.0) -> float | None:
    """The theory's mean squared singular value of J = ∂a^L/∂x at initialization.

    (1/min(N_L, n_0)) tr(J Jᵀ) ≈ (N_L / min(N_L, n_0)) Π_l σ_w²(l) E[φ'(√q^l z)²]
    along the actual q^l path (Pennington et al., 2017: χ₁^L at q*; = Π χ₁ for
    square layers). None where the theory does not apply (LSUV, BatchNorm).
    """
    if INITIALIZERS[cfg.init].needs_data or cfg.batchnorm:
        return None
    sw2, sb2, sizes = _layer_sigma2(cfg)
    q = _forward_path(cfg.activation, sw2, sb2, float(input_second_moment))
    with np.errstate(over="ignore", invalid="ignore"):
        chi = _chi1_flat(cfg.activation, sw2, q)
        return float(np.prod(chi) * sizes[-1] / min(sizes[-1], sizes[0]))


# -- one setting, in numbers (the Theory page's headline) -------------------------------------------
@dataclass(frozen=True)
class SettingSummary:
    """What the theory says about a config's hidden layers, taken as square layers of its last width."""

    sigma_w2: float   # effective σ_w² = fan_in · Var(W)
    sigma_b2: float   # effective σ_b² = Var(b) (0 without biases)
    summary: dict     # `core.theory.meanfield.summary` at (σ_w, σ_b) = √ of the above
    source: str       # where σ_w², σ_b² come from, in words


def setting_summary(cfg: "RunConfig") -> SettingSummary:
    """Effective (σ_w², σ_b²) of a square hidden layer under cfg's initializer, and the theory's summary.

    A data-driven initializer (LSUV) sets its scale from a batch, which the theory
    cannot know: the scheme it starts from (`Initializer.starts_as`, at σ_w = 1) is shown instead."""
    width = cfg.hidden_widths[-1]
    ini = INITIALIZERS[cfg.init]
    start = INITIALIZERS[ini.starts_as] if ini.needs_data and ini.starts_as else None
    if start is not None:
        sw2, sb2 = start.effective_sigma2(width, width, 1.0, cfg.sigma_b)
    else:
        sw2, sb2 = effective_sigma2(cfg.init, width, width, cfg.sigma_w, cfg.sigma_b)
    if not cfg.bias:
        sb2 = 0.0
    if start is not None:
        source = (f"{ini.label} starts from {start.label.lower()} weights (σ_w² = {sw2:.3g}); "
                  "the theory shows that starting point.")
    elif ini.uses_sigma_b:
        source = f"σ_w² = {cfg.sigma_w:g}² and σ_b² = {cfg.sigma_b:g}² of the {ini.label} parameterization."
    else:
        source = (f"{ini.label} on a {width} × {width} layer has Var(W) = {sw2 / width:.3g} = {sw2:.3g}/fan_in, "
                  f"so σ_w² = {sw2:.3g}" + (f"; its biases have σ_b² = {sb2:.3g}." if sb2 else "; biases start at 0."))
    summ = summary(cfg.activation, math.sqrt(sw2), math.sqrt(sb2), depth=len(cfg.hidden_widths), q0=1.0)
    return SettingSummary(sw2, sb2, summ, source)


def gradient_window(activation: str, depths: Sequence[int], sigma_w2: Sequence[float]) -> dict[int, np.ndarray]:
    """Predicted E[(∂L/∂h¹)²] / E[(∂L/∂h^L)²] at each σ_w² of `sigma_w2` (σ_b = 0, input second moment 1),
    for each depth L: how narrow the window of σ_w² that keeps the first layer's gradient becomes with depth."""
    return {int(L): np.array([profile_table(activation, math.sqrt(float(s)), 0.0, int(L))["grad_rel"].iloc[0]
                              for s in sigma_w2]) for L in depths}

"""Mean-field theory of signal propagation in wide random networks.

Setting: a fully connected network h^l = W^l φ(h^{l-1}) + b^l with
W^l_ij ~ N(0, σ_w²/fan_in) and b^l_i ~ N(0, σ_b²), in the limit of wide layers.
For one input, the pre-activations h^l_i of a layer are then i.i.d. Gaussians
N(0, q^l) across units, and

* the **variance map** (Poole et al., 2016, eq. 3)
      q^{l+1} = f(q^l) = σ_w² E_z[φ(√q^l z)²] + σ_b²,      z ~ N(0, 1),
  with q^1 = σ_w² · mean(x²) + σ_b² for the input x;
* its **fixed point** q* = f(q*), reached from q^1;
* **χ₁** = σ_w² E_z[φ'(√q* z)²] (Poole et al. 2016, eq. 7; Schoenholz et al.
  2017, eq. 5): the slope of the correlation map at c = 1, the per-layer factor
  of the back-propagated gradient second moment (Schoenholz et al., 2017,
  eq. 11: E[δ^l²] = E[δ^{l+1}²] · σ_w² E[φ'(h^l)²] for equal widths) and the
  mean squared singular value of one layer's Jacobian D_l W_l (Pennington et
  al., 2017). χ₁ < 1: ordered phase (vanishing gradients), χ₁ > 1: chaotic
  phase (exploding gradients), χ₁ = 1: the edge of chaos (critical);
* the **correlation map** of two inputs with correlation c (Poole et al. 2016,
  eq. 5), c' = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²) / q*, u₁ = √q* z₁,
  u₂ = √q* (c z₁ + √(1-c²) z₂), and its stable fixed point c*;
* **depth scales** (Schoenholz et al., 2017, eqs. 7-9): ξ_q = -1/log f'(q*)
  with f'(q*) = σ_w² E[φ'(u)² + φ(u)φ''(u)], and ξ_c = -1/log χ_c, where χ_c
  is the slope of the correlation map at its stable fixed point c*: χ_c = χ₁
  in the ordered phase (c* = 1); in the chaotic phase c* < 1. ξ_c is infinite
  at criticality.

Numerics: the Gaussian expectations (quadrature rules, closed forms for the
ReLU family, the Mehler expansion of the correlation kernel) live in
`core.theory.quadrature`; `quadrature_rule` and `gaussian_moments` are re-exported
here. The measured Jacobian spectrum (`jacobian_singular_values`) lives in
`core.theory.jacobian`, and the per-layer predictions for a configured network
(`predicted_profile`, `profile_table`, `effective_sigma2`, ...) in
`core.theory.predictions`; the package `core.theory` gathers all three.

Conventions
-----------
* Everything is vectorized: array arguments broadcast, and a scalar in gives a
  Python float out.
* `fixed_point` returns the fixed point that iterating the map from `q_init`
  (default 1.0) reaches: 0.0 for the trivial fixed point, `math.inf` when q
  grows without bound (e.g. linear with σ_w² > 1, ReLU with σ_w² > 2, or ReLU
  with σ_w² = 2 and σ_b² > 0).
* When q* is infinite, χ₁ is its limit σ_w² E[φ'²] as q → ∞ (σ_w²/2 for
  ReLU-like activations) and the depth scales are NaN (no fixed point to
  linearize around); the JSON `summary` writes them as null with `phase` =
  "unbounded".

References: B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein, S. Ganguli,
"Exponential expressivity in deep neural networks through transient chaos",
NeurIPS 2016. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep
Information Propagation", ICLR 2017. J. Pennington, S. Schoenholz, S. Ganguli,
"Resurrecting the sigmoid in deep learning through dynamical isometry", NeurIPS
2017.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.optimize import brentq

from core.registry import ACTIVATIONS
from core.theory.quadrature import (_as_array, _check_activation, _homog_kernel, _kernel, _mehler, _moments, _out,
                                    gaussian_moments, homogeneous_slope, quadrature_rule)

__all__ = [
    "quadrature_rule", "gaussian_moments", "variance_map", "variance_map_slope", "q_path", "fixed_point", "chi1",
    "critical_sigma_w2", "correlation_map", "correlation_fixed_point", "depth_scales", "phase",
    "summary", "phase_diagram", "critical_line",
]

# -- numerical settings ------------------------------------------------------------------------------
CRITICAL_TOL = 1e-9            # |χ₁ - 1| below this counts as critical
_Q_GRID = np.concatenate([[0.0], np.logspace(-10, 10, 401)])  # bracketing grid of the fixed-point solver


# -- the variance map and its fixed point ------------------------------------------------------------
def variance_map(activation: str, sigma_w2, sigma_b2, q):
    """q_next = σ_w² E[φ(√q z)²] + σ_b² (Poole et al., 2016, eq. 3).

    The second moment of the next layer's pre-activations given this layer's
    q. Broadcasts over arrays of q, σ_w², σ_b².
    """
    _check_activation(activation)
    sw2, sb2, qa = np.broadcast_arrays(_as_array(sigma_w2), _as_array(sigma_b2), _as_array(q))
    V = _moments(activation, qa)["V"].reshape(qa.shape)
    with np.errstate(invalid="ignore"):
        res = np.where(sw2 == 0, sb2, sw2 * V + sb2)
    return _out(res, qa.shape)


def variance_map_slope(activation: str, sigma_w2, sigma_b2, q):
    """f'(q) = σ_w² dE[φ(√q z)²]/dq = σ_w² E[φ'(u)² + φ(u)φ''(u)], u = √q z.

    At q* it sets the depth scale ξ_q = -1/log f'(q*) (Schoenholz et al., 2017, eq. 7).
    """
    _check_activation(activation)
    sw2, _, qa = np.broadcast_arrays(_as_array(sigma_w2), _as_array(sigma_b2), _as_array(q))
    dV = _moments(activation, qa, V=False, dV=True)["dV"].reshape(qa.shape)
    return _out(sw2 * dV, qa.shape)


def q_path(activation: str, sigma_w2: float, sigma_b2: float, q1: float, depth: int) -> np.ndarray:
    """The pre-activation second moments q^1..q^depth: q^{l+1} = f(q^l), q^1 given.

    For an input x, q^1 = σ_w² · mean(x²) + σ_b². `sigma_w2`/`sigma_b2` may also
    be sequences of length depth (layer l's values; entry 0 is unused here
    because q^1 is given).
    """
    _check_activation(activation)
    depth = int(depth)
    if depth < 1:
        raise ValueError("depth must be at least 1.")
    sw2 = np.broadcast_to(_as_array(sigma_w2), (depth,))
    sb2 = np.broadcast_to(_as_array(sigma_b2), (depth,))
    q = np.empty(depth)
    q[0] = float(q1)
    for l in range(1, depth):
        q[l] = variance_map(activation, sw2[l], sb2[l], q[l - 1])
    return q


def _fixed_point_flat(activation: str, sw2: np.ndarray, sb2: np.ndarray, q0: np.ndarray) -> np.ndarray:
    return _solve_fixed_point(activation, sw2, sb2, q0)[0]


def _solve_fixed_point(activation: str, sw2: np.ndarray, sb2: np.ndarray, q0: np.ndarray):
    """Vectorized q* and the map's slope f'(q*) (flat arrays).

    Closed form for the homogeneous activations. Otherwise: evaluate
    g(q) = f(q) - q on a fixed log grid (one quadrature table per activation,
    then only multiply-adds), take the grid cell holding the root the
    iteration from q0 reaches (the largest root below q0 when f(q0) < q0, the
    smallest above it when f(q0) > q0, none: ∞), start from the secant inside
    that cell and finish with Newton steps kept inside the bracket
    (bisection otherwise). The slope comes from the last Newton step.
    """
    n = sw2.size
    out = np.full(n, np.nan)
    slope = np.full(n, np.nan)
    s = homogeneous_slope(activation)
    if s is not None:
        a = sw2 * (1 + s * s) / 2  # slope of the (linear) map
        crit = np.abs(a - 1) <= CRITICAL_TOL
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(a < 1, sb2 / (1 - a), np.inf)
        out = np.where(crit & (sb2 == 0), q0, out)
        out = np.where((a > 1) & ~crit & (sb2 == 0) & (q0 == 0), 0.0, out)
        return out, np.where(np.isfinite(out), a, np.nan)

    Vg = _grid_table(activation)
    g0 = sw2 * _moments(activation, q0)["V"] + sb2 - q0
    a = np.full(n, np.nan)
    b = np.full(n, np.nan)
    ga = np.full(n, np.nan)
    gb = np.full(n, np.nan)
    G_len = _Q_GRID.size
    rows = max(1, 2_000_000 // G_len)
    for start in range(0, n, rows):
        sl = slice(start, min(n, start + rows))
        G = sw2[sl, None] * Vg[None, :] + sb2[sl, None] - _Q_GRID[None, :]
        qi = q0[sl, None]
        g0s = g0[sl]
        r = np.arange(G.shape[0])
        # q decreasing from q0 (g0 < 0): the largest grid point below q0 with g ≥ 0 (q = 0 always qualifies).
        cand = (_Q_GRID[None, :] < qi) & (G >= 0)
        i = G_len - 1 - np.argmax(cand[:, ::-1], axis=1)
        found = cand.any(axis=1)
        i_next = np.minimum(i + 1, G_len - 1)
        nxt_below = _Q_GRID[i_next] < q0[sl]
        dn = (g0s < 0) & found
        a[sl] = np.where(dn, _Q_GRID[i], a[sl])
        ga[sl] = np.where(dn, G[r, i], ga[sl])
        b[sl] = np.where(dn, np.where(nxt_below, _Q_GRID[i_next], q0[sl]), b[sl])
        gb[sl] = np.where(dn, np.where(nxt_below, G[r, i_next], g0s), gb[sl])
        # q increasing (g0 > 0): the smallest grid point above q0 with g ≤ 0; none: q grows without bound.
        cand = (_Q_GRID[None, :] > qi) & (G <= 0)
        j = np.argmax(cand, axis=1)
        found = cand.any(axis=1)
        j_prev = np.maximum(j - 1, 0)
        prev_above = _Q_GRID[j_prev] > q0[sl]
        up = (g0s > 0) & found
        b[sl] = np.where(up, _Q_GRID[j], b[sl])
        gb[sl] = np.where(up, G[r, j], gb[sl])
        a[sl] = np.where(up, np.where(prev_above, _Q_GRID[j_prev], q0[sl]), a[sl])
        ga[sl] = np.where(up, np.where(prev_above, G[r, j_prev], g0s), ga[sl])
        out[sl] = np.where((g0s > 0) & ~found, np.inf, out[sl])
    out = np.where(g0 == 0, q0, out)
    out = np.where(np.isnan(out) & (ga == 0), a, out)
    out = np.where(np.isnan(out) & (gb == 0), b, out)

    todo = np.flatnonzero(np.isnan(out) & np.isfinite(a) & np.isfinite(b))
    if todo.size:
        A, B, GA, GB = a[todo], b[todo], ga[todo], gb[todo]
        S, Sb = sw2[todo], sb2[todo]
        x = A - GA * (B - A) / (GB - GA)  # secant start inside the bracket
        sl_todo = np.full(todo.size, np.nan)
        active = np.arange(todo.size)
        for _ in range(100):
            m = _moments(activation, x[active], V=True, dV=True)
            g = S[active] * m["V"] + Sb[active] - x[active]
            sl_todo[active] = S[active] * m["dV"]
            dg = sl_todo[active] - 1.0
            A[active] = np.where(g > 0, x[active], A[active])
            B[active] = np.where(g < 0, x[active], B[active])
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x[active] - g / dg
            inside = (newton > A[active]) & (newton < B[active]) & np.isfinite(newton)
            new = np.where(inside, newton, 0.5 * (A[active] + B[active]))
            new = np.where(g == 0, x[active], new)
            step = np.abs(new - x[active])
            x[active] = new
            # Newton converges quadratically: after a step below 1e-8 the error is ~1e-16.
            done = (inside & (step <= 1e-8 * np.abs(new))) | (g == 0) | (B[active] - A[active] <= 4e-16 * B[active])
            active = active[~done]
            if active.size == 0:
                break
        out[todo] = x
        slope[todo] = sl_todo
    rest = np.flatnonzero(np.isfinite(out) & np.isnan(slope))
    if rest.size:
        slope[rest] = sw2[rest] * _moments(activation, out[rest], V=False, dV=True)["dV"]
    return out, np.where(sw2 == 0, 0.0, slope)


def _grid_table(activation: str) -> np.ndarray:
    """E[φ(√q z)²] on the solver's q grid (read-only, cached per activation entry)."""
    return _grid_table_of(ACTIVATIONS[activation])


@lru_cache(maxsize=None)
def _grid_table_of(act) -> np.ndarray:
    # keyed by the entry, not the name: an entry registered again under its name gets its own table
    V = _moments(act.name, _Q_GRID)["V"]
    V.flags.writeable = False
    return V


def _prep(activation, sigma_w2, sigma_b2, q_init=1.0):
    _check_activation(activation)
    sw2, sb2, q0 = np.broadcast_arrays(_as_array(sigma_w2), _as_array(sigma_b2), _as_array(q_init))
    if np.any(sw2 < 0) or np.any(sb2 < 0):
        raise ValueError("σ_w² and σ_b² must be non-negative.")
    if np.any(q0 < 0) or not np.all(np.isfinite(q0)):
        raise ValueError("q_init must be finite and non-negative.")
    return sw2.shape, sw2.reshape(-1).copy(), sb2.reshape(-1).copy(), q0.reshape(-1).copy()


def fixed_point(activation: str, sigma_w2, sigma_b2, q_init=1.0):
    """q* = σ_w² E[φ(√q* z)²] + σ_b², the fixed point of the variance map.

    The one that iterating the map from `q_init` reaches (Poole et al., 2016;
    Schoenholz et al., 2017, eq. 4): 0.0 for the trivial fixed point (σ_b = 0,
    φ(0) = 0, ordered), `math.inf` when the map diverges (q grows without
    bound). At exactly a neutral linear map (ReLU at σ_w² = 2 with σ_b = 0,
    linear at σ_w² = 1) every q is fixed and q* = q_init. Vectorized: arrays
    broadcast (a 200 × 200 grid solves in a fraction of a second).
    """
    shape, sw2, sb2, q0 = _prep(activation, sigma_w2, sigma_b2, q_init)
    return _out(_fixed_point_flat(activation, sw2, sb2, q0), shape)


def _dphi2(activation, q):
    """D(q) = E[φ'(√q z)²], flat."""
    return _moments(activation, q, V=False, D=True)["D"]


def _chi1_flat(activation, sw2, q, D=None):
    """σ_w² D(q) (0 where σ_w² = 0); pass D if already computed."""
    D = _dphi2(activation, q) if D is None else D
    return np.where(sw2 == 0, 0.0, sw2 * D)


def chi1(activation: str, sigma_w2, sigma_b2, q=None, q_init=1.0):
    """χ₁ = σ_w² E[φ'(√q z)²], at q = q* (reached from q_init) when q is None.

    Poole et al. (2016) eq. 7, Schoenholz et al. (2017) eq. 5. The slope of the
    correlation map at c = 1, the per-layer factor of E[(∂L/∂h)²] going
    backward, and the mean squared singular value of a layer's Jacobian
    (Pennington et al., 2017). Exactly σ_w²/2 for ReLU. Where q* is infinite,
    the q → ∞ limit.
    """
    if q is None:
        shape, sw2, sb2, q0 = _prep(activation, sigma_w2, sigma_b2, q_init)
        qs = _fixed_point_flat(activation, sw2, sb2, q0)
    else:
        _check_activation(activation)
        sw2, _, qa = np.broadcast_arrays(_as_array(sigma_w2), _as_array(sigma_b2), _as_array(q))
        shape, sw2, qs = qa.shape, sw2.reshape(-1), qa.reshape(-1)
    return _out(_chi1_flat(activation, sw2, qs), shape)


def critical_sigma_w2(activation: str, sigma_b2: float, q_init: float = 1.0) -> float | None:
    """The σ_w² where χ₁(q*) = 1 at this σ_b²: the edge of chaos.

    Schoenholz et al. (2017), Fig. 1: for tanh, σ_b² = 0.05 gives σ_w² ≈ 1.76.
    Closed form for the homogeneous activations: linear 1, ReLU 2, leaky ReLU
    2/(1+s²) - only at σ_b² = 0 (with σ_b² > 0 the variance grows without bound
    at that σ_w², and below it χ₁ < 1: no critical point, None). Otherwise a
    scan of σ_w² ∈ [1e-2, 1e4] for the first upward crossing of 1, refined
    with `scipy.optimize.brentq`. None where there is none, or where χ₁ jumps
    over 1 (a bistable map whose q* switches between 0 and ∞) instead of
    crossing it.
    """
    _check_activation(activation)
    sb2 = float(sigma_b2)
    s = homogeneous_slope(activation)
    if s is not None:
        return 2.0 / (1 + s * s) if sb2 == 0 else None
    grid = np.logspace(-2, 4, 61)
    h = chi1(activation, grid, sb2, q_init=q_init) - 1.0
    up = np.flatnonzero((h[:-1] < 0) & (h[1:] >= 0))
    if up.size == 0:
        return None
    i = int(up[0])
    if h[i + 1] == 0:
        return float(grid[i + 1])

    def f(sw2):
        return chi1(activation, sw2, sb2, q_init=q_init) - 1.0

    root = brentq(f, grid[i], grid[i + 1], xtol=1e-13, rtol=1e-13, maxiter=200)
    q_root = fixed_point(activation, root, sb2, q_init)
    if abs(chi1(activation, root, sb2, q=q_root) - 1.0) > 1e-6 or not math.isfinite(q_root) or q_root > 1e8:
        return None  # χ₁ jumps over 1, or reaches it only where q* = ∞ (softplus at σ_w² = 2, like ReLU)
    return float(root)





# -- correlations ------------------------------------------------------------------------------------
def correlation_map(activation: str, sigma_w2, sigma_b2, c, q=None, q_init=1.0):
    """c' = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²) / q', the correlation of two inputs one layer on.

    Poole et al. (2016) eq. 5. u₁ = √q z₁, u₂ = √q (c z₁ + √(1-c²) z₂), both
    inputs at second moment q (default q*), q' = f(q). ReLU-family: the
    arc-cosine kernel; others: the Mehler expansion (accurate to ~1e-10 for
    |c| ≤ 0.9, and exact at c = 1).
    """
    _check_activation(activation)
    sw2, sb2, ca, q0 = np.broadcast_arrays(_as_array(sigma_w2), _as_array(sigma_b2), _as_array(c), _as_array(q_init))
    shape = ca.shape
    sw2, sb2, ca, q0 = (a.reshape(-1) for a in (sw2, sb2, ca, q0))
    if q is None:
        qs = _fixed_point_flat(activation, sw2, sb2, q0)
    else:
        qs = np.broadcast_to(_as_array(q), shape).reshape(-1).astype(float)
    qn = sw2 * _moments(activation, qs)["V"] + sb2
    if homogeneous_slope(activation) is not None:
        P = qs * _homog_kernel(homogeneous_slope(activation), ca)
    else:
        P = np.full(qs.size, np.nan)
        ok = np.isfinite(qs)
        if ok.any():
            b, tail = _mehler(activation, qs[ok])
            P[ok] = _kernel(b, tail, ca[ok])[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        res = (sw2 * P + sb2) / qn
    return _out(res, shape)


def _c_star_flat(activation, sw2, sb2, qs, chi):
    """Stable fixed point c* of the correlation map and the slope χ_c there (arrays).

    Ordered/critical (χ₁ ≤ 1): c* = 1, χ_c = χ₁. Chaotic with finite q*: Newton
    from c = 0 on c' - c, which is convex on [0, 1] (the Mehler coefficients
    are non-negative), so it converges monotonically to the one root below 1.
    """
    c_star = np.where(np.isfinite(qs), 1.0, np.nan)
    chi_c = np.where(np.isfinite(qs), chi, np.nan)
    todo = np.flatnonzero((chi > 1 + CRITICAL_TOL) & np.isfinite(qs) & (qs > 0))
    if todo.size == 0:
        return c_star, chi_c
    if homogeneous_slope(activation) is not None:  # χ₁ > 1 implies q* = ∞ (or 0) for these: nothing to solve
        return c_star, chi_c
    S, Sb, Q = sw2[todo], sb2[todo], qs[todo]
    b, tail = _mehler(activation, Q)
    c = np.zeros(todo.size)
    active = np.arange(todo.size)
    for _ in range(200):
        P, dP = _kernel(b[active], tail[active], c[active])
        d = (S[active] * P + Sb[active]) / Q[active] - c[active]
        dd = S[active] * dP / Q[active] - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.clip(c[active] - d / dd, 0.0, 1.0)
        step = np.abs(new - c[active])
        c[active] = new
        # |d| at rounding level: near criticality χ_c → 1 and c* is only defined to ~1e-13.
        active = active[~((step <= 1e-12) | (np.abs(d) <= 1e-15) | ~np.isfinite(step))]
        if active.size == 0:
            break
    _, dP = _kernel(b, tail, c)
    c_star[todo] = c
    chi_c[todo] = S * dP / Q
    return c_star, chi_c


def correlation_fixed_point(activation: str, sigma_w2, sigma_b2, q_init=1.0):
    """(c*, χ_c): the stable fixed point of the correlation map and its slope there.

    Schoenholz et al. (2017), section 3: c* = 1 and χ_c = χ₁ in the ordered
    phase; in the chaotic phase c* < 1 (inputs decorrelate) and χ_c < 1. NaN
    where q* is infinite.
    """
    shape, sw2, sb2, q0 = _prep(activation, sigma_w2, sigma_b2, q_init)
    r = _analyse_flat(activation, sw2, sb2, q0)
    return _out(r["c_star"], shape), _out(r["chi_c"], shape)


def _xi(slope: np.ndarray) -> np.ndarray:
    """-1/log|slope|: 0 at slope 0, ∞ at |slope| ≥ 1 - CRITICAL_TOL (marginal or unstable)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = -1.0 / np.log(np.abs(slope))
    xi = np.where(slope == 0, 0.0, xi)
    xi = np.where((np.abs(slope) >= 1) | (np.abs(slope - 1) <= CRITICAL_TOL), np.inf, xi)
    return np.where(np.isnan(slope), np.nan, xi)


def _analyse_flat(activation, sw2, sb2, q0):
    qs, slope = _solve_fixed_point(activation, sw2, sb2, q0)
    chi = _chi1_flat(activation, sw2, qs)
    finite = np.isfinite(qs)
    cs, chic = _c_star_flat(activation, sw2, sb2, qs, chi)
    xi_q = np.where(finite, _xi(slope), np.nan)
    xi_c = np.where(finite, _xi(chic), np.nan)
    xi_c = np.where(finite & (np.abs(chi - 1) <= CRITICAL_TOL), np.inf, xi_c)
    return {"q_star": qs, "chi1": chi, "q_slope": slope, "c_star": cs, "chi_c": chic, "xi_q": xi_q, "xi_c": xi_c}


def depth_scales(activation: str, sigma_w2, sigma_b2, q_init=1.0):
    """(ξ_q, ξ_c): how many layers the signal's length and correlation take to settle.

    Schoenholz et al. (2017), eqs. 7-9: |q^l - q*| ~ e^{-l/ξ_q} with
    ξ_q = -1/log f'(q*) (f' = `variance_map_slope`), |c^l - c*| ~ e^{-l/ξ_c}
    with ξ_c = -1/log χ_c, χ_c the slope of the correlation map at its stable
    fixed point c* (= χ₁ in the ordered phase, where c* = 1). ξ_c = ∞ at
    criticality (|χ₁ - 1| ≤ 1e-9); in the ordered phase ξ_c is also the depth
    scale of the gradient, -1/log χ₁. Both NaN where q* is infinite.
    """
    shape, sw2, sb2, q0 = _prep(activation, sigma_w2, sigma_b2, q_init)
    r = _analyse_flat(activation, sw2, sb2, q0)
    return _out(r["xi_q"], shape), _out(r["xi_c"], shape)


def _phase_name(q_star: float, chi: float) -> str:
    if not math.isfinite(q_star):
        return "unbounded"
    if abs(chi - 1) <= CRITICAL_TOL:
        return "critical"
    return "ordered" if chi < 1 else "chaotic"


def phase(activation: str, sigma_w2: float, sigma_b2: float, q_init: float = 1.0) -> str:
    """'ordered' (χ₁ < 1), 'critical' (χ₁ = 1), 'chaotic' (χ₁ > 1, finite q*) or 'unbounded' (q* = ∞)."""
    q = fixed_point(activation, sigma_w2, sigma_b2, q_init)
    return _phase_name(q, chi1(activation, sigma_w2, sigma_b2, q=q))


def _json_num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def summary(activation: str, sigma_w: float, sigma_b: float, depth: int | None = None, q0: float = 1.0) -> dict:
    """The mean-field numbers for one setting, as a JSON-ready dict (`python -m core theory --json`).

    Takes σ_w and σ_b (not squared); q0 is the input's second moment per
    feature, so q^1 = σ_w² q0 + σ_b² and q* is the fixed point reached from
    q^1. Keys:
      activation, sigma_w, sigma_b, sigma_w2, sigma_b2, q0, q1,
      q_star            fixed point of the pre-activation second moment,
      chi1              σ_w² E[φ'(√q* z)²] (q → ∞ limit when q* = ∞),
      phase             "ordered" | "critical" | "chaotic" | "unbounded",
      critical_sigma_w2 σ_w² with χ₁ = 1 at this σ_b² (null where none),
      depth_scale_q, depth_scale_c   ξ_q, ξ_c in layers,
      c_star, chi_c     stable fixed point of the correlation map and its slope,
      note              one sentence on what the numbers mean here,
    and with `depth`: depth, q_last (q^depth), grad_rel_first (E[δ¹²]/E[δ^L²]),
    jacobian_mean_sq_sv (Π_l χ₁(q^l), the input-output Jacobian's mean squared
    singular value).
    Infinite or undefined numbers are null (JSON has no inf/nan): q_star null
    means q grows without bound (phase "unbounded"); depth scales null mean
    infinite at criticality (phase "critical") or undefined (phase "unbounded").
    Serialize with json.dumps(..., allow_nan=False).
    """
    _check_activation(activation)
    sw2, sb2, q0 = float(sigma_w) ** 2, float(sigma_b) ** 2, float(q0)
    if not (math.isfinite(q0) and q0 >= 0):
        raise ValueError(f"q0 must be a finite number ≥ 0 (the input's second moment per feature), not {q0!r}.")
    if not (math.isfinite(sw2) and math.isfinite(sb2)):
        raise ValueError("sigma_w and sigma_b must be finite.")
    if depth is not None and int(depth) < 1:
        raise ValueError(f"depth must be at least 1, not {depth!r}.")
    q1 = sw2 * q0 + sb2
    r = _analyse_flat(activation, np.array([sw2]), np.array([sb2]), np.array([q1]))
    r = {k: float(v[0]) for k, v in r.items()}
    ph = _phase_name(r["q_star"], r["chi1"])
    crit = critical_sigma_w2(activation, sb2, q_init=q1)
    notes = {
        "ordered": f"Ordered phase (χ₁ < 1): gradients shrink by about e every {r['xi_c']:.3g} layers "
                   "and inputs become correlated.",
        "critical": ("Critical only at q* = 0 (χ₁ = 1 for a vanishing signal): the variance decays to 0 slowly, "
                     "polynomially rather than exponentially, and gradients shrink with it." if r["q_star"] == 0 else
                     "Critical (χ₁ = 1, the edge of chaos): signals and gradients keep their size over many layers."),
        "chaotic": f"Chaotic phase (χ₁ > 1): gradients grow by a factor {r['chi1']:.3g} per layer and nearby "
                   "inputs decorrelate.",
        "unbounded": "The pre-activation variance grows without bound with depth (no finite fixed point); "
                     f"gradients change by a factor {r['chi1']:.3g} per layer.",
    }
    out: dict[str, Any] = {
        "activation": activation,
        "sigma_w": float(sigma_w),
        "sigma_b": float(sigma_b),
        "sigma_w2": sw2,
        "sigma_b2": sb2,
        "q0": q0,
        "q1": q1,
        "q_star": _json_num(r["q_star"]),
        "chi1": _json_num(r["chi1"]),
        "phase": ph,
        "critical_sigma_w2": _json_num(crit),
        "depth_scale_q": _json_num(r["xi_q"]),
        "depth_scale_c": _json_num(r["xi_c"]),
        "c_star": _json_num(r["c_star"]),
        "chi_c": _json_num(r["chi_c"]),
        "note": notes[ph],
    }
    if depth is not None:
        from core.theory.predictions import profile_table

        t = profile_table(activation, sigma_w, sigma_b, int(depth), q0)
        with np.errstate(over="ignore"):
            jac = float(np.prod(t["chi1"].to_numpy()))
        out.update(depth=int(depth), q_last=_json_num(t["q"].iloc[-1]),
                   grad_rel_first=_json_num(t["grad_rel"].iloc[0]), jacobian_mean_sq_sv=_json_num(jac))
    return out


# -- phase diagram -----------------------------------------------------------------------------------
def phase_diagram(activation: str, sigma_w2_values, sigma_b2_values, q_init: float = 1.0) -> dict[str, np.ndarray]:
    """Mean-field quantities over the grid σ_w² × σ_b² (Poole et al. 2016, Fig. 2; Schoenholz et al. 2017, Fig. 1).

    Returns a dict of 2-D arrays of shape (len(sigma_b2_values), len(sigma_w2_values))
    - rows are σ_b², columns σ_w², as a plotly heatmap wants z[y][x]:
    `chi1`, `q_star`, `xi_c`, `xi_q`, `c_star`, `chi_c`, plus the 1-D axes
    `sigma_w2` and `sigma_b2`. Every grid point is solved at once (a 200 × 200
    grid takes a fraction of a second); values equal the scalar functions'.
    """
    _check_activation(activation)
    w = _as_array(sigma_w2_values).reshape(-1)
    bb = _as_array(sigma_b2_values).reshape(-1)
    SW, SB = np.meshgrid(w, bb)
    shape = SW.shape
    r = _analyse_flat(activation, SW.reshape(-1), SB.reshape(-1), np.full(SW.size, float(q_init)))
    out = {k: r[k].reshape(shape) for k in ("chi1", "q_star", "xi_c", "xi_q", "c_star", "chi_c")}
    out.update(sigma_w2=w, sigma_b2=bb)
    return out


def critical_line(diagram: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(σ_w², σ_b²) points of the line χ₁ = 1 from a `phase_diagram` result.

    For each σ_b² row, the first upward crossing of χ₁ = 1 along σ_w²,
    interpolated linearly in the grid (NaN where the row has none). Cheap
    enough for every redraw; `critical_sigma_w2` is the exact root.
    """
    w, bb, chi = diagram["sigma_w2"], diagram["sigma_b2"], diagram["chi1"]
    finite = np.isfinite(diagram["q_star"])
    xs = np.full(bb.size, np.nan)
    for i in range(bb.size):
        h = chi[i] - 1.0
        # a crossing with q* finite on both sides (not a jump to q* = ∞)
        up = np.flatnonzero((h[:-1] < 0) & (h[1:] >= 0) & finite[i, :-1] & finite[i, 1:])
        if up.size:
            j = up[0]
            t = -h[j] / (h[j + 1] - h[j])
            xs[i] = w[j] + t * (w[j + 1] - w[j])
    return xs, bb.copy()

"""The input-output Jacobian of an initialized network, measured: its singular values.

Dynamical isometry (Pennington et al., 2017): at initialization, the spectrum
of J = ∂a^L/∂x says whether signals and gradients keep their size through
depth; mean-field theory predicts its mean squared value
(`core.theory.meanfield.jacobian_theory_mean`), this module measures the whole spectrum
of the network `core.models.mlp.build_network` builds. Re-exported by `core.theory.meanfield`.

J. Pennington, S. Schoenholz, S. Ganguli, "Resurrecting the sigmoid in deep
learning through dynamical isometry", NeurIPS 2017.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from core.registry import ACTIVATIONS, INITIALIZERS

if TYPE_CHECKING:  # pragma: no cover
    from core.schema import RunConfig

__all__ = ["jacobian_singular_values", "jacobian_cost", "jacobian_inputs", "jacobian_at_init",
           "JACOBIAN_MAX_COST"]

JACOBIAN_MAX_COST = 3e9  # depth · width² · inputs: a few seconds of float64 at most


def jacobian_singular_values(cfg: "RunConfig", n_inputs: int = 1, seed: int | None = None,
                             exact_orthogonal: bool = True) -> np.ndarray:
    """Singular values of J = ∂a^L/∂x at initialization, in float64 (Pennington et al., 2017).

    J = D_L W_L ··· D_1 W_1 (D_l = diag φ'(h^l)): from the input to the last
    hidden layer's activations, for the network `core.models.mlp.build_network(cfg)`
    builds (same seed, same weights), converted to float64, at `n_inputs`
    points x ~ N(0, I) drawn with `seed` (default cfg.seed + 1); the singular
    values of all points are concatenated, each point's sorted descending.

    The weights are drawn in float32, and a float32-rounded orthogonal matrix
    has singular values 1 ± ~1e-7 only. With `exact_orthogonal` (default), the
    orthogonal schemes (`Initializer.orthogonal`: orthogonal, LSUV) get each hidden weight replaced
    by its nearest scaled (semi-)orthogonal matrix in float64 (the polar
    factor U Vᵀ of W = U S Vᵀ times σ_w, or for LSUV the mean singular value), a change at the
    float32 rounding level that makes "all singular values 1" hold to ~1e-14.
    LSUV calibrates on a batch of 256 points x ~ N(0, I). BatchNorm is not
    supported (ValueError): at initialization its Jacobian depends on the
    whole batch. Cost: depth · width² · input size, plus one SVD per point.
    """
    from core.models.mlp import build_network

    if cfg.batchnorm:
        raise ValueError("The Jacobian spectrum is defined here for networks without BatchNorm; turn BatchNorm off.")
    gen = torch.Generator().manual_seed(cfg.seed + 1 if seed is None else int(seed))
    ini = INITIALIZERS[cfg.init]
    calib = torch.randn(256, cfg.features, generator=gen) if ini.needs_data else None
    net = build_network(cfg, calibration=calib).double()
    act = ACTIVATIONS[cfg.activation]
    if exact_orthogonal and ini.orthogonal:
        _snap_orthogonal(net, cfg)
    xs = torch.randn(int(n_inputs), cfg.features, generator=gen, dtype=torch.float64)
    svs = []
    with torch.no_grad():
        for x in xs:
            a = x[None, :]
            J = None
            for linear in net.linears:
                h = linear(a)
                d = act.derivative(h)[0]
                J = linear.weight if J is None else linear.weight @ J
                J = d[:, None] * J
                a = act.fn(h)
            svs.append(torch.linalg.svdvals(J).numpy())
    return np.concatenate(svs)


def _snap_orthogonal(net, cfg: "RunConfig") -> None:
    """Replace each weight W = U S Vᵀ (float64) by scale · U Vᵀ: σ_w (W = σ_w·Q exactly), or mean(S)
    when the scale was set from data (LSUV)."""
    with torch.no_grad():
        for linear in net.linears:
            U, S, Vh = torch.linalg.svd(linear.weight, full_matrices=False)
            scale = S.mean() if INITIALIZERS[cfg.init].needs_data else float(cfg.sigma_w)
            linear.weight.copy_(scale * (U @ Vh))


def jacobian_cost(cfg: "RunConfig") -> int:
    """The work of one input point's Jacobian: Σ fan_in · fan_out · the widest layer."""
    widths = cfg.hidden_widths
    return sum(a * b for a, b in zip((cfg.features, *widths[:-1]), widths)) * max(widths)


def jacobian_inputs(cfg: "RunConfig", max_cost: float = JACOBIAN_MAX_COST) -> int:
    """How many input points to take: ~256 singular values in all, within `max_cost`."""
    per_point = min(cfg.hidden_widths[-1], cfg.features)
    n = max(1, min(8, math.ceil(256 / max(per_point, 1))))
    cost = jacobian_cost(cfg)
    while n > 1 and n * cost > max_cost:
        n -= 1
    return n


def jacobian_at_init(cfg: "RunConfig", max_cost: float = JACOBIAN_MAX_COST
                     ) -> tuple[np.ndarray, float | None] | str:
    """The singular values of ∂a^L/∂x at initialization (`jacobian_inputs(cfg)` points) and the theory's
    mean squared value (`jacobian_theory_mean`), or a sentence on why they are not computed."""
    from core.theory.predictions import jacobian_theory_mean

    if cfg.batchnorm:
        return ("With BatchNorm, the Jacobian at initialization depends on the whole batch, so it is not shown; "
                "turn BatchNorm off to see it.")
    if jacobian_cost(cfg) > 4 * max_cost:
        return "This network is too large to compute its Jacobian here; make it narrower or shallower."
    svs = jacobian_singular_values(cfg, n_inputs=jacobian_inputs(cfg, max_cost))
    return svs, jacobian_theory_mean(cfg, 1.0)

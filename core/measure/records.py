"""A record: the statistics of one recorded step, and how it is made.

`STAT_COLUMNS` are a record's columns. The probes fill a moments table
(layers × `M_COLUMNS`: variance/mean pairs of each kind of tensor, the flat
fractions, a pair for extra tensors); `assemble` makes the record of it with
the tracker's Var(W) and Var(ΔW). `layer_statistics` does all of it from kept
tensors (notebooks, the tests), and `first_nonfinite_layer` says where a
diverging run first showed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from core.measure.reductions import moments_per_tensor, preact_statistics

Tensor = torch.Tensor

# The columns of one record, in order; `update_ratio` is NaN where there was
# no update yet (step 0).
# The architectures' own columns (CLI.md, "Architectures"), NaN where they do not apply: a model fills the
# ones its registry entry lists (`Architecture.columns`) through `Model.extra_statistics`.
ARCH_COLUMNS = ("gate_saturation", "spectral_radius", "stream_var", "grad_stream_var", "branch_var")
STAT_COLUMNS = (
    "preact_mean", "preact_var", "act_mean", "act_var",
    "grad_preact_var", "grad_act_var",
    "weight_var", "weight_grad_var", "grad_ratio", "update_ratio",
    "saturation", "dead_units",
    *ARCH_COLUMNS,
)
COL = {name: i for i, name in enumerate(STAT_COLUMNS)}
_ARCH = np.array([COL[c] for c in ARCH_COLUMNS])
FORWARD_COLUMNS = ("preact_mean", "preact_var", "act_mean", "act_var")
BACKWARD_COLUMNS = ("grad_preact_var", "grad_act_var", "weight_grad_var")
_FORWARD = np.array([COL[c] for c in FORWARD_COLUMNS])
_BACKWARD = np.array([COL[c] for c in BACKWARD_COLUMNS])
_CHECKED = np.concatenate([_FORWARD, _BACKWARD])  # where a diverging run shows first
_WEIGHT_OUT = (COL["weight_var"], COL["update_ratio"], COL["grad_ratio"])


# A record's moments table (layers × 16): var/mean pairs of h, a, ∂L/∂h, ∂L/∂a, W and ∂L/∂W, then
# the saturation and dead-unit fractions, then a pair for extra tensors (the tracker's update).
M_H, M_A, M_GH, M_GA, M_W, M_GW, M_SAT, M_DEAD, M_X = 0, 2, 4, 6, 8, 10, 12, 13, 14
M_COLUMNS = 16


@torch.no_grad()
def reduce_by_kind(moments: np.ndarray, hs, acts, grad_hs, grad_acts, weights, weight_grads, extra, activation,
                   buffers: dict | None = None, fused: bool | None = None) -> None:
    """Fill `moments` one kind of tensor at a time (fused kernels where they
    can read a kind and `fused` allows, PyTorch otherwise); an empty or
    incomplete kind is left as it is."""
    if len(hs) == len(moments) and all(h is not None for h in hs):
        moments[:, M_H], moments[:, M_H + 1], moments[:, M_SAT], moments[:, M_DEAD] = preact_statistics(
            hs, activation, buffers, fused)
    for col, tensors in ((M_A, acts), (M_GH, grad_hs), (M_GA, grad_acts), (M_W, weights), (M_GW, weight_grads),
                         (M_X, extra)):
        if len(tensors) == len(moments) and all(t is not None for t in tensors):
            moments[:, col], moments[:, col + 1] = moments_per_tensor(tensors, buffers, fused)


# Where each STAT_COLUMNS entry comes from in the moments table (the weight columns are filled after).
_FROM_MOMENTS = np.array([{"preact_mean": M_H + 1, "preact_var": M_H, "act_mean": M_A + 1, "act_var": M_A,
                           "grad_preact_var": M_GH, "grad_act_var": M_GA, "weight_grad_var": M_GW,
                           "saturation": M_SAT, "dead_units": M_DEAD}.get(c, M_GW) for c in STAT_COLUMNS])


def assemble(moments: np.ndarray, weight_stats: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, bool]:
    """A record, (layers, len(STAT_COLUMNS)) float64, from its moments table
    and `weight_stats` = `WeightTracker.statistics(step)`: (Var(W), Var(ΔW)),
    the latter NaN where there was no update. Also: are all of the columns
    `first_nonfinite_layer` looks at finite?

    The one place where the derived columns are made: grad_ratio =
    √(Var ∂L/∂W / Var W) and update_ratio = √(Var ΔW / Var W)."""
    w_var, d_var = weight_stats
    out = moments[:, _FROM_MOMENTS]
    out[:, _ARCH] = math.nan  # until the model fills its own (`fill_arch_columns`)
    out[:, _WEIGHT_OUT[0]] = w_var
    with np.errstate(all="ignore"):  # 0/0 under zeros init, NaN before the first update
        out[:, _WEIGHT_OUT[1]] = np.sqrt(d_var / w_var)
        out[:, _WEIGHT_OUT[2]] = np.sqrt(moments[:, M_GW] / w_var)
    return out, bool(np.isfinite(out[:, _CHECKED]).all())


def fill_arch_columns(stats: np.ndarray, extra: dict[str, np.ndarray] | None) -> None:
    """Write a model's own statistics (`Model.extra_statistics`: column name → one value per row) into a record."""
    for name, values in (extra or {}).items():
        if name not in ARCH_COLUMNS:
            raise KeyError(f"{name!r} is not one of the architecture columns {ARCH_COLUMNS}")
        stats[:, COL[name]] = values


def layer_statistics(
    hs: Sequence[Tensor], acts: Sequence[Tensor], grad_hs: Sequence[Tensor], grad_acts: Sequence[Tensor],
    weight_grads: Sequence[Tensor], weight_stats: tuple[np.ndarray, np.ndarray], activation,
    buffers: dict | None = None, fused: bool | None = None,
) -> np.ndarray:
    """All of one record's statistics from kept tensors, as a (layers,
    len(STAT_COLUMNS)) float64 array. `buffers` (a dict kept between calls)
    lets the PyTorch path stack small layers into reused memory."""
    m = np.full((len(hs), M_COLUMNS), math.nan)
    reduce_by_kind(m, hs, acts, grad_hs, grad_acts, (), weight_grads, (), activation, buffers, fused)
    return assemble(m, weight_stats)[0]


def first_nonfinite_layer(stats: np.ndarray, loss: float = 0.0) -> tuple[int | None, str] | None:
    """Where a non-finite value first appeared in one record: (layer index from
    0, "forward"/"backward"), (None, "loss") when every hidden layer's forward
    values are finite but the loss is not (the logits overflowed), or None.
    Forward values appear in layer order; backward values appear from the
    last layer down, so the first one there is the highest layer."""
    if np.isfinite(stats[:, _CHECKED]).all() and math.isfinite(loss):
        return None  # the usual case, in one test
    bad = np.flatnonzero(~np.isfinite(stats[:, _FORWARD]).all(axis=1))
    if bad.size:
        return int(bad[0]), "forward"
    if not math.isfinite(loss):
        return None, "loss"
    bad = np.flatnonzero(~np.isfinite(stats[:, _BACKWARD]).all(axis=1))
    if bad.size:
        return int(bad[-1]), "backward"
    return None

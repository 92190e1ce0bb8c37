"""Reductions behind the per-layer statistics: each tensor's variance and mean
over all its entries, and the flat-region counts of pre-activations.

Two implementations give the same numbers:

* fused one-pass Numba kernels (`core.measure.kernels`) for contiguous float32 CPU
  tensors: each tensor is read once for its sum, sum of squares and
  flat-region counts;
* PyTorch (any device, and without Numba): float64-accumulated sums and
  norms, float kernels for the counts.

Both form the moments in float64 and redo a tensor exactly in float64 where
float32 could not be trusted (overflow in an exploding run, or a mean that
dwarfs the spread).

`fused=False` keeps a call on PyTorch; the kernels (and Numba) are imported
only when a call may use them, so a run measured with PyTorch never loads Numba.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

Tensor = torch.Tensor

# float32 partial sums keep ~7 digits: if var is under 1e-4 of E[x²], fewer than 3 are left.
CANCELLATION = 1e-4


def fused_kernels():
    """`core.measure.kernels` if Numba is there (imported on first use), else None."""
    from core.measure import kernels

    return kernels if kernels.AVAILABLE else None


def _kernels_for(tensors, fused: bool | None):
    """The kernels module if `fused` allows (None: whenever it can) and they can read `tensors`."""
    if fused is False:
        return None
    k = fused_kernels()
    return k if k is not None and k.usable(tensors) else None


# -- the PyTorch path (any device, no Numba) ---------------------------------------------

SMALL = 32768  # entries per tensor: below this, reducing as they appear costs more in per-call overhead than it saves


def _groups(tensors: Sequence[Tensor], buffers: dict | None = None) -> list[tuple[slice, Tensor | list[Tensor]]]:
    """Split `tensors` into runs of one shape: small ones stacked into one
    (n, *shape) tensor (into a reusable buffer when `buffers` is given),
    large ones left as a list, which per-tensor kernels handle best."""
    groups, start = [], 0
    for i in range(1, len(tensors) + 1):
        if i == len(tensors) or tensors[i].shape != tensors[start].shape:
            run = list(tensors[start:i])
            if run[0].numel() < SMALL and len(run) > 1:
                key = (len(run), *run[0].shape, run[0].dtype)
                out = None
                if buffers is not None:
                    out = buffers.get(key)
                    if out is None:
                        out = buffers[key] = torch.empty(len(run), *run[0].shape, dtype=run[0].dtype)
                groups.append((slice(start, i), torch.stack(run, out=out) if out is not None else torch.stack(run)))
            else:
                groups.append((slice(start, i), run))
            start = i
    return groups


@torch.no_grad()
def var_mean_per_tensor(tensors: Sequence[Tensor], buffers: dict | None = None) -> tuple[Tensor, Tensor]:
    """Variance and mean of each tensor over all its entries, as float64.

    The fast path takes sums and sums of squares in float32 with vectorized
    kernels (stacked, or one `_foreach_norm` call for large layers) and forms
    the moments in float64; float64 `var_mean` would be ~40× slower. A layer
    is redone exactly, in float64 with two passes, where that could be
    inaccurate: where float32 overflowed (an exploding run) or where the mean
    dwarfs the spread (cancellation).
    """
    tensors = list(tensors)
    n = len(tensors)
    sums = torch.empty(n, dtype=torch.float64)
    sumsq = torch.empty(n, dtype=torch.float64)
    counts = torch.empty(n, dtype=torch.float64)
    for sl, group in _groups(tensors, buffers):
        if isinstance(group, list):
            # float64 accumulation: this is the fallback path, accuracy before speed
            sums[sl] = torch.stack([t.sum(dtype=torch.float64) for t in group])
            sumsq[sl] = torch.stack([torch.linalg.vector_norm(t, dtype=torch.float64) for t in group])
            counts[sl] = group[0].numel()
        else:
            flat = group.reshape(group.shape[0], -1)
            sums[sl] = flat.sum(dim=1, dtype=torch.float64)
            sumsq[sl] = torch.linalg.vector_norm(flat, dim=1, dtype=torch.float64)
            counts[sl] = flat.shape[1]
    sumsq.square_()
    mean = sums / counts
    second = sumsq / counts
    var = second - mean.square()
    # float32 keeps ~7 digits: if var is under 1e-4 of E[x²], fewer than 3 are left (as in the kernels).
    redo = ~torch.isfinite(var) | ~torch.isfinite(mean) | ((var <= CANCELLATION * second) & (second > 0))
    for i in torch.nonzero(redo).flatten().tolist():
        v, m = torch.var_mean(tensors[i].detach().to(torch.float64), correction=0)
        var[i], mean[i] = v, m
    return var.clamp_(min=0.0), mean


def _flat_counts(h: Tensor, below, beyond) -> tuple[Tensor, Tensor]:
    """For h of shape (..., batch, units): flat entries, and units flat for the
    whole batch, summed over the trailing two dimensions."""
    batch = h.shape[-2]
    if beyond is not None:
        per_unit = torch.nn.functional.hardshrink(h, beyond).sign_().abs_().sum(dim=-2)  # |h| > c
        return per_unit.sum(dim=-1), (per_unit >= batch - 0.5).sum(dim=-1)
    active = (h - below).clamp_(min=0).sign_().sum(dim=(-2, -1))  # entries with h > t
    return h.shape[-2] * h.shape[-1] - active, (h.amax(dim=-2) <= below).sum(dim=-1)


@torch.no_grad()
def flat_fractions(hs: Sequence[Tensor], activation, buffers: dict | None = None) -> tuple[Tensor, Tensor]:
    """(saturation, dead_units) per layer: the fraction of entries of h in
    φ's flat region, and the fraction of units flat for every example.

    Counting with boolean masks is slow on a CPU; this uses float kernels
    instead, exactly: a 0/1 indicator from `sign` of a shrunk or shifted copy
    of h, summed over the batch.
    """
    L = len(hs)
    sat = torch.zeros(L, dtype=torch.float64)
    dead = torch.zeros(L, dtype=torch.float64)
    below, beyond = activation.flat_below, activation.flat_beyond
    if below is None and beyond is None:
        return sat, dead
    for sl, group in _groups(hs, buffers):
        if isinstance(group, list):
            pairs = [_flat_counts(h, below, beyond) for h in group]
            flat_count = torch.stack([p[0] for p in pairs])
            dead_count = torch.stack([p[1] for p in pairs])
        else:
            flat_count, dead_count = _flat_counts(group, below, beyond)
        batch, units = hs[sl.start].shape
        sat[sl] = flat_count.to(torch.float64) / (batch * units)
        dead[sl] = dead_count.to(torch.float64) / units
    return sat, dead




# -- the entry points: fused kernels where they can read the tensors, else PyTorch --------

@torch.no_grad()
def moments_per_tensor(tensors: Sequence[Tensor], buffers: dict | None = None,
                       fused: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(variance, mean) of each tensor over all its entries, float64 numpy arrays. A tensor listed
    more than once (a recurrent layer's W_hh, once per time step) is read once."""
    tensors = list(tensors)
    first = {}
    for t in tensors:
        first.setdefault(id(t), len(first))
    if len(first) < len(tensors):
        unique = list({id(t): t for t in tensors}.values())
        var, mean = moments_per_tensor(unique, buffers, fused)
        where = np.fromiter((first[id(t)] for t in tensors), np.int64, len(tensors))
        return var[where], mean[where]
    k = _kernels_for(tensors, fused)
    if k is None:
        var, mean = var_mean_per_tensor(tensors, buffers)
        return var.numpy(), mean.numpy()
    out = np.empty((len(tensors), 2))
    k.reduce_many(tensors, out)  # one call reads them all in place
    return out[:, 0], out[:, 1]


@torch.no_grad()
def preact_statistics(hs: Sequence[Tensor], activation, buffers: dict | None = None, fused: bool | None = None):
    """(var, mean, saturation, dead_units) of every layer's h, in one pass each."""
    hs = list(hs)
    k = _kernels_for(hs, fused)
    if k is not None and all(h.dim() == 2 for h in hs):
        out = np.empty((len(hs), 4))
        k.reduce_many(hs, out, True, activation.flat_below, activation.flat_beyond)
        return out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    var, mean = moments_per_tensor(hs, buffers, fused)
    sat, dead = flat_fractions(hs, activation, buffers)
    return var, mean, sat.numpy(), dead.numpy()

"""Batched: small layers, the whole record in one kernel call after the backward pass.

For small layers (see `core.measure.strategy`) the cost of a call per tensor
would dominate, so: in the forward pass one call per layer reduces h (with
its flat counts) and W while they are cached, and only a is kept; the
backward pass asks autograd for every ∂L/∂a with the parameters' gradients;
then one call of the activation's kernel (`kernels.table_kernel`) reduces the
rest. Where φ' can be had from a (`Activation.slope_from_output`), ∂L/∂h's
moments come from ∂L/∂a and a in that same pass; otherwise h is kept and
∂L/∂h is asked of autograd as well.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.measure import kernels
from core.measure.records import M_A, M_GA, M_GH, M_GW, M_H, M_SAT, M_W, M_X
from core.measure.strategy import Measuring

Tensor = torch.Tensor


def _dense(t: Tensor) -> Tensor:
    """t itself if its entries fill one block of memory (sums don't care in what order), else a dense copy."""
    return t if t.is_contiguous() or (t.dim() == 2 and t.mT.is_contiguous()) else t.contiguous()


class Batched(Measuring):
    """Reduces h and W in the forward pass, the rest of a record in one call (module docstring)."""

    name = "batched"

    def __init__(self, activation, weights: Sequence[Tensor], chained: bool = True):
        super().__init__(activation, weights, chained)
        self._slope = activation.slope_from_output
        self._kernel = kernels.table_kernel(self._slope or kernels.unit_slope)
        self._flat = kernels.flat_args(activation.flat_below, activation.flat_beyond)
        self._unit = np.empty(max([w.shape[0] for w in self.weights if w.dim()] + [1]), dtype=np.float32)
        self._layout: tuple | None = None  # (shapes seen, kernel table arrays)
        # a block whose weight is the block before's (a recurrent layer's W_hh, once per time step): W, ∂L/∂W
        # and the update are read once, at the first, and copied to the rest
        self._shared = np.array([l > 0 and w is self.weights[l - 1] for l, w in enumerate(self.weights)], dtype=bool)
        self.record()
        self._drop()

    def record(self, keep: bool = False) -> "Batched":
        super().record(keep)
        # h is asked of autograd where φ' can't come from a, or for histograms
        self._with_h = self._slope is None or keep
        self._live: list[Tensor] = []  # what autograd is asked for: (h,) a per layer
        self._acts: list = [None] * self.layers
        self._grad_hs: list = []
        self._grad_acts: list = []
        return self

    def _drop(self) -> None:
        self._live = []
        self._acts = [None] * self.layers
        self._grad_hs = self._grad_acts = []

    def forward(self, l: int, z: Tensor, h: Tensor, a: Tensor) -> None:
        """Block l: h and W reduced now, while cached; a (and h if needed) kept for the backward pass."""
        w = self.weights[l]
        hd = h if h.is_contiguous() else h.contiguous()
        rows, cols = kernels.shape2(hd)
        unit = self._unit if self._unit.size >= cols else np.empty(cols, dtype=np.float32)
        wr, wc = kernels.shape2(w)
        below, beyond, mode = self._flat
        shared = self._shared[l]
        kernels._reduce3(self.moments, unit, below, beyond, mode, M_SAT, hd.data_ptr(), rows, cols, l, M_H, True,
                         0 if shared else w.data_ptr(), wr, wc, l, M_W, 0, 0, 0, 0, 0)
        if shared:
            self.moments[l, M_W:M_W + 2] = self.moments[l - 1, M_W:M_W + 2]
        if self._with_h:
            self._live.append(h)
        self._live.append(a)
        self._acts[l] = a
        if self.keep:
            self.kept.hs[l], self.kept.acts[l] = h, a

    def backward(self, loss: Tensor, params: Sequence[Tensor]) -> None:
        """The backward pass, filling every parameter's .grad and asking for each ∂L/∂a (and ∂L/∂h)."""
        if not self._live:
            loss.backward()
            return
        params = list(params)
        grads = torch.autograd.grad(loss, params + self._live)
        for p, g in zip(params, grads):
            p.grad = g
        n = len(params)
        if self._with_h:
            self._grad_hs, self._grad_acts = list(grads[n::2]), list(grads[n + 1::2])
        else:
            self._grad_acts = list(grads[n:])
        if self.keep:
            self.kept.grad_hs = self._grad_hs
        self._live = []

    def finish(self, weight_grads: Sequence[Tensor], extra: Sequence[Tensor] | None = None) -> np.ndarray:
        """The rest of the record (and the variance of `extra`, one tensor per layer) in one kernel call."""
        L = self.layers
        if not L or len(self._grad_acts) != L or any(g is None for g in weight_grads):
            return self.moments
        extra = list(extra) if extra and len(extra) == L else []
        sloped = self._slope is not None
        acts = self._acts
        # a first (read beside ∂L/∂a where φ' comes from it), then the gradients
        tensors = [*acts, *([] if sloped else self._grad_hs), *self._grad_acts, *weight_grads, *extra]
        if not all(map(Tensor.is_contiguous, tensors)):  # the usual case is one check each
            tensors = [_dense(t) for t in tensors]
        shapes = [a.shape for a in acts] + [w.shape for w in self.weights] + [len(extra)]
        if self._layout is None or self._layout[0] != shapes:
            self._layout = (shapes, self._table(np.array([kernels.shape2(a) for a in acts], dtype=np.int64),
                                                np.array([kernels.shape2(w) for w in self.weights], dtype=np.int64),
                                                bool(extra)))
        rows, cols, out_row, out_col, kind, first, second = self._layout[1]
        ptrs = np.fromiter(map(Tensor.data_ptr, tensors), np.int64, len(tensors))
        below, beyond, mode = self._flat
        self._kernel(ptrs[first], ptrs[second], rows, cols, out_row, out_col, kind, below, beyond, mode, self._unit,
                     self.moments, M_SAT, M_GH, M_A)
        for l in np.flatnonzero(self._shared):  # in order: each copies from a block already filled
            self.moments[l, M_GW:M_GW + 2] = self.moments[l - 1, M_GW:M_GW + 2]
            if extra:
                self.moments[l, M_X:M_X + 2] = self.moments[l - 1, M_X:M_X + 2]
        return self.moments

    def _table(self, act: np.ndarray, w: np.ndarray, extra: bool) -> tuple:
        """The kernel table for `finish`, given the (batch, width) shapes `act`
        and the weights' shapes `w`: the shapes, destinations and kinds of the
        entries, and which tensors they read (`first`, and `second` for a pair)
        among [a, (∂L/∂h), ∂L/∂a, ∂L/∂W, (extra)] per layer. Where φ' comes
        from a, ∂L/∂a and a are read as a pair that also gives ∂L/∂h's and a's moments."""
        L = len(act)
        sloped = self._slope is not None
        layer = np.arange(L, dtype=np.int64)
        # (column, shapes, kind) in the order of the tensors
        kinds = [(M_A, act, 0)] + ([] if sloped else [(M_GH, act, 0)]) + [(M_GA, act, 2 if sloped else 0)]
        kinds += [(M_GW, w, 0)] + ([(M_X, w, 0)] if extra else [])
        entries = [(col, shapes, kind, i) for i, (col, shapes, kind) in enumerate(kinds) if not (sloped and col == M_A)]
        table = (np.concatenate([e[1][:, 0] for e in entries]), np.concatenate([e[1][:, 1] for e in entries]),
                 np.tile(layer, len(entries)), np.repeat(np.array([e[0] for e in entries], dtype=np.int64), L),
                 np.repeat(np.array([e[2] for e in entries], dtype=np.int64), L),
                 np.concatenate([layer + e[3] * L for e in entries]),
                 np.concatenate([layer + (0 if e[2] == 2 else e[3] * L) for e in entries]))  # a beside ∂L/∂a
        # a shared weight's gradient and update are read at its first block only (`finish` copies them on)
        keep = ~(self._shared[table[2]] & np.isin(table[3], (M_GW, M_X)))
        table = tuple(t[keep] for t in table)
        # Read in the reverse of the order the backward pass wrote: the first layers' gradients, written
        # last, are still in the CPU's cache; within a layer, the gradients before the rest.
        order = np.lexsort((-table[3], table[2]))
        return tuple(t[order] for t in table)

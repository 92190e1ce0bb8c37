"""Plain PyTorch: the record's tensors kept and reduced kind by kind, no Numba.

The oracle's twin (`tests/_oracle.py` does the same by hand, in float64), the
fallback where Numba is missing, and the choice for a run too short for
loading the kernels to pay (`core.measure.strategy.choose`). h and a are kept
in the forward pass; autograd gives ∂L/∂h and ∂L/∂a with the parameters'
gradients; `core.measure.records.reduce_by_kind` reduces each kind of tensor
in a few stacked PyTorch calls, accumulating in float64.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.measure.records import reduce_by_kind
from core.measure.strategy import Measuring

Tensor = torch.Tensor


class PlainTorch(Measuring):
    """Keeps a record's tensors and reduces them with PyTorch (module docstring)."""

    name = "torch"
    fused = False

    def __init__(self, activation, weights: Sequence[Tensor], chained: bool = True):
        super().__init__(activation, weights, chained)
        self.buffers: dict = {}  # reusable stacking memory
        self.record()
        self._drop()

    def record(self, keep: bool = False) -> "PlainTorch":
        super().record(keep)
        self._hs: list = [None] * self.layers
        self._acts: list = [None] * self.layers
        self._grad_hs: list = []
        self._grad_acts: list = []
        return self

    def _drop(self) -> None:
        self._hs = [None] * self.layers
        self._acts = [None] * self.layers
        self._grad_hs = self._grad_acts = []

    def forward(self, l: int, z: Tensor, h: Tensor, a: Tensor) -> None:
        self._hs[l], self._acts[l] = h, a
        if self.keep:
            self.kept.hs[l], self.kept.acts[l] = h, a

    def backward(self, loss: Tensor, params: Sequence[Tensor]) -> None:
        """The backward pass, filling every parameter's .grad and asking for each ∂L/∂h and ∂L/∂a."""
        live = [t for pair in zip(self._hs, self._acts) for t in pair if t is not None and t.requires_grad]
        if len(live) != 2 * self.layers:
            loss.backward()
            return
        params = list(params)
        grads = torch.autograd.grad(loss, params + live)
        for p, g in zip(params, grads):
            p.grad = g
        n = len(params)
        self._grad_hs, self._grad_acts = list(grads[n::2]), list(grads[n + 1::2])
        if self.keep:
            self.kept.grad_hs = self._grad_hs

    def finish(self, weight_grads: Sequence[Tensor], extra: Sequence[Tensor] | None = None) -> np.ndarray:
        extra = list(extra) if extra and len(extra) == self.layers else []
        reduce_by_kind(self.moments, self._hs, self._acts, self._grad_hs, self._grad_acts, self.weights,
                       weight_grads, extra, self.activation, self.buffers, fused=False)
        return self.moments

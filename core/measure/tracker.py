"""The weight statistics of a record: Var(W) and the variance of the last update."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from core.measure.reductions import fused_kernels, moments_per_tensor

Tensor = torch.Tensor


class WeightTracker:
    """The weight statistics of a record: Var(W) and the update ratio
    std(ΔW) / std(W), ΔW being the last update the optimizer applied.

    Call `before_update(step, next_recorded)` just before each optimizer
    step. Plain SGD's update is -lr·∂L/∂W of the previous step: its variance
    is measured there (or taken from that step's record). SGD with
    momentum's is -lr·(momentum buffer), still in memory at the record. For
    other optimizers (Adam) the weights are copied before an update that
    leads to a recorded step, and ΔW is the difference. Nothing is copied
    for SGD. `fused` is the run's choice of reductions (False: PyTorch only,
    as the measuring strategy "torch").
    """

    def __init__(self, weights: Sequence[Tensor], optimizer: torch.optim.Optimizer, kind: str,
                 fused: bool | None = None):
        self.buffers: dict = {}
        self.fused = fused
        self.weights = list(weights)
        self.optimizer = optimizer
        self.kind = kind  # "sgd", "momentum" or anything else (copy)
        self._updated_to: int | None = None  # the step the last update led to
        self._prev: list[Tensor] | None = None
        self._grad_var: tuple[int, np.ndarray] | None = None  # (step, Var ∂L/∂W) of the last record

    def __repr__(self) -> str:
        return f"WeightTracker({len(self.weights)} layers, {self.kind})"

    def _kernels(self):
        return None if self.fused is False else fused_kernels()

    @torch.no_grad()
    def before_update(self, step: int, next_recorded: bool) -> None:
        if not next_recorded:
            self._updated_to = None
            return
        if self.kind == "sgd":
            # The update is -lr times these gradients. Recording every step, the last record measured
            # them already; otherwise measure them now, while they are still in the CPU's cache.
            if self._grad_var is None or self._grad_var[0] != step:
                grads = [w.grad for w in self.weights]
                self._grad_var = (step, moments_per_tensor(grads, self.buffers, self.fused)[0]) if all(
                    g is not None for g in grads) else None
        elif self.kind != "momentum":
            if self._prev is None:
                self._prev = [torch.empty_like(w) for w in self.weights]
            torch._foreach_copy_(self._prev, self.weights)
        self._updated_to = step + 1

    def note_grad_var(self, step: int, grad_var: np.ndarray) -> None:
        """The Var(∂L/∂W) a record at `step` measured (plain SGD's next update is -lr times that gradient)."""
        self._grad_var = (step, grad_var)

    def update_tensors(self, step: int) -> tuple[list[Tensor], float] | None:
        """(tensors u, scale) with ΔW = scale·u for the update that led to
        `step`, when its ratio needs their variance (momentum's buffers);
        None when it doesn't (no update; plain SGD, measured before the
        update) or when ΔW comes from copied weights. A caller that measures
        Var(u) anyway passes it to `statistics` as `update_var`."""
        if self._updated_to != step or step == 0:
            return None
        lr = self.optimizer.param_groups[0]["lr"]
        if self.kind == "momentum":
            return [self.optimizer.state[w]["momentum_buffer"] for w in self.weights], lr
        return None

    def statistics(self, step: int, w_var: np.ndarray | None = None,
                   update_var: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(Var(W), Var(ΔW)) per layer at `step`, ΔW being the update that led
        there (NaN at step 0, or when the last step was not followed by a
        record); `assemble` makes the update ratio √(Var ΔW / Var W) of them.
        `w_var` and `update_var` (the variance of `update_tensors`), when the
        caller measured them already, are used as they are."""
        weights = self.weights
        L = len(weights)
        if w_var is None or not np.isfinite(w_var).all():
            w_var, _ = moments_per_tensor(weights, self.buffers, self.fused)
        if self._updated_to != step or step == 0:
            return w_var, np.full(L, math.nan)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.kind == "sgd":  # ΔW = -lr·∂L/∂W of the previous step
            known = self._grad_var is not None and self._grad_var[0] == step - 1
            d_var = self._grad_var[1] * lr * lr if known else np.full(L, math.nan)
        elif self.kind == "momentum":  # ΔW = -lr·(momentum buffer), `update_tensors`
            if update_var is None:
                update_var, _ = moments_per_tensor(self.update_tensors(step)[0], self.buffers, self.fused)
            d_var = update_var * lr * lr
        elif (k := self._kernels()) is not None and k.usable(weights) and k.usable(self._prev) and all(
                w.dim() == 2 for w in weights):
            d_var = np.empty(L)
            out = np.empty((2, 2))
            for i, (w, p) in enumerate(zip(weights, self._prev)):
                k.weight_delta(w.detach().numpy(), p.numpy(), out)  # ΔW without materializing it
                d_var[i] = out[1, 0]
        else:
            with torch.no_grad():
                d_var, _ = moments_per_tensor(torch._foreach_sub(weights, self._prev), fused=self.fused)
        return w_var, d_var

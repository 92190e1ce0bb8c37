"""Per-layer statistics, reduced where the tensors are, moved to the host once per record.

A measuring strategy (`core.measure.strategy`: streaming, batched or plain
PyTorch) measures a recorded step while it runs into a moments table;
`core.measure.tracker.WeightTracker` adds Var(W) and Var(ΔW), and
`core.measure.records.assemble` makes the record of them: one float64 (layers ×
columns) array, never a tensor kept past its step, so memory stays flat
however long the run. The names of those modules are importable from here too.

The reductions themselves (fused kernels, or PyTorch without Numba) are in
`core.measure.kernels` and `core.measure.reductions`.

`LayerProbe` is the same measurement done the textbook way, with hooks inside
a `with` block; the tests use it as an independent check and notebooks can use
it on any stack of modules.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.measure.reductions import (  # noqa: F401  (re-exported: the probes' reductions)
    flat_fractions, moments_per_tensor, preact_statistics, var_mean_per_tensor,
)

from core.measure.records import (  # noqa: F401  (re-exported: a record's columns and assembly)
    BACKWARD_COLUMNS, COL, FORWARD_COLUMNS, M_A, M_COLUMNS, M_DEAD, M_GA, M_GH, M_GW, M_H, M_SAT, M_W, M_X,
    STAT_COLUMNS, assemble, first_nonfinite_layer, layer_statistics, reduce_by_kind,
)
from core.measure.strategy import SMALL, choose  # noqa: F401  (re-exported)
from core.measure.tracker import WeightTracker  # noqa: F401  (re-exported)

Tensor = torch.Tensor


@torch.no_grad()
def histograms(tensors: Sequence[Tensor], bins: int = 40, value_range: tuple[float, float] | None = None):
    """Per-tensor histograms: a list of (edges, counts) numpy arrays.

    With `value_range` every layer shares fixed edges (bounded activations);
    otherwise each layer gets edges spanning its own finite values, since
    scales differ by decades between layers when a signal vanishes.
    """
    result = []
    for t in tensors:
        x = t.detach().reshape(-1).to(torch.float64)
        x = x[torch.isfinite(x)]
        if x.numel() == 0:
            result.append((np.array([0.0, 1.0]), np.zeros(1)))
            continue
        lo, hi = value_range if value_range else (float(x.min()), float(x.max()))
        if hi <= lo:
            lo, hi = lo - 0.5 * abs(lo) - 1e-30, hi + 0.5 * abs(hi) + 1e-30
        counts = torch.histc(x, bins=bins, min=lo, max=hi)
        result.append((np.linspace(lo, hi, bins + 1), counts.numpy()))
    return result


class LayerProbe:
    """Hooks on a list of modules that record each one's output and the
    gradient flowing into that output, removed when the `with` block ends.

        with LayerProbe(modules) as probe:
            loss = model(x).sum(); loss.backward()
        probe.outputs[i], probe.grads[i]

    It keeps whole tensors, so it is for tests and one-off inspection, not for
    the training loop.
    """

    def __init__(self, modules: Sequence[torch.nn.Module]):
        self.modules = list(modules)
        self.outputs: list[Tensor | None] = [None] * len(self.modules)
        self.grads: list[Tensor | None] = [None] * len(self.modules)
        self._handles = []

    def __enter__(self) -> "LayerProbe":
        for i, m in enumerate(self.modules):
            self._handles.append(m.register_forward_hook(self._forward_hook(i)))
            self._handles.append(m.register_full_backward_hook(self._backward_hook(i)))
        return self

    def _forward_hook(self, i):
        def hook(module, inputs, output):
            self.outputs[i] = output.detach().clone()
        return hook

    def _backward_hook(self, i):
        def hook(module, grad_input, grad_output):
            self.grads[i] = grad_output[0].detach().clone()
        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self):
        return iter(zip(self.outputs, self.grads))

    def __repr__(self) -> str:
        return f"LayerProbe({len(self)} modules, {'active' if self._handles else 'removed'})"

"""One recorded step's reductions: every tensor becomes (variance, mean) and,
for a tensor entering an activation, its flat-region fraction, the moment it
is seen.

Contiguous float32 CPU tensors go through the fused kernels of
`core.measure.kernels` (one read, float64 accumulation, exact redo where
float32 cannot be trusted), straight into a numpy table. Any other tensor
(CUDA, float16, a strided view) is reduced with PyTorch in float64 on its own
device, and its 0-d results wait there: `finish()` stacks them and copies
them to the host once, so a recorded step costs one transfer.
"""
from __future__ import annotations

import numpy as np
import torch

from core.measure import kernels

Tensor = torch.Tensor

VAR, MEAN, FLAT = 0, 1, 2  # the table's columns (column 3 is the kernels' dead-unit slot, unused here)


class Moments:
    """Rows of (var, mean, flat fraction), one per reduced tensor, for one step."""

    def __init__(self) -> None:
        self.table = np.full((64, 4), np.nan)
        self.rows = 0
        self._unit = np.empty(256, dtype=np.float32)
        self._pending: list[tuple[int, Tensor]] = []   # (row, stacked 0-d results on the tensor's device)

    def __len__(self) -> int:
        return self.rows

    def _row(self, n: int = 1) -> int:
        if self.rows + n > len(self.table):
            grown = np.full((2 * len(self.table) + n, 4), np.nan)
            grown[: self.rows] = self.table[: self.rows]
            self.table = grown
        r = self.rows
        self.rows += n
        return r

    @torch.no_grad()
    def add(self, t: Tensor, activation=None) -> int:
        """Reduce `t` (its flat-region fraction too, under `activation`); returns its row."""
        row = self._row()
        if kernels.usable([t]):
            rows, cols = kernels.shape2(t)
            flat = activation is not None
            if flat and cols > len(self._unit):
                self._unit = np.empty(cols, dtype=np.float32)
            flat_arg = kernels.flat_args(activation.flat_below, activation.flat_beyond) if flat else (
                np.float32(0), np.float32(0), 0)
            kernels.reduce3(self.table, self._unit, flat_arg, FLAT, (t.data_ptr(), rows, cols, row, VAR), flat)
            if not flat:
                self.table[row, FLAT] = np.nan
            return row
        x = t.detach().to(torch.float64)
        var, mean = torch.var_mean(x, correction=0) if x.numel() else (x.new_tensor(np.nan), x.new_tensor(np.nan))
        flat = (activation.flat(x).sum(dtype=torch.float64) / max(x.numel(), 1)) if activation is not None else (
            x.new_tensor(np.nan))
        self._pending.append((row, torch.stack([var, mean, flat])))
        return row

    @torch.no_grad()
    def add_delta(self, w: Tensor, prev: Tensor) -> tuple[int, int]:
        """Rows of W and of W − prev (the last update), in one pass where the kernels can read both."""
        row = self._row(2)
        if kernels.usable([w, prev]) and w.numel():
            shape = kernels.shape2(w)
            kernels.weight_delta(w.detach().numpy().reshape(shape), prev.numpy().reshape(shape),
                                 self.table[row:row + 2])
            self.table[row:row + 2, FLAT] = np.nan
            return row, row + 1
        self.rows -= 2
        return self.add(w), self.add(w.detach() - prev)

    def finish(self) -> np.ndarray:
        """The table of this step, (rows, 3): var, mean, flat fraction (NaN: not measured)."""
        by_device: dict[torch.device, list[tuple[int, Tensor]]] = {}
        for row, v in self._pending:  # a model split over devices: one transfer per device
            by_device.setdefault(v.device, []).append((row, v))
        for pending in by_device.values():
            values = torch.stack([v for _, v in pending]).cpu().numpy()  # the one transfer
            self.table[[r for r, _ in pending], :3] = values
        self._pending.clear()
        return self.table[: self.rows, :3]

    def clear(self) -> None:
        self.rows = 0
        self._pending.clear()
        self.table[:] = np.nan


def pooled(parts: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """(var, mean) over the union of several tensors' entries from each one's
    (var, mean) rows and entry counts: Chan et al.'s pairwise combination,
    which never forms E[x²] − E[x]² (that cancels when the mean dwarfs the spread)."""
    if len(parts) == 1:
        return float(parts[0, VAR]), float(parts[0, MEAN])
    n = counts.astype(np.float64)
    total = n.sum()
    if total == 0:
        return float("nan"), float("nan")
    with np.errstate(all="ignore"):
        mean = float((n * parts[:, MEAN]).sum() / total)
        var = float((n * (parts[:, VAR] + (parts[:, MEAN] - mean) ** 2)).sum() / total)
    return var, mean

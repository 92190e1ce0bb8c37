"""What the network predicts over the input plane: the decision boundary of a 2-D dataset.

For a dataset whose registry entry says its inputs are points of a plane (`Dataset.plane`: spirals, moons,
circles), the trainer evaluates the network on a fixed grid over that plane at its records (TensorFlow
Playground's view): the predicted class (argmax of the logits) and its probability at every grid point.

* `BoundaryProbe(cfg, data)`: the grid (over the training points, in the standardized coordinates the
  network sees), and `predict(net)`: one forward pass of the whole grid in eval mode, no gradient, no hook;
* `BoundaryRecorder`: the evaluations of a run, append-only like `core.run.record.Recorder`, and `view()`:
  a read-only `Boundary` (no copy);
* `Boundary`: grid axes, the steps evaluated, classes and confidence per step, and a sample of the training
  points to draw over it; `at(step)` is the latest evaluation at or before a step.

Cost: the grid is evaluated at most `MAX_EVALUATIONS` times a run (at step 0, at records spaced evenly, and
at the last), and its resolution shrinks for wide, deep networks so one evaluation costs at most
`MAX_MULTIPLY_ADDS` (a few milliseconds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from core.registry import DATASETS

GRID_SIDE = 40              # grid points per side: 1,600 points, enough for a smooth boundary
MIN_GRID_SIDE = 16          # below this a boundary says too little: not drawn
MAX_EVALUATIONS = 100       # grid evaluations per run: a live view, not a table
MAX_MULTIPLY_ADDS = 3e7     # per evaluation: a few ms on one CPU thread
POINTS_SHOWN = 400          # training points drawn over the grid
MARGIN = 0.15               # the grid extends this fraction of the data's range beyond it


def plane_dataset(cfg) -> bool:
    """Is `cfg`'s dataset one whose inputs are points of a plane (so a decision boundary can be drawn)?"""
    return DATASETS[cfg.dataset].plane


def grid_side(cfg) -> int:
    """Points per side of the grid for `cfg`'s network: GRID_SIDE, fewer where one evaluation would cost more
    than MAX_MULTIPLY_ADDS; 0 where even MIN_GRID_SIDE would (no boundary)."""
    sizes = [cfg.features, *cfg.hidden_widths, DATASETS[cfg.dataset].classes]
    per_point = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    side = min(GRID_SIDE, int(math.sqrt(MAX_MULTIPLY_ADDS / max(per_point, 1))))
    return side if side >= MIN_GRID_SIDE else 0


def evaluation_every(cfg) -> int:
    """The grid is evaluated at records whose step is a multiple of this (a multiple of `record_every`),
    so a run evaluates it at most ~MAX_EVALUATIONS times; and always at step 0 and at the last step."""
    if cfg.record_every <= 0:
        return 0
    records = cfg.steps // cfg.record_every + 1
    return cfg.record_every * max(1, math.ceil(records / (MAX_EVALUATIONS - 1)))


@dataclass(frozen=True, eq=False)
class Boundary:
    """A run's decision boundary: `classes[k]` is the predicted class at grid point (ys[i], xs[j]) after
    `steps[k]` optimizer steps, `confidence[k]` its softmax probability; `points`/`labels` a sample of the
    training data (standardized coordinates, as the network sees them)."""

    xs: np.ndarray          # (n,) grid x coordinates
    ys: np.ndarray          # (n,) grid y coordinates
    steps: np.ndarray       # (k,) int64
    classes: np.ndarray     # (k, n, n) uint8, row i = ys[i]
    confidence: np.ndarray  # (k, n, n) float32
    points: np.ndarray      # (m, 2) float32
    labels: np.ndarray      # (m,) int64
    n_classes: int

    def __repr__(self) -> str:
        return f"Boundary({len(self.steps)} evaluations of a {len(self.xs)}×{len(self.ys)} grid)"

    def __len__(self) -> int:
        return len(self.steps)

    def at(self, step: int | None = None) -> int | None:
        """Index of the latest evaluation at or before `step` (None: the latest of all); None if there is none."""
        if not len(self.steps):
            return None
        if step is None:
            return len(self.steps) - 1
        i = int(np.searchsorted(self.steps, step, side="right")) - 1
        return i if i >= 0 else None


class BoundaryProbe:
    """The fixed grid of one run and the network's predictions on it."""

    def __init__(self, cfg, x_train: torch.Tensor, y_train: torch.Tensor):
        self.cfg = cfg
        self.every = evaluation_every(cfg)
        side = grid_side(cfg)
        x = x_train.detach().cpu().numpy().astype(np.float64)
        lo, hi = x.min(axis=0), x.max(axis=0)
        pad = MARGIN * (hi - lo)
        self.xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], side).astype(np.float32)
        self.ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], side).astype(np.float32)
        gx, gy = np.meshgrid(self.xs, self.ys)  # row i = ys[i]
        self.grid = np.stack([gx.ravel(), gy.ravel()], axis=1)  # numpy: the probe pickles plainly (core.run.remote)
        take = np.linspace(0, len(x) - 1, min(POINTS_SHOWN, len(x))).astype(np.int64)
        self.points = x[take].astype(np.float32)
        self.labels = y_train.detach().cpu().numpy()[take].astype(np.int64)
        self.n_classes = DATASETS[cfg.dataset].classes

    @property
    def side(self) -> int:
        return len(self.xs)

    def wants(self, step: int) -> bool:
        return self.side > 0 and self.every > 0 and (step % self.every == 0 or step == self.cfg.steps)

    @torch.no_grad()
    def predict(self, net: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """(classes uint8, confidence float32), each (side, side): argmax of `net`'s logits on the grid and
        the softmax probability of that class, in eval mode (BatchNorm uses its running statistics, as for
        the held-out accuracy)."""
        was_training = net.training
        net.eval()
        try:
            logits = net(torch.from_numpy(self.grid))
        finally:
            net.train(was_training)
        probs = torch.softmax(logits, dim=1)
        conf, cls = probs.max(dim=1)
        n = self.side
        return cls.numpy().astype(np.uint8).reshape(n, n), conf.numpy().astype(np.float32).reshape(n, n)


class BoundaryRecorder:
    """A run's grid evaluations as they arrive: preallocated, append-only, `view()` without a copy."""

    def __init__(self, probe: BoundaryProbe):
        self.probe = probe
        n = probe.side
        cap = MAX_EVALUATIONS + 2
        self.n = 0
        self._steps = np.zeros(cap, dtype=np.int64)
        self._classes = np.zeros((cap, n, n), dtype=np.uint8)
        self._confidence = np.zeros((cap, n, n), dtype=np.float32)

    def __len__(self) -> int:
        return self.n

    def append(self, step: int, prediction: tuple[np.ndarray, np.ndarray]) -> None:
        if self.n == len(self._steps):  # more than planned (a resumed run): keep the latest in the last slot
            self.n -= 1
        self._steps[self.n] = step
        self._classes[self.n], self._confidence[self.n] = prediction
        self.n += 1

    def view(self) -> Boundary:
        p = self.probe
        parts = [self._steps[: self.n], self._classes[: self.n], self._confidence[: self.n]]
        for a in parts:
            a.flags.writeable = False
        return Boundary(p.xs, p.ys, *parts, p.points, p.labels, p.n_classes)


def boundary_probe(cfg, data) -> BoundaryProbe | None:
    """The probe for `cfg`'s run, or None: not a plane dataset, recording off, or a network too big for a grid."""
    if not plane_dataset(cfg) or cfg.record_every <= 0 or grid_side(cfg) == 0:
        return None
    return BoundaryProbe(cfg, data.x_train, data.y_train)


__all__ = ["GRID_SIDE", "MAX_EVALUATIONS", "Boundary", "BoundaryProbe", "BoundaryRecorder", "boundary_probe",
           "plane_dataset", "grid_side", "evaluation_every"]

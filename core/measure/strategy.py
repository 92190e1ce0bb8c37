"""The measuring interface: how a recorded step's tensors become its moments table.

A strategy watches one recorded step at a time, as the model's `Watcher`
(`core.models`):

    with strategy.record(keep=False):
        logits = model(x, watch=strategy)     # forward(block, z, h, a) per block, then output(logits)
        strategy.backward(loss, params)        # fills every .grad, like loss.backward()
        moments = strategy.finish(weight_grads, extra)

`moments` is the record's moments table (layers × `M_COLUMNS`: variance/mean
pairs of h, a, ∂L/∂h, ∂L/∂a, W, ∂L/∂W and of `extra`, the flat fractions);
`records.assemble` makes the record of it, derived columns included. With
`keep`, `strategy.kept` holds the step's h, a and ∂L/∂h (histograms) until the
next record starts.

Three strategies, each in its own module, one of them chosen per run before
its first step (`choose`), from the sizes of its layers:

* streaming (`core.measure.streaming`): large layers. Each tensor is reduced by
  a Numba kernel the moment it exists, while it is still in the CPU's cache:
  in the forward pass and in backward hooks. Nothing is kept.
* batched (`core.measure.batched`): small layers, where the cost of a call
  per tensor would dominate. h and W are reduced in the forward pass, and one
  kernel call reduces the rest of the record after the backward pass.
* torch (`core.measure.plain`): plain PyTorch, no Numba, the oracle's twin:
  the step's tensors are kept and reduced kind by kind. Also where Numba is
  missing, or a run records too little for loading the kernels to pay.

No strategy changes its methods or its kind during a run.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from core.measure.records import M_COLUMNS

Tensor = torch.Tensor

NAMES = ("streaming", "batched", "torch")
SMALL = 32768  # entries per tensor: below this, reducing as they appear costs more in per-call overhead than it saves
# Loading Numba and the kernels takes about a second; per record the PyTorch reductions cost about
# 2 ms and 5 ns a tensor entry more than the kernels (measured on the bench machine: 3 × 64 and
# 50 × 64 at batch 128, 20 × 256 at batch 256). A run that records less than that second's worth
# is measured with PyTorch.
KERNELS_LOAD_SECONDS = 1.0
TORCH_EXTRA_PER_RECORD = 2e-3
TORCH_EXTRA_PER_ENTRY = 5e-9


class Kept:
    """A record's tensors, kept for histograms when the record asked for them."""

    __slots__ = ("hs", "acts", "grad_hs")

    def __init__(self, layers: int = 0):
        self.hs: list = [None] * layers
        self.acts: list = [None] * layers
        self.grad_hs: list = [None] * layers


class Strategy(Protocol):
    """What the trainer sees of a measuring strategy (see the module's docstring)."""

    name: str
    kept: Kept

    def record(self, keep: bool = False) -> "Strategy": ...

    def __enter__(self) -> "Strategy": ...

    def __exit__(self, *exc) -> None: ...

    def forward(self, block: int, z: Tensor, h: Tensor, a: Tensor) -> None: ...

    def output(self, logits: Tensor) -> None: ...

    def backward(self, loss: Tensor, params: Sequence[Tensor]) -> None: ...

    def finish(self, weight_grads: Sequence[Tensor], extra: Sequence[Tensor] | None = None) -> np.ndarray: ...


class Measuring:
    """What every strategy shares: the moments table, the kept tensors, the `with` block."""

    name = "?"
    fused = True  # whether its reductions use the Numba kernels (the tracker follows)

    def __init__(self, activation, weights: Sequence[Tensor], chained: bool = True):
        self.activation = activation
        self.chained = chained  # the model's `Model.chained`: block l + 1's weight layer reads block l's a
        self.weights = list(weights)
        self.layers = len(self.weights)
        self.moments = np.full((self.layers, M_COLUMNS), math.nan)
        self.keep = False
        self.kept = Kept(self.layers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.layers} layers, {self.name!r})"

    def __len__(self) -> int:
        return self.layers

    def record(self, keep: bool = False):
        """Start measuring a step; use as `with strategy.record(keep): ...`."""
        self.keep = keep
        self.moments.fill(math.nan)
        self.kept = Kept(self.layers)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._drop()

    def _drop(self) -> None:
        """Drop what the record held: its tensors must not outlive the step (unless kept)."""

    def output(self, logits: Tensor) -> None:
        pass


def expected_records(steps: int, record_every: int) -> int:
    """How many records a run of `steps` takes (step 0, every `record_every`, the last)."""
    if record_every <= 0:
        return 0
    return 1 + steps // record_every + (1 if steps % record_every else 0)


def kernels_pay(records: int, entries_per_record: int) -> bool:
    """Would loading the kernels (once per process) save time over measuring with PyTorch?"""
    return records * (TORCH_EXTRA_PER_RECORD + TORCH_EXTRA_PER_ENTRY * entries_per_record) >= KERNELS_LOAD_SECONDS


def choose(activation, weights: Sequence[Tensor], batch_size: int, records: int | None = None,
           name: str | None = None, chained: bool = True, units: Sequence[int] | None = None) -> Measuring:
    """The strategy for a run, before its first step. `records`: how many the
    run will take (None: many); `name` (or the environment variable
    GFL_MEASURE) asks for one of `NAMES`, or "numba" for whichever of the
    two Numba strategies the layers' size picks, where it can run.
    `chained`: the model's `Model.chained`; `units`: each block's units (`Model.block_units`, where a
    weight's rows are not its block's units: an LSTM's W_hh has a row per gate unit), else W's rows."""
    name = name or os.environ.get("GFL_MEASURE") or None
    if name is not None and name not in (*NAMES, "numba"):
        raise ValueError(f"Unknown measuring strategy {name!r}: use one of {', '.join(NAMES)} or numba.")
    weights = list(weights)
    widths = list(units) if units else [w.shape[0] for w in weights if w.dim()] or [1]
    entries = batch_size * min(widths)
    if name == "numba":
        name = "streaming" if entries >= SMALL else "batched"
    elif name is None:
        per_record = 6 * batch_size * sum(widths)  # h, a, ∂L/∂h, ∂L/∂a of each layer, and more
        if records is not None and not kernels_pay(records, per_record):
            name = "torch"
        else:
            name = "streaming" if entries >= SMALL else "batched"
    if name != "torch":
        from core.measure.reductions import fused_kernels

        kernels = fused_kernels()
        if kernels is None or not kernels.usable(weights):
            name = "torch"  # no Numba here, or weights the kernels can't read
    if name == "streaming":
        from core.measure.streaming import Streaming

        return Streaming(activation, weights, chained)
    if name == "batched":
        from core.measure.batched import Batched

        return Batched(activation, weights, chained)
    from core.measure.plain import PlainTorch

    return PlainTorch(activation, weights, chained)

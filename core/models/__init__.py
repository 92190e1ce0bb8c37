"""Networks, as the measuring code sees them: a stack of blocks.

Each block hands over, the moment they exist, its pre-activation h (the
tensor fed into the activation), its activation a = φ(h), and z, the output
of its weight layer (h itself, or h before a normalisation): z's autograd
node is where a streaming measurement finds ∂L/∂z, ∂L/∂W and the block
below's ∂L/∂a together. A new architecture (residual, convolutional,
recurrent) is a new module implementing `Model`; the measuring strategies
(`core.measure.strategy`) need nothing else.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import torch

Tensor = torch.Tensor


class Watcher(Protocol):
    """What a model calls while it runs a recorded step (a measuring strategy)."""

    def forward(self, block: int, z: Tensor, h: Tensor, a: Tensor) -> None:
        """Block `block` (0 = nearest the input) has computed z, h and a = φ(h)."""

    def output(self, logits: Tensor) -> None:
        """The model's output, after the last block."""


class Model(Protocol):
    """A network whose blocks the measuring code can watch.

    A block is one row of the run's table (`RunConfig.rows`): a hidden
    layer, a residual block, a convolution, or a recurrent layer at one time
    step. Its h and a are 2-D (entries × units; a convolution's are
    (batch·pixels) × channels, so a unit is a channel). `chained` says that
    each block's weight layer reads the block below's a and the output layer
    reads the last a (the MLP): a streaming strategy then finds ∂L/∂a on the
    next weight layer's autograd node; otherwise it asks for it with tensor
    hooks. `extra_statistics()`, after the backward pass of a recorded step,
    gives the architecture's own columns (`core.measure.records.ARCH_COLUMNS`)
    as column → one value per row; `probe_parameter()` is a parameter near
    the input whose gradient every overflow of the backward pass reaches."""

    activation: object  # core.registry.Activation: φ, its flat region and its slope
    chained: bool

    def block_weights(self) -> Sequence[Tensor]:
        """Each block's weight W, in order (what Var(W), ∂L/∂W and the update ratio are of)."""

    def __call__(self, x: Tensor, watch: Watcher | None = None) -> Tensor:
        """The logits; `watch` sees every block's z, h and a, then the logits."""

    def probe_parameter(self) -> Tensor:
        """A small parameter near the input: a non-finite backward pass shows in its gradient's sum."""

    # Optional: `block_units() -> list[int]`, each block's units (h's columns), where they are not its weight's
    # rows (an LSTM's W_hh has a row per gate unit). The measuring strategy is chosen by h's size.

    def extra_statistics(self, fused: bool | None = None) -> dict:
        """The architecture's own columns of the last recorded step ({} for none); `fused` as the
        measuring strategy's (False: PyTorch's reductions only)."""


__all__ = ["Model", "Watcher"]

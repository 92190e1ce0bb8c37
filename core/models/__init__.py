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
    """A network whose blocks the measuring code can watch."""

    activation: object  # core.registry.Activation: φ, its flat region and its slope

    def block_weights(self) -> Sequence[Tensor]:
        """Each block's weight W, in order (what Var(W), ∂L/∂W and the update ratio are of)."""

    def __call__(self, x: Tensor, watch: Watcher | None = None) -> Tensor:
        """The logits; `watch` sees every block's z, h and a, then the logits."""


__all__ = ["Model", "Watcher"]

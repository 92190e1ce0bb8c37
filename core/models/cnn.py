"""The CNN: image → [Conv3×3 "same" (→ BatchNorm) → φ] × depth → global average pool → Linear(classes).

A `core.models.Model`. Each convolution is one row of the table, measured over
batch × channels × pixels: the model computes in channels-last memory, so a
block's z, h and a are handed to the measuring strategy as 2-D views of
(batch · pixels) × channels without a copy, and a unit (what `dead_units`
counts) is a channel. BatchNorm over that view is BatchNorm2d's normalization
(per channel, over the batch and the pixels).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from core.registry import ACTIVATIONS, DATASETS, INITIALIZERS
from core.schema import RunConfig

KERNEL = 3


class CNN(nn.Module):
    """`depth` 3×3 convolutions of `width` channels with "same" padding (module docstring)."""

    chained = False  # the output layer reads the pooled a, and a conv's autograd node is not a Linear's

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        self.image_shape = DATASETS[cfg.dataset].image_shape
        channels = (self.image_shape[0], *(cfg.width,) * cfg.depth)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, KERNEL, padding=KERNEL // 2, bias=cfg.bias)
                                   for a, b in zip(channels[:-1], channels[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(cfg.width) for _ in range(cfg.depth)) if cfg.batchnorm else None
        self.activation = ACTIVATIONS[cfg.activation]
        self.out = nn.Linear(cfg.width, cfg.classes)

    def block_weights(self) -> list[torch.Tensor]:
        return [conv.weight for conv in self.convs]

    def probe_parameter(self) -> torch.Tensor:
        first = self.convs[0]
        return first.bias if first.bias is not None else first.weight

    def extra_statistics(self, fused: bool | None = None) -> dict:
        return {}  # no columns of its own

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Flat examples (batch, pixels) as channels-last images (batch, channels, height, width)."""
        c, hgt, wid = self.image_shape
        return x.reshape(-1, c, hgt, wid).contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, watch=None) -> torch.Tensor:
        phi, norms = self.activation.fn, self.norms
        x = self.images(x)
        batch, _, hgt, wid = x.shape
        a = None
        for l, conv in enumerate(self.convs):
            z4 = conv(x)
            if not z4.is_contiguous(memory_format=torch.channels_last):
                z4 = z4.contiguous(memory_format=torch.channels_last)
            channels = z4.shape[1]
            z = z4.permute(0, 2, 3, 1).reshape(-1, channels)  # a view: (batch · pixels) × channels
            h = z if norms is None else norms[l](z)
            a = phi(h)
            if watch is not None:
                watch.forward(l, z, h, a)
            x = a.view(batch, hgt, wid, channels).permute(0, 3, 1, 2)  # channels-last NCHW, no copy
        pooled = a.view(batch, hgt * wid, -1).mean(dim=1)  # global average pooling
        logits = self.out(pooled)
        if watch is not None:
            watch.output(logits)
        return logits

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"convolutions={c.depth}, channels={c.width}, activation={c.activation}, init={c.init}, "
                f"batchnorm={c.batchnorm}, sigma_w={c.sigma_w}, sigma_b={c.sigma_b}")


def build_network(cfg: RunConfig, calibration: torch.Tensor | None = None) -> CNN:
    """Build and initialize the CNN for `cfg`, deterministically from cfg.seed: every convolution by
    the chosen initializer (fan_in = in_channels × 9), the output layer by PyTorch's default."""
    gen = torch.Generator().manual_seed(cfg.seed)
    net = CNN(cfg)
    ini = INITIALIZERS[cfg.init]
    with torch.no_grad():
        for conv in net.convs:
            ini.apply(conv, cfg, gen)
        out_gen = torch.Generator().manual_seed(cfg.seed + 7919)
        nn.init.kaiming_uniform_(net.out.weight, a=math.sqrt(5), generator=out_gen)  # = nn.Linear's default
        bound = 1 / math.sqrt(net.out.in_features)
        nn.init.uniform_(net.out.bias, -bound, bound, generator=out_gen)
    return net

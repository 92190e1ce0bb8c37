"""The residual MLP: input → Linear → [x ← x + α·F(x)] × depth → Linear(classes), a `core.models.Model`.

F = Linear → [BatchNorm1d] → φ → Linear. A block is one row of the table: the
measuring strategy watches the branch's first Linear (z), the input of φ (h)
and φ(h) (a), as in an MLP's layer; the model itself measures the residual
stream x after the block, ∂L/∂x there and the branch's contribution α·F(x)
(`extra_statistics`: the `stream_var`, `grad_stream_var` and `branch_var`
columns). The scaling is a `core.registry.RESIDUAL_SCALES` entry: α = 1,
α = 1/√depth, Fixup (Zhang et al., 2019) or ReZero (Bachlechner et al., 2020).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from core.measure.reductions import moments_per_tensor
from core.registry import ACTIVATIONS, INITIALIZERS, RESIDUAL_SCALES
from core.schema import RunConfig


class ResMLP(nn.Module):
    """Residual blocks x ← x + α·F(x) on a stream of `width` units (module docstring).

    Fixup adds four scalars per block, as in the paper: a bias before each
    Linear and before φ, a multiplier (from 1) and a bias after the branch;
    its branch Linears then have no bias vectors of their own."""

    chained = False  # a block's first Linear reads the residual stream, not the block below's a

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        w, L = cfg.width, cfg.depth
        self.scale = RESIDUAL_SCALES[cfg.residual_scale]
        branch_bias = cfg.bias and not self.scale.fixup
        self.inp = nn.Linear(cfg.features, w, bias=cfg.bias)
        self.first = nn.ModuleList(nn.Linear(w, w, bias=branch_bias) for _ in range(L))
        self.second = nn.ModuleList(nn.Linear(w, w, bias=branch_bias) for _ in range(L))
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for _ in range(L)) if cfg.batchnorm else None
        self.activation = ACTIVATIONS[cfg.activation]
        self.out = nn.Linear(w, cfg.classes)
        if self.scale.learnable:
            self.alpha = nn.Parameter(torch.full((L,), self.scale.alpha(L)))
        else:
            self.register_buffer("alpha", torch.full((L,), self.scale.alpha(L)), persistent=False)
        # Fixup's scalars per block: bias before the first Linear, before φ, before the second Linear, after
        self.fixup_bias = nn.Parameter(torch.zeros(L, 4)) if self.scale.fixup else None
        self.fixup_mult = nn.Parameter(torch.ones(L)) if self.scale.fixup else None
        self._streams: list = []      # a recorded step's x after each block and α·F(x)
        self._branches: list = []
        self._grad_streams: list = []

    def block_weights(self) -> list[torch.Tensor]:
        return [linear.weight for linear in self.first]

    def probe_parameter(self) -> torch.Tensor:
        return self.inp.bias if self.inp.bias is not None else self.inp.weight

    def forward(self, x: torch.Tensor, watch=None) -> torch.Tensor:
        phi, norms, fb, fm = self.activation.fn, self.norms, self.fixup_bias, self.fixup_mult
        alpha = self.alpha
        x = self.inp(x)
        watched = watch is not None and torch.is_grad_enabled()
        if watch is not None:
            self._streams, self._branches = [], []
            self._grad_streams = [None] * len(self.first)
        for l, (first, second) in enumerate(zip(self.first, self.second)):
            z = first(x if fb is None else x + fb[l, 0])
            h = z if norms is None else norms[l](z)
            if fb is not None:
                h = h + fb[l, 1]
            a = phi(h)
            if watch is not None:
                watch.forward(l, z, h, a)
            f = second(a if fb is None else a + fb[l, 2])
            if fb is not None:
                f = f * fm[l] + fb[l, 3]
            branch = alpha[l] * f
            x = x + branch
            if watch is not None:
                self._branches.append(branch.detach())
                self._streams.append(x.detach())
                if watched and x.requires_grad:
                    x.register_hook(self._grad_hook(l))
        logits = self.out(x)
        if watch is not None:
            watch.output(logits)
        return logits

    def _grad_hook(self, l: int):
        def hook(grad):
            self._grad_streams[l] = grad
        return hook

    def extra_statistics(self, fused: bool | None = None) -> dict:
        """Var(x) after each block, Var(∂L/∂x) there and Var(α·F(x)) of the last recorded step."""
        if not self._streams:
            return {}
        out = {"stream_var": moments_per_tensor(self._streams, fused=fused)[0],
               "branch_var": moments_per_tensor(self._branches, fused=fused)[0]}
        grads = self._grad_streams
        out["grad_stream_var"] = (moments_per_tensor(grads, fused=fused)[0] if all(g is not None for g in grads)
                                  else np.full(len(grads), math.nan))
        self._streams, self._branches, self._grad_streams = [], [], []
        return out

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"blocks={c.depth}, width={c.width}, residual_scale={c.residual_scale}, activation={c.activation}, "
                f"init={c.init}, batchnorm={c.batchnorm}")


def build_network(cfg: RunConfig, calibration: torch.Tensor | None = None) -> ResMLP:
    """Build and initialize the residual MLP for `cfg`, deterministically from cfg.seed.

    The input projection and both Linears of every branch get the chosen
    initializer; under Fixup the branch's first Linear is then multiplied by
    depth^(-1/2) and its second set to zero. The output layer keeps
    PyTorch's default, as in the MLP."""
    gen = torch.Generator().manual_seed(cfg.seed)
    net = ResMLP(cfg)
    ini = INITIALIZERS[cfg.init]
    scale = net.scale
    with torch.no_grad():
        ini.apply(net.inp, cfg, gen)
        for first, second in zip(net.first, net.second):
            ini.apply(first, cfg, gen)
            first.weight.mul_(scale.branch_in_scale(cfg.depth))
            if scale.zero_last:
                nn.init.zeros_(second.weight)
                if second.bias is not None:
                    nn.init.zeros_(second.bias)
            else:
                ini.apply(second, cfg, gen)
        out_gen = torch.Generator().manual_seed(cfg.seed + 7919)
        nn.init.kaiming_uniform_(net.out.weight, a=math.sqrt(5), generator=out_gen)  # = nn.Linear's default
        bound = 1 / math.sqrt(net.out.in_features)
        nn.init.uniform_(net.out.bias, -bound, bound, generator=out_gen)
    return net

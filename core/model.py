"""The network: input → [Linear (→ BatchNorm1d) → φ] × depth → Linear(classes)."""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import RunConfig
from .init import INIT_FUNCTIONS, lsuv_
from .registry import ACTIVATIONS


class MLP(nn.Module):
    """A plain fully connected network whose forward pass can keep every h and a.

    `forward(x, keep=True)` also returns the lists `hs` (the input of each
    activation, after BatchNorm when on) and `acts` (φ(h)): the engine reads
    its statistics from these, so no hooks are needed on the hot path.
    """

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        sizes = (cfg.features, *cfg.hidden_widths)
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=cfg.bias) for a, b in zip(sizes[:-1], sizes[1:]))
        # affine BN starts at γ=1, β=0: it normalizes h to mean 0, variance 1 per unit.
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in cfg.hidden_widths) if cfg.batchnorm else None
        self.activation = ACTIVATIONS[cfg.activation]
        self.out = nn.Linear(sizes[-1], cfg.classes)

    def preact(self, l: int, x: torch.Tensor) -> torch.Tensor:
        h = self.linears[l](x)
        return self.norms[l](h) if self.norms is not None else h

    def hidden_forward(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """The activations of hidden layer `upto` - 1 (the input for upto=0)."""
        for l in range(len(self.linears) if upto is None else upto):
            x = self.activation.fn(self.preact(l, x))
        return x

    def forward(self, x: torch.Tensor, keep: bool = False, probe=None):
        """Logits; with `keep`, also every h and a; a `probe` (probes.StepProbe)
        sees each layer's h and a as soon as they exist."""
        if probe is not None:
            for l, linear in enumerate(self.linears):
                z = linear(x)
                h = self.norms[l](z) if self.norms is not None else z
                x = self.activation.fn(h)
                probe.on_forward(l, z, h, x, linear.weight)
                del z, h  # free before the next layer's output is allocated, as the plain pass does
            logits = self.out(x)
            probe.on_output(logits)
            return logits
        if not keep:
            return self.out(self.hidden_forward(x))
        hs, acts = [], []
        for l in range(len(self.linears)):
            h = self.preact(l, x)
            x = self.activation.fn(h)
            hs.append(h)
            acts.append(x)
        return self.out(x), hs, acts

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"depth={len(self.linears)}, activation={c.activation}, init={c.init}, "
                f"batchnorm={c.batchnorm}, sigma_w={c.sigma_w}, sigma_b={c.sigma_b}")


def build_network(cfg: RunConfig, calibration: torch.Tensor | None = None) -> MLP:
    """Build and initialize the network for `cfg`, deterministically from cfg.seed.

    Every hidden Linear gets the chosen initializer; the output layer keeps
    PyTorch's default (it is not what the experiment is about). LSUV needs a
    `calibration` batch of inputs.
    """
    # Only explicit generators: runs in parallel threads must not share the
    # global RNG, or a run's weights would depend on what else is running.
    gen = torch.Generator().manual_seed(cfg.seed)
    net = MLP(cfg)
    init_fn = INIT_FUNCTIONS[cfg.init]
    with torch.no_grad():
        for linear in net.linears:
            init_fn(linear, cfg, gen)
        out_gen = torch.Generator().manual_seed(cfg.seed + 7919)
        nn.init.kaiming_uniform_(net.out.weight, a=math.sqrt(5), generator=out_gen)  # = nn.Linear's default
        bound = 1 / math.sqrt(net.out.in_features)
        nn.init.uniform_(net.out.bias, -bound, bound, generator=out_gen)
    if cfg.init == "lsuv":
        if calibration is None:
            raise ValueError("init 'lsuv' needs a calibration batch of inputs.")
        net.train()
        lsuv_(net, calibration)
    return net

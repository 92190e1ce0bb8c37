"""The MLP: input → [Linear (→ BatchNorm1d) → φ] × depth → Linear(classes), a `core.models.Model`."""
from __future__ import annotations

import math

import torch
from torch import nn

from core.schema import RunConfig
from core.models.init import INIT_FUNCTIONS
from core.registry import ACTIVATIONS, INITIALIZERS


class MLP(nn.Module):
    """A plain fully connected network whose forward pass shows each layer's tensors.

    A block is Linear (→ BatchNorm1d) → φ. `forward(x, watch=strategy)` hands
    every block's z, h and a to a measuring strategy (`core.models.Watcher`)
    the moment they exist (the engine's recorded steps);
    `forward(x, keep=True)` also returns the lists `hs` (the input of each
    activation, after BatchNorm when on) and `acts` (φ(h)).
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

    chained = True  # layer l + 1's Linear reads layer l's a; the output layer reads the last a

    def block_weights(self) -> list[torch.Tensor]:
        return [linear.weight for linear in self.linears]

    def probe_parameter(self) -> torch.Tensor:
        first = self.linears[0]
        return first.bias if first.bias is not None else first.weight

    def extra_statistics(self, fused: bool | None = None) -> dict:
        return {}  # no columns of its own

    def hidden_forward(self, x: torch.Tensor, upto: int | None = None, watch=None, kept: tuple | None = None):
        """The activations of hidden layer `upto` - 1 (the input for upto=0;
        the last hidden layer's for None). `watch` (a `core.models.Watcher`)
        sees each layer's z (the Linear's output), h and a as soon as they
        exist; `kept` = (hs, acts) lists collect every h and a."""
        phi, norms = self.activation.fn, self.norms
        for l, linear in enumerate(self.linears[:upto] if upto is not None else self.linears):
            z = linear(x)
            h = z if norms is None else norms[l](z)
            x = phi(h)
            if watch is not None:
                watch.forward(l, z, h, x)
            if kept is not None:
                kept[0].append(h)
                kept[1].append(x)
            del z, h  # freed before the next layer's output is allocated (unless kept)
        return x

    def forward(self, x: torch.Tensor, keep: bool = False, watch=None):
        """Logits; with `keep`, also every h (the input of each activation,
        after BatchNorm when on) and a (φ(h)); `watch` (a
        `core.models.Watcher`) sees each layer's z, h and a as soon as they exist."""
        kept = ([], []) if keep else None
        logits = self.out(self.hidden_forward(x, watch=watch, kept=kept))
        if watch is not None:
            watch.output(logits)
        return (logits, *kept) if keep else logits

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
    calibrate = INITIALIZERS[cfg.init].calibrate  # a data-driven initializer (LSUV) rescales on a batch
    if calibrate is not None:
        if calibration is None:
            raise ValueError(f"init {cfg.init!r} needs a calibration batch of inputs.")
        net.train()
        calibrate(net, calibration)
    return net

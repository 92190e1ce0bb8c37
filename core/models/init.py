"""Weight initializers: `INIT_FUNCTIONS[name](linear, cfg, generator)`.

The standard schemes call `torch.nn.init` (with `calculate_gain` where a gain
is part of the scheme); only the mean-field `normal`/`uniform`
parameterization, the σ_w multiplier and LSUV are ours. Every function runs
under `torch.no_grad()` and changes the layer in place.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from core.registry import INITIALIZERS

InitFn = Callable[[nn.Linear, "RunConfig", torch.Generator], None]  # noqa: F821


def _bias_(layer: nn.Linear, cfg, gen: torch.Generator) -> None:
    if layer.bias is None:
        return
    kind = INITIALIZERS[cfg.init].bias
    fan_in = layer.in_features
    if kind == "zero":
        nn.init.zeros_(layer.bias)
    elif kind == "torch_default":
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    elif cfg.init == "uniform":
        bound = cfg.sigma_b * math.sqrt(3)
        nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    else:
        nn.init.normal_(layer.bias, 0.0, cfg.sigma_b, generator=gen)


def _scaled(fn: Callable[[torch.Tensor, torch.Generator], None]) -> InitFn:
    """A torch.nn.init scheme, its std multiplied by σ_w (1 = as published)."""

    def init_(layer: nn.Linear, cfg, gen: torch.Generator) -> None:
        fn(layer.weight, gen)
        if cfg.sigma_w != 1.0:
            layer.weight.mul_(cfg.sigma_w)
        _bias_(layer, cfg, gen)

    return init_


def _normal_(layer: nn.Linear, cfg, gen) -> None:
    """Mean-field parameterization: W ~ N(0, σ_w²/fan_in)."""
    nn.init.normal_(layer.weight, 0.0, cfg.sigma_w / math.sqrt(layer.in_features), generator=gen)
    _bias_(layer, cfg, gen)


def _uniform_(layer: nn.Linear, cfg, gen) -> None:
    """W ~ U(±σ_w·√(3/fan_in)): the same variance as `normal`."""
    bound = cfg.sigma_w * math.sqrt(3.0 / layer.in_features)
    nn.init.uniform_(layer.weight, -bound, bound, generator=gen)
    _bias_(layer, cfg, gen)


def _lecun_uniform(w, gen):
    bound = math.sqrt(3.0 / w.shape[1])
    nn.init.uniform_(w, -bound, bound, generator=gen)


INIT_FUNCTIONS: dict[str, InitFn] = {
    "zeros": _scaled(lambda w, g: nn.init.zeros_(w)),
    "normal": _normal_,
    "uniform": _uniform_,
    "xavier_uniform": _scaled(lambda w, g: nn.init.xavier_uniform_(w, gain=1.0, generator=g)),
    "xavier_normal": _scaled(lambda w, g: nn.init.xavier_normal_(w, gain=1.0, generator=g)),
    "kaiming_uniform": _scaled(lambda w, g: nn.init.kaiming_uniform_(w, a=0, mode="fan_in", nonlinearity="relu", generator=g)),
    "kaiming_normal": _scaled(lambda w, g: nn.init.kaiming_normal_(w, a=0, mode="fan_in", nonlinearity="relu", generator=g)),
    "kaiming_normal_fan_out": _scaled(lambda w, g: nn.init.kaiming_normal_(w, a=0, mode="fan_out", nonlinearity="relu", generator=g)),
    "lecun_normal": _scaled(lambda w, g: nn.init.normal_(w, 0.0, 1 / math.sqrt(w.shape[1]), generator=g)),
    "lecun_uniform": _scaled(_lecun_uniform),
    "orthogonal": _scaled(lambda w, g: nn.init.orthogonal_(w, gain=1.0, generator=g)),
    # nn.Linear.reset_parameters: kaiming_uniform_(a=√5) = U(±1/√fan_in).
    "torch_default": _scaled(lambda w, g: nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)),
    # LSUV starts orthogonal; `lsuv_` rescales once the whole network exists.
    "lsuv": _scaled(lambda w, g: nn.init.orthogonal_(w, gain=1.0, generator=g)),
}
assert set(INIT_FUNCTIONS) == set(INITIALIZERS), "every registered initializer needs a function"


def weight_std(name: str, fan_in: int, fan_out: int, sigma_w: float = 1.0) -> float | None:
    """The std of one weight that `name` draws (None for data-driven LSUV).

    The formulas the tests hold the initializers to, and what the theory uses
    as the effective σ_w² = fan_in · Var(W).
    """
    gain_relu = math.sqrt(2.0)
    std = {
        "zeros": 0.0,
        "normal": 1 / math.sqrt(fan_in),
        "uniform": 1 / math.sqrt(fan_in),
        "xavier_uniform": math.sqrt(2.0 / (fan_in + fan_out)),
        "xavier_normal": math.sqrt(2.0 / (fan_in + fan_out)),
        "kaiming_uniform": gain_relu / math.sqrt(fan_in),
        "kaiming_normal": gain_relu / math.sqrt(fan_in),
        "kaiming_normal_fan_out": gain_relu / math.sqrt(fan_out),
        "lecun_normal": 1 / math.sqrt(fan_in),
        "lecun_uniform": 1 / math.sqrt(fan_in),
        # rows (or columns) of unit norm: each entry has variance 1/max(fan_in, fan_out)
        "orthogonal": 1 / math.sqrt(max(fan_in, fan_out)),
        "torch_default": 1 / math.sqrt(3 * fan_in),
        "lsuv": None,
    }[name]
    return None if std is None else std * sigma_w


def bias_std(name: str, fan_in: int, sigma_b: float = 0.0) -> float:
    kind = INITIALIZERS[name].bias
    if kind == "zero":
        return 0.0
    if kind == "torch_default":
        return 1 / math.sqrt(3 * fan_in)
    return sigma_b


@torch.no_grad()
def lsuv_(net, x: torch.Tensor, tol: float = 0.1, max_iter: int = 10) -> list[float]:
    """Layer-sequential unit-variance init (Mishkin & Matas, 2016), in place.

    Weights are already orthogonal. Going from the input up, divide each
    layer's weight by the std of its output (the Linear's output, before
    BatchNorm) on the batch `x` until that variance is within `tol` of 1, at
    most `max_iter` times. Returns each layer's final output variance.
    """
    final = []
    # Calibration batches must not leak into BatchNorm's running statistics.
    norms = list(net.norms) if net.norms is not None else []
    saved = [(n.running_mean.clone(), n.running_var.clone(), n.num_batches_tracked.clone()) for n in norms]
    for l, linear in enumerate(net.linears):
        inputs = net.hidden_forward(x, upto=l)
        var = float(linear(inputs).double().var(unbiased=False))
        for _ in range(max_iter):
            if not math.isfinite(var) or var == 0.0 or abs(var - 1.0) < tol:
                break
            linear.weight.div_(math.sqrt(var))
            if linear.bias is not None:
                linear.bias.zero_()
            var = float(linear(inputs).double().var(unbiased=False))  # after this rescale
        final.append(var)
    for n, (mean, v, count) in zip(norms, saved):
        n.running_mean.copy_(mean)
        n.running_var.copy_(v)
        n.num_batches_tracked.copy_(count)
    return final

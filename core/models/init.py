"""The building blocks of the initializers; the schemes themselves are entries of `core.registry.INITIALIZERS`.

An entry's `weight(w, sigma_w, generator)` draws a hidden weight in place
and its `bias.draw(b, fan_in, sigma_b, generator)` its bias; these are the
pieces they are made of. The standard schemes call `torch.nn.init` (with
`calculate_gain` where a gain is part of the scheme) through `scaled`; only
the mean-field `normal`/`uniform` parameterization, the σ_w multiplier and
LSUV are ours. Everything here runs under `torch.no_grad()` (the callers
make sure) and changes tensors in place.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Callable

import torch
from torch import nn

Tensor = torch.Tensor
WeightFn = Callable[[Tensor, float, torch.Generator], None]      # (W, σ_w, generator), in place
BiasFn = Callable[[Tensor, int, float, torch.Generator], None]   # (b, fan_in, σ_b, generator), in place


def scaled(scheme: Callable[[Tensor, torch.Generator], None]) -> WeightFn:
    """A published scheme drawn as is, then multiplied by σ_w (1 = as published)."""

    def draw_(w: Tensor, sigma_w: float, gen: torch.Generator) -> None:
        scheme(w, gen)
        if sigma_w != 1.0:
            w.mul_(sigma_w)

    return draw_


def fan_in(w: Tensor) -> int:
    """Inputs of one output unit: a Linear's in_features, a convolution's in_channels × kernel size."""
    return w[0].numel()


def normal_fan_in_(w: Tensor, sigma_w: float, gen: torch.Generator) -> None:
    """Mean-field parameterization: W ~ N(0, σ_w²/fan_in)."""
    nn.init.normal_(w, 0.0, sigma_w / math.sqrt(fan_in(w)), generator=gen)


def uniform_fan_in_(w: Tensor, sigma_w: float, gen: torch.Generator) -> None:
    """W ~ U(±σ_w·√(3/fan_in)): the same variance as `normal_fan_in_`."""
    bound = sigma_w * math.sqrt(3.0 / fan_in(w))
    nn.init.uniform_(w, -bound, bound, generator=gen)


def lecun_uniform_(w: Tensor, gen: torch.Generator) -> None:
    bound = math.sqrt(3.0 / fan_in(w))
    nn.init.uniform_(w, -bound, bound, generator=gen)


def lecun_normal_(w: Tensor, gen: torch.Generator) -> None:
    nn.init.normal_(w, 0.0, 1 / math.sqrt(fan_in(w)), generator=gen)


def delta_orthogonal_(w: Tensor, gen: torch.Generator) -> None:
    """Delta-orthogonal (Xiao et al., 2018): a convolution's kernel is zero except at its centre, which
    holds a (semi-)orthogonal out_channels × in_channels matrix; the convolution then acts on every
    pixel as that matrix does, so the network's input-output Jacobian can be exactly isometric.
    On a Linear (no spatial dimensions) it is the plain orthogonal matrix."""
    if w.dim() <= 2:
        nn.init.orthogonal_(w, gain=1.0, generator=gen)
        return
    centre = tuple(k // 2 for k in w.shape[2:])
    q = torch.empty(w.shape[0], w.shape[1], dtype=w.dtype)
    nn.init.orthogonal_(q, gain=1.0, generator=gen)
    w.zero_()
    w[(slice(None), slice(None), *centre)] = q


# -- biases ------------------------------------------------------------------------------------------
def zero_bias_(b: Tensor, fan_in: int, sigma_b: float, gen: torch.Generator) -> None:
    nn.init.zeros_(b)


def normal_bias_(b: Tensor, fan_in: int, sigma_b: float, gen: torch.Generator) -> None:
    nn.init.normal_(b, 0.0, sigma_b, generator=gen)


def uniform_bias_(b: Tensor, fan_in: int, sigma_b: float, gen: torch.Generator) -> None:
    bound = sigma_b * math.sqrt(3)
    nn.init.uniform_(b, -bound, bound, generator=gen)


def torch_default_bias_(b: Tensor, fan_in: int, sigma_b: float, gen: torch.Generator) -> None:
    """What nn.Linear.reset_parameters does: U(±1/√fan_in)."""
    bound = 1 / math.sqrt(fan_in)
    nn.init.uniform_(b, -bound, bound, generator=gen)


class _ByName(Mapping):
    """name → the entry's `apply(layer, cfg, generator)`, read from the registry at each lookup.

    Kept for `core.models.mlp`, which predates `INITIALIZERS[name].apply`;
    a lookup, not a copy, so an entry registered later is found too.
    """

    def _registry(self):
        from core.registry import INITIALIZERS  # the registry builds its entries from this module

        return INITIALIZERS

    def __getitem__(self, name: str):
        return self._registry()[name].apply

    def __iter__(self):
        return iter(self._registry())

    def __len__(self) -> int:
        return len(self._registry())


INIT_FUNCTIONS: Mapping = _ByName()


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


# The same scheme written out for the generated scripts (`core.io.codegen`), without this project's helpers.
DELTA_ORTHOGONAL_TORCH = '''
@torch.no_grad()
def delta_orthogonal_(w, gain=1.0):
    """Delta-orthogonal (Xiao et al., 2018): an orthogonal out × in matrix at the
    kernel's centre, zeros elsewhere; on a Linear weight, plain orthogonal."""
    if w.dim() <= 2:
        return nn.init.orthogonal_(w, gain=gain)
    q = torch.empty(w.shape[0], w.shape[1])
    nn.init.orthogonal_(q, gain=gain)
    w.zero_()
    w[:, :, w.shape[2] // 2, w.shape[3] // 2] = q
    return w
'''

DELTA_ORTHOGONAL_KERAS = '''
class DeltaOrthogonal(keras.initializers.Initializer):
    """Delta-orthogonal (Xiao et al., 2018): an orthogonal in × out matrix at the
    kernel's centre, zeros elsewhere; on a Dense kernel, plain orthogonal."""

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype=None):
        ortho = keras.initializers.Orthogonal(gain=self.gain, seed=self.seed)
        if len(shape) == 2:
            return ortho(shape, dtype=dtype)
        kh, kw, cin, cout = shape  # Keras kernels are (height, width, in, out)
        centre = keras.ops.reshape(ortho((cin, cout), dtype=dtype), (1, 1, cin, cout))
        mask = np.zeros((kh, kw, 1, 1), dtype="float32")
        mask[kh // 2, kw // 2] = 1.0
        return keras.ops.convert_to_tensor(mask, dtype=dtype) * centre

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}
'''

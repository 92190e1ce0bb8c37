"""Independent oracles for the engine's statistics.

A manual layer-by-layer forward pass (x @ W.T + b, the BatchNorm formula, φ written out
from its definition), gradients from `torch.autograd.grad` on the same loss, and every
statistic computed over all entries in float64 with plain numpy — none of it goes through
`core.measure.probes`, `core.measure.kernels` or the network's own forward.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _tanh(h):
    e = torch.exp(-2 * h.abs())  # never overflows
    return torch.sign(h) * (1 - e) / (1 + e)


def _sigmoid(h):
    e = torch.exp(-h.abs())
    return torch.where(h >= 0, 1 / (1 + e), e / (1 + e))


# φ from its textbook definition, not from core.registry
PHI = {
    "linear": lambda h: h,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "relu": lambda h: torch.where(h > 0, h, torch.zeros_like(h)),
    "leaky_relu": lambda h: torch.where(h > 0, h, 0.01 * h),
    "elu": lambda h: torch.where(h > 0, h, torch.expm1(torch.clamp(h, max=0))),
    "selu": lambda h: SELU_LAMBDA * torch.where(h > 0, h, SELU_ALPHA * torch.expm1(torch.clamp(h, max=0))),
    "gelu": lambda h: 0.5 * h * (1 + torch.erf(h / math.sqrt(2))),
    "silu": lambda h: h * _sigmoid(h),
    "softplus": lambda h: torch.clamp(h, min=0) + torch.log1p(torch.exp(-h.abs())),
}

BN_EPS = 1e-5


def next_batch(trainer):
    """The batch the trainer's next step will use (from a copy of its sampler)."""
    idx = copy.deepcopy(trainer.sampler).next()
    return trainer.data.x_train[idx], trainer.data.y_train[idx]


def moments(t: torch.Tensor) -> tuple[float, float]:
    """(mean, variance) over all entries, float64, two-pass."""
    x = t.detach().double().numpy().ravel()
    m = x.mean()
    return float(m), float(((x - m) ** 2).mean())


def flat_counts(h: torch.Tensor, activation) -> tuple[float, float]:
    """(saturation, dead_units) by the boolean-mask definition of `Activation.flat`."""
    mask = activation.flat(h.detach()).numpy()
    return float(mask.mean()), float(mask.all(axis=0).mean())


def manual_step(net, activation_name: str, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Forward by hand, backward by autograd.grad; returns the tensors (float32, like the engine)."""
    L = len(net.linears)
    Ws = [lin.weight.detach().clone().requires_grad_(True) for lin in net.linears]
    bs = [None if lin.bias is None else lin.bias.detach().clone() for lin in net.linears]
    phi = PHI[activation_name]
    a = x
    zs, hs, acts = [], [], []
    for l in range(L):
        z = a @ Ws[l].T
        if bs[l] is not None:
            z = z + bs[l]
        if net.norms is not None:
            bn = net.norms[l]
            mu = z.mean(dim=0, keepdim=True)
            var = ((z - mu) ** 2).mean(dim=0, keepdim=True)  # biased, as BatchNorm normalizes in training
            h = (z - mu) / torch.sqrt(var + BN_EPS) * bn.weight.detach() + bn.bias.detach()
        else:
            h = z
        a = phi(h)
        zs.append(z)
        hs.append(h)
        acts.append(a)
    logits = a @ net.out.weight.detach().T + net.out.bias.detach()
    loss = (torch.logsumexp(logits, dim=1) - logits.gather(1, y[:, None]).squeeze(1)).mean()
    grads = torch.autograd.grad(loss, [*zs, *hs, *acts, *Ws])
    return {
        "z": zs, "h": hs, "a": acts, "W": [w.detach() for w in Ws], "loss": float(loss.detach()),
        "grad_z": list(grads[:L]), "grad_h": list(grads[L:2 * L]), "grad_a": list(grads[2 * L:3 * L]),
        "grad_W": list(grads[3 * L:]),
    }


def oracle_stats(net, activation, x, y) -> dict[str, np.ndarray]:
    """Every column of CLI.md's table (but update_ratio) for one step, per layer, float64."""
    t = manual_step(net, activation.name, x, y)
    L = len(t["h"])
    out = {c: np.empty(L) for c in ("preact_mean", "preact_var", "act_mean", "act_var", "grad_preact_var",
                                     "grad_act_var", "weight_var", "weight_grad_var", "grad_ratio", "saturation",
                                     "dead_units")}
    for l in range(L):
        out["preact_mean"][l], out["preact_var"][l] = moments(t["h"][l])
        out["act_mean"][l], out["act_var"][l] = moments(t["a"][l])
        out["grad_preact_var"][l] = moments(t["grad_h"][l])[1]
        out["grad_act_var"][l] = moments(t["grad_a"][l])[1]
        out["weight_var"][l] = moments(t["W"][l])[1]
        out["weight_grad_var"][l] = moments(t["grad_W"][l])[1]
        out["saturation"][l], out["dead_units"][l] = flat_counts(t["h"][l], activation)
    with np.errstate(all="ignore"):  # 0/0 under zeros init, as in the engine
        out["grad_ratio"] = np.sqrt(out["weight_grad_var"] / out["weight_var"])
    out["loss"] = np.full(L, t["loss"])
    out["_tensors"] = t
    return out

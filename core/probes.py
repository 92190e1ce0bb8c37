"""Per-layer statistics, reduced where the tensors are, moved to the host once per record.

`StepProbe` measures a recorded step while it runs (see its docstring) and
`WeightTracker` adds Var(W) and the update ratio; a record is one float64
(layers × columns) array, never a tensor kept past its step, so memory stays
flat however long the run. `layer_statistics` reduces kept tensors all at
once (small layers, and the tests).

The reductions themselves (fused kernels, or PyTorch without Numba) are in
`core.reductions`.

`LayerProbe` is the same measurement done the textbook way, with hooks inside
a `with` block; the tests use it as an independent check and notebooks can use
it on any stack of modules.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from . import kernels
from .reductions import (  # noqa: F401  (re-exported: the probes' reductions)
    SMALL, _var_mean_from_sums, flat_fractions, moments_per_tensor, preact_statistics, var_mean_per_tensor,
)

Tensor = torch.Tensor

# The columns of one record, in order; `update_ratio` is NaN where there was
# no update yet (step 0).
STAT_COLUMNS = (
    "preact_mean", "preact_var", "act_mean", "act_var",
    "grad_preact_var", "grad_act_var",
    "weight_var", "weight_grad_var", "grad_ratio", "update_ratio",
    "saturation", "dead_units",
)
COL = {name: i for i, name in enumerate(STAT_COLUMNS)}
FORWARD_COLUMNS = ("preact_mean", "preact_var", "act_mean", "act_var")
BACKWARD_COLUMNS = ("grad_preact_var", "grad_act_var", "weight_grad_var")


class WeightTracker:
    """The weight statistics of a record: Var(W) and the update ratio
    std(ΔW) / std(W), ΔW being the last update the optimizer applied.

    Call `before_update(step, next_recorded)` just before each optimizer
    step. Plain SGD's update is -lr·∂L/∂W of the previous step, and SGD with
    momentum's is -lr·(momentum buffer): both are still in memory, so nothing
    is copied. For other optimizers (Adam) the weights are copied before an
    update that leads to a recorded step, and ΔW is the difference.
    """

    def __init__(self, weights: Sequence[Tensor], optimizer: torch.optim.Optimizer, kind: str):
        self.buffers: dict = {}
        self.weights = list(weights)
        self.optimizer = optimizer
        self.kind = kind  # "sgd", "momentum" or anything else (copy)
        self._updated_to: int | None = None  # the step the last update led to
        self._last_grads: list[Tensor] | None = None
        self._prev: list[Tensor] | None = None
        self._grad_var: tuple[int, np.ndarray] | None = None  # (step, Var ∂L/∂W) of the last record

    def __repr__(self) -> str:
        return f"WeightTracker({len(self.weights)} layers, {self.kind})"

    @torch.no_grad()
    def before_update(self, step: int, next_recorded: bool) -> None:
        if not next_recorded:
            self._updated_to = None
            return
        if self.kind == "sgd":
            # Recording every step, the last record already measured these gradients.
            reuse = self._grad_var is not None and self._grad_var[0] == step
            self._last_grads = None if reuse else [w.grad for w in self.weights]
        elif self.kind != "momentum":
            if self._prev is None:
                self._prev = [torch.empty_like(w) for w in self.weights]
            torch._foreach_copy_(self._prev, self.weights)
        self._updated_to = step + 1

    def note_grad_var(self, step: int, grad_var: np.ndarray) -> None:
        """The Var(∂L/∂W) a record at `step` measured (plain SGD's next update is -lr times that gradient)."""
        self._grad_var = (step, grad_var)

    def _update_tensors(self) -> tuple[list[Tensor], float] | None:
        """Tensors u with ΔW = scale·u, or None to use the copied weights."""
        lr = self.optimizer.param_groups[0]["lr"]
        if self.kind == "sgd":
            return self._last_grads, lr
        if self.kind == "momentum":
            return [self.optimizer.state[w]["momentum_buffer"] for w in self.weights], lr
        return None

    @torch.no_grad()
    def statistics(self, step: int, w_var: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(weight_var, update_ratio) per layer at `step` (the ratio is NaN at
        step 0). `w_var`, when the caller measured it already, is used as is."""
        weights = [w.detach() for w in self.weights]
        L = len(weights)
        if w_var is None or not np.isfinite(w_var).all():
            w_var, _ = moments_per_tensor(weights, self.buffers)
        ratio = np.full(L, math.nan)
        if self._updated_to != step or step == 0:
            return w_var, ratio
        update = self._update_tensors()
        if self.kind == "sgd" and self._last_grads is None and self._grad_var is not None:
            lr = self.optimizer.param_groups[0]["lr"]
            d_var = self._grad_var[1] * lr * lr
        elif update is not None:
            tensors, scale = update
            d_var, _ = moments_per_tensor(tensors, self.buffers)
            d_var = d_var * scale * scale
        elif kernels.usable(weights) and kernels.usable(self._prev):
            counts = np.array([w.numel() for w in weights], dtype=np.float64)
            out = np.empty((L, 4))
            for i, (w, p) in enumerate(zip(weights, self._prev)):
                kernels.weight_moments(w.numpy(), p.numpy(), out[i])
            d_var, _ = _var_mean_from_sums(out[:, 2], out[:, 3], counts, lambda i: weights[i] - self._prev[i])
        else:
            d_var, _ = moments_per_tensor(torch._foreach_sub(weights, self._prev))
        with np.errstate(all="ignore"):
            ratio = np.sqrt(d_var / w_var)
        return w_var, ratio


@torch.no_grad()
def layer_statistics(
    hs: Sequence[Tensor], acts: Sequence[Tensor], grad_hs: Sequence[Tensor], grad_acts: Sequence[Tensor],
    weight_grads: Sequence[Tensor], weight_stats: tuple[np.ndarray, np.ndarray], activation,
    buffers: dict | None = None,
) -> np.ndarray:
    """All of one record's statistics as a (layers, len(STAT_COLUMNS)) float64 array.

    `weight_stats` is `WeightTracker.statistics(step)`. `buffers` (a dict
    kept between calls) lets the PyTorch path stack small layers into reused
    memory."""
    L = len(hs)
    out = np.full((L, len(STAT_COLUMNS)), math.nan)
    (out[:, COL["preact_var"]], out[:, COL["preact_mean"]],
     out[:, COL["saturation"]], out[:, COL["dead_units"]]) = preact_statistics(hs, activation, buffers)
    everything = [*acts, *grad_hs, *grad_acts, *weight_grads]
    if kernels.usable(everything):
        # One kernel call over all four kinds: with many small layers the per-call overhead dominates.
        var, mean = moments_per_tensor(everything, buffers)
        var, mean = var.reshape(4, L), mean.reshape(4, L)
    else:
        pairs = [moments_per_tensor(ts, buffers) for ts in (acts, grad_hs, grad_acts, weight_grads)]
        var, mean = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    out[:, COL["act_var"]], out[:, COL["act_mean"]] = var[0], mean[0]
    out[:, COL["grad_preact_var"]] = var[1]
    out[:, COL["grad_act_var"]] = var[2]
    return _weight_columns(out, var[3], weight_stats)


def _weight_columns(out: np.ndarray, weight_grad_var: np.ndarray, weight_stats) -> np.ndarray:
    """Fill the weight columns of a record: Var(∂L/∂W), Var(W), the update and grad:data ratios."""
    w_var, ratio = weight_stats
    out[:, COL["weight_grad_var"]] = weight_grad_var
    out[:, COL["weight_var"]] = w_var
    out[:, COL["update_ratio"]] = ratio
    with np.errstate(all="ignore"):
        out[:, COL["grad_ratio"]] = np.sqrt(weight_grad_var / w_var)
    return out


class StepProbe:
    """Measures one recorded step while it runs.

    For large layers each tensor is reduced the moment it exists, while it is
    still in the CPU's cache: h, a and W in the forward pass, ∂L/∂h and ∂L/∂a
    by tensor hooks and ∂L/∂W by parameter hooks in the backward pass.
    Nothing is kept (h would otherwise outlive the forward pass: tanh's
    backward only needs a) unless `keep` asks for the tensors (histograms,
    tests). For small layers the per-call overhead dominates, so the tensors
    are kept and reduced together, stacked, after the backward pass; that is
    also the path without Numba, through PyTorch.

        with StepProbe(activation, weights, entries=batch * width) as probe:
            logits = net(x, probe=probe)
            probe.backward(loss_fn(logits), params)
        stats = probe.statistics(weight_grads, tracker.statistics(step, probe.weight_var))

    The parameter hooks are removed when the `with` block ends, even if it
    raises; the tensor hooks belong to this step's graph and go with it.
    """

    # moments columns: var/mean of h, a, ∂L/∂h, ∂L/∂a, W, ∂L/∂W, then saturation and dead units
    H, A, GH, GA, W, GW, SAT, DEAD = 0, 2, 4, 6, 8, 10, 12, 13

    def __init__(self, activation, weights: Sequence[Tensor] = (), keep: bool = False, entries: int | None = None,
                 buffers: dict | None = None, layers: int | None = None):
        """`entries` (batch × smallest width) picks the strategy (see above)."""
        self.activation = activation
        self.weights = list(weights)
        self.layers = layers if layers is not None else len(self.weights)
        self.buffers = buffers if buffers is not None else {}
        self.fused = kernels.AVAILABLE and (entries is None or entries >= SMALL)
        self.keep = keep or not self.fused
        L = self.layers
        self.moments = np.full((L, 14), math.nan)
        self.hs: list = [None] * L
        self.acts: list = [None] * L
        self.grad_hs: list = [None] * L
        self.grad_acts: list = [None] * L
        self._live: list[tuple[Tensor, Tensor]] = []
        self._handles: list = []
        self._out = np.empty(4)
        below, beyond = activation.flat_below, activation.flat_beyond
        self._unit = np.empty(0, dtype=np.float32)
        if self.fused:
            self._moments_kernel = kernels.raw_moments
            self._flat_kernel, self._flat_arg = kernels.raw_flat_kernel(below, beyond)

    def __repr__(self) -> str:
        return f"StepProbe({self.layers} layers, {'reduce as they appear' if self.fused else 'reduce together'})"

    def __enter__(self) -> "StepProbe":
        if self.fused:
            for l, w in enumerate(self.weights):
                self._handles.append(w.register_hook(self._hook(l, self.GW, None)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __len__(self) -> int:
        return self.layers

    # -- reducing one tensor (the hot path: plain floats, no numpy calls) --------
    def _moments(self, t: Tensor, col: int, l: int, flat: bool = False) -> None:
        if not t.is_contiguous() or t.dtype != torch.float32 or t.dim() != 2:
            self._moments_torch(t, col, l, flat)  # a layout the kernels can't read in place
            return
        out = self._out
        x = t.detach().numpy()
        if flat and self._flat_kernel is not None:
            if self._unit.size < x.shape[1]:
                self._unit = np.empty(x.shape[1], dtype=np.float32)
            self._flat_kernel(x, *self._flat_arg, self._unit, out)
            self.moments[l, self.SAT] = out[2] / x.size
            self.moments[l, self.DEAD] = out[3] / x.shape[1]
        else:
            self._moments_kernel(x, out)
            if flat:
                self.moments[l, self.SAT] = self.moments[l, self.DEAD] = 0.0
        n = x.size
        mean = float(out[0]) / n  # Python floats: inf and nan without numpy's warnings
        second = float(out[1]) / n
        var = second - mean * mean
        if not (math.isfinite(var) and math.isfinite(mean)) or (var <= 1e-4 * second and second > 0):
            v, m = torch.var_mean(t.detach().to(torch.float64), correction=0)  # exact, rare
            var, mean = float(v), float(m)
        self.moments[l, col] = max(var, 0.0) if var == var else var
        self.moments[l, col + 1] = mean

    def _moments_torch(self, t: Tensor, col: int, l: int, flat: bool) -> None:
        var, mean = var_mean_per_tensor([t.detach()])
        self.moments[l, col], self.moments[l, col + 1] = float(var[0]), float(mean[0])
        if flat:
            sat, dead = flat_fractions([t.detach()], self.activation)
            self.moments[l, self.SAT], self.moments[l, self.DEAD] = float(sat[0]), float(dead[0])

    def on_forward(self, l: int, h: Tensor, a: Tensor, weight: Tensor | None = None) -> None:
        """Called by the network for hidden layer l (0-based) as it goes."""
        if not self.fused:  # reduce together after the backward pass
            self._live.append((h, a))
            self.hs[l], self.acts[l] = h.detach(), a.detach()
            return
        if self.keep:
            self.hs[l], self.acts[l] = h.detach(), a.detach()
        self._moments(h, self.H, l, flat=True)
        self._moments(a, self.A, l)
        if weight is not None:
            self._moments(weight, self.W, l)  # just read by the matmul: still cached
        if h.requires_grad:
            h.register_hook(self._hook(l, self.GH, self.grad_hs))
            a.register_hook(self._hook(l, self.GA, self.grad_acts))

    def _hook(self, l: int, col: int, store: list | None):
        def hook(grad: Tensor) -> None:
            if self.keep and store is not None:
                store[l] = grad
            self._moments(grad, col, l)
        return hook

    def backward(self, loss: Tensor, params: Sequence[Tensor]) -> None:
        """The backward pass, filling every parameter's .grad (like
        `loss.backward()`) and this probe's gradient statistics."""
        if self.fused or not self._live:
            loss.backward()
            return
        params = list(params)
        hs = [h for h, _ in self._live]
        acts = [a for _, a in self._live]
        grads = torch.autograd.grad(loss, params + hs + acts)
        for p, g in zip(params, grads):
            p.grad = g
        n, L = len(params), len(hs)
        self.grad_hs, self.grad_acts = list(grads[n:n + L]), list(grads[n + L:])
        self._live = []

    @property
    def weight_var(self) -> np.ndarray | None:
        """Var(W) per layer if measured in the forward pass (else None)."""
        w = self.moments[:, self.W]
        return w.copy() if self.fused and np.isfinite(w).all() else None

    @torch.no_grad()
    def statistics(self, weight_grads: Sequence[Tensor], weight_stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """All of this step's statistics as a (layers, len(STAT_COLUMNS)) float64 array."""
        if not self.fused:
            return layer_statistics(self.hs, self.acts, self.grad_hs, self.grad_acts, weight_grads, weight_stats,
                                    self.activation, self.buffers)
        L = self.layers
        out = np.full((L, len(STAT_COLUMNS)), math.nan)
        m = self.moments
        out[:, COL["preact_var"]], out[:, COL["preact_mean"]] = m[:, self.H], m[:, self.H + 1]
        out[:, COL["act_var"]], out[:, COL["act_mean"]] = m[:, self.A], m[:, self.A + 1]
        out[:, COL["grad_preact_var"]] = m[:, self.GH]
        out[:, COL["grad_act_var"]] = m[:, self.GA]
        out[:, COL["saturation"]], out[:, COL["dead_units"]] = m[:, self.SAT], m[:, self.DEAD]
        gw = m[:, self.GW]
        if not np.isfinite(gw).all() and any(g is not None for g in weight_grads):
            gw, _ = moments_per_tensor(weight_grads, self.buffers)  # no hooks fired (no weights given)
        return _weight_columns(out, gw, weight_stats)


def first_nonfinite_layer(stats: np.ndarray, loss: float = 0.0) -> tuple[int | None, str] | None:
    """Where a non-finite value first appeared in one record: (layer index from
    0, "forward"/"backward"), (None, "loss") when every hidden layer's forward
    values are finite but the loss is not (the logits overflowed), or None.
    Forward values appear in layer order; backward values appear from the
    last layer down, so the first one there is the highest layer."""
    fwd = stats[:, [COL[c] for c in FORWARD_COLUMNS]]
    bad = np.flatnonzero(~np.isfinite(fwd).all(axis=1))
    if bad.size:
        return int(bad[0]), "forward"
    if not math.isfinite(loss):
        return None, "loss"
    bwd = stats[:, [COL[c] for c in BACKWARD_COLUMNS]]
    bad = np.flatnonzero(~np.isfinite(bwd).all(axis=1))
    if bad.size:
        return int(bad[-1]), "backward"
    return None


@torch.no_grad()
def histograms(tensors: Sequence[Tensor], bins: int = 40, value_range: tuple[float, float] | None = None):
    """Per-tensor histograms: a list of (edges, counts) numpy arrays.

    With `value_range` every layer shares fixed edges (bounded activations);
    otherwise each layer gets edges spanning its own finite values, since
    scales differ by decades between layers when a signal vanishes.
    """
    result = []
    for t in tensors:
        x = t.detach().reshape(-1).to(torch.float64)
        x = x[torch.isfinite(x)]
        if x.numel() == 0:
            result.append((np.array([0.0, 1.0]), np.zeros(1)))
            continue
        lo, hi = value_range if value_range else (float(x.min()), float(x.max()))
        if hi <= lo:
            lo, hi = lo - 0.5 * abs(lo) - 1e-30, hi + 0.5 * abs(hi) + 1e-30
        counts = torch.histc(x, bins=bins, min=lo, max=hi)
        result.append((np.linspace(lo, hi, bins + 1), counts.numpy()))
    return result


class LayerProbe:
    """Hooks on a list of modules that record each one's output and the
    gradient flowing into that output, removed when the `with` block ends.

        with LayerProbe(modules) as probe:
            loss = model(x).sum(); loss.backward()
        probe.outputs[i], probe.grads[i]

    It keeps whole tensors, so it is for tests and one-off inspection, not for
    the training loop.
    """

    def __init__(self, modules: Sequence[torch.nn.Module]):
        self.modules = list(modules)
        self.outputs: list[Tensor | None] = [None] * len(self.modules)
        self.grads: list[Tensor | None] = [None] * len(self.modules)
        self._handles = []

    def __enter__(self) -> "LayerProbe":
        for i, m in enumerate(self.modules):
            self._handles.append(m.register_forward_hook(self._forward_hook(i)))
            self._handles.append(m.register_full_backward_hook(self._backward_hook(i)))
        return self

    def _forward_hook(self, i):
        def hook(module, inputs, output):
            self.outputs[i] = output.detach().clone()
        return hook

    def _backward_hook(self, i):
        def hook(module, grad_input, grad_output):
            self.grads[i] = grad_output[0].detach().clone()
        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self):
        return iter(zip(self.outputs, self.grads))

    def __repr__(self) -> str:
        return f"LayerProbe({len(self)} modules, {'active' if self._handles else 'removed'})"



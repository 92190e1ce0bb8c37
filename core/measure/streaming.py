"""Streaming: each tensor reduced the moment it exists, while it is still in the CPU's cache.

For large layers (see `core.measure.strategy`). One kernel call per layer and
pass: in the forward pass `forward` reduces h, a and W (just read by the
matmul). In the backward pass one hook on each layer's matmul node sees ∂L/∂h
(its incoming gradient), ∂L/∂W and ∂L/∂a of the layer below (two of its
outgoing ones) together; under BatchNorm h is the norm's output, so a tensor
hook on h gives ∂L/∂h. Nothing is kept (h would otherwise outlive the
forward pass: tanh's backward only needs a) unless the record asks to keep
the tensors (histograms).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from core.measure import kernels
from core.measure.records import M_A, M_DEAD, M_GA, M_GH, M_GW, M_H, M_SAT, M_W, M_X
from core.measure.reductions import flat_fractions, moments_per_tensor, var_mean_per_tensor
from core.measure.strategy import Measuring

Tensor = torch.Tensor

# A Linear's autograd node, with and without bias: where ∂L/∂input and ∂L/∂Wᵀ are among its outputs.
LINEAR_NODES = {"AddmmBackward0": (1, 2), "MmBackward0": (0, 1)}


class Streaming(Measuring):
    """Reduces every tensor of a recorded step as it appears (module docstring)."""

    name = "streaming"

    def __init__(self, activation, weights: Sequence[Tensor], chained: bool = True):
        super().__init__(activation, weights, chained)
        L = self.layers
        self._flat = kernels.flat_args(activation.flat_below, activation.flat_beyond)
        # float32 scratch for the flat counts, one per unit
        self._unit = np.empty(max([w.shape[0] for w in self.weights if w.dim()] + [1]), dtype=np.float32)
        self._positions: list = [None] * (L + 1)  # each matmul node's layout (see LINEAR_NODES)
        self._node_positions: dict = {}  # the same by node type, found once
        self._shapes: list = [None] * L  # (batch, width, W's rows, W's columns, ...) per layer, seen in the forward pass
        self._hooks = [partial(self._linear_hook, l) for l in range(L + 1)]
        self._fast_hooks = [self._fast_hook(l) for l in range(L + 1)]
        self._h_hooks = [partial(self._tensor_hook, l, M_GH) for l in range(L)]
        self._a_hooks = [partial(self._tensor_hook, l, M_GA) for l in range(L)]
        self.record()
        self._drop()

    def record(self, keep: bool = False) -> "Streaming":
        super().record(keep)
        self._positions[:] = [None] * (self.layers + 1)  # in place: the hooks hold these lists
        self._shapes[:] = [None] * self.layers
        self._prev_a: Tensor | None = None
        self._h_is_z = False
        self._weight_grads_later = False  # set when no hook will see ∂L/∂W
        return self

    def _drop(self) -> None:
        self._prev_a = None

    def _scratch(self, n: int) -> np.ndarray:
        if self._unit.size < n:
            self._unit = np.empty(n, dtype=np.float32)
        return self._unit

    def _reduce(self, t: Tensor | None, l: int, col: int, flat: bool = False) -> None:
        """One tensor into moments[l], whatever its layout (the kernels where they can read it)."""
        if t is None:
            return
        if kernels.usable([t]) and (t.dim() == 2 or not flat):
            rows, cols = kernels.shape2(t)
            kernels.reduce3(self.moments, self._scratch(cols), self._flat, M_SAT, (t.data_ptr(), rows, cols, l, col),
                            flat)
            return
        var, mean = var_mean_per_tensor([t.detach()])
        self.moments[l, col], self.moments[l, col + 1] = float(var[0]), float(mean[0])
        if flat:
            sat, dead = flat_fractions([t.detach()], self.activation)
            self.moments[l, M_SAT], self.moments[l, M_DEAD] = float(sat[0]), float(dead[0])

    # -- the forward pass -----------------------------------------------------------------------
    def forward(self, l: int, z: Tensor, h: Tensor, a: Tensor) -> None:
        """Block l (0-based): z is the Linear's output, h the activation's input (z, or BatchNorm(z)), a = φ(h)."""
        weight = self.weights[l]
        shared = l > 0 and weight is self.weights[l - 1]  # the block before's (W_hh through time): read once
        if shared:
            self.moments[l, M_W:M_W + 2] = self.moments[l - 1, M_W:M_W + 2]
        if l == 0:
            self._h_is_z = h is z  # no BatchNorm between: the matmul node's incoming gradient is ∂L/∂h
        if self.keep:
            self.kept.hs[l], self.kept.acts[l] = h, a
        shape = h.shape
        if (len(shape) == 2 and h.dtype is torch.float32 and h.is_contiguous() and a.is_contiguous()
                and weight.is_contiguous() and weight.dim() == 2):
            rows, cols = shape
            wr, wc = weight.shape
            # the hook's gradients have these shapes too; ∂L/∂Wᵀ's strides when dense (transposed, or not)
            self._shapes[l] = (rows, cols, wr, wc, (1, wc), (wr, 1))
            below, beyond, mode = self._flat
            unit = self._unit if self._unit.size >= cols else self._scratch(cols)
            kernels._reduce3(self.moments, unit, below, beyond, mode, M_SAT,
                             h.data_ptr(), rows, cols, l, M_H, True, a.data_ptr(), rows, cols, l, M_A,
                             0 if shared else weight.data_ptr(), wr, wc, l, M_W)
        else:
            self._reduce(h, l, M_H, flat=True)
            self._reduce(a, l, M_A)
            if not shared:
                self._reduce(weight, l, M_W)
        if h.requires_grad:
            self._hook_backward(l, z, h)
        self._prev_a = a

    def output(self, logits: Tensor) -> None:
        """The output layer's logits: its node gives the last layer's ∂L/∂a."""
        if logits.requires_grad and self.layers:
            self._hook_backward(self.layers, logits, None)
        self._prev_a = None

    # -- the backward pass ----------------------------------------------------------------------
    def _hook_backward(self, l: int, z: Tensor, h: Tensor | None) -> None:
        """Hooks that reduce, as they appear, ∂L/∂h of layer l (h None: the
        output layer, which has none to record), ∂L/∂W of layer l and ∂L/∂a of layer l - 1."""
        node = z.grad_fn
        positions = self._node_positions.get(type(node), False)
        if positions is False:  # a node type not seen yet
            positions = self._node_positions[type(node)] = (
                None if node is None else LINEAR_NODES.get(node.name()))
        if not self.chained:  # the weight layer's input is not the block below's a (a residual stream, a pooling)
            positions = None
        if positions is None:  # a node we don't know: a tensor hook per gradient, ∂L/∂W later
            self._weight_grads_later = True
            if h is not None:
                h.register_hook(self._h_hooks[l])
            if l > 0 and self._prev_a is not None:
                self._prev_a.register_hook(self._a_hooks[l - 1])
            return
        if h is not None and h is not z:  # BatchNorm between: h's gradient is not the node's
            h.register_hook(self._h_hooks[l])
        self._positions[l] = positions
        usual = 0 < l < self.layers and h is z and not self.keep and self._shapes[l] is not None
        node.register_hook(self._fast_hooks[l] if usual and self._shapes[l - 1] is not None else self._hooks[l])

    def _fast_hook(self, l: int):
        """`_linear_hook` for the usual hidden layer (no BatchNorm, nothing
        kept, forward shapes known), as lean as it can be: it runs once per
        layer in the backward pass, when the CPU's caches hold the matmuls'
        data and every Python step is slow. Anything unusual goes to `_linear_hook`."""
        moments, kernel, careful = self.moments, kernels._reduce3, self._linear_hook
        positions, shapes = self._positions, self._shapes
        below, beyond, mode = self._flat
        unit = np.empty(1, dtype=np.float32)

        def hook(grad_inputs, grad_outputs):
            ia, iw = positions[l]
            gh, ga, gw = grad_outputs[0], grad_inputs[ia], grad_inputs[iw]
            rows, cols, wr, wc, dense_wt, dense_w = shapes[l]
            prev = shapes[l - 1]
            st = gw.stride()
            if gh.is_contiguous() and ga.is_contiguous() and (st == dense_wt or st == dense_w):
                kernel(moments, unit, below, beyond, mode, M_SAT, gh.data_ptr(), rows, cols, l, M_GH, False,
                       ga.data_ptr(), prev[0], prev[1], l - 1, M_GA, gw.data_ptr(), wr, wc, l, M_GW)
            else:
                careful(l, grad_inputs, grad_outputs)
        return hook

    def _tensor_hook(self, l: int, col: int, grad: Tensor) -> None:
        if self.keep and col == M_GH:
            self.kept.grad_hs[l] = grad
        self._reduce(grad, l, col)

    def _linear_hook(self, l: int, grad_inputs, grad_outputs) -> None:
        """Layer l's matmul node: ∂L/∂z came in (= ∂L/∂h without BatchNorm);
        ∂L/∂a of the layer below and ∂L/∂Wᵀ go out. l == layers is the output
        layer, where only ∂L/∂a (of the last hidden layer) is recorded.

        A gradient has its tensor's shape and dtype, so the shapes seen in the
        forward pass and a check of each layout are all the kernel needs."""
        ia, iw = self._positions[l]
        L = self.layers
        ga = grad_inputs[ia] if l else None
        gh = grad_outputs[0] if l < L and self._h_is_z else None
        gw = grad_inputs[iw] if l < L else None
        if self.keep and gh is not None:
            self.kept.grad_hs[l] = gh
        shapes = self._shapes
        p_h = p_a = p_w = 0
        if gh is not None:
            if gh.is_contiguous() and shapes[l] is not None:
                p_h = gh.data_ptr()
            else:
                self._reduce(gh, l, M_GH)
        if ga is not None:
            if ga.is_contiguous() and shapes[l - 1] is not None:
                p_a = ga.data_ptr()
            else:
                self._reduce(ga, l - 1, M_GA)
        if gw is not None:
            # Wᵀ's gradient is usually a transposed view of a dense block: as dense as W itself
            if (gw.is_contiguous() or gw.mT.is_contiguous()) and shapes[l] is not None:
                p_w = gw.data_ptr()
            else:
                self._reduce(gw, l, M_GW)
        rows, cols, wr, wc = shapes[l][:4] if l < L and shapes[l] is not None else (0, 0, 0, 0)
        prev_rows, prev_cols = shapes[l - 1][:2] if l and shapes[l - 1] is not None else (0, 0)
        below, beyond, mode = self._flat
        kernels._reduce3(self.moments, self._unit, below, beyond, mode, M_SAT,
                         p_h, rows, cols, l, M_GH, False, p_a, prev_rows, prev_cols, l - 1, M_GA,
                         p_w, wr, wc, l, M_GW)

    def backward(self, loss: Tensor, params: Sequence[Tensor]) -> None:
        """The backward pass (the hooks measure as it goes), filling every .grad."""
        loss.backward()

    def finish(self, weight_grads: Sequence[Tensor], extra: Sequence[Tensor] | None = None) -> np.ndarray:
        """The record's moments, adding the variance of `extra` (one tensor per layer)."""
        if extra and len(extra) == self.layers:
            self.moments[:, M_X], self.moments[:, M_X + 1] = moments_per_tensor(extra)
        if self._weight_grads_later and all(g is not None for g in weight_grads):  # no hook saw them
            self.moments[:, M_GW], self.moments[:, M_GW + 1] = moments_per_tensor(weight_grads)
        return self.moments

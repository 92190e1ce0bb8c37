"""Per-layer statistics, reduced where the tensors are, moved to the host once per record.

`StepProbe` measures a recorded step while it runs (see its docstring) into
a moments table; `core.measure.tracker.WeightTracker` adds Var(W) and Var(ΔW), and
`core.measure.records.assemble` makes the record of them: one float64 (layers ×
columns) array, never a tensor kept past its step, so memory stays flat
however long the run. The names of those modules are importable from here too.

The reductions themselves (fused kernels, or PyTorch without Numba) are in
`core.measure.kernels` and `core.measure.reductions`.

`LayerProbe` is the same measurement done the textbook way, with hooks inside
a `with` block; the tests use it as an independent check and notebooks can use
it on any stack of modules.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from core.measure import kernels
from core.measure.reductions import (  # noqa: F401  (re-exported: the probes' reductions)
    SMALL, flat_fractions, moments_per_tensor, preact_statistics, var_mean_per_tensor,
)

from core.measure.records import (  # noqa: F401  (re-exported: a record's columns and assembly)
    BACKWARD_COLUMNS, COL, FORWARD_COLUMNS, M_A, M_COLUMNS, M_DEAD, M_GA, M_GH, M_GW, M_H, M_SAT, M_W, M_X,
    STAT_COLUMNS, assemble, first_nonfinite_layer, layer_statistics, reduce_by_kind,
)
from core.measure.tracker import WeightTracker  # noqa: F401  (re-exported)

Tensor = torch.Tensor


def slope_times(activation, a: Tensor, grad_a: Tensor) -> Tensor:
    """∂L/∂h = ∂L/∂a · φ'(h), with φ' from a = φ(h) (`Activation.slope_from_output`)."""
    from core.registry import LEAKY_SLOPE

    kind = activation.slope_from_output
    if kind == "identity":
        return grad_a
    if kind == "relu":
        return grad_a * (a > 0)
    if kind == "leaky_relu":
        return torch.where(a > 0, grad_a, grad_a * LEAKY_SLOPE)
    if kind == "tanh":
        return grad_a * (1 - a * a)
    if kind == "sigmoid":
        return grad_a * (1 - a) * a
    raise ValueError(f"φ' of {activation.name!r} can't be had from its output.")


class StepProbe:
    """Measures recorded steps while they run; one per training run, reused
    by every record (`record()` starts one).

    Large layers ("as they appear"): each tensor is reduced the moment it
    exists, while it is still in the CPU's cache, one kernel call per layer
    and pass. In the forward pass `on_forward` reduces h, a and W (just read
    by the matmul). In the backward pass one hook on each layer's matmul node
    sees ∂L/∂h (its incoming gradient), ∂L/∂W and ∂L/∂a of the layer below
    (two of its outgoing ones) together; under BatchNorm h is the norm's
    output, so a tensor hook on h gives ∂L/∂h. Nothing is kept (h would
    otherwise outlive the forward pass: tanh's backward only needs a) unless
    `keep` asks for the tensors (histograms, tests).

    Small layers ("together"): per-call overhead would dominate, so h and W
    are reduced in the forward pass (one call per layer, nothing kept but a),
    every ∂L/∂a comes from the one backward call with the parameters'
    gradients, and one kernel call reduces the rest of the record afterwards.
    Where φ' can be had from a (`Activation.slope_from_output`), ∂L/∂h's
    moments come from ∂L/∂a and a in that call; otherwise ∂L/∂h is asked of
    autograd as well. Without Numba this path keeps every tensor and reduces
    them through PyTorch.

        probe = StepProbe(activation, weights, entries=batch * width)
        with probe.record(keep=False):
            logits = net(x, probe=probe)       # calls on_forward per layer, then on_output
            probe.backward(loss_fn(logits), params)
            probe.measure(weight_grads, tracker_tensors)
        stats = probe.statistics(weight_grads, tracker.statistics(step, probe.weight_var, probe.extra_var))

    The hooks belong to the step's graph and go with it; leaving the `with`
    block drops every tensor the record kept.
    """

    # moments columns: var/mean of h, a, ∂L/∂h, ∂L/∂a, W, ∂L/∂W, saturation and dead units, then extra tensors'
    H, A, GH, GA, W, GW, SAT, DEAD, X = M_H, M_A, M_GH, M_GA, M_W, M_GW, M_SAT, M_DEAD, M_X
    # A Linear's autograd node, with and without bias: where ∂L/∂input and ∂L/∂Wᵀ are among its outputs.
    LINEAR_NODES = {"AddmmBackward0": (1, 2), "MmBackward0": (0, 1)}

    def __init__(self, activation, weights: Sequence[Tensor], entries: int | None = None):
        """`entries` (batch × smallest width) picks the strategy (see above)."""
        self.activation = activation
        self.weights = list(weights)
        self.layers = L = len(self.weights)
        self.as_they_appear = kernels.AVAILABLE and (entries is None or entries >= SMALL)
        self.buffers: dict = {}  # the PyTorch path's reusable stacking memory
        self.moments = np.full((L, M_COLUMNS), math.nan)
        self._flat = kernels.flat_args(activation.flat_below, activation.flat_beyond)
        self._slope_arg = kernels.slope_args(activation)
        # float32 scratch for the flat counts, one per unit
        self._unit = np.empty(max([w.shape[0] for w in self.weights if w.dim()] + [1]), dtype=np.float32)
        self._positions: list = [None] * (L + 1)  # each matmul node's layout (see LINEAR_NODES)
        self._node_positions: dict = {}  # the same by node type, found once
        self._shapes: list = [None] * L  # (batch, width, W's rows, W's columns, ...) per layer, seen in the forward pass
        self._hooks = [partial(self._linear_hook, l) for l in range(L + 1)]
        self._fast_hooks = [self._fast_hook(l) for l in range(L + 1)] if kernels.AVAILABLE else []
        self._lean_forward = self._lean_together_forward() if kernels.AVAILABLE else None
        self._h_hooks = [partial(self._tensor_hook, l, self.GH, "grad_hs") for l in range(L)]
        self._a_hooks = [partial(self._tensor_hook, l, self.GA, "grad_acts") for l in range(L)]
        self._layout: tuple | None = None  # (shapes seen, kernel table arrays) for reducing together
        self.record()
        self._end()

    def __repr__(self) -> str:
        return f"StepProbe({self.layers} layers, {'reduce as they appear' if self.as_they_appear else 'reduce together'})"

    def __len__(self) -> int:
        return self.layers

    def record(self, keep: bool = False) -> "StepProbe":
        """Start measuring a step; use as `with probe.record(keep): ...`."""
        L = self.layers
        self.fused = self.as_they_appear
        self._keep_asked = keep
        self.keep = keep or not self.fused
        # Reducing together, ∂L/∂h's moments come from ∂L/∂a and a where φ' allows: one gradient
        # fewer to keep. (∂L/∂h is still kept for histograms, but the table never depends on `keep`.)
        self._slope = None if (self.fused or not kernels.AVAILABLE) else self._slope_arg
        self.moments.fill(math.nan)
        self.hs: list = [None] * L
        self.acts: list = [None] * L
        self.grad_hs: list = [None] * L
        self.grad_acts: list = [None] * L
        self._live: list[Tensor] = []
        self._positions[:] = [None] * (L + 1)  # in place: the hooks hold these lists
        self._prev_a: Tensor | None = None
        self._h_is_z = False
        self._weight_grads_later = False  # set when no hook will see ∂L/∂W
        self._forward_done = 0  # layers whose h and W were reduced in the forward pass, reducing together
        self.finite = True  # after `statistics`: every column first_nonfinite_layer looks at is finite
        self._shapes[:] = [None] * L
        self._measured: bool | None = None
        self.extra_var: np.ndarray | None = None
        if not self.fused and self._slope is not None and not keep:
            self.on_forward = self._lean_forward  # the usual small-layer record
        else:
            self.__dict__.pop("on_forward", None)
        return self

    def __enter__(self) -> "StepProbe":
        return self

    def __exit__(self, *exc) -> None:
        self._end()

    def _end(self) -> None:
        """Drop what the record kept: its tensors must not outlive the step."""
        self._live = []
        self._prev_a = None
        if not self._keep_asked:
            self.hs = self.acts = self.grad_hs = self.grad_acts = [None] * self.layers

    def _scratch(self, n: int) -> np.ndarray:
        if self._unit.size < n:
            self._unit = np.empty(n, dtype=np.float32)
        return self._unit

    # -- large layers: reduce each tensor as it appears --------------------------------------
    def _reduce(self, t: Tensor | None, l: int, col: int, flat: bool = False) -> None:
        """One tensor into moments[l] (the fallback for a layout off the fast path)."""
        if t is None:
            return
        if kernels.usable([t]) and (t.dim() == 2 or not flat):
            rows, cols = kernels.shape2(t)
            kernels.reduce3(self.moments, self._scratch(cols), self._flat, self.SAT,
                            (t.data_ptr(), rows, cols, l, col), flat)
            return
        var, mean = var_mean_per_tensor([t.detach()])
        self.moments[l, col], self.moments[l, col + 1] = float(var[0]), float(mean[0])
        if flat:
            sat, dead = flat_fractions([t.detach()], self.activation)
            self.moments[l, self.SAT], self.moments[l, self.DEAD] = float(sat[0]), float(dead[0])

    def on_forward(self, l: int, z: Tensor, h: Tensor, a: Tensor) -> None:
        """Called by the network for hidden layer l (0-based) as it goes: z is
        the Linear's output, h the activation's input (z, or BatchNorm(z)), a = φ(h)."""
        weight = self.weights[l]
        if l == 0 and self.fused:
            self._h_is_z = h is z  # no BatchNorm between: the matmul node's incoming gradient is ∂L/∂h
            if not kernels.usable([h, weight]):
                self.fused, self.keep = False, True  # tensors the kernels can't read: reduce together, in PyTorch
                self._slope = None
        if not self.fused:  # reduce together after the backward pass
            keep_h = self._keep_asked
            if self._slope is None or keep_h:
                self._live.append(h)
            self._live.append(a)
            self.acts[l] = a  # kept as it is: detaching costs a tensor object
            if (self._slope is not None and h.dtype is torch.float32 and len(h.shape) == 2 and h.is_contiguous()
                    and weight.is_contiguous()):
                # h and W now, while cached (and h need not be kept): one call for both
                rows, cols = h.shape
                wr, wc = weight.shape
                below, beyond, mode = self._flat
                kernels._reduce3(self.moments, self._unit, below, beyond, mode, self.SAT,
                                 h.data_ptr(), rows, cols, l, self.H, True, weight.data_ptr(), wr, wc, l, self.W,
                                 0, 0, 0, 0, 0)
                self._forward_done += 1
                if keep_h:
                    self.hs[l] = h
            else:
                self.hs[l] = h
            return
        if self.keep:
            self.hs[l], self.acts[l] = h, a
        shape = h.shape
        if len(shape) == 2 and h.is_contiguous() and a.is_contiguous() and weight.is_contiguous():
            rows, cols = shape
            wr, wc = weight.shape
            # the hook's gradients have these shapes too; ∂L/∂Wᵀ's strides when dense (transposed, or not)
            self._shapes[l] = (rows, cols, wr, wc, (1, wc), (wr, 1))
            below, beyond, mode = self._flat
            unit = self._unit if self._unit.size >= cols else self._scratch(cols)
            kernels._reduce3(self.moments, unit, below, beyond, mode, self.SAT,
                             h.data_ptr(), rows, cols, l, self.H, True, a.data_ptr(), rows, cols, l, self.A,
                             weight.data_ptr(), wr, wc, l, self.W)
        else:
            self._reduce(h, l, self.H, flat=True)
            self._reduce(a, l, self.A)
            self._reduce(weight, l, self.W)
        if h.requires_grad:
            self._hook_backward(l, z, h)
        self._prev_a = a

    def _lean_together_forward(self):
        """`on_forward` for the usual small-layer record (reducing together,
        φ' from a, nothing kept for histograms), as lean as it can be: it runs
        once per layer. Anything unusual goes to the general `on_forward`."""
        moments, kernel, unit, weights = self.moments, kernels._reduce3, self._unit, self.weights
        below, beyond, mode = self._flat
        H, W, SAT = self.H, self.W, self.SAT
        f32, general, probe = torch.float32, type(self).on_forward, self

        def on_forward(l: int, z: Tensor, h: Tensor, a: Tensor) -> None:
            w = weights[l]
            shape = h.shape
            if h.dtype is f32 and len(shape) == 2 and h.is_contiguous() and w.is_contiguous() and shape[1] <= unit.size:
                probe._live.append(a)
                probe.acts[l] = a
                wr, wc = w.shape
                kernel(moments, unit, below, beyond, mode, SAT, h.data_ptr(), shape[0], shape[1], l, H, True,
                       w.data_ptr(), wr, wc, l, W, 0, 0, 0, 0, 0)
                probe._forward_done += 1
            else:
                general(probe, l, z, h, a)
        return on_forward

    def on_output(self, logits: Tensor) -> None:
        """Called by the network with the output layer's logits: its node gives the last layer's ∂L/∂a."""
        if self.fused and logits.requires_grad and self.layers:
            self._hook_backward(self.layers, logits, None)
        self._prev_a = None

    def _hook_backward(self, l: int, z: Tensor, h: Tensor | None) -> None:
        """Hooks that reduce, as they appear, ∂L/∂h of layer l (h None: the
        output layer, which has none to record), ∂L/∂W of layer l and ∂L/∂a of layer l - 1."""
        node = z.grad_fn
        positions = self._node_positions.get(type(node), False)
        if positions is False:  # a node type not seen yet
            positions = self._node_positions[type(node)] = (
                None if node is None else self.LINEAR_NODES.get(node.name()))
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
        GH, GA, GW, SAT = self.GH, self.GA, self.GW, self.SAT
        unit = np.empty(1, dtype=np.float32)

        def hook(grad_inputs, grad_outputs):
            ia, iw = positions[l]
            gh, ga, gw = grad_outputs[0], grad_inputs[ia], grad_inputs[iw]
            rows, cols, wr, wc, dense_wt, dense_w = shapes[l]
            prev = shapes[l - 1]
            st = gw.stride()
            if gh.is_contiguous() and ga.is_contiguous() and (st == dense_wt or st == dense_w):
                kernel(moments, unit, below, beyond, mode, SAT, gh.data_ptr(), rows, cols, l, GH, False,
                       ga.data_ptr(), prev[0], prev[1], l - 1, GA, gw.data_ptr(), wr, wc, l, GW)
            else:
                careful(l, grad_inputs, grad_outputs)
        return hook

    def _tensor_hook(self, l: int, col: int, store: str, grad: Tensor) -> None:
        if self.keep:
            getattr(self, store)[l] = grad
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
        if self.keep:
            if gh is not None:
                self.grad_hs[l] = gh
            if ga is not None:
                self.grad_acts[l - 1] = ga
        shapes = self._shapes
        p_h = p_a = p_w = 0
        if gh is not None:
            if gh.is_contiguous() and shapes[l] is not None:
                p_h = gh.data_ptr()
            else:
                self._reduce(gh, l, self.GH)
        if ga is not None:
            if ga.is_contiguous() and shapes[l - 1] is not None:
                p_a = ga.data_ptr()
            else:
                self._reduce(ga, l - 1, self.GA)
        if gw is not None:
            # Wᵀ's gradient is usually a transposed view of a dense block: as dense as W itself
            if (gw.is_contiguous() or gw.mT.is_contiguous()) and shapes[l] is not None:
                p_w = gw.data_ptr()
            else:
                self._reduce(gw, l, self.GW)
        rows, cols, wr, wc = shapes[l][:4] if l < L and shapes[l] is not None else (0, 0, 0, 0)
        prev_rows, prev_cols = shapes[l - 1][:2] if l and shapes[l - 1] is not None else (0, 0)
        below, beyond, mode = self._flat
        kernels._reduce3(self.moments, self._unit, below, beyond, mode, self.SAT,
                         p_h, rows, cols, l, self.GH, False, p_a, prev_rows, prev_cols, l - 1, self.GA,
                         p_w, wr, wc, l, self.GW)

    # -- the backward pass ----------------------------------------------------------------------
    def backward(self, loss: Tensor, params: Sequence[Tensor]) -> None:
        """The backward pass, filling every parameter's .grad (like
        `loss.backward()`) and this probe's gradient statistics."""
        if self.fused or not self._live:
            loss.backward()
            return
        params = list(params)
        grads = torch.autograd.grad(loss, params + self._live)
        for p, g in zip(params, grads):
            p.grad = g
        n = len(params)
        if self._slope is not None and not self._keep_asked:  # ∂L/∂h's moments come from ∂L/∂a and a
            self.grad_acts = list(grads[n:])
        else:
            self.grad_hs, self.grad_acts = list(grads[n::2]), list(grads[n + 1::2])
        self._live = []

    # -- small layers: the whole record in one call ---------------------------------------------
    def _reduce_together(self, weight_grads: Sequence[Tensor], extra: Sequence[Tensor]) -> bool:
        """Every tensor of the record (and `extra`, one per layer) into
        `moments` by one kernel call; False if the kernels can't read them all."""
        L = self.layers
        weights = self.weights
        if not L or len(weight_grads) != L or any(g is None for g in weight_grads):
            return False
        slope = self._slope is not None
        early = self._forward_done == L  # h and W were reduced in the forward pass
        grad_hs = [] if slope else self.grad_hs
        hs, ws = ([], []) if early else (self.hs, weights)
        tensors = [*hs, *self.acts, *grad_hs, *self.grad_acts, *ws, *weight_grads, *extra]
        # A gradient has its tensor's shape and dtype (autograd sees to it): checking one of each
        # kind, and every tensor's layout, is enough for the kernels to read them safely.
        if not (kernels.usable([self.acts[0], weights[0], *(extra[:1])]) and kernels.contiguous(tensors)):
            return False
        shapes = [a.shape for a in self.acts] + [w.shape for w in weights] + [len(extra), slope, early]
        if self._layout is None or self._layout[0] != shapes:
            if any(len(s) != 2 for s in shapes[:2 * L]) or any(e.shape != w.shape for e, w in zip(extra, weights)):
                return False
            self._layout = (shapes, self._table(np.array(shapes[:L], dtype=np.int64),
                                                np.array(shapes[L:2 * L], dtype=np.int64), slope, bool(extra), early))
        rows, cols, out_row, out_col, kind, first, second, scratch = self._layout[1]
        ptrs = np.fromiter(map(Tensor.data_ptr, tensors), np.int64, len(tensors))
        kernels.reduce_table(ptrs[first], ptrs[second], rows, cols, out_row, out_col, kind, self._flat,
                             self._slope or (0, 0.0), self._scratch(scratch), self.moments, self.SAT, self.GH, self.A)
        return True

    def _table(self, act: np.ndarray, w: np.ndarray, slope: bool, extra: bool, early: bool) -> tuple:
        """The kernel table for `_reduce_together`, given the (batch, width)
        shapes `act` and the weights' shapes `w`: the shapes, destinations
        and kinds of the entries, which tensors they read (`first`, and
        `second` for a pair) among [(h), a, (∂L/∂h), ∂L/∂a, (W), ∂L/∂W,
        (extra)] per layer, and the scratch the flat counts need. With
        `slope`, ∂L/∂a and a are read as a pair that also gives ∂L/∂h's and
        a's moments; with `early`, h and W were reduced in the forward pass."""
        L = len(act)
        layer = np.arange(L, dtype=np.int64)
        # (column, shapes, kind) in the order of `tensors`
        kinds = ([] if early else [(self.H, act, 1)]) + [(self.A, act, 0)] + ([] if slope else [(self.GH, act, 0)])
        kinds += [(self.GA, act, 2 if slope else 0)] + ([] if early else [(self.W, w, 0)]) + [(self.GW, w, 0)]
        kinds += [(self.X, w, 0)] if extra else []
        a_at = [c for c, _, _ in kinds].index(self.A) * L
        entries = [(col, shapes, kind, i) for i, (col, shapes, kind) in enumerate(kinds) if not (slope and col == self.A)]
        table = (np.concatenate([e[1][:, 0] for e in entries]), np.concatenate([e[1][:, 1] for e in entries]),
                 np.tile(layer, len(entries)), np.repeat(np.array([e[0] for e in entries], dtype=np.int64), L),
                 np.repeat(np.array([e[2] for e in entries], dtype=np.int64), L),
                 np.concatenate([layer + e[3] * L for e in entries]),
                 np.concatenate([layer + (a_at if e[2] == 2 else e[3] * L) for e in entries]))  # a beside ∂L/∂a
        # Read in the reverse of the order the backward pass wrote: the first layers' gradients, written
        # last, are still in the CPU's cache; within a layer, the gradients before h and W.
        order = np.lexsort((-table[3], table[2]))
        return (*(t[order] for t in table), int(act[:, 1].max()))

    def measure(self, weight_grads: Sequence[Tensor], extra: Sequence[Tensor] | None = None) -> None:
        """Finish the record's measurements after the backward pass, adding the
        variance of `extra` (one tensor per layer, e.g. the tracker's
        `update_tensors`) as `extra_var`. Reducing together this is the one
        kernel call; as they appear only `extra` is left."""
        extra = list(extra) if extra else []
        if len(extra) != self.layers:
            extra = []
        if self.fused:
            self._measured = True
            if extra:
                self.extra_var, _ = moments_per_tensor(extra, self.buffers)
        elif self._measured is None:
            if not self._reduce_together(weight_grads, extra):
                self._reduce_together_torch(weight_grads, extra)
            self._measured = True
            if extra:
                self.extra_var = self.moments[:, self.X].copy()

    def _reduce_together_torch(self, weight_grads: Sequence[Tensor], extra: Sequence[Tensor]) -> None:
        """`_reduce_together` where the kernels can't read every tensor."""
        if self._slope is not None and self.grad_hs[0] is None:
            self.grad_hs = [slope_times(self.activation, a, g) for a, g in zip(self.acts, self.grad_acts)]
        early = self._forward_done == self.layers  # h and W are done
        reduce_by_kind(self.moments, () if early else self.hs, self.acts, self.grad_hs, self.grad_acts,
                       () if early else self.weights, weight_grads, extra, self.activation, self.buffers)

    @property
    def weight_var(self) -> np.ndarray | None:
        """Var(W) per layer if measured (else None)."""
        w = self.moments[:, self.W]
        return w.copy() if np.isfinite(w).all() else None

    def statistics(self, weight_grads: Sequence[Tensor], weight_stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """All of this step's statistics as a (layers, len(STAT_COLUMNS)) float64
        array; `weight_stats` is `WeightTracker.statistics(step)`. Sets `finite`."""
        if self._measured is None:
            self.measure(weight_grads)
        if self._weight_grads_later and all(g is not None for g in weight_grads):  # no hook saw them
            self.moments[:, self.GW], self.moments[:, self.GW + 1] = moments_per_tensor(weight_grads, self.buffers)
        out, self.finite = assemble(self.moments, weight_stats)
        return out


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

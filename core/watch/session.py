"""`watch(model)`: the lab's per-layer statistics for any PyTorch network.

    with watch(model, every=1) as w:
        for x, y in batches:
            loss = loss_fn(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            w.step(loss)
    w.table()

What a record at step s holds (s = optimizer steps taken before its forward
pass, so step 0 is the network at initialization, as in the lab's own runs),
per measured layer in forward order:

- `out_mean`, `out_var`: the module's output over all its entries (float64);
  for RNN/LSTM/GRU the output sequence (the first element of the tuple);
- `grad_out_var`: Var(∂L/∂output), from a tensor hook on that output;
- `weight_var`, `weight_grad_var`: Var(W) of the weights the forward used and
  Var(∂L/∂W) (every parameter whose name starts with "weight", pooled; an
  LSTM's input and recurrent matrices together). NaN for frozen weights
  (`requires_grad=False`) where there is no gradient;
- `update_ratio`: std(ΔW)/std(W) of the last update, the one that made
  these weights (NaN at step 0 and for frozen weights);
- `saturation`: the fraction of output entries in the flat region of the
  activation module it goes straight into (the registry's `Activation.flat`),
  NaN where it does not feed a known activation module (e.g. `F.relu`);
- `calls`: how often the module ran in the step. A module called several
  times in one forward pass (a shared layer) is one row: its statistics are
  pooled over the entries of all its calls in the step.

Only forward passes with autograd on are measured (a `torch.no_grad()`
evaluation inside the step does not mix in). Hooks exist only during
recorded steps: between them the model runs exactly as without `watch`.
Each tensor is reduced on the spot to two or three numbers (`Moments`);
nothing else is kept, so memory stays flat over long runs.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from core.registry import activation_of_module
from core.schema import RunStatus
from core.watch.moments import FLAT, MEAN, Moments, pooled

# The record's numeric columns, in the table's order (CLI.md "Watching your own model"; more may follow).
STAT_COLUMNS = ("out_mean", "out_var", "grad_out_var", "weight_var", "weight_grad_var", "update_ratio",
                "saturation", "calls")
COL = {c: i for i, c in enumerate(STAT_COLUMNS)}
TABLE_COLUMNS = ("step", "layer", "name", "out_mean", "out_var", "grad_out_var", "weight_var", "weight_grad_var",
                 "update_ratio", "loss", "saturation", "calls")
# Where a non-finite value shows first: forward values appear in layer order,
# gradients from the last layer down, weights after the optimizer.
FORWARD = ("out_mean", "out_var")
BACKWARD = ("grad_out_var", "weight_grad_var")
WEIGHTS = ("weight_var", "update_ratio")

MEASURED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase)


class WatchError(ValueError):
    """A bad argument to watch(), in one sentence."""


@dataclass(frozen=True)
class NonFinite:
    """Where the first non-finite value (inf or nan) of a watched run appeared."""

    step: int
    layer: int          # 1 = first in forward order; 0 for the loss
    name: str
    column: str

    def sentence(self) -> str:
        if self.column == "loss":
            return f"The loss became non-finite (inf/nan) at step {self.step}, while every layer was still finite."
        return (f"The first non-finite value (inf/nan) appeared at step {self.step} in layer {self.layer} "
                f"({self.name}), in {self.column}.")


def _main_tensor(out) -> torch.Tensor | None:
    """The tensor a module's output stands for: itself, an RNN's output
    sequence (the first of its tuple; a packed sequence's data), or None."""
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    if isinstance(out, PackedSequence):
        out = out.data
    return out if isinstance(out, torch.Tensor) and out.is_floating_point() else None


class _Layer:
    """One measured module and what one recorded step has gathered about it."""

    __slots__ = ("index", "name", "module", "weights", "tracked", "prev", "out_rows", "grad_rows", "flat_rows",
                 "w_rows", "g_rows", "d_rows", "calls")

    def __init__(self, index: int, name: str, module: nn.Module):
        self.index = index
        self.name = name
        self.module = module
        self.weights = [p for n, p in module.named_parameters() if n.rsplit(".", 1)[-1].startswith("weight")]
        self.tracked = [p.requires_grad for p in self.weights]   # frozen when watch() starts: no grad, no update
        self.prev: list[torch.Tensor] | None = None   # copies of the trained weights, one step back
        self.reset()

    def reset(self) -> None:
        # (Moments row, entries) of each reduced tensor of the step
        self.out_rows: list[tuple[int, int]] = []
        self.grad_rows: list[tuple[int, int]] = []
        self.flat_rows: list[tuple[int, int]] = []
        self.w_rows: list[tuple[int, int]] = []   # trained weights only (for the update ratio) ...
        self.g_rows: list[tuple[int, int]] = []
        self.d_rows: list[tuple[int, int]] = []
        self.calls = 0

    @property
    def trained(self) -> list[torch.Tensor]:
        return [p for p, t in zip(self.weights, self.tracked) if t]


class Watch:
    """The context manager `watch(model, ...)` returns; see the module's docstring."""

    def __init__(self, model: nn.Module, every: int = 1, layers: Iterable | None = None, live: str | None = None):
        if not isinstance(model, nn.Module):
            raise WatchError(f"watch() needs a torch.nn.Module; got {type(model).__name__}.")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise WatchError(f"Invalid every {every!r}: record every N steps, N a whole number ≥ 1.")
        self.model = model
        self.every = every
        self.live = live
        self._layers = [_Layer(i, n, m) for i, (n, m) in enumerate(self._find(model, layers))]
        self._activations = [m for m in model.modules() if activation_of_module(m) is not None]
        self._moments = Moments()
        self._handles: list = []          # module hooks, present during recorded steps only
        self._tensor_handles: list = []   # hooks on this step's outputs
        self._order: list[int] | None = None   # layer indices in forward order, fixed at the first record
        self._fired: list[int] = []
        self._seen_activation: dict[int, str] = {}   # layer index -> the registry name of what it feeds
        self._last_out: tuple[torch.Tensor, _Layer] | None = None
        self._records: list[np.ndarray] = []   # (layers, len(STAT_COLUMNS)) per record, in forward order
        self._steps: list[tuple[int, float]] = []
        self._step = 0
        self._inside = False
        self._store = None
        self.first_nonfinite: NonFinite | None = None
        self.started = time.time()

    # -- which layers -------------------------------------------------------------------------------

    @staticmethod
    def _find(model: nn.Module, layers) -> list[tuple[str, nn.Module]]:
        named = [(n or type(model).__name__, m) for n, m in model.named_modules()]
        if layers is None:
            found = [(n, m) for n, m in named if isinstance(m, MEASURED_TYPES)]
            if not found:
                raise WatchError(f"{type(model).__name__} has no Linear, Conv or RNN/LSTM/GRU module to watch; "
                                 "name the modules to measure with layers=[...].")
            return found
        if isinstance(layers, (str, nn.Module)):
            layers = [layers]
        by_name = dict(named)
        by_id = {id(m): n for n, m in named}
        found = []
        for item in layers:
            if isinstance(item, str):
                if item not in by_name:
                    near = ", ".join(list(by_name)[1:6])
                    raise WatchError(f"Invalid layers entry {item!r}: the model has no module of that name "
                                     f"(its modules are named like {near}).")
                found.append((item, by_name[item]))
            elif isinstance(item, nn.Module) and id(item) in by_id:
                found.append((by_id[id(item)], item))
            else:
                raise WatchError(f"Invalid layers entry {str(item)[:40]!r}: give module names (as in "
                                 "model.named_modules()) or modules of this model.")
        if not found:
            raise WatchError("layers=[] names no module: give at least one, or layers=None for every Linear, "
                             "Conv and RNN/LSTM/GRU module.")
        seen: set[int] = set()
        return [(n, m) for n, m in found if not (id(m) in seen or seen.add(id(m)))]

    # -- the context manager ------------------------------------------------------------------------

    def __enter__(self) -> "Watch":
        if self._inside:
            raise WatchError("This watch is already active; use one `with watch(model)` block at a time.")
        self._inside = True
        if self.live is not None:
            from core.watch.store import Writer

            self._store = Writer(self.live, self)
        self._between_steps()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._detach()
        self._inside = False
        for layer in self._layers:
            layer.prev = None
            layer.reset()
        self._moments.clear()
        self._last_out = None
        if self._store is not None:
            why = "" if exc_type is None else f"{exc_type.__name__}: {str(exc)[:200]}"
            self._store.close(RunStatus.FINISHED if exc_type is None else RunStatus.FAILED, why)
            self._store = None

    def __len__(self) -> int:
        """How many hooks are registered now (0 outside the `with` block)."""
        return len(self._handles) + len(self._tensor_handles)

    def __iter__(self):
        """The measured layers' names, in forward order once the first step is recorded."""
        return iter(self.names)

    def __repr__(self) -> str:
        return (f"watch({type(self.model).__name__}: {len(self._layers)} layers, every {self.every}, "
                f"{len(self._records)} records{', live' if self._store else ''})")

    @property
    def names(self) -> list[str]:
        """The measured modules' paths, in forward order (fixed at the first record)."""
        return [self._layers[i].name for i in self._forward_order()]

    @property
    def activations(self) -> list[str | None]:
        """Per layer in forward order: the registry name of the activation module it feeds, if any."""
        return [self._seen_activation.get(i) for i in self._forward_order()]

    def _forward_order(self) -> list[int]:
        if self._order is not None:
            return self._order
        fired = list(dict.fromkeys(self._fired))
        rest = [i for i in range(len(self._layers)) if i not in set(fired)]
        return fired + rest  # modules that did not run yet keep the model's order, after the others

    # -- hooks ----------------------------------------------------------------------------------------

    def _attach(self) -> None:
        if self._handles:
            return
        for layer in self._layers:
            self._handles.append(layer.module.register_forward_hook(self._forward_hook(layer)))
        for m in self._activations:
            self._handles.append(m.register_forward_pre_hook(self._activation_hook(activation_of_module(m))))

    def _detach(self) -> None:
        for h in self._handles + self._tensor_handles:
            h.remove()
        self._handles.clear()
        self._tensor_handles.clear()

    def _forward_hook(self, layer: _Layer):
        moments = self._moments

        def hook(module, inputs, output):
            if not torch.is_grad_enabled():
                return
            t = _main_tensor(output)
            layer.calls += 1
            self._fired.append(layer.index)
            if t is None:
                return
            layer.out_rows.append((moments.add(t), t.numel()))
            self._last_out = (t, layer)
            if t.requires_grad:
                self._tensor_handles.append(t.register_hook(self._grad_hook(layer, self._step)))

        return hook

    def _grad_hook(self, layer: _Layer, step: int):
        moments = self._moments

        def hook(grad):
            if self._step == step and self._handles:  # a late backward after w.step() is not this record's
                layer.grad_rows.append((moments.add(grad), grad.numel()))

        return hook

    def _activation_hook(self, activation):
        moments = self._moments

        def hook(module, args):
            last = self._last_out
            if last is None or not args or args[0] is not last[0] or not torch.is_grad_enabled():
                return
            t, layer = last
            self._seen_activation[layer.index] = activation.name
            layer.flat_rows.append((moments.add(t, activation), t.numel()))
            self._last_out = None

        return hook

    # -- steps --------------------------------------------------------------------------------------

    def recording(self, step: int | None = None) -> bool:
        """Is step `step` (default: the current one) recorded?"""
        return (self._step if step is None else step) % self.every == 0

    def _between_steps(self) -> None:
        """At the boundary before step `self._step`: reduce the weights this
        step will use and the update that made them (if it is recorded), keep
        a copy of them if the next step is recorded, and hook the model only
        for a recorded step."""
        record, record_next = self.recording(), self.recording(self._step + 1)
        self._moments.clear()
        moments = self._moments
        for layer in self._layers:
            layer.reset()
            if record:
                prev = iter(layer.prev or ())
                for p, tracked in zip(layer.weights, layer.tracked):
                    if tracked and layer.prev is not None:
                        w_row, d_row = moments.add_delta(p, next(prev))
                        layer.w_rows.append((w_row, p.numel()))
                        layer.d_rows.append((d_row, p.numel()))
                    else:
                        layer.w_rows.append((moments.add(p), p.numel()))
            if record_next and any(layer.tracked):
                with torch.no_grad():
                    if layer.prev is None:
                        layer.prev = [p.detach().clone() for p in layer.trained]
                    else:
                        for buf, p in zip(layer.prev, layer.trained):
                            buf.copy_(p.detach())
            else:
                layer.prev = None   # memory: a copy is kept only when the next update is measured
        if record:
            self._attach()
        else:
            self._detach()

    def step(self, loss=None) -> None:
        """Close this step's record (call it after `optimizer.step()`); `loss` is
        the batch's loss (a tensor or a number), kept in the table."""
        if not self._inside:
            raise WatchError("w.step() was called outside its `with watch(model) as w:` block.")
        if self.recording():
            self._close(loss)
        self._step += 1
        self._between_steps()

    def _close(self, loss) -> None:
        moments = self._moments
        for layer in self._layers:
            for p in layer.trained:
                if p.grad is not None:
                    layer.g_rows.append((moments.add(p.grad), p.numel()))
        loss_row = moments.add(loss.detach().reshape(-1)[:1]) if isinstance(loss, torch.Tensor) else None
        table = moments.finish()
        loss_value = float(table[loss_row, MEAN]) if loss_row is not None else (
            math.nan if loss is None else float(loss))
        if self._order is None:
            self._order = self._forward_order()
        record = np.full((len(self._layers), len(STAT_COLUMNS)), np.nan)
        measured = np.zeros(record.shape, dtype=bool)
        for k, i in enumerate(self._order):
            record[k], measured[k] = _layer_record(self._layers[i], table)
        for h in self._tensor_handles:
            h.remove()
        self._tensor_handles.clear()
        self._last_out = None
        self._records.append(record)
        self._steps.append((self._step, loss_value))
        if self.first_nonfinite is None:
            self.first_nonfinite = _first_nonfinite(record, measured, self._step, loss_value if loss is not None
                                                    else 0.0, self.names)
            if self.first_nonfinite is not None:  # said once, as it happens; the records go on
                warnings.warn(self.first_nonfinite.sentence(), RuntimeWarning, stacklevel=3)
        if self._store is not None:
            self._store.append(self._step, loss_value, record)

    # -- results --------------------------------------------------------------------------------------

    @property
    def step_count(self) -> int:
        """Steps closed so far (w.step() calls)."""
        return self._step

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(records, layers, len(STAT_COLUMNS)) statistics and (records, 2) step and loss, as float64 copies."""
        L = len(self._layers)
        stats = np.array(self._records, dtype=np.float64).reshape(len(self._records), L, len(STAT_COLUMNS))
        steps = np.array(self._steps, dtype=np.float64).reshape(len(self._steps), 2)
        return stats, steps

    def table(self):
        """The tidy table (pandas): one row per recorded step and layer, CLI.md's columns first."""
        stats, steps = self.arrays()
        return watch_table(stats, steps, self.names)

    @property
    def nonfinite_sentence(self) -> str:
        """Where the first inf/nan appeared, in one sentence (or that there was none)."""
        return self.first_nonfinite.sentence() if self.first_nonfinite else "Every recorded value is finite."

    def save(self, path):
        """Write the saved run (JSON) that Explore and Compare open; returns its Path."""
        from core.watch.view import save_json

        return save_json(self, path)


def _layer_record(layer: _Layer, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One layer's row of a record from its reduced tensors, and which cells were measured."""
    out = np.full(len(STAT_COLUMNS), np.nan)

    def pool(rows):
        return pooled(table[[r for r, _ in rows]], np.array([n for _, n in rows], dtype=np.int64))

    if layer.out_rows:
        out[COL["out_var"]], out[COL["out_mean"]] = pool(layer.out_rows)
    if layer.grad_rows:
        out[COL["grad_out_var"]] = pool(layer.grad_rows)[0]
    if layer.flat_rows:
        n = np.array([c for _, c in layer.flat_rows], dtype=np.float64)
        out[COL["saturation"]] = float((n * table[[r for r, _ in layer.flat_rows], FLAT]).sum() / n.sum())
    if layer.w_rows:
        out[COL["weight_var"]] = pool(layer.w_rows)[0]
    if layer.g_rows and len(layer.g_rows) == sum(layer.tracked):  # every trained weight has its gradient
        out[COL["weight_grad_var"]] = pool(layer.g_rows)[0]
    if layer.d_rows:
        trained_w = [row for row, t in zip(layer.w_rows, layer.tracked) if t]
        with np.errstate(all="ignore"):
            out[COL["update_ratio"]] = math.sqrt(pool(layer.d_rows)[0] / pool(trained_w)[0])
    out[COL["calls"]] = layer.calls
    has_grad = bool(layer.g_rows) and len(layer.g_rows) == sum(layer.tracked)
    measured = np.array([bool(layer.out_rows)] * 2 + [bool(layer.grad_rows), bool(layer.w_rows), has_grad,
                                                      bool(layer.d_rows), bool(layer.flat_rows), True])
    return out, measured


def watch_table(stats: np.ndarray, steps: np.ndarray, names):
    """The tidy table of CLI.md's "Watching your own model" from a watch's arrays."""
    import pandas as pd

    n = stats.shape[0] if stats.ndim == 3 else 0
    L = len(names)
    flat = stats.reshape(n * L, len(STAT_COLUMNS))
    cols = {"step": np.repeat(steps[:, 0].astype(np.int64), L), "layer": np.tile(np.arange(1, L + 1), n),
            "name": np.tile(np.asarray(list(names), dtype=object), n)}
    for c in TABLE_COLUMNS[3:]:
        cols[c] = np.repeat(steps[:, 1], L) if c == "loss" else flat[:, COL[c]]
    cols["calls"] = cols["calls"].astype(np.int64)
    return pd.DataFrame(cols)


def _first_nonfinite(record: np.ndarray, measured: np.ndarray, step: int, loss: float,
                     names: list[str]) -> NonFinite | None:
    """The first inf/nan among the measured cells of one record, in the order
    they arise: forward (lowest layer first), backward (highest layer first),
    then the weights; a non-finite loss with finite layers last."""
    bad = measured & ~np.isfinite(record)
    if bad.any():
        for group in (FORWARD, BACKWARD, WEIGHTS):
            cols = [COL[c] for c in group]
            rows = np.flatnonzero(bad[:, cols].any(axis=1))
            if rows.size:
                k = int(rows[-1] if group is BACKWARD else rows[0])
                column = next(c for c in group if bad[k, COL[c]])
                return NonFinite(step, k + 1, names[k], column)
    if not math.isfinite(loss):
        return NonFinite(step, 0, "loss", "loss")
    return None

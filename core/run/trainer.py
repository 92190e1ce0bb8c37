"""The training loop: `Trainer` takes one step at a time; `run_training` yields its records.

Records are taken at step 0 (the network at initialization: forward and
backward on the first batch, before any update), every `record_every` steps,
and after the last step. The first non-finite value stops the run; the record
of that step is kept (with its inf/nan) and `Divergence` says where it
appeared.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from core.schema import RunConfig
from core.data import BatchSampler, load_data
from core.run.boundary import boundary_probe
from core.measure.probes import histograms
from core.measure.records import COL, M_W, M_X, assemble, fill_arch_columns, first_nonfinite_layer
from core.measure.strategy import choose, expected_records
from core.measure.tracker import WeightTracker
from core.registry import ACTIVATIONS, INITIALIZERS, OPTIMIZERS


def set_training_threads(n: int = 1) -> None:
    """One intra-op thread: on a 2-core machine beside a web server, more
    threads make step times swing from 20 ms to 2 s."""
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


_allocator_tuned = False


def keep_freed_memory() -> None:
    """Let glibc keep freed heap for reuse (up to 512 MB) instead of giving
    it back to the OS as soon as 128 kB sit free at its top, and serve
    blocks up to 32 MB from that heap (once per process; nothing on another
    C library). A recorded step keeps more tensors alive than the steps
    between records, and with glibc's defaults each record faulted those
    pages in afresh (~40 page faults a step at one record in ten in
    bench_overhead's 50 × 64 case). Setting the trim threshold freezes
    glibc's adaptive mmap threshold, so that one is set too."""
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 32 * 2**20)
    mallopt(M_TRIM_THRESHOLD, 512 * 2**20)


def skip_dynamo_for_optimizers() -> None:
    """Spare a process that never compiles the import of torch._dynamo (about
    1.2 s, as long as torch's own): torch.optim.Optimizer's add_param_group,
    zero_grad, state_dict and load_state_dict are wrapped by
    `torch._disable_dynamo`, which imports torch._dynamo on the first call to
    wrap them in `torch._dynamo.disable`. The wrapper first looks for the
    disabled function on the original (`__dynamo_disable`); outside a compiled
    region that is the function itself, so it is set to that (unless
    torch._dynamo is imported already). The cost: code compiled later in the
    same process would trace these methods instead of skipping them; this app
    never compiles. `optimizer_step` does the same for step()."""
    import sys

    if "torch._dynamo" in sys.modules:
        return
    for f in vars(torch.optim.Optimizer).values():
        original = getattr(f, "__wrapped__", None)
        if original is not None and getattr(getattr(f, "__code__", None), "co_name", "") == "inner":
            if getattr(original, "__dynamo_disable", None) is None:
                original.__dynamo_disable = original


def optimizer_step(opt: torch.optim.Optimizer) -> None:
    """`opt.step()`, without the two wrappers torch.optim puts around every
    step: one imports torch._dynamo to mark graph breaks for torch.compile
    (see `skip_dynamo_for_optimizers`), the other runs the profiler's label and
    the step hooks (none here). What is left is the step itself, under
    no_grad as the first wrapper would run it. Once torch._dynamo is imported
    anyway, the wrapped step runs as usual."""
    import sys

    if "torch._dynamo" in sys.modules or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks:
        opt.step()
        return
    step = type(opt).step
    while hasattr(step, "__wrapped__"):
        step = step.__wrapped__
    with torch.no_grad():
        step(opt)


@dataclass(frozen=True)
class Divergence:
    step: int
    layer: int | None  # the table's row, 1 = nearest the input; None when only the loss was non-finite
    where: str         # "forward", "backward" or "loss"

    def sentence(self, cfg: RunConfig) -> str:
        """Where the run diverged, with the row named as `cfg`'s architecture names it ("block 12",
        "convolution 7", "layer 1, time step 17")."""
        if self.layer is None:
            return (f"The loss became non-finite at step {self.step}: the output layer's logits overflowed "
                    f"while every hidden {cfg.architecture.row_label} was still finite.")
        part = "activations" if self.where == "forward" else "back-propagated gradients"
        row = cfg.architecture.row_name(self.layer, cfg.time_steps)
        return f"The {part} of {row} became non-finite (inf/nan) at step {self.step}."


@dataclass
class Record:
    step: int
    loss: float
    train_accuracy: float
    test_accuracy: float           # NaN when not evaluated at this step
    stats: np.ndarray              # (layers, len(STAT_COLUMNS)) float64
    hist: dict | None = None       # latest histograms, when asked for
    divergence: "Divergence | None" = None  # set on the record where the run diverged
    boundary: tuple | None = None  # (classes, confidence) on the plane's grid, for 2-D data (core.run.boundary)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of rows whose largest logit is the label's (NaN counts as largest, as in torch.argmax)."""
    guess = logits.detach().cpu().numpy().argmax(axis=1)
    return np.count_nonzero(guess == y.cpu().numpy()) / max(len(y), 1)


class Trainer:
    """Owns the network, the optimizer and the data of one run; `advance()`
    takes one step of the loop. Not thread-safe: one thread drives it.

    `strategy` names the measuring strategy (`core.measure.strategy.NAMES`);
    by default it is chosen from the run's size before the first step, and
    `self.strategy.name` says which."""

    def __init__(self, cfg: RunConfig, strategy: str | None = None):
        keep_freed_memory()
        self.cfg = cfg
        self.data = load_data(cfg)
        self.sampler = BatchSampler(len(self.data.x_train), cfg.batch_size, cfg.seed)
        calibration = self.data.x_train[: min(len(self.data.x_train), 512)] if INITIALIZERS[cfg.init].needs_data else None
        self.net = cfg.architecture.build(cfg, calibration)
        self.net.train()
        self._probe = self.net.probe_parameter()
        skip_dynamo_for_optimizers()
        self.opt = OPTIMIZERS[cfg.optimizer].make(self.net.parameters(), cfg.lr)
        self.params = list(self.net.parameters())
        weights = self.net.block_weights()
        units = getattr(self.net, "block_units", None)  # optional in `Model`: W's rows where absent
        self.strategy = choose(self.net.activation, weights, cfg.batch_size,
                               expected_records(cfg.steps, cfg.record_every), strategy, chained=self.net.chained,
                               units=units() if units is not None else None)
        self.tracker = WeightTracker(weights, self.opt, cfg.optimizer, fused=self.strategy.fused)
        self.hist_range = ACTIVATIONS[cfg.activation].output_range
        self.step = 0  # optimizer steps taken
        self.divergence: Divergence | None = None
        self.done = False
        self.finite = True  # every checked column of the last record was finite
        self.boundary = boundary_probe(cfg, self.data)  # 2-D data: the grid the decision boundary is drawn on

    def __repr__(self) -> str:
        return f"Trainer(step {self.step}/{self.cfg.steps}, {'done' if self.done else 'training'})"

    def wants_record(self, step: int) -> bool:
        every = self.cfg.record_every
        if every == 0:
            return False
        return step == 0 or step % every == 0 or step == self.cfg.steps

    def _wants_eval(self, step: int) -> bool:
        every = self.cfg.eval_every
        return every > 0 and (step % every == 0 or step == self.cfg.steps)

    def advance(self, want_hist: bool = False) -> Record | None:
        """Forward and backward at the current step; record if due; update
        unless this was the last step. Returns the Record, if one was taken."""
        if self.done:
            return None
        s = self.step
        idx = self.sampler.next()
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        rec = None
        if self.wants_record(s):
            rec = self._recorded_step(s, x, y, want_hist, self._wants_eval(s))
            if self.boundary is not None and self.boundary.wants(s):
                rec.boundary = self.boundary.predict(self.net)  # the same weights as the record, before the update
        else:
            self.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.net(x), y)
            loss.backward()
            # A gradient that overflows poisons every layer below it, so the first
            # layer's ∂L/∂b (or ∂L/∂W) summed tells whether any did, for the cost of one small sum.
            probe_grad = self._probe.grad
            if not (math.isfinite(float(loss.detach())) and math.isfinite(float(probe_grad.sum()))):
                # Find the layer: the same step again, recorded (same batch, same weights).
                rec = self._recorded_step(s, x, y, want_hist, False)
                if first_nonfinite_layer(rec.stats, rec.loss) is None:
                    rec = None  # only the sum overflowed: nothing non-finite, train on
        if rec is not None and not (self.finite and math.isfinite(rec.loss)):
            where = first_nonfinite_layer(rec.stats, rec.loss)
            if where is not None:
                layer, part = where
                self.divergence = rec.divergence = Divergence(s, None if layer is None else layer + 1, part)
                self.done = True
                return rec
        if s >= self.cfg.steps:
            self.done = True
            return rec
        self.tracker.before_update(s, self.wants_record(s + 1))
        optimizer_step(self.opt)
        self.step = s + 1
        return rec

    def _recorded_step(self, s: int, x, y, want_hist: bool, evaluate: bool) -> Record:
        self.opt.zero_grad(set_to_none=True)
        weights = self.tracker.weights
        update = self.tracker.update_tensors(s)  # measured in the same pass as the record's tensors
        with self.strategy.record(keep=want_hist) as m:
            logits = self.net(x, watch=m)
            loss = F.cross_entropy(logits, y)
            m.backward(loss, self.params)
            weight_grads = [w.grad for w in weights]
            moments = m.finish(weight_grads, update[0] if update else None)
            w_var = moments[:, M_W].copy() if np.isfinite(moments[:, M_W]).all() else None
            stats, self.finite = assemble(moments, self.tracker.statistics(
                s, w_var, moments[:, M_X].copy() if update else None))
            fill_arch_columns(stats, self.net.extra_statistics(self.strategy.fused))
            kept = m.kept
        self.tracker.note_grad_var(s, stats[:, COL["weight_grad_var"]])
        train_acc = accuracy(logits, y)
        test_acc = self.test_accuracy() if evaluate else math.nan
        hist = None
        if want_hist:
            hist = {"act": histograms(kept.acts, value_range=self.hist_range), "grad_preact": histograms(kept.grad_hs),
                    "preact": histograms(kept.hs)}
        return Record(s, float(loss.detach()), train_acc, test_acc, stats, hist)

    @torch.no_grad()
    def test_accuracy(self) -> float:
        self.net.eval()
        try:
            return accuracy(self.net(self.data.x_test), self.data.y_test)
        finally:
            self.net.train()


def run_training(cfg: RunConfig, threads: int | None = 1) -> Iterator[Record]:
    """Train `cfg` and yield each Record as it is taken (the last one carries
    `divergence` if the run diverged)."""
    if threads:
        set_training_threads(threads)
    trainer = Trainer(cfg)
    while not trainer.done:
        rec = trainer.advance()
        if rec is not None:
            yield rec

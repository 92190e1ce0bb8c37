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
from core.models.mlp import build_network
from core.measure import kernels
from core.measure.probes import StepProbe, histograms
from core.measure.records import COL, first_nonfinite_layer
from core.measure.tracker import WeightTracker
from core.registry import OPTIMIZERS


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


@dataclass(frozen=True)
class Divergence:
    step: int
    layer: int | None  # 1 = nearest the input; None when only the loss was non-finite
    where: str         # "forward", "backward" or "loss"

    def sentence(self) -> str:
        if self.layer is None:
            return (f"The loss became non-finite at step {self.step}: the output layer's logits overflowed "
                    f"while every hidden layer was still finite.")
        part = "activations" if self.where == "forward" else "back-propagated gradients"
        return f"The {part} of layer {self.layer} became non-finite (inf/nan) at step {self.step}."


@dataclass
class Record:
    step: int
    loss: float
    train_accuracy: float
    test_accuracy: float           # NaN when not evaluated at this step
    stats: np.ndarray              # (layers, len(STAT_COLUMNS)) float64
    hist: dict | None = None       # latest histograms, when asked for
    divergence: "Divergence | None" = None  # set on the record where the run diverged


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of rows whose largest logit is the label's (NaN counts as largest, as in torch.argmax)."""
    guess = logits.detach().cpu().numpy().argmax(axis=1)
    return np.count_nonzero(guess == y.cpu().numpy()) / max(len(y), 1)


class Trainer:
    """Owns the network, the optimizer and the data of one run; `advance()`
    takes one step of the loop. Not thread-safe: one thread drives it."""

    def __init__(self, cfg: RunConfig):
        keep_freed_memory()
        self.cfg = cfg
        self.data = load_data(cfg)
        self.sampler = BatchSampler(len(self.data.x_train), cfg.batch_size, cfg.seed)
        calibration = self.data.x_train[: min(len(self.data.x_train), 512)] if cfg.init == "lsuv" else None
        self.net = build_network(cfg, calibration)
        self.net.train()
        self.opt = OPTIMIZERS[cfg.optimizer].make(self.net.parameters(), cfg.lr)
        self.params = list(self.net.parameters())
        self.tracker = WeightTracker([lin.weight for lin in self.net.linears], self.opt, cfg.optimizer)
        self.probe = StepProbe(self.net.activation, self.tracker.weights,
                               entries=cfg.batch_size * min(cfg.hidden_widths))
        self.hist_range = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}.get(cfg.activation)
        self.step = 0  # optimizer steps taken
        self.divergence: Divergence | None = None
        self.done = False
        if cfg.record_every:
            kernels.warm_up()

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
        else:
            self.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.net(x), y)
            loss.backward()
            # A gradient that overflows poisons every layer below it, so the first
            # layer's ∂L/∂b (or ∂L/∂W) summed tells whether any did, for the cost of one small sum.
            first = self.net.linears[0]
            probe_grad = first.bias.grad if first.bias is not None else first.weight.grad
            if not (math.isfinite(float(loss.detach())) and math.isfinite(float(probe_grad.sum()))):
                # Find the layer: the same step again, recorded (same batch, same weights).
                rec = self._recorded_step(s, x, y, want_hist, False)
                if first_nonfinite_layer(rec.stats, rec.loss) is None:
                    rec = None  # only the sum overflowed: nothing non-finite, train on
        if rec is not None and not (self.probe.finite and math.isfinite(rec.loss)):
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
        self.opt.step()
        self.step = s + 1
        return rec

    def _recorded_step(self, s: int, x, y, want_hist: bool, evaluate: bool) -> Record:
        self.opt.zero_grad(set_to_none=True)
        weights = self.tracker.weights
        update = self.tracker.update_tensors(s)  # measured in the same pass as the record's tensors
        with self.probe.record(keep=want_hist) as probe:
            logits = self.net(x, probe=probe)
            loss = F.cross_entropy(logits, y)
            probe.backward(loss, self.params)
            weight_grads = [w.grad for w in weights]
            probe.measure(weight_grads, update[0] if update else None)
        stats = probe.statistics(weight_grads, self.tracker.statistics(s, probe.weight_var, probe.extra_var))
        self.tracker.note_grad_var(s, stats[:, COL["weight_grad_var"]])
        train_acc = accuracy(logits, y)
        test_acc = self.test_accuracy() if evaluate else math.nan
        hist = None
        if want_hist:
            hist = {"act": histograms(probe.acts, value_range=self.hist_range), "grad_preact": histograms(probe.grad_hs),
                    "preact": histograms(probe.hs)}
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

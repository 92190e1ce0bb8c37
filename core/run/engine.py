"""The training run.

Three ways in, one loop underneath (`Trainer.advance`):

* `run_training(cfg)`: a generator of `Record`s, for scripts and notebooks;
* `train(cfg)`: runs to the end and returns a `RunResult` (the CLI, the tests);
* `Run(cfg)`: a background thread that can be started, paused, resumed,
  stepped and stopped from another thread, and hands out consistent
  `Snapshot`s of everything recorded so far (what the dashboard polls).

Records are taken at step 0 (the network at initialization: forward and
backward on the first batch, before any update), every `record_every` steps,
and after the last step. The first non-finite value stops the run; the record
of that step is kept (with its inf/nan) and `Divergence` says where it
appeared.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from core.schema import RunConfig
from core.data import BatchSampler, load_data
from core.models.mlp import build_network
from core.measure import kernels
from core.measure.probes import StepProbe, histograms
from core.measure.records import COL, STAT_COLUMNS, first_nonfinite_layer
from core.measure.tracker import WeightTracker
from core.registry import ACTIVATIONS, OPTIMIZERS

STEP_COLUMNS = ("step", "loss", "train_accuracy", "test_accuracy")
# The per-layer table's columns: CLI.md's required ones in its order, then ours.
LAYER_COLUMNS = ("step", "layer", *(c for c in STAT_COLUMNS if c != "grad_ratio"), "loss",
                 "grad_ratio", "train_accuracy", "test_accuracy")


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
        self.hist_range = ACTIVATIONS[cfg.activation].output_range
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


# -- the recorded history ---------------------------------------------------------

class History:
    """Recorded statistics in growing numpy arrays (amortized O(1) appends,
    one float64 block per record, no tensors kept)."""

    def __init__(self, layers: int):
        self.layers = layers
        self.n = 0
        self._stats = np.empty((16, layers, len(STAT_COLUMNS)))
        self._steps = np.empty((16, len(STEP_COLUMNS)))

    def append(self, rec: Record) -> None:
        if self.n == len(self._stats):
            self._stats = np.concatenate([self._stats, np.empty_like(self._stats)])
            self._steps = np.concatenate([self._steps, np.empty_like(self._steps)])
        self._stats[self.n] = rec.stats
        self._steps[self.n] = (rec.step, rec.loss, rec.train_accuracy, rec.test_accuracy)
        self.n += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self._stats[: self.n].copy(), self._steps[: self.n].copy()

    @property
    def nbytes(self) -> int:
        return self._stats.nbytes + self._steps.nbytes


def layer_table(stats: np.ndarray, steps: np.ndarray):
    """The tidy per-layer table of CLI.md: one row per recorded step and layer."""
    import pandas as pd

    n, L, _ = stats.shape if stats.ndim == 3 else (0, 0, 0)
    cols = {
        "step": np.repeat(steps[:, 0].astype(np.int64), L),
        "layer": np.tile(np.arange(1, L + 1, dtype=np.int64), n),
    }
    flat = stats.reshape(n * L, len(STAT_COLUMNS))
    extra = {"grad_ratio"}  # CLI.md's required columns first, in its order; ours follow
    for i, name in enumerate(STAT_COLUMNS):
        if name not in extra:
            cols[name] = flat[:, i]
    cols["loss"] = np.repeat(steps[:, 1], L)
    for i, name in enumerate(STAT_COLUMNS):
        if name in extra:
            cols[name] = flat[:, i]
    cols["train_accuracy"] = np.repeat(steps[:, 2], L)
    cols["test_accuracy"] = np.repeat(steps[:, 3], L)
    return pd.DataFrame(cols)


def step_table(steps: np.ndarray):
    import pandas as pd

    df = pd.DataFrame(steps, columns=list(STEP_COLUMNS))
    df["step"] = df["step"].astype(np.int64)
    return df


class _Tables:
    """The tidy tables of whatever holds `stats` and `steps` arrays."""

    stats: np.ndarray
    steps: np.ndarray

    @property
    def layers(self):
        """The per-layer table of CLI.md (a pandas DataFrame)."""
        return layer_table(self.stats, self.steps)

    @property
    def step_rows(self):
        """One row per record: step, loss, train and test accuracy."""
        return step_table(self.steps)


@dataclass
class RunResult(_Tables):
    """What a run produced: the config, the tables and how it ended."""

    config: RunConfig
    stats: np.ndarray
    steps: np.ndarray
    status: str
    divergence: Divergence | None = None
    elapsed: float = 0.0
    message: str = ""

    def __repr__(self) -> str:
        return f"RunResult({self.status}, {len(self.steps)} records, {self.stats.shape[1] if self.stats.ndim == 3 else 0} layers)"


def train(cfg: RunConfig, progress: Callable[[int, int], None] | None = None, threads: int | None = 1) -> RunResult:
    """Run `cfg` to the end (or to divergence) in this thread."""
    if threads:
        set_training_threads(threads)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    history = History(len(cfg.hidden_widths))
    while not trainer.done:
        rec = trainer.advance()
        if rec is not None:
            history.append(rec)
        if progress is not None:
            progress(trainer.step, cfg.steps)
    stats, steps = history.arrays()
    status = "diverged" if trainer.divergence else "finished"
    msg = trainer.divergence.sentence() if trainer.divergence else ""
    return RunResult(cfg, stats, steps, status, trainer.divergence, time.perf_counter() - t0, msg)


# -- the background run ---------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot(_Tables):
    """A consistent copy of a run's state at one moment."""

    config: RunConfig
    status: str  # queued, running, paused, finished, stopped, diverged, failed
    step: int
    stats: np.ndarray
    steps: np.ndarray
    divergence: Divergence | None
    message: str
    elapsed: float
    hist: dict | None = None
    queue_position: int = 0
    version: int = 0  # increases with every new record or status change

    @property
    def running(self) -> bool:
        return self.status in ("queued", "running", "paused")

    def result(self) -> RunResult:
        return RunResult(self.config, self.stats, self.steps, self.status, self.divergence, self.elapsed, self.message)


class RunSlots:
    """A server-wide cap on concurrent training threads, first come first served."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._cond = threading.Condition()
        self._active = 0
        self._queue: list[object] = []

    def acquire(self, token: object, cancelled: threading.Event, on_wait: Callable[[int], None]) -> bool:
        with self._cond:
            self._queue.append(token)
            try:
                while True:
                    pos = self._queue.index(token)
                    if pos == 0 and self._active < self.capacity:
                        self._active += 1
                        return True
                    on_wait(pos + 1)
                    if cancelled.is_set():
                        return False
                    self._cond.wait(timeout=0.25)
            finally:
                self._queue.remove(token)
                self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._queue)


class Run:
    """A training run in a background thread.

    Controls (any thread): `start()`, `pause()`, `resume()`, `step(n)` (while
    paused: take n more steps, then pause again), `stop()`, `join()`.
    `snapshot()` returns a consistent copy of everything recorded so far. The
    thread never touches any UI.

    `max_seconds` caps the wall-clock time of the training; `heartbeat_timeout`
    stops a run nobody has looked at (`snapshot()` or `touch()`) for that long
    — a closed browser tab; `slots` makes it wait for a free place first.
    """

    def __init__(self, cfg: RunConfig, *, max_seconds: float | None = None, heartbeat_timeout: float | None = None,
                 slots: RunSlots | None = None, hist_interval: float = 0.5, threads: int | None = 1):
        self.cfg = cfg
        self.max_seconds = max_seconds
        self.heartbeat_timeout = heartbeat_timeout
        self.slots = slots
        self.hist_interval = hist_interval
        self.threads = threads
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._paused = False
        self._step_budget = 0
        self._history = History(len(cfg.hidden_widths))
        self._status = "ready"
        self._message = ""
        self._divergence: Divergence | None = None
        self._step = 0
        self._hist: dict | None = None
        self._queue_position = 0
        self._version = 0
        self._elapsed = 0.0
        self._last_seen = time.monotonic()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Run({self._status}, step {self._step}/{self.cfg.steps})"

    # -- controls --------------------------------------------------------------
    def start(self, paused: bool = False) -> "Run":
        with self._lock:
            if self._thread is not None:
                return self
            self._paused = paused
            self._status = "queued" if self.slots else ("paused" if paused else "running")
            self._thread = threading.Thread(target=self._main, name=f"gfl-run-{id(self):x}", daemon=True)
            self._thread.start()
        return self

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            self._step_budget = 0
            if self._status == "running":
                self._set_status("paused")

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._status == "paused":
                self._set_status("running")
            self._wake.notify_all()

    def step(self, n: int = 1) -> None:
        with self._lock:
            self._paused = True
            self._step_budget += max(0, int(n))
            self._wake.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._wake.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def touch(self) -> None:
        self._last_seen = time.monotonic()

    @property
    def status(self) -> str:
        return self._status

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> Snapshot:
        self.touch()
        with self._lock:
            stats, steps = self._history.arrays()
            return Snapshot(self.cfg, self._status, self._step, stats, steps, self._divergence, self._message,
                            self._elapsed, self._hist, self._queue_position, self._version)

    # -- the thread ------------------------------------------------------------
    def _set_status(self, status: str, message: str | None = None) -> None:
        self._status = status
        if message is not None:
            self._message = message
        self._version += 1

    def _finish(self, status: str, message: str = "") -> None:
        with self._lock:
            self._set_status(status, message)

    def _queued(self, position: int) -> None:
        with self._lock:
            if self._queue_position != position:
                self._queue_position = position
                self._version += 1
        self._check_heartbeat()

    def _check_heartbeat(self) -> None:
        if self.heartbeat_timeout and time.monotonic() - self._last_seen > self.heartbeat_timeout:
            self._stop.set()

    def _main(self) -> None:
        if self.slots is not None:
            if not self.slots.acquire(self, self._stop, self._queued):
                self._finish("stopped", "Stopped while waiting for a free place.")
                return
        try:
            self._train()
        except Exception as e:  # the thread must never die silently: the page shows this
            self._finish("failed", f"The run failed: {type(e).__name__}: {e}")
        finally:
            if self.slots is not None:
                self.slots.release()

    def _train(self) -> None:
        if self.threads:
            set_training_threads(self.threads)
        with self._lock:
            self._queue_position = 0
            self._set_status("paused" if self._paused else "running")
        self._loop(Trainer(self.cfg))

    def _append(self, records: list[Record]) -> None:
        with self._lock:
            for rec in records:
                self._history.append(rec)
                if rec.hist is not None:
                    self._hist = dict(rec.hist, step=rec.step)
                self._version += 1

    def _loop(self, trainer: Trainer) -> None:
        t0 = time.monotonic()
        last_hist = -math.inf
        while not trainer.done:
            over_time = False
            with self._lock:
                while self._paused and self._step_budget == 0 and not self._stop.is_set():
                    self._wake.wait(timeout=0.5)
                    self._check_heartbeat()
                    # The cap is wall-clock, pauses included: a paused run must not hold its place forever.
                    if self.max_seconds is not None and time.monotonic() - t0 > self.max_seconds:
                        over_time = True
                        break
                if self._step_budget > 0 and not over_time:
                    self._step_budget -= 1
            if over_time:
                self._finish("stopped", f"Stopped at step {trainer.step}: this server caps a run at "
                                        f"{self.max_seconds:g} seconds, pauses included.")
                return
            if self._stop.is_set():
                self._finish("stopped", self._stop_reason())
                return
            now = time.monotonic()
            want_hist = trainer.wants_record(trainer.step) and (
                now - last_hist >= self.hist_interval or trainer.step == self.cfg.steps or self._paused)
            if want_hist:
                last_hist = now
            rec = trainer.advance(want_hist=want_hist)
            if rec is not None:
                self._append([rec])
            elapsed = time.monotonic() - t0
            with self._lock:
                self._step = trainer.step
                self._elapsed = elapsed
                if self._paused and self._step_budget == 0 and self._status == "running":
                    self._set_status("paused")
            self._check_heartbeat()
            if self.max_seconds is not None and elapsed > self.max_seconds and not trainer.done:
                self._finish("stopped", f"Stopped at step {trainer.step}: this server caps a run at "
                                        f"{self.max_seconds:g} seconds.")
                return
        if trainer.divergence is not None:
            self._divergence = trainer.divergence
            self._finish("diverged", trainer.divergence.sentence())
        else:
            self._finish("finished", f"Finished {self.cfg.steps} steps in {time.monotonic() - t0:.1f} s.")

    def _stop_reason(self) -> str:
        if self.heartbeat_timeout and time.monotonic() - self._last_seen > self.heartbeat_timeout:
            return "Stopped: nobody was watching this run (the page was closed)."
        return f"Stopped by the user at step {self._step}."

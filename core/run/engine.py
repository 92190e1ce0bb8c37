"""The training run.

Three ways in, one loop underneath (`Trainer.advance`):

* `run_training(cfg)`: a generator of `Record`s, for scripts and notebooks;
* `train(cfg)`: runs to the end and returns a `RunResult` (the CLI, the tests);
* `Run(cfg)`: a background thread that can be started, paused, resumed,
  stepped and stopped from another thread, and hands out consistent
  `Snapshot`s of everything recorded so far (what the dashboard polls).

The loop itself (`Trainer`, `run_training`, `Record`, `Divergence`) is in
`core.run.trainer`.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.schema import RunConfig
from core.measure.records import STAT_COLUMNS
# The training loop lives in core.run.trainer; its names are importable from here too.
from core.run.trainer import (  # noqa: F401
    Divergence, Record, Trainer, accuracy, keep_freed_memory, run_training, set_training_threads,
)

STEP_COLUMNS = ("step", "loss", "train_accuracy", "test_accuracy")
# The per-layer table's columns: CLI.md's required ones in its order, then ours.
LAYER_COLUMNS = ("step", "layer", *(c for c in STAT_COLUMNS if c != "grad_ratio"), "loss",
                 "grad_ratio", "train_accuracy", "test_accuracy")


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

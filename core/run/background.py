"""A training run in a background thread (what the dashboard drives), and the
server-wide places such threads wait for.

`Run(cfg)` can be started, paused, resumed, stepped and stopped from another
thread; `snapshot()` hands out a `RunRecord` of everything recorded so far: a
read-only view of the run's growing arrays, not a copy, so a page can poll it
several times a second for any length of run.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable

from core.run.boundary import BoundaryRecorder
from core.run.engine import Record, Trainer, set_training_threads
from core.run.record import Recorder, RunRecord, progress_text
from core.schema import RunConfig, RunStatus

# How often a paused or queued run looks at its heartbeat at most; a running
# run looks after every step. A run nobody has watched for `heartbeat_timeout`
# stops within heartbeat_timeout + HEARTBEAT_CHECK_SECONDS (+ one step).
HEARTBEAT_CHECK_SECONDS = 0.5


class RunSlots:
    """A server-wide cap on concurrent training threads, first come first served."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._cond = threading.Condition()
        self._active = 0
        self._queue: list[object] = []

    def __repr__(self) -> str:
        return f"RunSlots({self._active}/{self.capacity} training, {len(self._queue)} waiting)"

    def acquire(self, token: object, cancelled: threading.Event, on_wait: Callable[[int], None],
                poll: float = 0.25) -> bool:
        """Wait for a place (calling `on_wait(position)` at least every `poll`
        seconds); False when `cancelled` was set first."""
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
                    self._cond.wait(timeout=poll)
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
    `snapshot()` returns the run so far as a read-only `RunRecord`. The thread
    never touches any UI.

    `max_seconds` caps the wall-clock time of the training; `heartbeat_timeout`
    stops a run nobody has looked at (`snapshot()` or `touch()`) for that long
    — a closed browser tab; `slots` makes it wait for a free place first.
    """

    def __init__(self, cfg: RunConfig, *, max_seconds: float | None = None, heartbeat_timeout: float | None = None,
                 slots: RunSlots | None = None, hist_interval: float = 0.5, threads: int | None = 1):
        self.cfg = cfg
        self.max_seconds = max_seconds
        self.heartbeat_timeout = heartbeat_timeout
        # A short timeout (the tests') is checked proportionally often, so the overshoot stays a tenth of it.
        self.heartbeat_check = min(HEARTBEAT_CHECK_SECONDS, heartbeat_timeout / 10) if heartbeat_timeout \
            else HEARTBEAT_CHECK_SECONDS
        self.slots = slots
        self.hist_interval = hist_interval
        self.threads = threads
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._paused = False
        self._step_budget = 0
        self._recorder = Recorder(cfg.rows)
        self._status = RunStatus.READY
        self._message = ""
        self._divergence = None
        self._step = 0  # optimizer steps taken
        self._hist: dict | None = None
        self._boundary = None  # core.run.boundary.BoundaryRecorder, for 2-D data, once the trainer exists
        self._queue_position = 0
        self._version = 0
        self._elapsed = 0.0
        self._last_seen = time.monotonic()
        self._thread: threading.Thread | None = None
        self._reason: str | None = None

    def __repr__(self) -> str:
        return f"Run({self._status}, {self._step}/{self.cfg.steps} steps taken, {len(self._recorder)} records)"

    # -- controls --------------------------------------------------------------
    def start(self, paused: bool = False) -> "Run":
        with self._lock:
            if self._thread is not None:
                return self
            self._paused = paused
            self._status = RunStatus.QUEUED if self.slots else (RunStatus.PAUSED if paused else RunStatus.RUNNING)
            self._thread = threading.Thread(target=self._main, name=f"gfl-run-{id(self):x}", daemon=True)
            self._thread.start()
        return self

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            self._step_budget = 0
            if self._status is RunStatus.RUNNING:
                self._set_status(RunStatus.PAUSED)

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._status is RunStatus.PAUSED:
                self._set_status(RunStatus.RUNNING)
            self._wake.notify_all()

    def step(self, n: int = 1) -> None:
        with self._lock:
            self._paused = True
            self._step_budget += max(0, int(n))
            self._wake.notify_all()

    def stop(self, reason: str | None = None) -> None:
        """End the run after the step in flight; `reason` (a sentence) replaces "Stopped by the user"."""
        if reason is not None:
            self._reason = reason
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
    def status(self) -> RunStatus:
        return self._status

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> RunRecord:
        """The run so far: a read-only view of its records (no copy) with its status at this moment.
        Counts as somebody watching (the heartbeat)."""
        self.touch()
        return self._record()

    def _record(self) -> RunRecord:
        with self._lock:
            stats, steps = self._recorder.view()
            return RunRecord(self.cfg, stats, steps, self._status, self._divergence, self._elapsed, self._message,
                             steps_taken=self._step, hist=self._hist, queue_position=self._queue_position,
                             version=self._version,
                             boundary=self._boundary.view() if self._boundary is not None else None)

    # -- the thread ------------------------------------------------------------
    def _set_status(self, status: RunStatus, message: str | None = None) -> None:
        self._status = status
        if message is not None:
            self._message = message
        self._version += 1

    def _finish(self, status: RunStatus, message: str = "") -> None:
        with self._lock:
            self._set_status(status, message)

    def _queued(self, position: int) -> None:
        with self._lock:
            if self._queue_position != position:
                self._queue_position = position
                self._version += 1
        self._check_heartbeat()

    def _unwatched(self) -> bool:
        return bool(self.heartbeat_timeout) and time.monotonic() - self._last_seen > self.heartbeat_timeout

    def _check_heartbeat(self) -> None:
        if self._unwatched():
            self._stop.set()

    def _main(self) -> None:
        if self.slots is not None:
            if not self.slots.acquire(self, self._stop, self._queued, poll=min(0.25, self.heartbeat_check)):
                why = " (nobody was watching it: the page was closed)" if self._unwatched() else ""
                self._finish(RunStatus.STOPPED, f"Stopped while waiting for a free place{why}.")
                return
        try:
            self._train()
        except Exception as e:  # the thread must never die silently: the page shows this
            self._finish(RunStatus.FAILED, f"The run failed: {type(e).__name__}: {e}")
        finally:
            if self.slots is not None:
                self.slots.release()

    def _train(self) -> None:
        if self.threads:
            set_training_threads(self.threads)
        with self._lock:
            self._queue_position = 0
            self._set_status(RunStatus.PAUSED if self._paused else RunStatus.RUNNING)
        trainer = Trainer(self.cfg)
        if trainer.boundary is not None:
            self._probe(trainer.boundary)
        self._loop(trainer)

    def _probe(self, probe) -> None:
        """The grid a 2-D dataset's decision boundary is drawn on (core.run.boundary)."""
        with self._lock:
            self._boundary = BoundaryRecorder(probe)

    def _append(self, rec: Record) -> None:
        with self._lock:
            self._recorder.append(rec)
            if rec.hist is not None:
                self._hist = dict(rec.hist, step=rec.step)
            if rec.boundary is not None and self._boundary is not None:
                self._boundary.append(rec.step, rec.boundary)
            self._version += 1

    def _stopped(self, why: str) -> None:
        """Stopped, with the reason and how far it got in the status line's words."""
        self._finish(RunStatus.STOPPED, f"{why} ({progress_text(self._record())}).")

    def _loop(self, trainer: Trainer) -> None:
        t0 = time.monotonic()
        last_hist = -math.inf
        while not trainer.done:
            over_time = False
            with self._lock:
                while self._paused and self._step_budget == 0 and not self._stop.is_set():
                    self._wake.wait(timeout=self.heartbeat_check)
                    self._check_heartbeat()
                    # The cap is wall-clock, pauses included: a paused run must not hold its place forever.
                    if self.max_seconds is not None and time.monotonic() - t0 > self.max_seconds:
                        over_time = True
                        break
                if self._step_budget > 0 and not over_time:
                    self._step_budget -= 1
            if over_time:
                self._stopped(f"Stopped: this server caps a run at {self.max_seconds:g} seconds, pauses included")
                return
            if self._stop.is_set():
                self._stopped(self._stop_reason())
                return
            now = time.monotonic()
            want_hist = trainer.wants_record(trainer.step) and (
                now - last_hist >= self.hist_interval or trainer.step == self.cfg.steps or self._paused)
            if want_hist:
                last_hist = now
            rec = trainer.advance(want_hist=want_hist)
            if rec is not None:
                self._append(rec)
            elapsed = time.monotonic() - t0
            with self._lock:
                self._step = trainer.step
                self._elapsed = elapsed
                if self._paused and self._step_budget == 0 and self._status is RunStatus.RUNNING:
                    self._set_status(RunStatus.PAUSED)
            self._check_heartbeat()
            if self.max_seconds is not None and elapsed > self.max_seconds and not trainer.done:
                self._stopped(f"Stopped: this server caps a run at {self.max_seconds:g} seconds")
                return
        if trainer.divergence is not None:
            with self._lock:
                self._divergence = trainer.divergence
                self._set_status(RunStatus.DIVERGED, trainer.divergence.sentence(self.cfg))
        else:
            self._finish(RunStatus.FINISHED, f"Finished {self.cfg.steps:,} steps in {time.monotonic() - t0:.1f} s.")

    def _stop_reason(self) -> str:
        if self._reason is not None:
            return self._reason
        if self._unwatched():
            return "Stopped: nobody was watching this run (the page was closed)"
        return "Stopped by the user"


__all__ = ["Run", "RunSlots", "HEARTBEAT_CHECK_SECONDS"]

"""Running a sweep: stored cells first, the rest on a backend, each saved as it finishes.

* `iter_sweep(spec, ...)`: a generator of `CellDone` as cells finish (for the CLI and scripts);
* `run_sweep(spec, ...)`: runs to the end and returns a `SweepResult`;
* `SweepRun(spec, ...)`: the same in a background thread, with consistent
  `SweepSnapshot`s for the dashboard to poll, a stop event, a heartbeat and a
  place in the server's run queue (`RunSlots`): a sweep takes one place per
  worker it runs, the first one waiting in line like any run.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd

from core.schema import RunConfig, RunStatus
from core.sweep.backends import CellFn, make_backend
from core.sweep.cells import run_cell
from core.sweep.spec import SweepSpec
from core.sweep.store import ResultStore, cell_key, clean_row
from core.sweep.table import sweep_table


@dataclass(frozen=True)
class CellDone:
    index: int          # position in spec.cells()
    config: RunConfig
    row: dict
    profile: dict       # step-0 per-layer variances (empty for a failed cell)
    cached: bool        # True: read from the store, not computed


def iter_sweep(spec: SweepSpec, *, backend: str = "local", workers: int | None = None, ray_address: str | None = None,
               store: ResultStore | None = None, cell_fn: CellFn = run_cell,
               stop: threading.Event | None = None, backend_obj=None) -> Iterator[CellDone]:
    """Every cell of `spec`: those in `store` at once, then the others as the backend finishes them
    (each saved to `store` when it finishes). `store=None`: compute everything, save nothing."""
    cfgs = spec.cells()
    found = store.get_many(cfgs) if store is not None else {}
    todo = []
    for i, cfg in enumerate(cfgs):
        hit = found.get(cell_key(cfg))
        if hit is not None:
            yield CellDone(i, cfg, clean_row(hit[0]), hit[1], True)
        else:
            todo.append((i, cfg))
    if not todo:
        return
    owned = backend_obj is None
    be = backend_obj if backend_obj is not None else make_backend(backend, workers, ray_address, cell_fn)
    try:
        for index, row, profile in be.run(todo, stop):
            cfg = cfgs[index]
            if store is not None:
                store.put(cfg, row, profile)
            yield CellDone(index, cfg, row, profile, False)
    finally:
        if owned:
            be.close()


@dataclass
class SweepResult:
    spec: SweepSpec
    rows: dict[int, dict]
    profiles: dict[int, dict]
    computed: int       # cells trained in this call (the rest came from the store)
    elapsed: float

    @property
    def table(self) -> pd.DataFrame:
        return sweep_table(self.spec, self.rows)

    def __repr__(self) -> str:
        return f"SweepResult({len(self.rows)}/{self.spec.size} cells, {self.computed} computed, {self.elapsed:.1f} s)"


def run_sweep(spec: SweepSpec, *, progress: Callable[[CellDone, int, int], None] | None = None, **kw) -> SweepResult:
    """Run every cell of `spec` to the end; `progress(cell, done, total)` after each."""
    t0 = time.perf_counter()
    rows, profiles, computed = {}, {}, 0
    for done in iter_sweep(spec, **kw):
        rows[done.index], profiles[done.index] = done.row, done.profile
        computed += not done.cached
        if progress is not None:
            progress(done, len(rows), spec.size)
    return SweepResult(spec, rows, profiles, computed, time.perf_counter() - t0)


# -- the background sweep (the dashboard) -------------------------------------------------------------

@dataclass(frozen=True)
class SweepSnapshot:
    spec: SweepSpec
    status: RunStatus           # queued, running, finished, stopped, failed (ready: only what the store has)
    rows: dict[int, dict]
    profiles: dict[int, dict]
    computed: int
    elapsed: float
    seconds_left: float | None  # None until a computed cell gives a rate
    workers: int
    queue_position: int = 0
    message: str = ""
    version: int = 0

    @property
    def done(self) -> int:
        return len(self.rows)

    @property
    def running(self) -> bool:
        return self.status.live

    @property
    def table(self) -> pd.DataFrame:
        return sweep_table(self.spec, self.rows)


class SweepRun:
    """A sweep in a background thread that never touches any UI. `snapshot()` from any thread."""

    def __init__(self, spec: SweepSpec, *, workers: int = 1, store: ResultStore | None = None, slots=None,
                 heartbeat_timeout: float | None = None, cell_fn: CellFn = run_cell, backend: str = "local",
                 ray_address: str | None = None):
        self.spec = spec
        self.max_workers = max(1, workers)
        self.store = store
        self.slots = slots
        self.heartbeat_timeout = heartbeat_timeout
        self.cell_fn = cell_fn
        self.backend = backend
        self.ray_address = ray_address
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rows: dict[int, dict] = {}
        self._profiles: dict[int, dict] = {}
        self._status = RunStatus.QUEUED
        self._message = ""
        self._computed = 0
        self._workers = 0
        self._queue_position = 0
        self._t0 = time.perf_counter()
        self._compute_t0: float | None = None
        self._version = 0
        self._last_seen = time.monotonic()
        self._thread = threading.Thread(target=self._main, name="gfl-sweep", daemon=True)

    def __repr__(self) -> str:
        return f"SweepRun({self.spec!r}, {self._status})"

    def start(self) -> "SweepRun":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def touch(self) -> None:
        self._last_seen = time.monotonic()

    def snapshot(self) -> SweepSnapshot:
        self.touch()
        with self._lock:
            now = time.perf_counter()
            left = None
            remaining = self.spec.size - len(self._rows)
            if self._status is RunStatus.RUNNING and self._computed and self._compute_t0 is not None:
                rate = self._computed / max(now - self._compute_t0, 1e-9)
                left = remaining / rate
            elif remaining == 0:
                left = 0.0
            return SweepSnapshot(self.spec, self._status, dict(self._rows), dict(self._profiles), self._computed,
                                 now - self._t0, left, self._workers, self._queue_position, self._message, self._version)

    # -- the thread --------------------------------------------------------------------------------
    def _set(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, "_" + k, v)
            self._version += 1

    def _heartbeat_lost(self) -> bool:
        return self.heartbeat_timeout is not None and time.monotonic() - self._last_seen > self.heartbeat_timeout

    def _take_slots(self) -> int:
        """One place, waiting in line; then up to max_workers - 1 more only if free right now."""
        if self.slots is None:
            return self.max_workers
        token = object()
        if not self.slots.acquire(token, self._stop, lambda pos: self._set(queue_position=pos)):
            return 0
        taken, now = 1, threading.Event()
        now.set()  # a set "cancelled" event makes acquire give up instead of waiting
        while taken < self.max_workers and self.slots.acquire(object(), now, lambda pos: None):
            taken += 1
        return taken

    def _main(self) -> None:
        taken = 0
        try:
            # Stored cells first, before queueing: reopening a finished sweep needs no place on the server.
            cfgs = self.spec.cells()
            found = self.store.get_many(cfgs) if self.store is not None else {}
            with self._lock:
                for i, cfg in enumerate(cfgs):
                    hit = found.get(cell_key(cfg))
                    if hit is not None:
                        self._rows[i], self._profiles[i] = clean_row(hit[0]), hit[1]
                self._version += 1
            if len(self._rows) == self.spec.size:
                self._set(status=RunStatus.FINISHED)
                return
            taken = self._take_slots()
            if taken == 0:
                self._set(status=RunStatus.STOPPED, message="Stopped while waiting in the queue.")
                return
            self._set(status=RunStatus.RUNNING, workers=taken, queue_position=0, compute_t0=time.perf_counter())
            watchdog = threading.Thread(target=self._watch, daemon=True, name="gfl-sweep-heartbeat")
            watchdog.start()
            for done in iter_sweep(self.spec, backend=self.backend, workers=taken, ray_address=self.ray_address,
                                   store=self.store, cell_fn=self.cell_fn, stop=self._stop):
                if done.cached:
                    continue
                with self._lock:
                    self._rows[done.index], self._profiles[done.index] = done.row, done.profile
                    self._computed += 1
                    self._version += 1
            if self._stop.is_set() and len(self._rows) < self.spec.size:
                why = ("Stopped: nobody was watching this sweep (the tab was closed)." if self._heartbeat_lost()
                       else "Stopped.")
                self._set(status=RunStatus.STOPPED, message=why + " Finished cells are saved; run it again to go on.")
            else:
                self._set(status=RunStatus.FINISHED)
        except Exception as e:  # noqa: BLE001 - the page shows it in one sentence
            self._set(status=RunStatus.FAILED, message=" ".join(str(e).split())[:300] or type(e).__name__)
        finally:
            for _ in range(taken if self.slots is not None else 0):
                self.slots.release()

    def _watch(self) -> None:
        while self._thread.is_alive() and not self._stop.is_set():
            if self._heartbeat_lost():
                self._stop.set()
            time.sleep(0.5)


__all__ = ["CellDone", "iter_sweep", "run_sweep", "SweepResult", "SweepRun", "SweepSnapshot"]

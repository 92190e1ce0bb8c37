"""Where a sweep's cells run: a local process pool (the default) or Ray.

Both take (index, RunConfig) tasks and yield (index, row, profile) as cells
finish, in whatever order they finish. Each worker trains with one torch
thread, so N workers use N cores without fighting over them. A worker that
dies (a segfault, the OOM killer) costs only its own cell, which comes back
as `failed: ...`; the other cells go on.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator

from core.schema import RunConfig
from core.sweep.cells import failed_row, run_cell
from core.workers import PROJECT_ROOT, death_reason, give_back, take, worker_env

BACKENDS = ("local", "ray")
POLL_SECONDS = 0.25  # how often a waiting backend looks at its stop event

CellFn = Callable[[RunConfig], tuple[dict, dict]]
Task = tuple[int, RunConfig]


class BackendError(RuntimeError):
    """A backend that cannot start (an unreachable Ray cluster...), with one sentence for people."""


class ServerEngine(tuple):
    """Where this server runs the Sweep page's cells: (backend, ray_address). A visitor never picks the engine
    or an address (a link must not point the server at a machine); the operator does, with
    `GFL_SWEEP_BACKEND` (`local`, the default, or `ray`) and, for an existing cluster, `GFL_RAY_ADDRESS` or
    `RAY_ADDRESS` (without one, Ray starts a local instance)."""

    __slots__ = ()

    def __new__(cls, backend: str = "local", address: str | None = None):
        return super().__new__(cls, (backend, address))

    @property
    def backend(self) -> str:
        return self[0]

    @property
    def address(self) -> str | None:
        return self[1]

    def describe(self, workers: int) -> str:
        """Where the cells run, for the page: 'this server's process pool (2 workers)', 'the Ray cluster at …'."""
        if self.backend == "ray":
            return f"the Ray cluster at {self.address}" if self.address else f"a local Ray instance ({workers} CPUs)"
        return f"this server's process pool ({workers} worker{'s' if workers != 1 else ''})"

    @classmethod
    def from_env(cls, env=None) -> "ServerEngine":
        env = os.environ if env is None else env
        backend = (env.get("GFL_SWEEP_BACKEND") or "local").strip().lower()
        if backend not in BACKENDS:
            raise BackendError(f"Invalid GFL_SWEEP_BACKEND {backend!r}: must be one of {', '.join(BACKENDS)}.")
        address = (env.get("GFL_RAY_ADDRESS") or env.get("RAY_ADDRESS") or "").strip() or None
        return cls(backend, address if backend == "ray" else None)


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# -- one after another, in this process --------------------------------------------------------------

class SerialBackend:
    """Every cell in this process, one after another: the baseline the pool is measured against
    (bench/bench_sweep.py) and a sweep without worker processes (scripts, tests)."""

    name = "serial"
    workers = 1

    def __init__(self, cell_fn: CellFn = run_cell):
        self.cell_fn = cell_fn

    def __repr__(self) -> str:
        return "SerialBackend()"

    def run(self, tasks: Iterable[Task], stop: threading.Event | None = None) -> Iterator[tuple[int, dict, dict]]:
        for index, cfg in tasks:
            if stop is not None and stop.is_set():
                return
            row, profile = self.cell_fn(cfg)
            yield index, row, profile

    def close(self) -> None:
        pass


# -- the local process pool ---------------------------------------------------------------------------

def cell_job(tasks: Connection, results: Connection, index: int, cfg: RunConfig, cell_fn: CellFn) -> None:
    """One cell in a worker process (core.workers): its row and profile go back over `results`."""
    row, profile = cell_fn(cfg)
    results.send((index, row, profile))


class LocalPool:
    """N worker processes; each cell goes to the next free worker."""

    name = "local"

    def __init__(self, workers: int | None = None, cell_fn: CellFn = run_cell):
        self.workers = workers or default_workers()
        if self.workers < 1:
            raise BackendError("workers must be at least 1.")
        self.cell_fn = cell_fn

    def __repr__(self) -> str:
        return f"LocalPool({self.workers} workers)"

    def run(self, tasks: Iterable[Task], stop: threading.Event | None = None) -> Iterator[tuple[int, dict, dict]]:
        todo = list(tasks)[::-1]  # pop() from the end takes them in order
        workers = [take() for _ in range(min(self.workers, len(todo)))]
        retried: set[int] = set()
        try:
            while todo or any(w.task is not None for w in workers):
                if stop is not None and stop.is_set():
                    return
                for w in workers:
                    if w.task is None and todo:
                        task = todo.pop()
                        try:
                            w.task = task
                            w.send(cell_job, task[0], task[1], self.cell_fn)
                        except (BrokenPipeError, OSError):
                            pass  # it died idle: found below, and the cell counts as its failure
                ready = set(wait([w.conn for w in workers], timeout=POLL_SECONDS))
                for w in list(workers):
                    if w.conn not in ready and w.proc.poll() is None:
                        continue
                    try:
                        index, row, profile = w.conn.recv()
                    except (EOFError, OSError):  # the pipe closed: the worker died
                        code = w.proc.wait()
                        if w.task is not None:
                            index, cfg = w.task
                            w.task = None
                            if code == 0 and index not in retried:
                                # a spare that timed out just as it was given the cell: not the cell's fault
                                retried.add(index)
                                todo.append((index, cfg))
                            else:
                                yield index, failed_row(cfg, death_reason(code)), {}
                        w.close()
                        workers.remove(w)
                        if todo:
                            workers.append(take())
                    else:
                        w.task = None
                        yield index, row, profile
        finally:
            stopped = stop is not None and stop.is_set()
            for w in workers:
                w.close() if stopped else give_back(w)

    def close(self) -> None:
        pass  # idle workers stay for the next sweep for a while (core.workers.IDLE_SECONDS), then exit


# -- Ray ----------------------------------------------------------------------------------------------

def _ray_cell(cell_fn: CellFn, cfg: RunConfig) -> tuple[dict, dict]:
    import torch

    torch.set_num_threads(1)
    return cell_fn(cfg)


def _check_reachable(address: str) -> None:
    """Ray waits minutes for a cluster that is not there; a TCP connect says so in seconds."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise BackendError(f"Invalid Ray address {address!r}: write HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto.")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3.0).close()
    except OSError as e:
        raise BackendError(f"Cannot reach the Ray cluster at {address!r} ({e.strerror or e}); check the address "
                           f"(--ray-address or RAY_ADDRESS) and that the cluster is up.") from None


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for a while (C++ libraries write there directly)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class RayBackend:
    """Cells as Ray tasks (one CPU each). An existing cluster by address (`address` or $RAY_ADDRESS),
    else a local Ray instance with `workers` CPUs that lives as long as this object."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, cell_fn: CellFn = run_cell):
        try:
            import ray
        except ImportError:
            raise BackendError("The Ray backend needs the ray package: pip install -r requirements.txt.") from None
        self.cell_fn = cell_fn
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self._started = False
        if not ray.is_initialized():
            # The workers import `core` from this checkout: on a cluster it is shipped to them (py_modules).
            if self.address:
                _check_reachable(self.address)
                try:
                    with _quiet_stderr():  # Ray's C++ client logs a line a second while it retries
                        ray.init(address=self.address, runtime_env={"py_modules": [str(PROJECT_ROOT / "core")]},
                                 log_to_driver=False, logging_level="ERROR")
                except Exception as e:  # noqa: BLE001 - Ray raises many kinds; all mean "not reachable"
                    raise BackendError(f"Cannot connect to the Ray cluster at {self.address!r} ({type(e).__name__}); "
                                       f"check the address (--ray-address or RAY_ADDRESS) and that the cluster is up.") from None
            else:
                ray.init(num_cpus=workers or default_workers(), include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR", runtime_env={"env_vars": {"PYTHONPATH": worker_env()["PYTHONPATH"]}})
            self._started = True
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_cell)

    def __repr__(self) -> str:
        return f"RayBackend({self.address or 'local instance'}, {self.workers} CPUs)"

    def run(self, tasks: Iterable[Task], stop: threading.Event | None = None) -> Iterator[tuple[int, dict, dict]]:
        import ray

        fn_ref = ray.put(self.cell_fn)
        refs = {}
        for index, cfg in tasks:
            refs[self._remote.remote(fn_ref, cfg)] = (index, cfg)
        pending = list(refs)
        try:
            while pending:
                if stop is not None and stop.is_set():
                    return
                done, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
                for ref in done:
                    index, cfg = refs[ref]
                    try:
                        row, profile = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - a crashed worker or task is this cell's failure
                        reason = " ".join(str(e).split())[:200] or type(e).__name__
                        yield index, failed_row(cfg, f"the Ray task failed ({type(e).__name__}: {reason})"), {}
                    else:
                        yield index, row, profile
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def make_backend(name: str = "local", workers: int | None = None, address: str | None = None,
                 cell_fn: CellFn = run_cell):
    if name == "local":
        return LocalPool(workers, cell_fn)
    if name == "ray":
        return RayBackend(workers, address, cell_fn)
    if name == "serial":
        return SerialBackend(cell_fn)
    raise BackendError(f"Invalid backend {name!r}: must be one of {', '.join(BACKENDS)}.")


__all__ = ["BACKENDS", "BackendError", "ServerEngine", "SerialBackend", "LocalPool", "RayBackend", "make_backend", "default_workers"]

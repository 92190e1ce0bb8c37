"""Where a sweep's cells run: a local process pool (the default) or Ray.

Both take (index, RunConfig) tasks and yield (index, row, profile) as cells
finish, in whatever order they finish. Each worker trains with one torch
thread, so N workers use N cores without fighting over them. A worker that
dies (a segfault, the OOM killer) costs only its own cell, which comes back
as `failed: ...`; the other cells go on.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable, Iterable, Iterator

from core.schema import RunConfig
from core.sweep.cells import failed_row, run_cell

BACKENDS = ("local", "ray")
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds `core/`
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


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with code {exitcode}"


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

def _worker_env() -> dict[str, str]:
    """The worker's environment: ours, one thread for every maths library, and our import path
    (so that `core`, and any module a custom `cell_fn` lives in, import the same way)."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    paths = [str(PROJECT_ROOT)] + [p for p in sys.path if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


class _Worker:
    """A fresh interpreter running `python -m core.sweep.worker`, talking over two pipes.

    A new interpreter rather than a fork: forking a process whose torch thread
    pool is running can deadlock, and multiprocessing's spawn re-imports the
    parent's main script (Streamlit's, pytest's) in every worker.
    """

    def __init__(self):
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-m", "core.sweep.worker", str(task_r), str(result_w),
                                      str(WORKER_IDLE_SECONDS)],
                                     pass_fds=(task_r, result_w), env=_worker_env(), cwd=str(PROJECT_ROOT),
                                     stdin=subprocess.DEVNULL)
        os.close(task_r)
        os.close(result_w)
        self.tasks = Connection(task_w, readable=False)
        self.conn = Connection(result_r, writable=False)
        self.task: Task | None = None

    def send(self, task, cell_fn: CellFn) -> None:
        self.task = task
        self.tasks.send((task[0], task[1], cell_fn))

    def close(self) -> None:
        try:
            self.tasks.send(None)
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout=0.5 if self.task is None else 0.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5.0)
        self.tasks.close()
        self.conn.close()


WORKER_IDLE_SECONDS = 120.0  # a spare worker waits this long for the next sweep, then exits by itself
_spare: list[_Worker] = []
_spare_lock = threading.Lock()


def _take_worker() -> _Worker:
    """A spare worker left by an earlier sweep in this process (torch already imported), or a new one."""
    with _spare_lock:
        while _spare:
            w = _spare.pop()
            if w.proc.poll() is None:
                return w
            w.close()
    return _Worker()


def _give_back(w: _Worker) -> None:
    if w.task is None and w.proc.poll() is None:
        with _spare_lock:
            _spare.append(w)
    else:
        w.close()


@atexit.register
def _close_spares() -> None:
    with _spare_lock:
        while _spare:
            _spare.pop().close()


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
        workers = [_take_worker() for _ in range(min(self.workers, len(todo)))]
        retried: set[int] = set()
        try:
            while todo or any(w.task is not None for w in workers):
                if stop is not None and stop.is_set():
                    return
                for w in workers:
                    if w.task is None and todo:
                        task = todo.pop()
                        try:
                            w.send(task, self.cell_fn)
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
                                yield index, failed_row(cfg, _death_reason(code)), {}
                        w.close()
                        workers.remove(w)
                        if todo:
                            workers.append(_take_worker())
                    else:
                        w.task = None
                        yield index, row, profile
        finally:
            stopped = stop is not None and stop.is_set()
            for w in workers:
                w.close() if stopped else _give_back(w)

    def close(self) -> None:
        pass  # idle workers stay for the next sweep for a while (WORKER_IDLE_SECONDS), then exit


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
                         logging_level="ERROR", runtime_env={"env_vars": {"PYTHONPATH": _worker_env()["PYTHONPATH"]}})
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

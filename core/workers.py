"""Worker processes: fresh interpreters that run jobs sent to them over two pipes.

`python -m core.workers TASK_FD RESULT_FD [IDLE_SECONDS]` reads `(job, args)` from TASK_FD and calls
`job(tasks, results, *args)`, which sends what it produces over `results` (and may read more from
`tasks` while it runs, e.g. a live run's Pause); then the next job, until it reads None, the pipe
closes, or no job came for IDLE_SECONDS. The sweep's local pool (core.sweep.backends) sends it cells,
the dashboard's runs (core.run.remote) a whole live run: training there never waits for the
server's own Python threads (one interpreter lock each).

A new interpreter rather than a fork: forking a process whose torch thread pool is running can
deadlock, and multiprocessing's spawn re-imports the parent's main script (Streamlit's, pytest's) in
every worker. A worker costs about 2 s to start (torch's import), so a finished one waits as a spare
for the next job in this process (`take()` / `give_back()`).
"""
from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the directory that holds `core/`
IDLE_SECONDS = 120.0  # a spare worker waits this long for the next job, then exits by itself


def worker_env() -> dict[str, str]:
    """A worker's environment: ours, one thread for every maths library, and our import path
    (so that `core`, and any module a job lives in, import the same way)."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    paths = [str(PROJECT_ROOT)] + [p for p in sys.path if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def death_reason(exitcode: int | None) -> str:
    """'the worker process was killed by SIGKILL', for people."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with code {exitcode}"


PIPE_BYTES = 1 << 20  # a job's results may queue up to this much before its writes wait for this process to read


def _widen(fd: int) -> None:
    """Let the pipe hold PIPE_BYTES (Linux; 64 KB by default), so that a job streaming results (a live run's
    records, a histogram record is ~100 KB at 50 layers) rarely waits for this process to read them."""
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):
        pass


class Worker:
    """One worker process. `send(job, *args)` starts a job; `conn` is where its results arrive, `tasks`
    where more messages for a running job go. `task` is the caller's note of what it is doing (None
    when idle), `idle` how long it waits for a job before it exits (None: as long as this process lives)."""

    def __init__(self, idle: float | None = IDLE_SECONDS):
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        _widen(result_w)
        args = [sys.executable, "-m", "core.workers", str(task_r), str(result_w)] + ([str(idle)] if idle else [])
        self.proc = subprocess.Popen(args, pass_fds=(task_r, result_w), env=worker_env(), cwd=str(PROJECT_ROOT),
                                     stdin=subprocess.DEVNULL)
        os.close(task_r)
        os.close(result_w)
        self.tasks = Connection(task_w, readable=False)
        self.conn = Connection(result_r, writable=False)
        self.task = None
        self.idle = idle

    def __repr__(self) -> str:
        return f"Worker(pid {self.proc.pid}, {'busy' if self.task is not None else 'idle'})"

    def send(self, job, *args) -> None:
        self.tasks.send((job, args))

    def alive(self) -> bool:
        return self.proc.poll() is None

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


_spare: list[Worker] = []
_spare_lock = threading.Lock()


def take() -> Worker:
    """A spare worker (torch already imported), or a new one."""
    with _spare_lock:
        while _spare:
            w = _spare.pop()
            if w.alive():
                return w
            w.close()
    return Worker()


def give_back(w: Worker) -> None:
    """`w` is done with its job: keep it as a spare, or close it when it is still busy or has died."""
    if w.task is None and w.alive():
        with _spare_lock:
            _spare.append(w)
    else:
        w.close()


def prewarm(count: int = 1, job=None) -> None:
    """Start workers in the background until `count` spares wait, kept as long as this process lives,
    each given `job` first (a warm-up that sends nothing back): the first jobs (a dashboard's first
    Run) then start at once instead of after torch's import."""
    def start():
        with _spare_lock:
            missing = count - sum(1 for w in _spare if w.alive() and w.idle is None)
        for _ in range(max(0, missing)):
            w = Worker(idle=None)
            if job is not None:
                w.send(job)
            give_back(w)
    threading.Thread(target=start, name="gfl-prewarm", daemon=True).start()


@atexit.register
def close_spares() -> None:
    with _spare_lock:
        while _spare:
            _spare.pop().close()


# -- the worker process ----------------------------------------------------------------------------

def main(task_fd: int, result_fd: int, idle: float | None) -> None:
    import torch

    torch.set_num_threads(1)
    tasks, results = Connection(task_fd, writable=False), Connection(result_fd, readable=False)
    while True:
        try:
            if not tasks.poll(idle):
                return
            job = tasks.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        fn, args = job
        fn(tasks, results, *args)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else None)

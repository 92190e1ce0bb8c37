"""A `Run` whose training happens in a worker process (core.workers), for the dashboard.

In the server's own process a training thread shares one interpreter lock with Streamlit's event
loop and the page scripts: each of the many small torch calls of a step gives the lock up and
waits to get it back. Beside a thread that runs Python 30 % of the time, a 50-layer run took
1.69-1.89× its time alone in a thread, 1.19-1.20× in a worker (bench/bench_run_isolation.py).
`ProcessRun` has `Run`'s controls and snapshots; the run itself goes on in a worker:

    server (ProcessRun)                          worker (serve: a Run of its own)
    start ─ (serve, cfg, options) ─────────────▶ trains; every record, status and probe ─▶ mirrored
    pause/resume/step ─ (kind, id, …) ─────────▶ applied, then ("ack", id): the call returns after it
    stop / heartbeat ─ ("stop", reason) ───────▶ ends after the step in flight
                  ◀──────────── ("end",) ─────── the run is over; ("done",) both ways: pipes empty

Every message from the worker carries its step count and elapsed time, and a worker's progress
between records goes out every PROGRESS_SECONDS. Queueing (RunSlots) and the heartbeat stay here:
a run that waits for a place holds no worker, and a closed tab stops the run from this side.
"""
from __future__ import annotations

import threading
from multiprocessing.connection import Connection

from core.run.background import Run
from core.schema import RunStatus
from core.workers import death_reason, give_back, take

PROGRESS_SECONDS = 0.05  # the worker sends its step count this often between records
CONTROLS = ("pause", "resume", "step", "stop")  # Run's methods a message (name, id, *arguments) calls in the worker
ACK_SECONDS = 5.0        # a control waits at most this long for the worker to apply it


# -- the worker's side -----------------------------------------------------------------------------

class _Relayed(Run):
    """The run in the worker: each record, status change and boundary probe is sent as it happens."""

    def __init__(self, cfg, out: Connection, **kwargs):
        super().__init__(cfg, **kwargs)
        self._out = out
        self._out_lock = threading.Lock()

    def send(self, kind: str, *payload) -> None:
        with self._out_lock:
            self._out.send((kind, self._step, self._elapsed) + payload)

    def _set_status(self, status: RunStatus, message: str | None = None) -> None:
        super()._set_status(status, message)
        self.send("status", status, self._message, self._divergence)

    def _append(self, rec) -> None:
        super()._append(rec)
        self.send("record", rec)

    def _probe(self, probe) -> None:
        super()._probe(probe)
        self.send("probe", probe)


def serve(tasks: Connection, results: Connection, cfg, options: dict) -> None:
    """A worker job (core.workers): train `cfg` as the parent's ProcessRun says, until it says done."""
    run = _Relayed(cfg, results, max_seconds=options["max_seconds"], hist_interval=options["hist_interval"],
                   threads=options["threads"])
    run.start(paused=options["paused"])
    if options["budget"]:
        run.step(options["budget"])
    last, ended = None, False
    while True:
        over = not run.alive
        try:
            msg = tasks.recv() if tasks.poll(PROGRESS_SECONDS) else None
        except (EOFError, OSError):  # the server went away
            run.stop()
            run.join(10)
            return
        if msg is not None:
            kind = msg[0]
            if kind == "done":
                results.send(("done",))
                return
            if kind in CONTROLS:
                getattr(run, kind)(*msg[2:])
            run.send("ack", msg[1])
        progress = (run._step, run._elapsed)
        if progress != last and not ended:
            last = progress
            run.send("progress")
        if over and not ended:
            run.join()
            run.send("end")
            ended = True


def warm_up_job(tasks: Connection, results: Connection) -> None:
    """A worker job that sends nothing back: `warm_up()` in the worker."""
    warm_up()


def warm_up() -> None:
    """Load the compiled statistics kernels and take one tiny step, so the first run this process trains
    does not pay that start-up."""
    from core.measure.warm_up import prepare
    from core.run.engine import train
    from core.schema import RunConfig
    try:
        prepare()  # the compiled kernels: a tiny run is measured with PyTorch and would not load them
        train(RunConfig(depth=2, width=8, steps=1, batch_size=8, eval_every=1))
    except Exception:
        pass  # only an optimization: the real run reports real problems


# -- the server's side -----------------------------------------------------------------------------

class ProcessRun(Run):
    """`Run` with the training in a worker process: the same controls, status and snapshots (a mirror of
    the worker's records, filled as they arrive). A worker that dies fails the run with the reason."""

    def __init__(self, cfg, **kwargs):
        super().__init__(cfg, **kwargs)
        self._ctl = threading.Condition()
        self._worker = None    # while the worker trains this run
        self._sent = 0         # controls sent to it, and acknowledged by it
        self._acked = 0

    def __repr__(self) -> str:
        return "Process" + super().__repr__()

    @property
    def pid(self) -> int | None:
        """The worker process training this run, while one does."""
        w = self._worker
        return w.proc.pid if w is not None else None

    # -- controls: remembered until the worker has the run, then sent to it ---------------------------
    def _tell(self, kind: str, *args) -> bool:
        """Send a control to the worker and wait until it is applied; False when no worker has the run."""
        with self._ctl:
            if self._worker is None:
                return False
            self._sent += 1
            n = self._sent
            try:
                self._worker.tasks.send((kind, n) + args)
            except (BrokenPipeError, OSError):
                return True  # the worker died: the receiving side finds out and fails the run
            self._ctl.wait_for(lambda: self._acked >= n or self._worker is None, timeout=ACK_SECONDS)
            return True

    def pause(self) -> None:
        if not self._tell("pause"):
            super().pause()

    def resume(self) -> None:
        if not self._tell("resume"):
            super().resume()

    def step(self, n: int = 1) -> None:
        if not self._tell("step", max(0, int(n))):
            super().step(n)

    def stop(self, reason: str | None = None) -> None:
        super().stop(reason)
        with self._ctl:
            if self._worker is not None:
                try:
                    self._worker.tasks.send(("stop", 0, self._stop_reason()))
                except (BrokenPipeError, OSError):
                    pass

    # -- the thread: hand the run to a worker, mirror what it sends ------------------------------------
    def _train(self) -> None:
        for attempt in range(2):
            w = take()
            with self._ctl:
                if self._stop.is_set():
                    give_back(w)
                    self._stopped(self._stop_reason())
                    return
                options = dict(max_seconds=self.max_seconds, hist_interval=self.hist_interval, threads=self.threads,
                               paused=self._paused, budget=self._step_budget)
                w.task = self
                try:
                    w.send(serve, self.cfg, options)
                except (BrokenPipeError, OSError):  # a spare that had just timed out (core.workers.IDLE_SECONDS)
                    w.close()
                    continue
                self._worker = w
            heard = []
            try:
                self._mirror(w, heard)
            except (EOFError, OSError):
                code = w.proc.wait()
                self._detach()
                w.close()
                if not heard and attempt == 0 and code == 0:  # it quit by itself before taking the run
                    continue
                self._finish(RunStatus.FAILED, f"The run failed: {death_reason(code)} that trained it.")
                return
            self._hand_back(w)
            return
        self._finish(RunStatus.FAILED, "The run failed: no worker process could be started for it.")

    def _detach(self) -> None:
        """No worker has this run any more: controls act here, and one waiting for an ack returns."""
        with self._ctl:
            self._worker = None
            self._ctl.notify_all()

    def _hand_back(self, w) -> None:
        """The run is over: empty both pipes ("done" both ways), then keep the worker as a spare."""
        self._detach()
        try:
            w.tasks.send(("done",))
            while w.conn.recv()[0] != "done":  # late acks
                pass
        except (EOFError, OSError):
            w.close()  # it died after the run ended: the run's result stands
            return
        w.task = None
        give_back(w)

    def _mirror(self, w, heard: list) -> None:
        """Apply what the worker sends until the run's end; `heard` gets an entry once anything arrived."""
        while True:
            if not self._stop.is_set() and self._unwatched():
                self.stop(self._stop_reason())
            if not w.conn.poll(self.heartbeat_check):
                if not w.alive():
                    raise EOFError
                continue
            kind, step, elapsed, *rest = w.conn.recv()
            if not heard:
                heard.append(kind)
            with self._lock:
                self._step, self._elapsed = step, elapsed
            if kind == "record":
                super()._append(rest[0])
            elif kind == "status":
                with self._lock:
                    self._divergence = rest[2]
                    self._set_status(rest[0], rest[1])
            elif kind == "probe":
                super()._probe(rest[0])
            elif kind == "ack":
                with self._ctl:
                    self._acked = max(self._acked, rest[0])
                    self._ctl.notify_all()
            elif kind == "end":
                return


__all__ = ["ProcessRun", "serve", "warm_up", "warm_up_job", "PROGRESS_SECONDS"]

"""The training run.

Three ways in, one loop underneath (`Trainer.advance`):

* `run_training(cfg)`: a generator of `Record`s, for scripts and notebooks;
* `train(cfg)`: runs to the end and returns a `core.run.record.RunRecord` (the CLI, the tests);
* `core.run.background.Run(cfg)`: a background thread that can be started, paused,
  resumed, stepped and stopped from another thread, and hands out read-only
  `RunRecord` snapshots of everything recorded so far (what the dashboard polls).

The loop itself (`Trainer`, `run_training`, `Record`, `Divergence`) is in
`core.run.trainer`.
"""
from __future__ import annotations

import time
from typing import Callable

from core.schema import RunConfig, RunStatus
from core.run.boundary import BoundaryRecorder
from core.run.record import Recorder, RunRecord
# The training loop lives in core.run.trainer; its names are importable from here too.
from core.run.trainer import (  # noqa: F401
    Divergence, Record, Trainer, accuracy, keep_freed_memory, optimizer_step, run_training, set_training_threads,
)


# -- to the end, in this thread (the CLI, the tests) ---------------------------------------

def train(cfg: RunConfig, progress: Callable[[int, int], None] | None = None, threads: int | None = 1) -> RunRecord:
    """Run `cfg` to the end (or to divergence) in this thread."""
    if threads:
        set_training_threads(threads)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    recorder = Recorder(cfg.rows)
    boundary = BoundaryRecorder(trainer.boundary) if trainer.boundary is not None else None
    while not trainer.done:
        rec = trainer.advance()
        if rec is not None:
            recorder.append(rec)
            if rec.boundary is not None and boundary is not None:
                boundary.append(rec.step, rec.boundary)
        if progress is not None:
            progress(trainer.step, cfg.steps)
    stats, steps = (a.copy() for a in recorder.view())  # once, at the end: exact size, not the recorder's headroom
    dv = trainer.divergence
    return RunRecord(cfg, stats, steps, RunStatus.DIVERGED if dv else RunStatus.FINISHED, dv,
                     time.perf_counter() - t0, dv.sentence(cfg) if dv else "", steps_taken=trainer.step,
                     boundary=boundary.view() if boundary is not None else None)

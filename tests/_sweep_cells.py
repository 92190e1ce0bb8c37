"""Cell functions for the sweep tests: importable by the pool's worker processes (they get our sys.path)."""
import os
import signal

from core.sweep.cells import run_cell

COUNT_FILE_ENV = "GFL_TEST_SWEEP_COUNT_FILE"


def crash_at_depth_3(cfg):
    """A worker that dies the hard way (no Python exception to catch) on the depth-3 cells."""
    if cfg.depth == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_cell(cfg)


def counting_cell(cfg):
    """run_cell, leaving one line per trained cell in $GFL_TEST_SWEEP_COUNT_FILE (works across processes)."""
    with open(os.environ[COUNT_FILE_ENV], "a") as f:
        f.write(f"{cfg.depth} {cfg.sigma_w!r}\n")
    return run_cell(cfg)


def pid_cell(cfg):
    """No training: which worker process ran the cell."""
    return {"status": "ok", "pid": os.getpid()}, {}

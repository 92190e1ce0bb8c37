"""A local pool's worker process: `python -m core.sweep.worker TASK_FD RESULT_FD`.

Reads (index, RunConfig, cell_fn) from TASK_FD, writes (index, row, profile)
to RESULT_FD, until it reads None, the pipe closes, or no task came for
IDLE_SECONDS (a spare worker kept for the next sweep). One torch thread.
"""
from __future__ import annotations

import sys
from multiprocessing.connection import Connection


IDLE_SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0


def main(task_fd: int, result_fd: int) -> None:
    import torch

    torch.set_num_threads(1)
    tasks, results = Connection(task_fd, writable=False), Connection(result_fd, readable=False)
    while True:
        try:
            if not tasks.poll(IDLE_SECONDS):
                return
            task = tasks.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, cfg, cell_fn = task
        row, profile = cell_fn(cfg)
        results.send((index, row, profile))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))

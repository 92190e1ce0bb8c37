"""Why the dashboard's runs train in a worker process: a run beside a busy Python thread.

    python bench/bench_run_isolation.py [--repeats 3] [--duty 0.3] [--steps 199]

Times one 50-layer × 128 ReLU run (the run of bench_ui.py (c), shorter) four ways, each
`--repeats` times, in one invocation:

  alone        `train(cfg)` in this process, nothing else running (the baseline);
  run alone    `core.run.background.Run` with nothing else running (a live run's own extras: the
               histograms for the distributions chart every 0.5 s, locks, snapshots);
  thread       the same `Run` (training in a thread of this process) while another
               thread of this process runs Python code `--duty` of the time (as a Streamlit server's
               event loop and page scripts do while a page watches a run);
  process      `core.run.remote.ProcessRun` (training in a worker process, what the dashboard uses)
               beside the same busy thread.

Both kinds of run train with one torch thread. Prints the median times and their ratios to `alone`,
with the CPU model; never asserts.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import cpu_model  # noqa: E402 (bench/ is the script's directory)
from core.run.background import Run  # noqa: E402
from core.run.engine import train  # noqa: E402
from core.run.remote import ProcessRun  # noqa: E402
from core.schema import RunConfig  # noqa: E402
from core.workers import give_back, take  # noqa: E402


def busy_thread(duty: float, period: float = 0.01):
    """A thread that runs Python for `duty` of every `period` seconds until the returned event is set."""
    stop = threading.Event()

    def work():
        while not stop.is_set():
            t = time.perf_counter()
            while time.perf_counter() - t < duty * period:
                sum(range(100))
            time.sleep((1 - duty) * period)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return stop, thread


def timed_run(kind, cfg: RunConfig, duty: float) -> float:
    stop, thread = busy_thread(duty) if duty > 0 else (threading.Event(), None)
    try:
        t = time.perf_counter()
        run = kind(cfg).start()
        run.join()
        elapsed = time.perf_counter() - t
        if run.status != "finished":
            raise RuntimeError(f"{kind.__name__}: {run.snapshot().message}")
        return elapsed
    finally:
        stop.set()
        if thread is not None:
            thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duty", type=float, default=0.3, help="share of the time the busy thread runs Python")
    ap.add_argument("--steps", type=int, default=199)
    args = ap.parse_args()
    cfg = RunConfig(depth=50, width=128, activation="relu", init="kaiming_normal", steps=args.steps, seed=3)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); {cfg.depth}-layer × {cfg.width} run of {cfg.steps} steps, "
          f"busy thread at {args.duty:.0%}")
    give_back(take())  # a worker started ahead, as the dashboard does at start-up (its start is not timed)
    train(cfg.replace(steps=2))  # warm this process up too
    times: dict[str, list[float]] = {"alone": [], "run alone": [], "thread": [], "process": []}
    for i in range(args.repeats):  # interleaved, so a slow spell of a shared machine hits all three
        t = time.perf_counter()
        train(cfg)
        times["alone"].append(time.perf_counter() - t)
        times["run alone"].append(timed_run(Run, cfg, 0.0))
        times["thread"].append(timed_run(Run, cfg, args.duty))
        times["process"].append(timed_run(ProcessRun, cfg, args.duty))
        print(f"  repeat {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    base = statistics.median(times["alone"])
    for k, v in times.items():
        med = statistics.median(v)
        print(f"{k:9s} median {med:.2f} s  ({med / base:.2f}× alone; range {min(v):.2f}–{max(v):.2f} s)")


if __name__ == "__main__":
    main()

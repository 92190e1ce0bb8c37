"""Start-up and whole-process cost of `python -m core run`, measured side by side.

    python bench/bench_startup.py [--rounds 5] [--steps 500] [--skip-whole]

1. A trivial run (`python -m core run --steps 0 --depth 3 --out x.json`)
   against `python -c "import torch"`, alternating, median of `--rounds`:
   target ≤ 1.6× (issue 10; it was 5.4 s against 1.6 s).
2. Whole processes, record every step / every 10th step / never, for the two
   cases of bench_overhead.py: the ratio of wall-clock times, against the
   in-process ratio of the same runs (`train(cfg)` in this process, the
   kernels loaded already). Target: within 0.05 (the difference is what a
   recording process pays once: loading Numba and its kernels, writing a
   bigger table; and a fixed start-up that dilutes both).

Prints the CPU model: caches differ between machines of one kind. Numba's
cache is filled first (`python -m core.measure.warm_up`), as `make` does.
About 3 minutes with the defaults.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from _machine import cpu_model  # noqa: E402 (bench/ is the script's directory)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

CASES = [
    ("20 layers x 256, batch 256, tanh", ["--depth", "20", "--width", "256", "--batch-size", "256",
                                         "--activation", "tanh"]),
    ("50 layers x 64, batch 128, relu", ["--depth", "50", "--width", "64", "--batch-size", "128",
                                        "--activation", "relu", "--init", "kaiming_normal"]),
]




def timed(cmd: list[str]) -> tuple[float, str]:
    """(wall-clock seconds, stderr) of one process."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return took, p.stderr


def in_process_seconds(flags: list[str], steps: int, every: str) -> float:
    """Wall-clock seconds of `train(cfg)` in this process (after the kernels are loaded)."""
    sys.path.insert(0, str(ROOT))
    from core.io.cli import _config_from_args, build_parser
    from core.run.engine import train

    ns = build_parser().parse_args(["run", *flags, "--dataset", "gaussian", "--steps", str(steps), "--eval-every", "0",
                                    "--lr", "0.01", "--record-every", every, "--out", "x.json"])
    cfg = _config_from_args(ns)
    t0 = time.perf_counter()
    train(cfg)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of the trivial run")
    ap.add_argument("--steps", type=int, default=500, help="steps of the whole-process runs")
    ap.add_argument("--whole-rounds", type=int, default=2, help="alternating rounds of the whole-process runs")
    ap.add_argument("--skip-whole", action="store_true", help="only the trivial run")
    args = ap.parse_args()
    subprocess.run([PY, "-m", "core.measure.warm_up"], cwd=ROOT, capture_output=True)
    print(f"{cpu_model()}, {os.cpu_count()} cores; medians of alternating runs\n")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "x.json")
        torch_times, run_times = [], []
        timed([PY, "-c", "import torch"])  # the page cache, for both alike
        for _ in range(args.rounds):
            torch_times.append(timed([PY, "-c", "import torch"])[0])
            run_times.append(timed([PY, "-m", "core", "run", "--steps", "0", "--depth", "3", "--out", out])[0])
        t_torch, t_run = statistics.median(torch_times), statistics.median(run_times)
        ratio = t_run / t_torch
        print("trivial run: python -m core run --steps 0 --depth 3 --out x.json")
        print(f"  python -c 'import torch'   {t_torch:6.2f} s")
        print(f"  trivial run                {t_run:6.2f} s   {ratio:.2f}x   target <= 1.60  "
              f"{'OK' if ratio <= 1.6 else 'MISS'}\n")
        if args.skip_whole:
            return
        variants = {"never": "0", "every step": "1", "every 10th": "10"}
        for name, flags in CASES:
            wall = {k: [] for k in variants}
            inside = {k: [] for k in variants}
            in_process_seconds(flags, 20, "1")  # loads the kernels into this process
            for _ in range(args.whole_rounds):
                for k, every in variants.items():
                    cmd = [PY, "-m", "core", "run", *flags, "--dataset", "gaussian", "--steps", str(args.steps),
                           "--eval-every", "0", "--lr", "0.01", "--record-every", every, "--quiet", "--out", out]
                    wall[k].append(timed(cmd)[0])
                    inside[k].append(in_process_seconds(flags, args.steps, every))
            w0, t0 = statistics.median(wall["never"]), statistics.median(inside["never"])
            print(f"{name}, {args.steps} steps (whole process / in this process)")
            print(f"  {'never':12s} {w0:6.2f} s / {t0:6.2f} s")
            for k in ("every step", "every 10th"):
                w, t = statistics.median(wall[k]), statistics.median(inside[k])
                rw, rt = w / w0, t / t0
                print(f"  {k:12s} {w:6.2f} s / {t:6.2f} s   ratios {rw:.3f} / {rt:.3f}   difference {rw - rt:+.3f}  "
                      f"target within 0.05  {'OK' if abs(rw - rt) <= 0.05 else 'MISS'}")
            print()


if __name__ == "__main__":
    main()

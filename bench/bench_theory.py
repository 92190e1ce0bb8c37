"""Time of a 200 × 200 mean-field phase diagram (core.theory.phase_diagram).

    python bench/bench_theory.py [--threads N] [--repeat R]

Prints, per activation, the best and median wall time of `repeat` runs after
one warm-up (which builds the per-activation quadrature tables). The app
trains with torch.set_num_threads(1), so 1 thread is the default here too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core import theory  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--activations", default="tanh,relu")
    ap.add_argument("--n", type=int, default=200, help="grid points per axis")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w = np.linspace(0.02, 4.0, args.n)
    b = np.linspace(0.0, 1.0, args.n)
    print(f"phase_diagram on a {args.n}×{args.n} grid (σ_w² ∈ [0.02, 4], σ_b² ∈ [0, 1]), "
          f"torch threads = {args.threads}, best/median of {args.repeat}")
    for name in args.activations.split(","):
        theory.phase_diagram(name, w[:10], b[:10])  # warm-up: quadrature tables
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            d = theory.phase_diagram(name, w, b)
            times.append(time.perf_counter() - t0)
        chaotic = int(np.sum((d["chi1"] > 1) & np.isfinite(d["q_star"])))
        print(f"  {name:<10s} best {min(times) * 1e3:7.1f} ms   median {statistics.median(times) * 1e3:7.1f} ms"
              f"   ({chaotic} chaotic points with finite q*)")


if __name__ == "__main__":
    main()

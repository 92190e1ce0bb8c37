"""Instrumentation overhead: step time with statistics on vs off.

    python bench/bench_overhead.py [--steps 20] [--rounds 40]

For each case it trains the same model on the same data with statistics off
(record_every=0), on every step, and on every 10th step, alternating blocks so
that the machine's noise hits all three alike, and prints the ratio of median
step times against the off baseline measured in the same run. It also times a
naive implementation (per-layer hooks calling `.item()` for every statistic),
the baseline to beat (MLP cases). Targets (issue 2): every step ≤ 1.10 (20×256, tanh) and
≤ 1.25 (50×64, ReLU); every 10th step ≤ 1.03 for both. Issue 12's architectures: a
residual MLP (50 blocks × 128, batch 128, its stream statistics included) and a CNN
(20 convolutions × 32 channels on digits) and an LSTM (128 units × 50 time steps, batch 64):
every step ≤ 1.25, every 10th ≤ 1.05.
`--only TEXT` runs the cases whose name contains TEXT.

Every variant pays alike for the switch between blocks (the first step of a
block finds the caches holding another model). With fewer than ~40 rounds the
every-10th ratio moved by 0.03 between runs on this shared 2-core machine.
About 3 minutes.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from core.schema import RunConfig  # noqa: E402
from core.run.engine import Trainer, set_training_threads  # noqa: E402
from _machine import cpu_model  # noqa: E402 (bench/ is the script's directory)

# (name, settings, target every step, target every 10th step)
CASES = [
    ("20 layers x 256, batch 256, tanh", dict(depth=20, width=256, batch_size=256, activation="tanh"), 1.10, 1.03),
    ("50 layers x 64, batch 128, relu", dict(depth=50, width=64, batch_size=128, activation="relu", init="kaiming_normal"), 1.25, 1.03),
    ("resmlp 50 blocks x 128, batch 128, relu, 1/sqrt(depth)",
     dict(arch="resmlp", residual_scale="sqrt_depth", depth=50, width=128, batch_size=128, activation="relu",
          init="kaiming_normal"), 1.25, 1.05),
    ("cnn 20 convolutions x 32 channels, digits, batch 128, relu",
     dict(arch="cnn", depth=20, width=32, batch_size=128, activation="relu", init="kaiming_normal",
          dataset="digits"), 1.25, 1.05),
    # a record is 50 rows, one per time step, with gate saturation and ρ(W_hh)
    ("lstm 128 units x 50 time steps, recall, batch 64",
     dict(arch="lstm", depth=1, width=128, seq_len=50, batch_size=64, dataset="recall"), 1.25, 1.05),
]




class NaiveTrainer(Trainer):
    """Statistics the obvious way: hooks per layer, one .item() per statistic."""

    def advance(self, want_hist: bool = False):
        s = self.step
        idx = self.sampler.next()
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        self.opt.zero_grad(set_to_none=True)
        net = self.net
        rows = [dict() for _ in net.linears]
        handles = []

        def fwd_hook(l):
            def hook(module, inp, out):
                h = out
                a = net.activation.fn(h)
                r = rows[l]
                r["preact_mean"] = h.mean().item()
                r["preact_var"] = h.double().var(unbiased=False).item()
                r["act_mean"] = a.mean().item()
                r["act_var"] = a.double().var(unbiased=False).item()
                mask = net.activation.flat(h)
                r["saturation"] = mask.float().mean().item()
                r["dead_units"] = mask.all(dim=0).float().mean().item()
                h.register_hook(lambda g: r.__setitem__("grad_preact_var", g.double().var(unbiased=False).item()))
            return hook

        for l, lin in enumerate(net.linears):
            handles.append(lin.register_forward_hook(fwd_hook(l)))
        try:
            loss = F.cross_entropy(net(x), y)
            loss.backward()
        finally:
            for h in handles:
                h.remove()
        for l, lin in enumerate(net.linears):
            rows[l]["weight_var"] = lin.weight.double().var(unbiased=False).item()
            rows[l]["weight_grad_var"] = lin.weight.grad.double().var(unbiased=False).item()
        self.opt.step()
        self.step = s + 1
        return rows


def time_steps(trainer, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        trainer.advance()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block (a multiple of 10)")
    ap.add_argument("--rounds", type=int, default=40, help="alternating blocks per variant")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    args = ap.parse_args()
    set_training_threads(1)
    print(f"{cpu_model()}; torch {torch.__version__}, 1 thread; median step time over {args.rounds} alternating "
          f"blocks of {args.steps} steps\n")
    for name, kw, target, target10 in CASES:
        if args.only not in name:
            continue
        kw = {"dataset": "gaussian", **kw}
        base = RunConfig(steps=10**7, eval_every=0, lr=0.01, **kw)
        variants = {
            "off (record_every=0)": Trainer(base.replace(record_every=0)),
            "every step": Trainer(base.replace(record_every=1)),
            "every 10th step": Trainer(base.replace(record_every=10)),
        }
        if base.architecture.mlp_theory:  # the naive baseline hooks an MLP's Linears
            variants["naive hooks + .item()"] = NaiveTrainer(base.replace(record_every=0))
        times = {k: [] for k in variants}
        for t in variants.values():
            time_steps(t, 10)  # warm up, and keep every trainer's records aligned to 10-step blocks
        for _ in range(args.rounds):
            for k, t in variants.items():
                times[k] += time_steps(t, args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        # every 10th step: one step in ten is slower, so compare the medians of
        # 10-step averages (each holds exactly one record), robust to outliers.
        per10 = {k: statistics.median(statistics.fmean(v[i:i + 10]) for i in range(0, len(v) - 9, 10))
                 for k, v in times.items()}
        off = med["off (record_every=0)"]
        print(name)
        print(f"  {'off (record_every=0)':24s} {off * 1e3:8.2f} ms/step   1.000")
        r1 = med["every step"] / off
        r10 = per10["every 10th step"] / per10["off (record_every=0)"]
        print(f"  {'every step':24s} {med['every step'] * 1e3:8.2f} ms/step   {r1:.3f}   target <= {target:.2f}  {'OK' if r1 <= target else 'MISS'}")
        print(f"  {'every 10th step':24s} {per10['every 10th step'] * 1e3:8.2f} ms/step   {r10:.3f}   target <= {target10:.2f}  {'OK' if r10 <= target10 else 'MISS'}")
        if "naive hooks + .item()" in med:
            rn = med["naive hooks + .item()"] / off
            print(f"  {'naive hooks + .item()':24s} {med['naive hooks + .item()'] * 1e3:8.2f} ms/step   {rn:.3f}   (baseline to beat)")
        print(f"  (measuring strategy: {variants['every step'].strategy.name})\n")


if __name__ == "__main__":
    main()

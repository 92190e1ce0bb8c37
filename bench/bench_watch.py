"""watch(model)'s overhead beside plain training and its peers.

    python bench/bench_watch.py [--rounds 6] [--steps 10] [--only mlp,cnn,lstm]

Three models a user might bring (an MLP 20 × 256 with batch 256, a small
residual CNN, a two-layer LSTM), each trained with SGD:

- plain: no statistics at all, the baseline;
- watch every step, and every 10th step (`watch(model, every=10)`);
- naive: per-layer forward hooks and tensor hooks calling `.item()` for each
  statistic (what one writes first);
- wandb: `wandb.watch(model, log="all", log_freq=1)` in offline mode, with the
  `wandb.log` per step it needs to write (when wandb is installed);
- tensorboard: `SummaryWriter.add_histogram` of every layer's output and
  gradient at every step (when tensorboard is installed).

Blocks of `--steps` steps alternate between the variants within each round,
so the machine's noise hits them alike; a ratio is the median step time of a
variant over that of plain training measured in the same phase. The peers run
in a phase of their own (wandb keeps a service process busy beside the
training, which would slow the other variants' blocks too). One torch thread.
About 2-3 minutes on an idle machine (much longer while other jobs share the cores).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from core import watch  # noqa: E402
from _machine import cpu_model  # noqa: E402 (bench/ is the script's directory)

TARGETS = {"watch every step": 1.30, "watch every 10th": 1.05}




# -- the models ------------------------------------------------------------------------------------

def mlp():
    layers = [nn.Linear(256, 256), nn.Tanh()]
    for _ in range(19):
        layers += [nn.Linear(256, 256), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(256, 10))
    return model, torch.randn(256, 256), torch.randint(0, 10, (256,))


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(self.relu(self.conv1(x)))


class ResCNN(nn.Module):
    def __init__(self, c: int = 16, blocks: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(c) for _ in range(blocks)])
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        h = self.blocks(F.relu(self.stem(x)))
        return self.head(h.mean(dim=(2, 3)))


def cnn():
    return ResCNN(), torch.randn(32, 3, 12, 12), torch.randint(0, 10, (32,))


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 128, num_layers=2, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        seq, _ = self.lstm(x)
        return self.head(seq[:, -1])


def lstm():
    return LSTMNet(), torch.randn(32, 16, 32), torch.randint(0, 10, (32,))


MODELS = {
    "mlp": ("MLP 20 x 256, batch 256, tanh", mlp),
    "cnn": ("residual CNN, 4 blocks x 16 channels, 12 x 12 images, batch 32", cnn),
    "lstm": ("LSTM 2 x 128, 16 time steps, batch 32", lstm),
}


# -- the variants: each a context manager yielding a function called after every step -----------------

@contextlib.contextmanager
def plain(model):
    yield lambda loss: None


@contextlib.contextmanager
def watched(model, every):
    with watch(model, every=every) as w:
        yield w.step


@contextlib.contextmanager
def naive(model):
    """Per-layer hooks, one .item() per statistic, on every step."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.LSTM))]
    rows = [dict() for _ in layers]

    def fwd(r):
        def hook(module, inp, out):
            out = out[0] if isinstance(out, tuple) else out
            r["out_mean"] = out.mean().item()
            r["out_var"] = out.double().var(unbiased=False).item()
            if out.requires_grad:
                out.register_hook(lambda g: r.__setitem__("grad_out_var", g.double().var(unbiased=False).item()))
        return hook

    handles = [m.register_forward_hook(fwd(r)) for m, r in zip(layers, rows)]

    def after(loss):
        for m, r in zip(layers, rows):
            for name, p in m.named_parameters():
                if name.startswith("weight"):
                    r[name] = p.double().var(unbiased=False).item()
                    r[name + "_grad"] = p.grad.double().var(unbiased=False).item()
        r["loss"] = loss.item()

    try:
        yield after
    finally:
        for h in handles:
            h.remove()


_WANDB = {}


@contextlib.contextmanager
def wandb_watch(model):
    """One offline wandb run per process (its start-up takes seconds); watch/unwatch around each block."""
    import wandb

    if "run" not in _WANDB:
        _WANDB["dir"] = tempfile.TemporaryDirectory()
        _WANDB["run"] = wandb.init(project="bench-watch", dir=_WANDB["dir"].name, mode="offline")
    run = _WANDB["run"]
    run.watch(model, log="all", log_freq=1)
    try:
        yield lambda loss: run.log({"loss": loss.item()})
    finally:
        run.unwatch(model)


def finish_wandb() -> None:
    if "run" in _WANDB:
        _WANDB.pop("run").finish()
        _WANDB.pop("dir").cleanup()


@contextlib.contextmanager
def tensorboard_histograms(model):
    from torch.utils.tensorboard import SummaryWriter

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.LSTM))]
    step = [0]
    with tempfile.TemporaryDirectory() as tmp:
        writer = SummaryWriter(tmp)

        def fwd(name):
            def hook(module, inp, out):
                out = out[0] if isinstance(out, tuple) else out
                writer.add_histogram(f"{name}/output", out.detach(), step[0])
                if out.requires_grad:
                    out.register_hook(lambda g: writer.add_histogram(f"{name}/grad_output", g, step[0]))
            return hook

        handles = [m.register_forward_hook(fwd(n)) for n, m in layers]

        def after(loss):
            writer.add_scalar("loss", loss.item(), step[0])
            step[0] += 1

        try:
            yield after
        finally:
            for h in handles:
                h.remove()
            writer.close()


def available(module: str) -> bool:
    try:
        __import__(module)
        return True
    except Exception:
        return False


# -- timing ------------------------------------------------------------------------------------------

def time_phase(make, variants: dict, rounds: int, steps: int) -> dict[str, float]:
    """Median step time (s) of each variant: in each round one block of `steps`
    steps per variant, in alternating order; each variant's hooks exist only
    during its own blocks. Round 0 warms every variant up and is not counted."""
    model, x, y = make()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for r in range(rounds + 1):
        for name in (order if r % 2 == 0 else order[::-1]):
            with variants[name](model) as after:
                measured = []
                for _ in range(steps):
                    t0 = time.perf_counter()
                    loss = F.cross_entropy(model(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    after(loss)
                    measured.append(time.perf_counter() - t0)
            if r > 0:
                times[name].append(sum(measured) / len(measured))
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="watch(model) overhead vs plain training, naive hooks, wandb and TensorBoard")
    ap.add_argument("--rounds", type=int, default=6, help="blocks per variant (default 6)")
    ap.add_argument("--steps", type=int, default=10, help="steps per block, a multiple of 10 (default 10)")
    ap.add_argument("--peer-rounds", type=int, default=2,
                    help="blocks per peer (wandb, TensorBoard: slow, and far from the targets; default 2)")
    ap.add_argument("--only", default="mlp,cnn,lstm", help="models to run (default mlp,cnn,lstm)")
    args = ap.parse_args(argv)
    if args.steps % 10 or args.steps < 10 or args.rounds < 1:
        ap.error("--steps must be a positive multiple of 10 (so every block holds one every-10th record), "
                 "--rounds at least 1")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, 1 thread; {args.rounds} rounds x {args.steps} steps")
    ours = {"plain": plain, "watch every step": lambda m: watched(m, 1), "watch every 10th": lambda m: watched(m, 10),
            "naive hooks + .item()": naive}
    peers = {"plain": plain}
    if available("wandb"):
        peers["wandb.watch(log='all', log_freq=1)"] = wandb_watch
    else:
        print("wandb: not installed, skipped (pip install wandb)")
    if available("torch.utils.tensorboard"):
        peers["TensorBoard add_histogram"] = tensorboard_histograms
    else:
        print("tensorboard: not installed, skipped (pip install tensorboard)")
    failed = False
    for key in [k.strip() for k in args.only.split(",") if k.strip()]:
        if key not in MODELS:
            ap.error(f"Invalid --only {key!r}: use mlp, cnn or lstm.")
        label, make = MODELS[key]
        print(f"\n{label}")
        t0 = time.perf_counter()
        base = time_phase(make, ours, args.rounds, args.steps)
        for name, t in base.items():
            ratio = t / base["plain"]
            target = TARGETS.get(name)
            verdict = "" if target is None else (f"  (target <= {target:.2f}: " + ("ok)" if ratio <= target else "MISSED)"))
            failed |= target is not None and ratio > target
            print(f"  {name:<38} {t * 1e3:8.2f} ms/step  {ratio:6.2f}x{verdict}")
        if len(peers) > 1:
            other = time_phase(make, peers, args.peer_rounds, args.steps)
            for name, t in other.items():
                if name != "plain":
                    print(f"  {name:<38} {t * 1e3:8.2f} ms/step  {t / other['plain']:6.2f}x  "
                          f"(plain {other['plain'] * 1e3:.2f} ms in its phase)")
        print(f"  ({time.perf_counter() - t0:.0f} s)")
    finish_wandb()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Watch your own model: a small residual network of our own, trained with
`watch(model, live="runs/example")`, then saved for Explore and Compare.

    python examples/watch_my_model.py                 # ~10 s
    python examples/watch_my_model.py --steps 2000 --delay 0.05   # slow enough to follow live

While it runs, open the dashboard (`streamlit run app.py`) → Explore → **Follow a run**
and pick "example": its charts grow as the script trains. Afterwards the saved run
(`runs/example.json`) opens in Explore and Compare under **Open a saved run**.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repository

from core import watch  # noqa: E402


class Block(nn.Module):
    """x + W2·tanh(W1·x): a residual block, the kind of network the lab's MLP is not."""

    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(x)))


class Net(nn.Module):
    def __init__(self, inputs: int = 16, width: int = 64, blocks: int = 4, classes: int = 4):
        super().__init__()
        self.stem = nn.Linear(inputs, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(blocks)])
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(F.relu(self.blocks(self.stem(x))))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    ap.add_argument("--every", type=int, default=1, help="record every N steps (default 1)")
    ap.add_argument("--name", default="example", help="the run's name in the runs folder (default example)")
    ap.add_argument("--runs-dir", default="runs", help="where the live store and the saved run go (default runs/)")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to sleep after each step, to follow it live")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.every < 1 or args.delay < 0:
        ap.error("--steps and --every must be at least 1 and --delay at least 0")

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(4, 16, generator=g) * 2  # four Gaussian blobs: a task the network can learn

    live = Path(args.runs_dir) / args.name
    print(f"Training {sum(p.numel() for p in model.parameters()):,} parameters for {args.steps} steps; "
          f"live store: {live}.sqlite")
    with watch(model, every=args.every, live=str(live)) as w:
        for step in range(args.steps):
            y = torch.randint(0, 4, (128,), generator=g)
            x = centres[y] + torch.randn(128, 16, generator=g)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss)
            if args.delay:
                time.sleep(args.delay)
    saved = w.save(Path(args.runs_dir) / f"{args.name}.json")
    table = w.table()
    last = table[table["step"] == table["step"].max()]
    print(last[["layer", "name", "out_var", "grad_out_var", "update_ratio", "saturation"]].to_string(index=False))
    print(w.nonfinite_sentence)
    print(f"\nSaved {saved} ({len(table):,} rows). To look at it:\n"
          f"  streamlit run app.py   then Explore → Follow a run → {args.name}\n"
          f"  or Explore → Open a saved run → {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The real network at initialization, measured: what the theory's predictions are held against.

* `measure_at_init(cfg)`: the per-layer statistics of step 0, one forward and
  backward pass on one batch (`core.run.engine.train` with steps=0: the same
  network, data and measuring code as a run);
* `measured_profile(cfg)`: the same as a table with `predicted_profile`'s
  columns (`layer`, `q`, `grad_rel`), so prediction and measurement line up;
* `slope_curves(names)`: φ'(h) of activations on a grid.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch

from core.registry import ACTIVATIONS

if TYPE_CHECKING:  # pragma: no cover
    from core.schema import RunConfig


def at_init_config(cfg: "RunConfig") -> "RunConfig":
    """`cfg` reduced to its network at initialization: no training step, step 0 recorded, no evaluation."""
    return cfg.replace(steps=0, record_every=1, eval_every=0)


def measure_at_init(cfg: "RunConfig") -> np.ndarray:
    """Step 0 of `cfg`'s network: (layers, len(STAT_COLUMNS)) float64, columns as `core.measure.records.COL`."""
    from core.run.engine import train  # the engine loads the statistics kernels: only when measuring

    result = train(at_init_config(cfg))
    if not len(result.steps):
        raise RuntimeError("The network produced no record at step 0.")
    return np.asarray(result.stats[0], dtype=np.float64)


def measured_profile(cfg: "RunConfig") -> pd.DataFrame:
    """`cfg`'s network measured at step 0, in `predicted_profile`'s columns:
    `layer` (1 = nearest the input), `q` = Var(h) over all entries, and
    `grad_rel` = Var(∂L/∂h) relative to the last hidden layer's (NaN in every
    layer when the last layer's is 0 or not finite)."""
    from core.measure.records import COL

    stats = measure_at_init(cfg)
    q = stats[:, COL["preact_var"]]
    g = stats[:, COL["grad_preact_var"]]
    last = g[-1]
    with np.errstate(all="ignore"):
        rel = g / last if np.isfinite(last) and last > 0 else np.full_like(g, np.nan)
    return pd.DataFrame({"layer": np.arange(1, len(q) + 1), "q": q, "grad_rel": rel})


def slope_curves(names: Sequence[str], lo: float = -6.0, hi: float = 6.0, n: int = 241) -> tuple[np.ndarray, dict]:
    """(h, {name: φ'(h)}) on `n` points from `lo` to `hi`, float64: each entry's own `derivative`."""
    h = torch.linspace(lo, hi, n, dtype=torch.float64)
    return h.numpy(), {name: ACTIVATIONS[name].derivative(h).numpy() for name in names}


__all__ = ["at_init_config", "measure_at_init", "measured_profile", "slope_curves"]

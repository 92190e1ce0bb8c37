"""Datasets: generated from the seed, or bundled with scikit-learn. No downloads.

Every dataset comes standardized (each feature mean 0, variance 1 over the
training split), so the input's second moment is 1 per feature, which is
what the theory's first layer assumes. The exception is `recall`, a
sequence task whose inputs are as generated (a one-hot class and a marker at
the first time step, N(0, 1) noise after).

A sequence dataset's x is (examples, time steps, features per step); the
others' is (examples, features).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from core.schema import RunConfig
from core.registry import DATASETS

N_TEST = 512  # held out from the generated sets


@dataclass(frozen=True)
class Data:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __repr__(self) -> str:
        return f"Data(train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)})"


def _spirals(n: int, rng: np.random.Generator, arms: int = 3):
    y = rng.integers(0, arms, n)
    r = rng.uniform(0.05, 1.0, n)
    theta = 2 * np.pi * (y / arms) + 3.5 * r + rng.normal(0, 0.12, n)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return x, y


def _bars(n: int, rng: np.random.Generator, size: int = 8, noise: float = 0.35):
    """n size × size images of one bar each, flattened row-major: class k is the orientation k·45°
    (—, /, |, \\); the bar's centre (within a pixel of the middle), length (4 to size pixels) and the
    pixel noise N(0, noise²) are random."""
    y = rng.integers(0, 4, n)
    theta = y * (np.pi / 4)
    d = np.stack([np.cos(theta), np.sin(theta)], axis=1)          # along the bar (x right, y up)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    centre = (size - 1) / 2 + rng.uniform(-1.0, 1.0, (n, 2))
    length = rng.uniform(4.0, size, n)
    rows, cols = np.mgrid[0:size, 0:size]
    pts = np.stack([cols.ravel(), (size - 1 - rows).ravel()], axis=1).astype(np.float64)  # (pixels, 2): x, y
    rel = pts[None, :, :] - centre[:, None, :]
    along = np.einsum("npk,nk->np", rel, d)
    across = np.einsum("npk,nk->np", rel, normal)
    on = (np.abs(across) < 0.6) & (np.abs(along) <= length[:, None] / 2)
    x = on.astype(np.float64) + noise * rng.standard_normal((n, size * size))
    return x, y


def _generate(name: str, n: int, seed: int, features: int):
    rng = np.random.default_rng(seed)
    if name == "gaussian":
        # Inputs N(0, I) and labels that have nothing to do with them: the
        # network can only memorize, but the signal statistics are textbook.
        return rng.standard_normal((n, features)), rng.integers(0, 10, n)
    if name == "spirals":
        return _spirals(n, rng)
    if name == "bars":
        return _bars(n, rng)
    from sklearn import datasets as skd

    state = int(rng.integers(0, 2**31 - 1))
    if name == "moons":
        return skd.make_moons(n, noise=0.1, random_state=state)
    if name == "circles":
        return skd.make_circles(n, noise=0.08, factor=0.5, random_state=state)
    raise KeyError(name)


@lru_cache(maxsize=1)
def _digits():
    """scikit-learn's bundled digits (what `sklearn.datasets.load_digits` returns), read from
    its data file directly: importing sklearn.datasets takes about a second, reading the file
    30 ms. Falls back to load_digits where the file is not where scikit-learn keeps it."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if spec else None
    if path is not None and path.is_file():
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",")
        return table[:, :-1].astype(np.float64), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


RECALL_NOISE = 1.0  # std of the distractors after the first step: as loud as the class itself


def recall(n: int, seq_len: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The long-lag recall task: x (n, seq_len, classes + 1), y (n,).

    At t = 1 the class is shown as a one-hot vector, with the last channel (a
    marker) at 1; at every later step the class channels carry N(0, 1) noise
    and the marker is 0. The label is asked for after the last step, so the
    network must carry one number across `seq_len` - 1 steps of distraction."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.standard_normal((n, seq_len, classes + 1)) * RECALL_NOISE
    x[:, :, -1] = 0.0
    x[:, 0, :] = 0.0
    x[np.arange(n), 0, y] = 1.0
    x[:, 0, -1] = 1.0
    return x, y


@lru_cache(maxsize=32)
def _load_cached(name: str, seed: int, features: int, seq_len: int = 0) -> Data:
    ds = DATASETS[name]
    if name == "recall":
        x_train, y_train = recall(ds.train_size, seq_len, ds.classes, seed)
        x_test, y_test = recall(N_TEST, seq_len, ds.classes, seed + 1_000_003)
    elif name in ("digits", "digits_rows"):
        x, y = _digits()
        order = np.random.default_rng(seed).permutation(len(x))
        n_train = ds.train_size
        train, test = order[:n_train], order[n_train:]
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    else:
        x_train, y_train = _generate(name, DATASETS[name].train_size, seed, features)
        x_test, y_test = _generate(name, N_TEST, seed + 1_000_003, features)
    if name not in ("gaussian", "recall"):
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0  # digits has pixels that are always blank
        x_train = (x_train - mean) / std
        x_test = (x_test - mean) / std
    if ds.seq_len is not None:  # digits_rows: each row of the 8×8 image is one time step
        x_train = x_train.reshape(len(x_train), ds.seq_len, -1)
        x_test = x_test.reshape(len(x_test), ds.seq_len, -1)
    as_x = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))
    as_y = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64))
    return Data(as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test))


def load_data(cfg: RunConfig) -> Data:
    """The train/test split for cfg's dataset, deterministic in cfg.seed."""
    sequence = "sequence" in DATASETS[cfg.dataset].kinds
    return _load_cached(cfg.dataset, cfg.seed, cfg.features, cfg.seq_len if sequence else 0)


class BatchSampler:
    """Shuffled epochs of batch indices, from its own seeded generator."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n = n
        self.batch_size = batch_size  # RunConfig checks it is at most n
        self.rng = np.random.default_rng(seed + 17)
        self.order = self.rng.permutation(n)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.order = self.rng.permutation(self.n)
            self.pos = 0
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return torch.as_tensor(idx)

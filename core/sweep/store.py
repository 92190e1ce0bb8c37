"""The results store: every finished cell under its settings' key, in one SQLite file.

Why SQLite (in WAL mode): it is in the standard library; one file holds any
number of sweeps; a cell is one small row written in one transaction, so an
interrupted sweep loses at most the cells in flight; WAL lets the dashboard's
sessions read while a sweep writes; and looking up a finished 120-cell sweep is
one indexed query (milliseconds, bench/bench_sweep.py). Parquet files would
need one file per cell (or rewriting a file per cell) to be as safe to stop.

The key is a hash of every setting of the cell (`RunConfig.to_query`, which
round-trips) and `RESULTS_VERSION`: change that when the engine's numbers
change, and old rows are simply not found. Only finished cells (status `ok`)
are stored; a failed cell is tried again next time.

The store's directory is `$GFL_STORE_DIR`, by default `~/.cache/gradient-flow-lab`.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from core.schema import RunConfig

STORE_DIR_ENV = "GFL_STORE_DIR"
DEFAULT_STORE_DIR = Path("~/.cache/gradient-flow-lab")
STORE_FILE = "sweeps.sqlite"
RESULTS_VERSION = 1  # part of every key: bump when a cell's numbers would change for the same settings


def store_dir(env: dict | None = None) -> Path:
    """Where stored results live: $GFL_STORE_DIR, else ~/.cache/gradient-flow-lab."""
    env = os.environ if env is None else env
    text = env.get(STORE_DIR_ENV, "").strip()
    return Path(text).expanduser() if text else DEFAULT_STORE_DIR.expanduser()


def cell_key(cfg: RunConfig) -> str:
    """The cell's settings, every one of them, as a short stable key."""
    text = json.dumps({"v": RESULTS_VERSION, "config": cfg.to_query()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _dumps(value: Any) -> str:
    # JSON has no inf/nan; Python's json writes them as Infinity/NaN and reads them back, which is what we want here.
    return json.dumps(value, allow_nan=True, separators=(",", ":"))


class ResultStore:
    """Finished cells by key. Safe to share between threads (one connection per thread) and processes."""

    def __init__(self, path: str | Path | None = None):
        path = Path(path) if path is not None else store_dir() / STORE_FILE
        if path.suffix == "" or path.is_dir():
            path = path / STORE_FILE
        self.path = path
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db().execute(
                "CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, config TEXT NOT NULL, row TEXT NOT NULL, "
                "profile TEXT NOT NULL, created REAL NOT NULL)")
        except (OSError, sqlite3.Error) as e:
            raise OSError(f"Cannot open the results store {str(self.path)!r} ({e}); set {STORE_DIR_ENV} to a "
                          f"writable directory.") from None

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a crash of the process
            self._local.db = db
        return db

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    def get_many(self, cfgs: Iterable[RunConfig]) -> dict[str, tuple[dict, dict]]:
        """{key: (row, profile)} for those of `cfgs` already stored."""
        keys = list(dict.fromkeys(cell_key(c) for c in cfgs))
        found: dict[str, tuple[dict, dict]] = {}
        db = self._db()
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, row, profile in db.execute(f"SELECT key, row, profile FROM cells WHERE key IN ({marks})", chunk):
                found[key] = (json.loads(row), json.loads(profile))
        return found

    def put(self, cfg: RunConfig, row: dict, profile: dict) -> None:
        if row.get("status") != "ok":
            return
        self._db().execute("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?)",
                           (cell_key(cfg), _dumps(cfg.to_query()), _dumps(row), _dumps(profile), time.time()))

    def __len__(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM cells").fetchone()[0]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def clean_row(row: dict) -> dict:
    """A stored row as the table wants it (JSON gives back ints for whole floats)."""
    out = dict(row)
    for k, v in out.items():
        if isinstance(v, int) and not isinstance(v, bool) and k not in ("diverged_step",):
            out[k] = float(v)
    return out


__all__ = ["ResultStore", "cell_key", "store_dir", "STORE_DIR_ENV", "clean_row"]

"""The live store of a watched run: one SQLite file per run, in WAL mode.

Why SQLite in WAL mode (stdlib `sqlite3`, nothing to install):

- one writer (the training script) and any number of readers (the dashboard,
  another notebook) at once: in WAL mode readers never block the writer and
  always see the last committed record;
- each record is one transaction, so a writer killed mid-run (`kill -9`,
  an out-of-memory kill, a crashed kernel) leaves a store that opens with
  every record committed before the kill; nothing half-written is seen;
- a reader asks for "records after step s" and gets only the new ones, so a
  dashboard that follows a long run reads a few rows per refresh.

An append-only Arrow/Parquet file needs its footer written at the end (a killed
writer leaves no readable file) or one file per record (thousands of files).

A record's statistics are one BLOB of float64 (the layers × columns block
plus the loss): exact, with inf and nan kept (SQLite turns a NaN REAL into
NULL, which would merge "non-finite" with "not measured").

    runs/NAME.sqlite
      meta(key, value)        format, version, columns, layers (names, in forward order), activations,
                              model, every, status (running / finished / failed), message, pid, started, updated
      records(step, time, data)
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.schema import RunStatus

FORMAT = "gradient-flow-lab/watch-store"
VERSION = 1
SUFFIX = ".sqlite"
STALE_SECONDS = 60.0   # a "running" store not written for this long, by a process that is gone, is not live


def store_path(live: str | os.PathLike) -> Path:
    """`runs/NAME` -> runs/NAME.sqlite (a path that already ends in .sqlite is kept)."""
    p = Path(live)
    return p if p.suffix == SUFFIX else p.with_name(p.name + SUFFIX)


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
    else:
        con = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    return con


class Writer:
    """Writes a Watch's records as they are made (one transaction each)."""

    def __init__(self, live, watch):
        self.path = store_path(live)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for extra in ("", "-wal", "-shm"):  # a new run of the same name starts afresh
            Path(str(self.path) + extra).unlink(missing_ok=True)
        self.con = _connect(self.path, readonly=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; an OS crash may lose the tail
        self.con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.con.execute("CREATE TABLE records (step INTEGER PRIMARY KEY, time REAL NOT NULL, data BLOB NOT NULL)")
        from core.watch.session import STAT_COLUMNS

        self.watch = watch
        self.columns = STAT_COLUMNS
        self._layers_written = False
        self._meta({"format": FORMAT, "version": VERSION, "columns": list(STAT_COLUMNS),
                    "model": type(watch.model).__name__, "every": watch.every, "status": RunStatus.RUNNING, "message": "",
                    "pid": os.getpid(), "started": time.time(), "updated": time.time(), "layers": [],
                    "activations": [], "first_nonfinite": None})

    def _meta(self, values: dict) -> None:
        self.con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in values.items()])

    def append(self, step: int, loss: float, record: np.ndarray) -> None:
        data = np.concatenate([[loss], np.ascontiguousarray(record, dtype=np.float64).ravel()]).tobytes()
        now = time.time()
        self.con.execute("BEGIN")
        if not self._layers_written:  # the forward order is known once the first record is closed
            self._meta({"layers": self.watch.names})
            self._layers_written = True
        nf = self.watch.first_nonfinite
        self._meta({"updated": now, "activations": self.watch.activations,
                    "first_nonfinite": None if nf is None else [nf.step, nf.layer, nf.name, nf.column]})
        self.con.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (int(step), now, data))
        self.con.execute("COMMIT")

    def close(self, status: RunStatus, message: str = "") -> None:
        try:
            self._meta({"status": status, "message": message, "updated": time.time()})
            self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.con.close()


class StoreError(ValueError):
    """A store that cannot be read, in one sentence."""


@dataclass(frozen=True)
class StoreState:
    """What a reader got from a store: everything, or the records after a step."""

    path: Path
    meta: dict
    steps: np.ndarray     # (records, 2): step, loss
    stats: np.ndarray     # (records, layers, columns)

    @property
    def live(self) -> bool:
        """Still being written: status running and its writer alive (or heard from lately)."""
        m = self.meta
        if m.get("status") != RunStatus.RUNNING:
            return False
        if time.time() - float(m.get("updated") or 0) < STALE_SECONDS and _pid_alive(m.get("pid")):
            return True
        return False


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) still answers kill(0)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def read_store(path, after_step: int | None = None) -> StoreState:
    """Read a store (every record, or those after `after_step`); never writes to it."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"There is no run store at {path}.")
    try:
        con = _connect(path, readonly=True)
        try:
            meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
            q = "SELECT step, data FROM records" + (" WHERE step > ?" if after_step is not None else "") + \
                " ORDER BY step"
            rows = con.execute(q, () if after_step is None else (int(after_step),)).fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path.name} is not a readable run store ({e}).") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise StoreError(f"{path.name} is not a watch(model) run store of version {VERSION}.")
    L, K = len(meta.get("layers") or []), len(meta.get("columns") or [])
    if rows and L == 0:
        raise StoreError(f"{path.name} has records but no layer names.")
    steps = np.empty((len(rows), 2))
    stats = np.empty((len(rows), L, K))
    for i, (step, data) in enumerate(rows):
        a = np.frombuffer(data, dtype=np.float64)
        if a.size != 1 + L * K:
            raise StoreError(f"{path.name}: the record of step {step} has {a.size} numbers; expected {1 + L * K}.")
        steps[i] = step, a[0]
        stats[i] = a[1:].reshape(L, K)
    return StoreState(path, meta, steps, stats)


def list_runs(folder) -> list[tuple[str, Path]]:
    """(name, path) of the run stores in `folder`, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*" + SUFFIX) if p.is_file()]

    def written(p: Path) -> float:  # a live run's records land in its -wal file first
        wal = Path(f"{p}-wal")
        return max(p.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0)

    found.sort(key=lambda p: -written(p))
    return [(p.name[: -len(SUFFIX)], p) for p in found]


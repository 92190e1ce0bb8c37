"""One run record: a run's settings, its table, its status and how it ended.

`RunRecord` is the one type a run travels as: `train()` returns one,
`Run.snapshot()` hands out one while the run goes on, and a saved run opens as
one (`core.io.export.read_saved_run`). The exports, the verdict, the charts
and the status line all read it.

Its table is two arrays, `stats` (records × layers × `STAT_COLUMNS`) and
`steps` (records × `STEP_COLUMNS`), read-only. A live run appends to a
`Recorder`, whose rows below its count are never written again; a snapshot
is a view of the first n rows (no copy), so it stays exactly what it was while
the run goes on.

Steps: `steps[i, 0]` is the number of optimizer steps taken before record i
(0 = at initialization); `steps_taken` is how many the run has taken. A run
stopped after 937 steps with a record every step has 937 records, the last at
step 936 (the network after step 937's update was never measured).
`progress_text` says both, and the charts' titles name `last_step`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from core.measure.records import ARCH_COLUMNS, STAT_COLUMNS
from core.schema import RunConfig, RunStatus

if TYPE_CHECKING:
    from core.io.diagnosis import Diagnosis
    from core.run.boundary import Boundary
    from core.run.engine import Divergence, Record

# -- the table's columns, declared once -----------------------------------------------------------------

STEP_COLUMNS = ("step", "loss", "train_accuracy", "test_accuracy")  # one row per record
# Statistics that follow CLI.md's required columns instead of sitting among them.
_TRAILING_STATS = ("grad_ratio",)
# The per-layer table's columns: CLI.md's required ones in its order, then ours, then the architectures'.
LAYER_COLUMNS = ("step", "layer", "time",
                 *(c for c in STAT_COLUMNS if c not in _TRAILING_STATS and c not in ARCH_COLUMNS), "loss",
                 *_TRAILING_STATS, "train_accuracy", "test_accuracy", *ARCH_COLUMNS)
# Columns a saved run written before the architectures arrived does not have: read back as empty.
OPTIONAL_COLUMNS = ("time", *ARCH_COLUMNS)


def row_index(rows: int, time_steps: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(layer, time) of each row of one record, 1-based: rows are per layer, or, with `time_steps`,
    per (layer, time step) with time varying fastest; time is NaN where rows are not per time step."""
    r = np.arange(rows, dtype=np.int64)
    if time_steps:
        return r // time_steps + 1, (r % time_steps + 1).astype(np.float64)
    return r + 1, np.full(rows, np.nan)


def layer_table(stats: np.ndarray, steps: np.ndarray, time_steps: int = 0):
    """The tidy per-layer table of CLI.md (pandas): one row per recorded step and layer (and time step,
    for a recurrent run: `time_steps` per layer), `LAYER_COLUMNS`."""
    import pandas as pd

    n, L = (stats.shape[0], stats.shape[1]) if stats.ndim == 3 else (0, 0)
    flat = stats.reshape(n * L, len(STAT_COLUMNS))
    per_step = {name: steps[:, j] for j, name in enumerate(STEP_COLUMNS)}
    layer, time = row_index(L, time_steps)
    cols = {}
    for name in LAYER_COLUMNS:
        if name == "step":
            cols[name] = np.repeat(steps[:, 0].astype(np.int64), L)
        elif name == "layer":
            cols[name] = np.tile(layer, n)
        elif name == "time":
            cols[name] = np.tile(time, n)
        elif name in per_step:
            cols[name] = np.repeat(per_step[name], L)
        else:
            cols[name] = flat[:, STAT_COLUMNS.index(name)]
    return pd.DataFrame(cols)


def step_table(steps: np.ndarray):
    """One row per record: `STEP_COLUMNS` (pandas)."""
    import pandas as pd

    df = pd.DataFrame(np.asarray(steps).reshape(-1, len(STEP_COLUMNS)), columns=list(STEP_COLUMNS))
    df["step"] = df["step"].astype(np.int64)
    return df


def arrays_from_layer_table(df, layers: int, time_steps: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`layer_table`'s inverse: (stats, steps) from a tidy table of `layers`
    rows per record in its order (one block of rows per record; with
    `time_steps`, per layer and time step). Raises ValueError naming what
    does not fit. The architectures' columns may be missing (older files): empty."""
    missing = [c for c in LAYER_COLUMNS if c not in df.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"the table has no {missing[0]!r} column")
    rows = len(df)
    if layers <= 0 or rows % layers:
        raise ValueError(f"it has {rows} rows, not a whole number of records of {layers} layers")
    n = rows // layers
    layer = df["layer"].to_numpy()
    step = df["step"].to_numpy()
    want_layer, want_time = row_index(layers, time_steps)
    if not np.array_equal(layer, np.tile(want_layer, n)):
        raise ValueError("its rows are not in order of step, then layer 1 to the last")
    if time_steps and ("time" not in df.columns or not np.array_equal(
            df["time"].to_numpy(dtype=np.float64, na_value=np.nan), np.tile(want_time, n))):
        raise ValueError("its rows are not in order of step, layer, then time step 1 to the last")
    by_record = step.reshape(n, layers)
    if (by_record != by_record[:, :1]).any():
        raise ValueError("a record's rows do not all have the same step")
    stats = np.empty((n, layers, len(STAT_COLUMNS)))
    for j, name in enumerate(STAT_COLUMNS):
        stats[:, :, j] = (df[name].to_numpy(dtype=np.float64, na_value=np.nan).reshape(n, layers)
                          if name in df.columns else np.nan)
    steps = np.empty((n, len(STEP_COLUMNS)))
    steps[:, 0] = by_record[:, 0]
    for j, name in enumerate(STEP_COLUMNS[1:], 1):
        steps[:, j] = df[name].to_numpy(dtype=np.float64, na_value=np.nan)[::layers]
    return stats, steps


# -- the record ----------------------------------------------------------------------------------------

def _read_only(a: np.ndarray, shape_tail: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0 and a.shape[1:] != shape_tail:
        a = a.reshape((0, *shape_tail))
    view = a.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class RunRecord:
    """Everything about one run at one moment: settings, table, status, how it ended.

    `steps_taken` is the optimizer steps taken (None: as many as the last
    record's step, as for a table read back without it). `message` says how it
    ended, when that needs saying; `note` is what a reader noticed about a
    saved file. `hist` holds the latest histograms of a live run, `version`
    grows with every record or status change (the page redraws only then)."""

    config: RunConfig
    stats: np.ndarray
    steps: np.ndarray
    status: RunStatus = RunStatus.FINISHED
    divergence: "Divergence | None" = None
    elapsed: float = 0.0
    message: str = ""
    steps_taken: int | None = None
    hist: dict | None = field(default=None, repr=False)
    queue_position: int = 0
    version: int = 0
    note: str = ""
    boundary: "Boundary | None" = field(default=None, repr=False)  # 2-D data: predictions over the plane

    def __post_init__(self):
        layers = self.config.rows
        object.__setattr__(self, "stats", _read_only(self.stats, (layers, len(STAT_COLUMNS))))
        object.__setattr__(self, "steps", _read_only(self.steps, (len(STEP_COLUMNS),)))
        object.__setattr__(self, "status", RunStatus(self.status))
        if self.steps_taken is None:
            object.__setattr__(self, "steps_taken", self.last_step or 0)

    def __repr__(self) -> str:
        return (f"RunRecord({self.status}, {self.records} records × {self.layer_count} layers, "
                f"{self.steps_taken}/{self.config.steps} steps)")

    # -- counts ----------------------------------------------------------------------------------------
    @property
    def records(self) -> int:
        return len(self.steps)

    @property
    def layer_count(self) -> int:
        """Rows per record: hidden layers or blocks (times the time steps, for a recurrent run)."""
        return self.config.rows

    @property
    def last_step(self) -> int | None:
        """The step of the last record (what the charts show), None before the first."""
        return int(self.steps[-1, 0]) if len(self.steps) else None

    @property
    def running(self) -> bool:
        return self.status.live

    # -- derived views ----------------------------------------------------------------------------------
    @cached_property
    def layers(self):
        """The per-layer table of CLI.md (a pandas DataFrame, `LAYER_COLUMNS`)."""
        return layer_table(self.stats, self.steps, self.config.time_steps)

    @property
    def step_rows(self):
        """One row per record: step, loss, train and test accuracy."""
        return step_table(self.steps)

    @cached_property
    def diagnosis(self) -> "Diagnosis":
        """The health verdict of what was recorded (computed once per record)."""
        from core.io.diagnosis import diagnose
        return diagnose(self)

    def replace(self, **changes) -> "RunRecord":
        return replace(self, **changes)


def progress_text(rec: RunRecord) -> str:
    """How far a run got, in the words every page uses: the records and the
    step of the last one (the step the charts show), then the steps taken.
    "937 records, last at step 936 · 937 / 3,000 steps taken"."""
    total = rec.config.steps
    taken = f"{rec.steps_taken:,} / {total:,} steps taken"
    if rec.config.record_every == 0:
        return f"recording off · {taken}"
    if rec.records == 0:
        return f"no records yet · {taken}"
    noun = "record" if rec.records == 1 else "records"
    return f"{rec.records:,} {noun}, last at step {rec.last_step:,} · {taken}"


def status_text(rec: RunRecord) -> str:
    """The status line: what the run is doing, how far it got, for how long."""
    return f"**{rec.status.label}** · {progress_text(rec)} · {rec.elapsed:.1f} s"


# -- accumulating ---------------------------------------------------------------------------------------

class Recorder:
    """A run's records as they arrive, in growing float64 arrays (amortized
    O(1) appends, one block per record, no tensors kept).

    Append-only: a row, once written, is never written again, and growing
    moves the rows to new arrays (the old ones stay with whatever views hold
    them). So `view()` can hand out the first n rows without a copy."""

    def __init__(self, layers: int, capacity: int = 16):
        self.layers = layers
        self.n = 0
        self._stats = np.empty((capacity, layers, len(STAT_COLUMNS)))
        self._steps = np.empty((capacity, len(STEP_COLUMNS)))

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"Recorder({self.n} records × {self.layers} layers)"

    def append(self, rec: "Record") -> None:
        if self.n == len(self._stats):
            grow = max(len(self._stats), 16)
            self._stats = np.concatenate([self._stats[: self.n], np.empty((grow, *self._stats.shape[1:]))])
            self._steps = np.concatenate([self._steps[: self.n], np.empty((grow, len(STEP_COLUMNS)))])
        self._stats[self.n] = rec.stats
        self._steps[self.n] = (rec.step, rec.loss, rec.train_accuracy, rec.test_accuracy)
        self.n += 1

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """(stats, steps) of the records so far: read-only views, not copies."""
        stats, steps = self._stats[: self.n], self._steps[: self.n]
        stats.flags.writeable = False
        steps.flags.writeable = False
        return stats, steps

    @property
    def nbytes(self) -> int:
        return self._stats.nbytes + self._steps.nbytes


__all__ = ["STEP_COLUMNS", "LAYER_COLUMNS", "OPTIONAL_COLUMNS", "row_index", "RunRecord", "RunStatus", "Recorder", "layer_table", "step_table",
           "arrays_from_layer_table", "progress_text", "status_text"]

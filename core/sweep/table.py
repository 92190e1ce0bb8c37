"""The sweep's tidy table (CLI.md, "Sweeps"): a row per cell, its axes' values then its metrics,
and the table on disk as CSV, Parquet or JSON.

Non-finite numbers are written as they are (`inf`, `nan`; JSON as those
strings, the way a run's export does); `diverged_step` is empty (null) for a
cell that did not diverge; `trained` is true/false.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.schema import ConfigError, FIELDS
from core.sweep.cells import METRIC_COLUMNS
from core.sweep.spec import SweepSpec

FORMATS = ("csv", "parquet", "json")
PENDING = "pending"  # status of a cell not finished yet (only in a live table, never in a written one)


def sweep_table(spec: SweepSpec, rows: Mapping[int, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per cell of `spec` (in `spec.cells()` order); cells missing from `rows` are `pending`."""
    records = []
    for i, axes in enumerate(spec.axis_values()):
        row = rows.get(i)
        rec = dict(axes)
        if row is None:
            rec.update({c: math.nan for c in METRIC_COLUMNS})
            rec.update(trained=False, diverged_step=None, phase="", status=PENDING)
        else:
            rec.update({c: row.get(c) for c in METRIC_COLUMNS})
        records.append(rec)
    df = pd.DataFrame.from_records(records, columns=[*spec.fields, *METRIC_COLUMNS])
    for c in METRIC_COLUMNS:
        if c not in ("trained", "diverged_step", "phase", "status"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["trained"] = df["trained"].astype(bool)
    df["diverged_step"] = pd.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
                                    for v in df["diverged_step"]], dtype="Int64")
    df["phase"] = df["phase"].astype(str)
    df["status"] = df["status"].astype(str)
    for a in spec.axes:
        kind = FIELDS[a.field].kind
        if kind is int and all(v is not None for v in a.values):
            df[a.field] = df[a.field].astype(np.int64)
        elif kind is float:
            df[a.field] = df[a.field].astype(float)
    return df


def _text(v: Any) -> str:
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


def to_csv(df: pd.DataFrame) -> bytes:
    out = pd.DataFrame({c: [_text(v) for v in df[c].astype(object)] for c in df.columns})
    return out.to_csv(index=False).encode()


def to_parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else _text(v)
    return v


def to_json_dict(df: pd.DataFrame, spec: SweepSpec | None = None) -> dict:
    cells = [{c: _json_value(v) for c, v in zip(df.columns, row)} for row in df.astype(object).itertuples(index=False)]
    out: dict[str, Any] = {}
    if spec is not None:
        out["sweep"] = {"axes": spec.axis_texts(), "config": spec.base.to_dict()}
    out["cells"] = cells
    return out


def to_json(df: pd.DataFrame, spec: SweepSpec | None = None) -> bytes:
    return json.dumps(to_json_dict(df, spec), allow_nan=False).encode()


def export_bytes(df: pd.DataFrame, fmt: str, spec: SweepSpec | None = None) -> bytes:
    if fmt == "csv":
        return to_csv(df)
    if fmt == "parquet":
        return to_parquet(df)
    if fmt == "json":
        return to_json(df, spec)
    raise ValueError(f"Unknown format {fmt!r}: one of {', '.join(FORMATS)}.")


def check_out_path(path: str) -> str:
    """The format of `path` from its ending, or ConfigError naming `out`."""
    for fmt in FORMATS:
        if str(path).lower().endswith("." + fmt):
            return fmt
    raise ConfigError("out", f"Invalid out {str(path)[:80]!r}: the file must end in .csv, .parquet or .json.")


def write_table(df: pd.DataFrame, path: str | Path, spec: SweepSpec | None = None) -> Path:
    fmt = check_out_path(str(path))
    path = Path(path)
    path.write_bytes(export_bytes(df, fmt, spec))
    return path

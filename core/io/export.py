"""The statistics table on disk: CSV, Parquet and JSON, and JSON back in.

Non-finite values are written as they are: `inf`, `-inf`, `nan` in CSV, the
same strings in JSON (which has no number for them), IEEE values in Parquet.
Cells that have no value by definition (`update_ratio` at step 0,
`test_accuracy` on steps where it was not measured) are empty: an empty CSV
cell, `null` in JSON and Parquet.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from core.schema import ConfigError, RunConfig
from core.limits import HARD
from core.io.diagnosis import Diagnosis, diagnose
from core.run.engine import LAYER_COLUMNS, STEP_COLUMNS, Divergence, RunResult, layer_table
from core.measure.records import STAT_COLUMNS

FORMATS = ("csv", "parquet", "json")
MAX_IMPORT_BYTES = 50 * 1024 * 1024  # a 100-layer × 5,000-record run is ~40 MB of JSON



class ImportErrorForPeople(ValueError):
    """A run file that cannot be opened, with one sentence saying why."""


def _missing_mask(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Cells that are empty by definition rather than non-finite."""
    return {
        "update_ratio": (df["step"].to_numpy() == 0),
        "test_accuracy": np.isnan(df["test_accuracy"].to_numpy()),
    }


def to_csv(result: RunResult) -> bytes:
    df = result.layers
    out = df.astype(object)
    for col in df.columns[2:]:
        out[col] = [_num_text(v) for v in df[col].to_numpy()]
    for col, mask in _missing_mask(df).items():
        out.loc[mask, col] = ""
    return out.to_csv(index=False).encode()


def _num_text(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def to_parquet(result: RunResult) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = result.layers
    arrays, names = [], []
    missing = _missing_mask(df)
    for col in df.columns:
        values = df[col].to_numpy()
        mask = missing.get(col)
        arrays.append(pa.array(values, mask=mask, from_pandas=False))
        names.append(col)
    table = pa.Table.from_arrays(arrays, names=names)
    meta = {b"gradient_flow_lab.config": json.dumps(result.config.to_dict()).encode()}
    table = table.replace_schema_metadata(meta)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _json_num(v: float, missing: bool = False):
    if missing:
        return None
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def to_json_dict(result: RunResult, diagnosis: Diagnosis | None = None) -> dict:
    df = result.layers
    missing = _missing_mask(df)
    rows = []
    cols = list(df.columns)
    data = {c: df[c].to_numpy() for c in cols}
    for i in range(len(df)):
        row = {"step": int(data["step"][i]), "layer": int(data["layer"][i])}
        for c in cols[2:]:
            row[c] = _json_num(data[c][i], c in missing and bool(missing[c][i]))
        rows.append(row)
    steps = [
        {"step": int(s[0]), "loss": _json_num(s[1]), "train_accuracy": _json_num(s[2]),
         "test_accuracy": _json_num(s[3], math.isnan(s[3]))}
        for s in result.steps
    ]
    diagnosis = diagnosis or diagnose(result)
    dv = result.divergence
    return {
        "format": "gradient-flow-lab/run",
        "version": 1,
        "config": result.config.to_dict(),
        "status": result.status,
        "divergence": None if dv is None else {"step": dv.step, "layer": dv.layer, "where": dv.where},
        "layers": rows,
        "steps": steps,
        "diagnosis": diagnosis.to_dict(),
    }


def to_json(result: RunResult) -> bytes:
    return json.dumps(to_json_dict(result), allow_nan=False, ensure_ascii=False).encode()


def export_bytes(result: RunResult, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(result)
    if fmt == "parquet":
        return to_parquet(result)
    if fmt == "json":
        return to_json(result)
    raise ValueError(f"Unknown export format {fmt!r}: use csv, parquet or json.")


def write_table(result: RunResult, path: str | Path) -> Path:
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError("out", f"Invalid out {str(path)!r}: the file must end in .csv, .parquet or .json.")
    path.write_bytes(export_bytes(result, fmt))
    return path


# -- reading a saved run back -----------------------------------------------------------

def _num_in(v, where: str) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool):
        raise ImportErrorForPeople(f"The run file's {where} is true/false; expected a number.")
    if isinstance(v, float):
        return v
    if isinstance(v, int):
        if abs(v) > 1e300:  # float() of a huge JSON integer raises OverflowError
            raise ImportErrorForPeople(f"The run file's {where} is a number too large to read.")
        return float(v)
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    raise ImportErrorForPeople(f"The run file's {where} is {str(v)[:30]!r}; expected a number, 'nan', 'inf' or '-inf'.")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is not the integer 1


def result_from_json(data: bytes | str) -> RunResult:
    """A saved run (our JSON export) back as a RunResult. Refuses, with one
    sentence, anything that is not exactly that: too large, not JSON, a wrong
    schema, settings out of range, or a table that does not fit its config."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")  # a lone surrogate is then refused as invalid JSON below
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportErrorForPeople(f"The file is {len(data) / 1e6:.0f} MB; a saved run can be at most {MAX_IMPORT_BYTES // 10**6} MB.")
    try:
        doc = json.loads(data)
    except RecursionError:
        raise ImportErrorForPeople("The file is nested too deeply to be a run file.") from None
    except ValueError as e:
        raise ImportErrorForPeople(f"The file is not valid JSON ({str(e)[:80]}); it may be truncated.") from None
    if not isinstance(doc, dict) or doc.get("format") != "gradient-flow-lab/run":
        raise ImportErrorForPeople("This is not a Gradient Flow Lab run file (its \"format\" is not \"gradient-flow-lab/run\").")
    if not _is_int(doc.get("version")) or doc["version"] != 1:
        raise ImportErrorForPeople(f"Run file version {str(doc.get('version'))[:20]!r} is not supported; this app reads version 1.")
    try:
        cfg = RunConfig.from_dict(doc.get("config"))
    except ConfigError as e:
        raise ImportErrorForPeople(f"The run file's config is invalid: {e.message}") from None
    rows, step_rows = doc.get("layers"), doc.get("steps")
    if not isinstance(rows, list) or not isinstance(step_rows, list):
        raise ImportErrorForPeople("The run file needs \"layers\" and \"steps\" lists.")
    L = len(cfg.hidden_widths)
    n = len(step_rows)
    if len(rows) != n * L:
        raise ImportErrorForPeople(f"The run file has {len(rows)} layer rows; {n} steps × {L} layers needs {n * L}.")
    stats = np.empty((n, L, len(STAT_COLUMNS)))
    steps = np.empty((n, len(STEP_COLUMNS)))
    for i, s in enumerate(step_rows):
        if not isinstance(s, dict) or not _is_int(s.get("step")) or not 0 <= s["step"] <= HARD.max_steps:
            raise ImportErrorForPeople(f"Step row {i + 1} is malformed (it needs an integer \"step\" from 0 to "
                                       f"{HARD.max_steps:,}).")
        steps[i] = [s["step"]] + [_num_in(s.get(c), f"steps[{i}].{c}") for c in STEP_COLUMNS[1:]]
    for k, row in enumerate(rows):
        i, l = divmod(k, L)
        if (not isinstance(row, dict) or not _is_int(row.get("step")) or row["step"] != int(steps[i, 0])
                or not _is_int(row.get("layer")) or row["layer"] != l + 1):
            raise ImportErrorForPeople(f"Layer row {k + 1} is out of order (expected step {int(steps[i, 0])}, layer {l + 1}).")
        for j, c in enumerate(STAT_COLUMNS):
            if c not in row:
                raise ImportErrorForPeople(f"Layer row {k + 1} has no {c!r} column.")
            stats[i, l, j] = _num_in(row[c], f"layers[{k}].{c}")
    dv = doc.get("divergence")
    divergence = None
    if dv is not None:
        if not (isinstance(dv, dict) and _is_int(dv.get("step")) and dv.get("where") in ("forward", "backward", "loss")
                and (dv.get("layer") is None or _is_int(dv.get("layer")))):
            raise ImportErrorForPeople("The run file's \"divergence\" is malformed.")
        divergence = Divergence(dv["step"], dv["layer"], dv["where"])
    status = doc.get("status") if doc.get("status") in ("finished", "stopped", "diverged") else "finished"
    return RunResult(cfg, stats, steps, status, divergence, 0.0, "Opened from a saved run.")


def layers_equal(a: RunResult, b: RunResult) -> bool:
    """Same table, with NaN equal to NaN."""
    return a.config == b.config and np.array_equal(a.stats, b.stats, equal_nan=True) and np.array_equal(
        a.steps, b.steps, equal_nan=True)


__all__ = ["to_csv", "to_parquet", "to_json", "to_json_dict", "export_bytes", "write_table", "result_from_json",
           "ImportErrorForPeople", "layers_equal", "LAYER_COLUMNS", "layer_table"]

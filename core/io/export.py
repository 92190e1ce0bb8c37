"""The run record on disk: CSV, Parquet and JSON, and a saved run back in.

A saved run is the Parquet download (the compact form: the per-layer table,
zstd-compressed with floats byte-split, and the settings, status, steps taken
and divergence in the file's metadata) or the JSON export (CLI.md's
config/layers/steps/diagnosis document); `read_saved_run` opens either as a
`RunRecord`, or refuses it with one sentence. Both are held to one size limit,
`core.limits.SAVED_RUN_MAX_MB`: the Parquet file of the largest run the server
permits (100 layers × 5,001 records) is 43.5 MB even for incompressible values,
its JSON 270 MB, gzip'd JSON 70.7 MB and ~1 minute to write
(bench/bench_saved_run.py).

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

from core.schema import ConfigError, RunConfig, RunStatus
from core.limits import HARD, SAVED_RUN_MAX_BYTES, SAVED_RUN_MAX_MB
from core.io.diagnosis import Diagnosis
from core.run.engine import Divergence
from core.run.record import (LAYER_COLUMNS, OPTIONAL_COLUMNS, STEP_COLUMNS, RunRecord, arrays_from_layer_table,
                             layer_table, progress_text, row_index)
from core.measure.records import ARCH_COLUMNS, STAT_COLUMNS

FORMATS = ("csv", "parquet", "json")
FORMAT_NAME = "gradient-flow-lab/run"
FORMAT_VERSION = 1
_PARQUET_META = b"gradient_flow_lab.run"  # the record's JSON header (format, config, status, ...) in the Parquet file
MAX_IMPORT_BYTES = SAVED_RUN_MAX_BYTES  # the one limit (core.limits); kept under its old name for callers
# What a compact file may decode to: a few times the largest file (the server's largest run decodes to ~68 MB).
_MAX_DECODED_BYTES = 4 * SAVED_RUN_MAX_BYTES


class ImportErrorForPeople(ValueError):
    """A run file that cannot be opened, with one sentence saying why."""


def _missing_mask(df: pd.DataFrame, cfg: RunConfig) -> dict[str, np.ndarray]:
    """Cells that are empty by definition rather than non-finite: `update_ratio` at step 0, `test_accuracy`
    where it was not measured, `time` where rows are not per time step, an architecture column its arch
    does not fill."""
    mask = {
        "update_ratio": (df["step"].to_numpy() == 0),
        "test_accuracy": np.isnan(df["test_accuracy"].to_numpy()),
        "time": np.isnan(df["time"].to_numpy()),
    }
    filled = cfg.architecture.columns
    for col in ARCH_COLUMNS:
        if col not in filled:
            mask[col] = np.isnan(df[col].to_numpy())
    return mask


def to_csv(result: RunRecord) -> bytes:
    df = result.layers
    out = df.astype(object)
    for col in df.columns[2:]:
        out[col] = [_num_text(v) for v in df[col].to_numpy()]
    out["time"] = [str(int(v)) if v == v else "" for v in df["time"].to_numpy()]  # an index, like layer
    for col, mask in _missing_mask(df, result.config).items():
        out.loc[mask, col] = ""
    return out.to_csv(index=False).encode()


def _num_text(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def _header(result: RunRecord) -> dict:
    """What a saved run holds besides its table: the settings and how the run ended."""
    dv = result.divergence
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": result.config.to_dict(),
        "status": str(result.status),
        "steps_taken": int(result.steps_taken),
        "divergence": None if dv is None else {"step": dv.step, "layer": dv.layer, "where": dv.where},
    }


def to_parquet(result: RunRecord) -> bytes:
    """The per-layer table, typed, with the run's header in the file's metadata:
    the compact saved run. Floats are byte-split before zstd (their exponent
    bytes then compress); empty-by-definition cells are null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = result.layers
    arrays, names = [], []
    missing = _missing_mask(df, result.config)
    for col in df.columns:
        values = df[col].to_numpy()
        mask = missing.get(col)
        arrays.append(pa.array(values, mask=mask, from_pandas=False))
        names.append(col)
    table = pa.Table.from_arrays(arrays, names=names)
    meta = {_PARQUET_META: json.dumps(_header(result)).encode(),
            b"gradient_flow_lab.config": json.dumps(result.config.to_dict()).encode()}
    table = table.replace_schema_metadata(meta)
    floats = [c for c in names if df[c].dtype.kind == "f"]
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=["step", "layer"], use_byte_stream_split=floats)
    return buf.getvalue()


def _json_num(v: float, missing: bool = False):
    if missing:
        return None
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def to_json_dict(result: RunRecord, diagnosis: Diagnosis | None = None) -> dict:
    df = result.layers
    missing = _missing_mask(df, result.config)
    rows = []
    cols = list(df.columns)
    data = {c: df[c].to_numpy() for c in cols}
    for i in range(len(df)):
        row = {"step": int(data["step"][i]), "layer": int(data["layer"][i])}
        for c in cols[2:]:
            row[c] = _json_num(data[c][i], c in missing and bool(missing[c][i]))
        if row["time"] is not None:
            row["time"] = int(row["time"])
        rows.append(row)
    steps = [
        {"step": int(s[0]), "loss": _json_num(s[1]), "train_accuracy": _json_num(s[2]),
         "test_accuracy": _json_num(s[3], math.isnan(s[3]))}
        for s in result.steps
    ]
    diagnosis = diagnosis or result.diagnosis
    return {**_header(result), "layers": rows, "steps": steps, "diagnosis": diagnosis.to_dict()}


def to_json(result: RunRecord) -> bytes:
    return json.dumps(to_json_dict(result), allow_nan=False, ensure_ascii=False).encode()


def export_bytes(result: RunRecord, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(result)
    if fmt == "parquet":
        return to_parquet(result)
    if fmt == "json":
        return to_json(result)
    raise ValueError(f"Unknown export format {fmt!r}: use csv, parquet or json.")


def write_table(result: RunRecord, path: str | Path) -> Path:
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


def _too_large(size: int, what: str = "The file") -> ImportErrorForPeople:
    return ImportErrorForPeople(f"{what} is {size / 1e6:.1f} MB; a saved run can be at most {SAVED_RUN_MAX_MB} MB "
                                "(the Parquet download of a run is about a sixth of its JSON).")


def _parse_header(doc, where: str) -> tuple[RunConfig, RunStatus, int | None, Divergence | None]:
    """The header's fields, checked: format, version, config, status, steps taken, divergence."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ImportErrorForPeople(f"This is not a Gradient Flow Lab run file (its {where}\"format\" is not "
                                   f"\"{FORMAT_NAME}\").")
    if not _is_int(doc.get("version")) or doc["version"] != FORMAT_VERSION:
        raise ImportErrorForPeople(f"Run file version {str(doc.get('version'))[:20]!r} is not supported; "
                                   f"this app reads version {FORMAT_VERSION}.")
    try:
        cfg = RunConfig.from_dict(doc.get("config"))
    except ConfigError as e:
        raise ImportErrorForPeople(f"The run file's config is invalid: {e.message}") from None
    status = doc.get("status", str(RunStatus.FINISHED))  # files from before "status" was written finished
    if not isinstance(status, str) or status not in RunStatus._value2member_map_:
        raise ImportErrorForPeople(f"The run file's \"status\" is {str(status)[:40]!r}; it must be one of "
                                   f"{', '.join(RunStatus)}.")
    taken = doc.get("steps_taken")
    if taken is not None and not (_is_int(taken) and 0 <= taken <= cfg.steps):
        raise ImportErrorForPeople(f"The run file's \"steps_taken\" is {str(taken)[:20]!r}; it must be an integer "
                                   f"from 0 to the run's {cfg.steps:,} steps.")
    dv = doc.get("divergence")
    divergence = None
    if dv is not None:
        if not (isinstance(dv, dict) and _is_int(dv.get("step")) and dv.get("where") in ("forward", "backward", "loss")
                and (dv.get("layer") is None or _is_int(dv.get("layer")))):
            raise ImportErrorForPeople("The run file's \"divergence\" is malformed.")
        divergence = Divergence(dv["step"], dv["layer"], dv["where"])
    return cfg, RunStatus(status), taken, divergence


def _saved_record(cfg: RunConfig, stats: np.ndarray, steps: np.ndarray, status: RunStatus, taken: int | None,
                  divergence: Divergence | None) -> RunRecord:
    """The record a saved run opens as, after the checks every form shares:
    its steps in order and within the run, and a note when what the file says
    about how it ended does not match its records."""
    recorded = steps[:, 0]
    if len(recorded) and (recorded[0] < 0 or recorded[-1] > cfg.steps or (np.diff(recorded) <= 0).any()):
        raise ImportErrorForPeople(f"The run file's records are not at increasing steps from 0 to the run's "
                                   f"{cfg.steps:,} steps.")
    last = int(recorded[-1]) if len(recorded) else None
    if taken is not None and last is not None and taken < last:
        raise ImportErrorForPeople(f"The run file says {taken:,} steps were taken but has a record at step {last:,}.")
    note = ""
    if status.live:  # downloaded while paused: nothing trains it now
        note = f"It was saved while {status}; it opens as stopped."
        status = RunStatus.STOPPED
    short = (cfg.record_every and last != cfg.steps) or (taken is not None and taken != cfg.steps)
    if status is RunStatus.FINISHED and short:
        at = ("it has no records" if last is None else f"its records stop at step {last:,}") if cfg.record_every \
            else f"it took {taken:,}"
        note = (f"This file says the run finished its {cfg.steps:,} steps, but {at}: the file may have been "
                "cut short or edited.")
    record = RunRecord(cfg, stats, steps, status, divergence, steps_taken=taken, note=note)
    if divergence is not None:
        message = divergence.sentence(cfg)
    elif status is RunStatus.STOPPED:
        message = f"This run was stopped before it was saved ({progress_text(record)})."
    else:
        message = ""
    return record.replace(message=message)


def result_from_json(data: bytes | str) -> RunRecord:
    """A saved run (our JSON export) back as a RunRecord. Refuses, with one
    sentence, anything that is not exactly that: too large, not JSON, a wrong
    schema, settings out of range, or a table that does not fit its config."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")  # a lone surrogate is then refused as invalid JSON below
    if len(data) > SAVED_RUN_MAX_BYTES:
        raise _too_large(len(data))
    try:
        doc = json.loads(data)
    except RecursionError:
        raise ImportErrorForPeople("The file is nested too deeply to be a run file.") from None
    except ValueError as e:
        raise ImportErrorForPeople(f"The file is not valid JSON ({str(e)[:80]}); it may be truncated.") from None
    cfg, status, taken, divergence = _parse_header(doc, "")
    rows, step_rows = doc.get("layers"), doc.get("steps")
    if not isinstance(rows, list) or not isinstance(step_rows, list):
        raise ImportErrorForPeople("The run file needs \"layers\" and \"steps\" lists.")
    L = cfg.rows
    want_layer, want_time = row_index(L, cfg.time_steps)
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
                or not _is_int(row.get("layer")) or row["layer"] != want_layer[l]
                or (cfg.time_steps and row.get("time") != want_time[l])):
            at = f", time {int(want_time[l])}" if cfg.time_steps else ""
            raise ImportErrorForPeople(f"Layer row {k + 1} is out of order (expected step {int(steps[i, 0])}, "
                                       f"layer {want_layer[l]}{at}).")
        for j, c in enumerate(STAT_COLUMNS):
            if c not in row:
                if c in OPTIONAL_COLUMNS:  # a file from before the architectures: empty
                    stats[i, l, j] = math.nan
                    continue
                raise ImportErrorForPeople(f"Layer row {k + 1} has no {c!r} column.")
            stats[i, l, j] = _num_in(row[c], f"layers[{k}].{c}")
    return _saved_record(cfg, stats, steps, status, taken, divergence)


def result_from_parquet(data: bytes) -> RunRecord:
    """A saved run in the compact form (our Parquet download) back as a
    RunRecord; refuses anything else with one sentence, as the JSON reader does."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(data) > SAVED_RUN_MAX_BYTES:
        raise _too_large(len(data))
    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        meta = pf.schema_arrow.metadata or {}
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ImportErrorForPeople(f"The file is not a readable Parquet file ({str(e)[:80]}); "
                                   "it may be truncated.") from None
    header = meta.get(_PARQUET_META)
    if header is None:
        raise ImportErrorForPeople("This Parquet file has no run settings in its metadata, so it cannot be opened "
                                   "as a saved run (only this app's downloads, or `--out run.parquet`, have them).")
    try:
        doc = json.loads(header)
    except (ValueError, RecursionError):
        raise ImportErrorForPeople("This Parquet file's run settings are not valid JSON.") from None
    cfg, status, taken, divergence = _parse_header(doc, "metadata's ")
    L = cfg.rows
    names = set(pf.schema_arrow.names)
    missing = [c for c in LAYER_COLUMNS if c not in names and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ImportErrorForPeople(f"The run file's table has no {missing[0]!r} column.")
    present = [c for c in LAYER_COLUMNS if c in names]
    for name in present:  # checked on the schema, before anything is decompressed
        kind = pf.schema_arrow.field(name).type
        ints = name in ("step", "layer")
        if not (pa.types.is_integer(kind) if ints else (pa.types.is_floating(kind) or pa.types.is_null(kind))):
            raise ImportErrorForPeople(f"The run file's {name!r} column holds {kind}; expected "
                                       f"{'integers' if ints else 'numbers'}.")
    rows = pf.metadata.num_rows
    most = min((cfg.steps + 1) * L, _MAX_DECODED_BYTES // (8 * len(LAYER_COLUMNS)))
    if rows > most:  # a small file that decompresses to gigabytes is refused before it does
        raise ImportErrorForPeople(f"The run file's table has {rows:,} rows; a run of {cfg.steps:,} steps × {L} layers "
                                   f"opened here has at most {most:,}.")
    try:
        df = pf.read(columns=present).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ImportErrorForPeople(f"The run file's table cannot be read ({str(e)[:80]}).") from None
    try:
        stats, steps = arrays_from_layer_table(df, L, cfg.time_steps)
    except ValueError as e:
        raise ImportErrorForPeople(f"The run file's table does not fit its {L} layers: {e}.") from None
    return _saved_record(cfg, stats, steps, status, taken, divergence)


def read_saved_run(data: bytes) -> RunRecord:
    """A saved run, in either form (told apart by the bytes, not the name), as a RunRecord."""
    data = bytes(data)
    if len(data) > SAVED_RUN_MAX_BYTES:
        raise _too_large(len(data))
    if data[:4] == b"PAR1":
        return result_from_parquet(data)
    return result_from_json(data)


def layers_equal(a: RunRecord, b: RunRecord) -> bool:
    """Same table, with NaN equal to NaN."""
    return a.config == b.config and np.array_equal(a.stats, b.stats, equal_nan=True) and np.array_equal(
        a.steps, b.steps, equal_nan=True)


__all__ = ["to_csv", "to_parquet", "to_json", "to_json_dict", "export_bytes", "write_table", "read_saved_run",
           "result_from_json", "result_from_parquet", "ImportErrorForPeople", "layers_equal", "LAYER_COLUMNS",
           "layer_table", "MAX_IMPORT_BYTES"]

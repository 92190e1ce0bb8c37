"""Exports: CSV, Parquet and JSON exactly as CLI.md says, the JSON round trip, and hostile files refused."""
from __future__ import annotations

import copy
import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from core.schema import RunConfig
from core.run.engine import Divergence, train
from core.run.record import OPTIONAL_COLUMNS, RunRecord
from core.io.export import (LAYER_COLUMNS, MAX_IMPORT_BYTES, ImportErrorForPeople, export_bytes, layers_equal,
                         result_from_json, to_csv, to_json, to_parquet, write_table)
from core.measure.probes import COL, STAT_COLUMNS

CLI_COLUMNS = ["step", "layer", "preact_mean", "preact_var", "act_mean", "act_var", "grad_preact_var", "grad_act_var",
               "weight_var", "weight_grad_var", "update_ratio", "saturation", "dead_units", "loss"]


@pytest.fixture(scope="module")
def finished() -> RunRecord:
    return train(RunConfig(depth=3, width=8, dataset="moons", batch_size=16, steps=4, record_every=2, eval_every=4,
                           seed=2))


@pytest.fixture(scope="module")
def diverged() -> RunRecord:
    r = train(RunConfig(depth=50, width=8, activation="relu", init="normal", sigma_w=10.0, dataset="gaussian",
                        batch_size=8, steps=3))
    assert r.status == "diverged"
    return r


def synthetic() -> RunRecord:
    """A table with +inf, -inf and nan in known places, and a NaN update_ratio after step 0."""
    cfg = RunConfig(depth=2, width=4, dataset="gaussian", batch_size=8, steps=1)
    rng = np.random.default_rng(0)
    stats = rng.normal(size=(2, 2, len(STAT_COLUMNS)))
    stats[0, :, COL["update_ratio"]] = np.nan
    stats[1, 0, COL["preact_var"]] = np.inf
    stats[1, 1, COL["preact_mean"]] = -np.inf
    stats[1, 1, COL["grad_preact_var"]] = np.nan
    steps = np.array([[0, 2.3, 0.1, 0.2], [1, np.inf, 0.1, np.nan]])
    return RunRecord(cfg, stats, steps, "diverged", Divergence(1, 1, "forward"), 0.0, "")


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


# -- CSV --------------------------------------------------------------------------------------------

def test_csv_has_the_table_columns_in_order(finished):
    rows = csv_rows(to_csv(finished))
    header = list(rows[0])
    assert header == list(LAYER_COLUMNS)
    assert [c for c in header if c in CLI_COLUMNS] == CLI_COLUMNS  # every required column, in CLI.md's order
    assert len(rows) == len(finished.steps) * 3


def test_csv_values_round_trip_exactly_and_missing_cells_are_empty(finished):
    rows = csv_rows(to_csv(finished))
    df = finished.layers
    for r, (_, want) in zip(rows, df.iterrows()):
        assert int(r["step"]) == want["step"] and int(r["layer"]) == want["layer"]
        for c in df.columns[2:]:
            if c == "update_ratio" and want["step"] == 0:
                assert r[c] == ""
            elif c == "test_accuracy" and math.isnan(want[c]):
                assert r[c] == ""
            elif c in OPTIONAL_COLUMNS and c not in finished.config.architecture.columns:
                assert r[c] == ""  # an MLP's rows are not per time step and have no architecture columns
            else:
                assert float(r[c]) == want[c], c  # repr(float): exact
    assert {r["test_accuracy"] != "" for r in rows} == {True, False}  # measured at steps 0 and 4 only


def test_csv_writes_inf_and_nan_as_text():
    rows = csv_rows(to_csv(synthetic()))
    assert rows[2]["preact_var"] == "inf"
    assert rows[3]["preact_mean"] == "-inf"
    assert rows[3]["grad_preact_var"] == "nan"
    assert rows[2]["loss"] == rows[3]["loss"] == "inf"
    assert rows[0]["update_ratio"] == rows[1]["update_ratio"] == ""  # step 0: no update yet, empty
    assert rows[2]["update_ratio"] not in ("", "nan")


def test_csv_of_a_diverged_run_keeps_its_nan(diverged):
    rows = csv_rows(to_csv(diverged))
    assert len(rows) == len(diverged.steps) * 50
    assert any(r["preact_var"] in ("nan", "inf") for r in rows)
    assert any(r["loss"] in ("nan", "inf") for r in rows)
    # pandas reads the text back as the same non-finite values
    back = pd.read_csv(io.BytesIO(to_csv(diverged)))
    np.testing.assert_array_equal(back["preact_var"].to_numpy(), diverged.layers["preact_var"].to_numpy())


# -- Parquet --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["finished", "synthetic"])
def test_parquet_is_readable_by_pandas_with_the_same_table(which, finished):
    result = finished if which == "finished" else synthetic()
    back = pd.read_parquet(io.BytesIO(to_parquet(result)))
    df = result.layers
    assert list(back.columns) == list(df.columns)
    assert back["step"].dtype.kind == "i" and back["layer"].dtype.kind == "i"
    for c in df.columns:
        np.testing.assert_array_equal(back[c].to_numpy(dtype=float), df[c].to_numpy(dtype=float), err_msg=c)
    # the config travels in the file's metadata
    import pyarrow.parquet as pq

    meta = pq.read_schema(io.BytesIO(to_parquet(result))).metadata
    assert RunConfig.from_dict(json.loads(meta[b"gradient_flow_lab.config"])) == result.config


# -- JSON -----------------------------------------------------------------------------------------------

def test_json_document_shape(finished):
    doc = json.loads(to_json(finished))
    assert {"config", "layers", "steps", "diagnosis"} <= set(doc)
    assert RunConfig.from_dict(doc["config"]) == finished.config
    assert len(doc["layers"]) == len(finished.layers)
    assert list(doc["layers"][0]) == list(LAYER_COLUMNS)
    assert doc["layers"][0]["update_ratio"] is None  # empty at step 0
    assert [s["step"] for s in doc["steps"]] == finished.steps[:, 0].astype(int).tolist()
    assert doc["diagnosis"]["verdict"]


def strict_json(data: bytes):
    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(data, parse_constant=no_constants)


@pytest.mark.parametrize("which", ["finished", "diverged", "synthetic"])
def test_json_round_trip_is_exact(which, finished, diverged):
    result = {"finished": finished, "diverged": diverged, "synthetic": synthetic()}[which]
    data = to_json(result)
    strict_json(data)  # valid JSON: inf and nan are strings, not bare Infinity/NaN
    back = result_from_json(data)
    assert layers_equal(back, result)
    assert back.status == result.status and back.divergence == result.divergence
    # and the equality check can tell tables apart
    other = copy.deepcopy(back)
    other.stats[0, 0, 0] = np.nextafter(other.stats[0, 0, 0], np.inf)
    assert not layers_equal(other, result)


def test_write_table_by_extension(tmp_path, finished):
    for ext in ("csv", "parquet", "json"):
        p = write_table(finished, tmp_path / f"run.{ext.upper() if ext == 'csv' else ext}")
        assert p.read_bytes() == export_bytes(finished, ext)
    with pytest.raises(Exception) as info:
        write_table(finished, tmp_path / "run.xlsx")
    assert ".csv" in str(info.value) and not (tmp_path / "run.xlsx").exists()


# -- hostile files ----------------------------------------------------------------------------------------

def mutate(doc: dict, fn) -> bytes:
    d = copy.deepcopy(doc)
    fn(d)
    return json.dumps(d).encode()


def hostile_files(doc: dict, good: bytes) -> dict[str, bytes]:
    L = doc["config"]["depth"]

    def set_(path, value):
        def fn(d):
            target = d
            for k in path[:-1]:
                target = target[k]
            target[path[-1]] = value
        return fn

    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "not json": b"step,layer\n0,1\n",
        "invalid utf-8": b'{"format": "\xff\xfe"}',
        "lone surrogate": '{"format": "\ud800"}',
        "a list": b"[1, 2, 3]",
        "deeply nested": b"[" * 200_000 + b"]" * 200_000,
        "wrong format": mutate(doc, set_(["format"], "something-else")),
        "no format": mutate(doc, lambda d: d.pop("format")),
        "version 2": mutate(doc, set_(["version"], 2)),
        "version true": mutate(doc, set_(["version"], True)),
        "config not an object": mutate(doc, set_(["config"], [1, 2])),
        "config missing": mutate(doc, lambda d: d.pop("config")),
        "config unknown key": mutate(doc, set_(["config", "colour"], "red")),
        "config bad depth": mutate(doc, set_(["config", "depth"], 0)),
        "config bad activation": mutate(doc, set_(["config", "activation"], "swish!")),
        "config depth as text": mutate(doc, set_(["config", "depth"], "3")),
        "config huge sigma_w": mutate(doc, set_(["config", "sigma_w"], 10**400)),
        "config huge width": mutate(doc, set_(["config", "width"], 10**400)),
        "config batch over dataset": mutate(doc, set_(["config", "batch_size"], 10**6)),
        "layers not a list": mutate(doc, set_(["layers"], {"a": 1})),
        "steps missing": mutate(doc, lambda d: d.pop("steps")),
        "too few rows": mutate(doc, lambda d: d["layers"].pop()),
        "too many rows": mutate(doc, lambda d: d["layers"].append(d["layers"][-1])),
        "rows for another depth": mutate(doc, set_(["config", "depth"], L + 1)),
        "rows out of order": mutate(doc, lambda d: d["layers"].reverse()),
        "row not an object": mutate(doc, set_(["layers", 0], [0, 1])),
        "layer as true": mutate(doc, set_(["layers", 0, "layer"], True)),
        "step as true": mutate(doc, lambda d: (d["steps"][1].__setitem__("step", True),
                                               [r.__setitem__("step", True) for r in d["layers"][L:2 * L]])),
        "step as text": mutate(doc, set_(["steps", 0, "step"], "0")),
        "negative step": mutate(doc, lambda d: (d["steps"][0].__setitem__("step", -1),
                                                [r.__setitem__("step", -1) for r in d["layers"][:L]])),
        "huge step": mutate(doc, lambda d: (d["steps"][0].__setitem__("step", 10**400),
                                            [r.__setitem__("step", 10**400) for r in d["layers"][:L]])),
        "missing column": mutate(doc, lambda d: d["layers"][0].pop("preact_var")),
        "value as text": mutate(doc, set_(["layers", 0, "preact_var"], "1.5")),
        "value as bool": mutate(doc, set_(["layers", 0, "act_var"], False)),
        "value as object": mutate(doc, set_(["layers", 0, "act_var"], {"x": 1})),
        "huge integer value": mutate(doc, set_(["layers", 0, "act_var"], 10**400)),
        "loss as list": mutate(doc, set_(["steps", 0, "loss"], [1])),
        "divergence malformed": mutate(doc, set_(["divergence"], {"step": "x"})),
        "divergence where": mutate(doc, set_(["divergence"], {"step": 0, "layer": 1, "where": "sideways"})),
        "divergence step true": mutate(doc, set_(["divergence"], {"step": True, "layer": None, "where": "loss"})),
        "huge file": b" " * (MAX_IMPORT_BYTES + 1) + good,
    }


def test_hostile_files_are_refused_with_one_sentence(finished):
    good = to_json(finished)
    doc = json.loads(good)
    result_from_json(good)  # the unmodified file opens
    for name, data in hostile_files(doc, good).items():
        with pytest.raises(ImportErrorForPeople) as info:
            result_from_json(data)
        msg = str(info.value)
        assert msg and "\n" not in msg and len(msg) < 300, (name, msg)
        assert msg[0].isupper() and msg.rstrip(")").endswith((".", "?")), (name, msg)
        assert "Traceback" not in msg


def test_refusals_say_what_is_wrong(finished):
    good = to_json(finished)
    doc = json.loads(good)
    files = hostile_files(doc, good)
    expect = {"huge file": "MB", "too few rows": "rows", "config bad depth": "depth", "value as text": "preact_var",
              "wrong format": "format", "version 2": "version", "missing column": "preact_var",
              "config huge sigma_w": "sigma_w"}
    for name, word in expect.items():
        with pytest.raises(ImportErrorForPeople, match=word):
            result_from_json(files[name])

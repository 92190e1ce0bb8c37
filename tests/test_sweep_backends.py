"""The same small sweep on the local pool and on a local Ray instance: identical tables, each cell equal
to `python -m core run` with the same settings; a crashing worker costs only its cell."""
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.schema import RunConfig
from core.sweep import SweepSpec, run_sweep
from core.sweep.backends import LocalPool

ROOT = Path(__file__).resolve().parents[1]
BASE = RunConfig(depth=3, width=16, steps=6, batch_size=16, record_every=3, eval_every=3, init="normal",
                 activation="tanh", sigma_b=0.2)
SPEC = SweepSpec.parse(["depth=2,3", "sigma_w=0.8,1.6"], BASE)


@pytest.fixture(scope="module")
def pool_table():
    result = run_sweep(SPEC, workers=2)
    assert result.computed == 4
    return result.table


def _cli_row(cfg: RunConfig, tmp_path) -> dict:
    """The oracle: `python -m core run` in a subprocess, its CSV read by hand."""
    out = tmp_path / "run.csv"
    subprocess.run([sys.executable, "-m", "core", "run", *cfg.to_cli_args(), "--out", str(out), "--quiet"],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    df = pd.read_csv(out)
    last = df[df["step"] == df["step"].max()]
    first = df[df["step"] == 0].sort_values("layer")
    g = first["grad_preact_var"].to_numpy()
    return {"final_loss": float(last["loss"].iloc[0]), "final_train_accuracy": float(last["train_accuracy"].iloc[0]),
            "final_test_accuracy": float(last["test_accuracy"].iloc[0]), "grad_ratio_init": math.log10(g[0] / g[-1])}


def test_pool_cell_equals_the_cli_run(pool_table, tmp_path):
    assert (pool_table["status"] == "ok").all()
    cell = SPEC.cells()[3]  # depth 3, σ_w 1.6
    expected = _cli_row(cell, tmp_path)
    row = pool_table.iloc[3]
    assert (row["depth"], row["sigma_w"]) == (3, 1.6)
    for k, v in expected.items():
        assert row[k] == pytest.approx(v, rel=1e-12, abs=0), k  # CSV holds repr(float): exact


def test_pool_cells_equal_in_process_runs(pool_table):
    from core.run.engine import train

    for i, cfg in enumerate(SPEC.cells()):
        steps = train(cfg).step_rows
        assert pool_table["final_loss"][i] == steps["loss"].iloc[-1]
        assert pool_table["final_test_accuracy"][i] == steps["test_accuracy"].iloc[-1]


def test_crashing_worker_fails_only_its_cells(pool_table):
    from _sweep_cells import crash_at_depth_3

    result = run_sweep(SPEC, backend_obj=LocalPool(2, cell_fn=crash_at_depth_3))
    table = result.table
    crashed = table["depth"] == 3
    assert (table.loc[crashed, "status"] == "failed: the worker process was killed by SIGKILL").all()
    assert (table.loc[~crashed, "status"] == "ok").all()
    cols = ["final_loss", "final_train_accuracy", "final_test_accuracy", "grad_ratio_init", "depth_scale_c"]
    pd.testing.assert_frame_equal(table.loc[~crashed, cols], pool_table.loc[~crashed, cols])
    assert table.loc[crashed, "final_loss"].isna().all()
    assert table.loc[crashed, "depth_scale_c"].notna().all()  # the theory still says what to expect there


def test_cli_sweep_writes_the_table(tmp_path, monkeypatch, capsys):
    from core.io.cli import main

    monkeypatch.setenv("GFL_STORE_DIR", str(tmp_path / "store"))
    out = tmp_path / "sweep.csv"
    spec = SweepSpec.parse(["sigma_w=0.8,1.6"], BASE.replace(depth=2))
    args = ["sweep", "--axis", "sigma_w=0.8,1.6", *spec.base.to_cli_args(), "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    assert "2 trained" in capsys.readouterr().err
    df = pd.read_csv(out)
    assert list(df["sigma_w"]) == [0.8, 1.6] and list(df["status"]) == ["ok", "ok"]
    assert main(args) == 0
    assert "0 trained, 2 from the store" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out), df)


@pytest.mark.parametrize("args, words", [
    ([], "Give at least one --axis"),
    (["--axis", "depth=0,2"], "Invalid axis depth: Invalid depth 0"),
    (["--axis", "depth=2", "--backend", "spark"], "Invalid backend 'spark'"),
    (["--axis", "depth=2", "--workers", "0"], "Invalid workers"),
    (["--axis", "depth=2", "--out", "x.txt"], "must end in .csv, .parquet or .json"),
    (["--axis", "depth=2", "--no-store", "--backend", "ray", "--ray-address", "127.0.0.1:1"], "Cannot reach the Ray cluster"),
])
def test_cli_sweep_errors_are_one_sentence(args, words, tmp_path, capsys):
    from core.io.cli import main

    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "x.csv")]
    assert main(["sweep", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


@pytest.fixture(scope="module")
def ray_backend():
    from core.sweep.backends import RayBackend

    backend = RayBackend(workers=2)
    yield backend
    backend.close()


@pytest.mark.slow  # a local Ray instance takes 10-30 s to start
def test_ray_table_equals_the_pool_table(ray_backend, pool_table):
    table = run_sweep(SPEC, backend_obj=ray_backend).table
    pd.testing.assert_frame_equal(table.drop(columns="seconds"), pool_table.drop(columns="seconds"))


@pytest.mark.slow
def test_ray_task_failure_is_the_cells_failure(ray_backend):
    from _sweep_cells import crash_at_depth_3

    ray_backend.cell_fn = crash_at_depth_3
    try:
        table = run_sweep(SPEC, backend_obj=ray_backend).table
    finally:
        from core.sweep.cells import run_cell
        ray_backend.cell_fn = run_cell
    crashed = table["depth"] == 3
    assert table.loc[crashed, "status"].str.startswith("failed: the Ray task failed").all()
    assert (table.loc[~crashed, "status"] == "ok").all()


def test_a_second_sweep_reuses_the_idle_workers():
    from _sweep_cells import pid_cell

    pool = LocalPool(2, cell_fn=pid_cell)
    tasks = [(i, cfg) for i, cfg in enumerate(SPEC.cells())]
    first = {row["pid"] for _, row, _ in pool.run(tasks)}
    second = {row["pid"] for _, row, _ in pool.run(tasks)}
    assert os.getpid() not in first and len(first) <= 2
    assert second <= first  # the same processes: no second start-up

"""Sweeps: one or two settings as axes, a cell per combination, each cell a real training run.

* `spec`: `Axis`, `SweepSpec` (axes `FIELD=a,b,c` / `FIELD=start:stop:count` over any RunConfig field);
* `cells`: one cell = `core.run.engine.train(cfg)` + its metrics and theory columns; what "trained" means;
* `backends`: a local process pool (default) or Ray;
* `store`: finished cells by their settings' key (SQLite, WAL);
* `table`: the tidy table and its CSV / Parquet / JSON;
* `runner`: `iter_sweep`, `run_sweep`, `SweepRun` (background, for the dashboard);
* `scenarios`: the shipped reference sweeps.
"""
from core.sweep.spec import Axis, SweepSpec, sweepable_fields
from core.sweep.cells import METRIC_COLUMNS, TRAINED_FRACTION, run_cell, trained_threshold
from core.sweep.store import ResultStore, cell_key, store_dir
from core.sweep.table import export_bytes, sweep_table, write_table
from core.sweep.runner import CellDone, SweepResult, SweepRun, SweepSnapshot, iter_sweep, run_sweep

__all__ = ["Axis", "SweepSpec", "sweepable_fields", "METRIC_COLUMNS", "TRAINED_FRACTION", "run_cell",
           "trained_threshold", "ResultStore", "cell_key", "store_dir", "export_bytes", "sweep_table", "write_table",
           "CellDone", "SweepResult", "SweepRun", "SweepSnapshot", "iter_sweep", "run_sweep"]

"""The saved-run forms at the server's limits: size and time of the Parquet
download (the compact saved run) against the JSON export and gzip'd JSON.

The table is synthetic, 100 layers × 5,001 records (the largest run the
default limits permit), with values no compressor can shrink (random
mantissas over 9 decades): a real run's table compresses further.

    python bench/bench_saved_run.py          # ~70 s (2 GB of memory), most of it the JSON
"""
from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io.export import read_saved_run, to_json, to_parquet  # noqa: E402
from core.limits import SAVED_RUN_MAX_MB, Limits  # noqa: E402
from core.measure.records import COL, STAT_COLUMNS  # noqa: E402
from core.run.record import RunRecord  # noqa: E402
from core.schema import RunConfig, RunStatus  # noqa: E402
from _machine import cpu_model  # noqa: E402 (bench/ is the script's directory)




def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main() -> None:
    limits = Limits()
    cfg = RunConfig(depth=limits.max_depth, width=64, batch_size=64, steps=limits.max_steps, record_every=1)
    n, L = cfg.steps + 1, cfg.depth
    rng = np.random.default_rng(0)
    stats = np.exp(rng.normal(0.0, 3.0, size=(n, L, len(STAT_COLUMNS))))
    stats[0, :, COL["update_ratio"]] = np.nan
    steps = np.column_stack([np.arange(n), rng.random(n) * 3, rng.random(n),
                             np.where(np.arange(n) % 10 == 0, rng.random(n), np.nan)])
    rec = RunRecord(cfg, stats, steps, RunStatus.FINISHED)
    rows = n * L
    print(f"{cpu_model()}; {L} layers × {n:,} records = {rows:,} rows; limit {SAVED_RUN_MAX_MB} MB")
    pq, t_pq = timed(lambda: to_parquet(rec))
    _, t_read = timed(lambda: read_saved_run(pq))
    print(f"  parquet (zstd, byte-split floats): {len(pq) / 1e6:6.1f} MB, {len(pq) / rows:5.1f} B/row, "
          f"write {t_pq:.1f} s, open {t_read:.1f} s")
    js, t_js = timed(lambda: to_json(rec))
    print(f"  json:                              {len(js) / 1e6:6.1f} MB, {len(js) / rows:5.1f} B/row, write {t_js:.1f} s")
    gz, t_gz = timed(lambda: gzip.compress(js, 6))
    print(f"  gzip'd json (level 6):             {len(gz) / 1e6:6.1f} MB, {len(gz) / rows:5.1f} B/row, "
          f"write {t_js + t_gz:.1f} s")
    print(f"  parquet / json = {len(pq) / len(js):.3f}; parquet / gzip'd json = {len(pq) / len(gz):.3f}")


if __name__ == "__main__":
    main()

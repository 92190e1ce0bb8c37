"""Resource limits, set in one place.

Two tiers:

* `HARD`: what any RunConfig may ask for at all (the CLI on your own machine).
* `Limits.from_env()`: what the hosted dashboard accepts from one request, so
  that one visitor cannot take the server down. Every field can be overridden
  by an environment variable `GFL_<FIELD>` (e.g. `GFL_MAX_DEPTH=200`) for a
  private deployment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    max_depth: int = 100            # deep enough for every scenario (50 layers) with headroom
    max_width: int = 1024
    max_batch_size: int = 1024
    max_steps: int = 5000           # ~1-3 minutes of training at the defaults
    max_seq_len: int = 200          # time steps of a recurrent net's sequence: lags far beyond a vanilla RNN's memory
    max_work: int = 400_000_000     # parameters × batch × positions (Architecture.work): bounds one step's cost (~50 ms here); the depth-50 scenarios need ~110M
    max_run_seconds: float = 300.0  # wall-clock cap of one run
    max_concurrent_runs: int = 2    # training threads on the whole server (2 cores)
    max_sweep_work: int = 1_000_000_000_000  # Σ over a sweep's cells of work × (steps + 1): ~4× the "6 ξ_c" scenario

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Limits":
        """Defaults, overridden by `GFL_MAX_...` environment variables."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            key = "GFL_" + f.name.upper()
            if key in env and env[key].strip():
                cast = float if f.type in (float, "float") else int
                try:
                    values[f.name] = cast(float(env[key]))
                except (ValueError, OverflowError):  # int(float("inf")) overflows
                    raise ValueError(f"Environment variable {key}={env[key]!r} must be a number.") from None
                if not values[f.name] > 0:  # also refuses nan
                    raise ValueError(f"Environment variable {key}={env[key]!r} must be positive.")
        return cls(**values)

    # The settings a server bounds, once: (field, this Limits' attribute, its variable, what it counts).
    # `bound`, `clamp` (where a value enters: a link, a widget, a file's settings) and `violation` (where a
    # run starts) all read this table.
    BOUNDED = (
        ("depth", "max_depth", "GFL_MAX_DEPTH", "hidden layers"),
        ("width", "max_width", "GFL_MAX_WIDTH", "units in a layer"),
        ("batch_size", "max_batch_size", "GFL_MAX_BATCH_SIZE", "examples in a batch"),
        ("steps", "max_steps", "GFL_MAX_STEPS", "training steps"),
        ("seq_len", "max_seq_len", "GFL_MAX_SEQ_LEN", "time steps"),  # only where the arch reads it
    )

    def bound(self, field: str) -> int | None:
        """The largest value this server accepts for `field` (a widget's `max_value`), or None if unbounded."""
        for name, attr, _, _ in self.BOUNDED:
            if name == field:
                return getattr(self, attr)
        return None

    @staticmethod
    def over(field: str, value, limit) -> str:
        """The one sentence for a value over a limit: 'depth 500 is over this server's limit of 100'."""
        return f"{field} {value:,} is over this server's limit of {limit:,}"

    def clamp(self, cfg):
        """(cfg within this server's limits, one note per value brought down), where a value enters.

        Each bounded setting over its limit is set to the limit, with a note naming the field, the value and
        the limit ("depth 500 is over this server's limit of 100; using 100."). Per-layer widths are cut to
        `max_depth` layers and each to `max_width`. The work limit (parameters × batch) is not clamped: no
        single setting is at fault; `violation` refuses such a run when it starts, with a sentence."""
        notes: list[str] = []
        changes: dict = {}
        if cfg.widths is not None:
            widths = tuple(cfg.widths)
            if len(widths) > self.max_depth:
                notes.append(f"{self.over('depth', len(widths), self.max_depth)} (widths gives {len(widths):,} "
                             f"layers); using the first {self.max_depth:,}.")
                widths = widths[: self.max_depth]
            if max(widths) > self.max_width:
                notes.append(f"{self.over('width', max(widths), self.max_width)} (in widths); using "
                             f"{self.max_width:,} for every layer wider than that.")
                widths = tuple(min(w, self.max_width) for w in widths)
            if widths != tuple(cfg.widths):
                changes["widths"] = widths
        for field, attr, _, _ in self.BOUNDED:
            if (cfg.widths is not None and field in ("depth", "width")) or not cfg.applies(field):
                continue
            value, limit = getattr(cfg, field), getattr(self, attr)
            if value > limit:
                notes.append(f"{self.over(field, value, limit)}; using {limit:,}.")
                changes[field] = limit
        if not changes:
            return cfg, notes
        if "widths" not in changes and cfg.widths is None:
            changes["widths"] = None
        return cfg.replace(**changes), notes

    def violation(self, cfg) -> tuple[str, str] | None:
        """(field, one sentence) for the first limit `cfg` exceeds, else None."""
        widths = cfg.hidden_widths
        values = {"depth": len(widths), "width": max(widths)}
        for field, attr, env, what in self.BOUNDED:
            value, limit = values.get(field, getattr(cfg, field, None)), getattr(self, attr)
            if value is not None and cfg.applies(field) and value > limit:
                return field, (f"{self.over(field, value, limit)} {what} "
                               f"(set {env} to raise it on a private deployment).")
        arch = cfg.architecture
        work = arch.work(cfg)
        if work > self.max_work:
            times = arch.position_count(cfg)
            per = f" × {times:,} {arch.positions_means}" if arch.positions is not None else ""
            return "width", (f"This network has {cfg.parameter_count():,} parameters × batch {cfg.batch_size}{per} = "
                             f"{work:,}, over this server's limit of {self.max_work:,} "
                             f"(make it narrower, shallower or use a smaller batch; GFL_MAX_WORK raises it).")
        return None

    def sweep_violation(self, cells) -> tuple[str, str] | None:
        """(field, one sentence) for the first limit a sweep of RunConfigs `cells` exceeds, else None:
        every cell must be a run this server accepts, and their total work must fit GFL_MAX_SWEEP_WORK."""
        for cfg in cells:
            problem = self.violation(cfg)
            if problem is not None:
                return problem[0], f"A cell of this sweep is over a limit: {problem[1]}"
        work = sum(cfg.architecture.work(cfg) * (cfg.steps + 1) for cfg in cells)
        if work > self.max_sweep_work:
            return "sweep", (f"This sweep's {len(cells):,} cells need {work:.3g} units of work (parameters × batch × "
                             f"positions × steps, summed), over this server's limit of {self.max_sweep_work:.3g} "
                             f"(use fewer cells, fewer steps or smaller networks; GFL_MAX_SWEEP_WORK raises it).")
        return None


# Absolute bounds of RunConfig: sanity, not server protection.
HARD = Limits(max_depth=1000, max_width=16384, max_batch_size=65536, max_steps=10_000_000, max_seq_len=100_000,
              max_work=10**13, max_run_seconds=float("inf"), max_concurrent_runs=1000,
              max_sweep_work=10**18)

# The largest saved run the app opens again, in megabytes of 10^6 bytes (the browser's uploader counts them so;
# `.streamlit/config.toml`'s maxUploadSize says the same number, and a test holds the two together). The Parquet
# download of the largest run the default limits permit (100 layers × 5,001 records) is ~43 MB even when every
# value is incompressible (core/io/export.py), so it fits with a third to spare.
SAVED_RUN_MAX_MB = 64
SAVED_RUN_MAX_BYTES = SAVED_RUN_MAX_MB * 10**6

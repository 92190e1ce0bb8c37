"""`python -m core run ...`, `python -m core theory ...` and `python -m core sweep ...` (see CLI.md).

Options come from `config.FIELDS`, so the CLI, the URL and the dashboard
accept the same names and values. A bad value exits with status 2 and one
sentence on standard error, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Sequence

from core.schema import FIELDS, ConfigError, RunConfig
from core.registry import ACTIVATIONS, aliases_text


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one sentence and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        message = message[0].upper() + message[1:]
        raise UsageError(f"{message.rstrip('.')} (see `{self.prog} --help`).")


def _choices(name: str) -> str:
    reg = FIELDS[name].registry if name in FIELDS else None
    if not reg:
        return ""
    aliases = aliases_text(reg)
    return f" One of: {', '.join(reg)}." + (f" Also read: {aliases}." if aliases else "")


def _add_config_options(p: argparse.ArgumentParser) -> None:
    defaults = RunConfig()
    for spec in FIELDS.values():
        flag = "--" + spec.name.replace("_", "-")
        default = getattr(defaults, spec.name)
        help_text = spec.help + _choices(spec.name)
        if spec.kind is bool:
            p.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{help_text} (default: {'on' if default else 'off'})")
        else:
            shown = "" if default is None else f" (default: {spec.format(default)})"
            p.add_argument(flag, dest=spec.name, metavar=spec.name.upper(), default=None, help=help_text + shown)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Gradient Flow Lab: train deep networks and record every layer's "
                                                       "forward and backward statistics, or print mean-field theory.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="Train one configuration and write the per-layer statistics table.",
                         description="Train one configuration and write the per-layer statistics table (.csv, .parquet or .json).")
    _add_config_options(run)
    run.add_argument("--out", required=True, help="Output file: .csv, .parquet or .json.")
    run.add_argument("--threads", default="1", help="Torch intra-op threads (default 1: steadiest step times).")
    run.add_argument("--quiet", action="store_true", help="No progress bar.")

    th = sub.add_parser("theory", help="Mean-field predictions for a wide network at initialization.",
                        description="Mean-field predictions for a wide network with W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²).")
    th.add_argument("--activation", required=True, help="Activation." + _choices("activation"))
    th.add_argument("--sigma-w", dest="sigma_w", required=True, help="σ_w (weights have variance σ_w²/fan_in).")
    th.add_argument("--sigma-b", dest="sigma_b", required=True, help="σ_b (biases have variance σ_b²).")
    th.add_argument("--depth", default="10", help="Layers for the per-layer profile (default 10).")
    th.add_argument("--q0", default="1.0", help="Second moment of each input feature (default 1).")
    th.add_argument("--json", action="store_true", help="Print one JSON object.")
    th.add_argument("--out", help="Write the per-layer predicted q and gradient profile (.csv or .json).")

    sw = sub.add_parser("sweep", help="Train a grid of configurations (one or two settings as axes) and write one row per cell.",
                        description="Train every cell of one or two axes (FIELD=a,b,c or FIELD=start:stop:count; any run "
                                    "option's URL name) and write a row of metrics per cell (.csv, .parquet or .json). "
                                    "Finished cells are kept in the results store ($GFL_STORE_DIR) and not trained again.")
    sw.add_argument("--axis", action="append", default=[], metavar="FIELD=SPEC",
                    help="An axis, e.g. depth=10:60:6 or init=xavier_normal,kaiming_normal (give one or two).")
    _add_config_options(sw)
    sw.add_argument("--backend", default="local", help="local (a process pool, the default) or ray.")
    sw.add_argument("--workers", default=None, help="Worker processes (default: one per core).")
    sw.add_argument("--ray-address", dest="ray_address", default=None,
                    help="An existing Ray cluster (default: $RAY_ADDRESS; without either, a local Ray instance).")
    sw.add_argument("--store", default=None, help="Directory of the results store (default: $GFL_STORE_DIR or "
                                                  "~/.cache/gradient-flow-lab).")
    sw.add_argument("--no-store", dest="no_store", action="store_true", help="Train every cell; read and save nothing.")
    sw.add_argument("--out", required=True, help="Output file: .csv, .parquet or .json.")
    sw.add_argument("--quiet", action="store_true", help="No progress line.")
    return parser


def _config_from_args(ns: argparse.Namespace) -> RunConfig:
    values = {}
    for spec in FIELDS.values():
        v = getattr(ns, spec.name, None)
        if v is None:
            continue
        values[spec.name] = spec.format(v) if spec.kind is bool else v
    return RunConfig.from_strings(values)


class _Progress:
    """A one-line progress bar on standard error (only on a terminal or when asked)."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = max(total, 1)
        self.stream = stream
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, step: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and step < total:
            return
        self.last = now
        frac = min(step / self.total, 1.0)
        bar = "█" * int(frac * 30) + "·" * (30 - int(frac * 30))
        rate = step / max(now - self.t0, 1e-9)
        eta = (total - step) / rate if rate > 0 else math.inf
        self.stream.write(f"\r{bar} {step}/{total} steps  {rate:5.1f} steps/s  ETA {eta:4.0f} s ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _int_opt(name: str, text: str, lo: int, hi: int) -> int:
    if not text.strip().lstrip("+").isdigit() or not lo <= int(text) <= hi:
        raise ConfigError(name, f"Invalid {name} {text!r}: must be a whole number from {lo} to {hi}.")
    return int(text)


def _float_opt(name: str, text: str, lo: float, hi: float) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ConfigError(name, f"Invalid {name} {text!r}: must be a finite number from {lo:g} to {hi:g}.")
    return v


def _check_memory(cfg: RunConfig) -> None:
    """Refuse, in one sentence, a network that cannot fit in this machine's memory."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    need = step_bytes(cfg)
    if need > 0.8 * total:
        raise ConfigError("width", f"This network needs about {need / 2**30:.0f} GiB of memory to train and this machine has "
                                   f"{total / 2**30:.0f} GiB; use fewer or narrower layers, or a smaller batch.")


def _check_out_writable(out: str) -> None:
    """Refuse, before any training, an --out that cannot be written (a missing
    folder, a directory, no permission): otherwise it fails after the whole run."""
    import os
    from pathlib import Path

    path = Path(out)
    if path.is_dir():
        raise ConfigError("out", f"Cannot write --out {out!r}: it is a directory; name a file in it.")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError("out", f"Cannot write --out {out!r}: the folder {str(folder)!r} does not exist.")
    existed = path.exists()
    try:
        with open(path, "ab"):  # appends nothing: an existing file keeps its contents until the run is written
            pass
    except OSError as e:
        raise ConfigError("out", f"Cannot write --out {out!r}: {e.strerror or e}.") from None
    if not existed:
        try:
            os.remove(path)
        except OSError:
            pass


# Rough costs of a run on one core, for the pre-flight estimate: matrix products at about
# 40 GFLOP/s (measured on the bench machine), ~60 µs of per-layer overhead per step, and per
# recorded (step, layer): 12 float64 statistics kept, about 600 bytes in the written table.
FLOPS = 4e10
LAYER_STEP_SECONDS = 6e-5
ROW_BYTES = 12 * 8 + 600


def estimate_run(cfg: RunConfig) -> tuple[float, float]:
    """(seconds, bytes of memory) a run of `cfg` takes here, roughly (if it does not diverge first)."""
    from core.measure.strategy import expected_records

    layers = cfg.rows
    # forward, and backward's two products, at every position a weight is applied (Architecture.work)
    step = 6 * cfg.architecture.work(cfg) / FLOPS + LAYER_STEP_SECONDS * layers
    records = expected_records(cfg.steps, cfg.record_every)
    seconds = (cfg.steps + 1) * step
    return seconds, step_bytes(cfg) + records * layers * ROW_BYTES  # training, and the recorded table


def step_bytes(cfg: RunConfig) -> int:
    """Memory a training step of `cfg` holds: float32 weights, gradients and up to two optimizer buffers
    (16 bytes a parameter), and up to four float32 tensors per unit kept for the backward pass at every
    position a weight is applied (`Architecture.position_count`: a CNN's pixels, an RNN's time steps)."""
    positions = cfg.architecture.position_count(cfg)
    return 16 * cfg.parameter_count() + 16 * cfg.batch_size * sum(cfg.hidden_widths) * positions


def _warn_if_far_beyond_the_server(cfg: RunConfig, stream=sys.stderr) -> None:
    """Before a run the dashboard would refuse, say what it will cost (the CLI runs it anyway)."""
    from core.limits import Limits

    problem = Limits().violation(cfg)
    if problem is None:
        return
    seconds, memory = estimate_run(cfg)
    took = f"{seconds / 60:.0f} min" if seconds >= 90 else (f"{seconds:.0f} s" if seconds >= 1 else "a second")
    print(f"note: beyond the dashboard's limits ({problem[1].split(' (')[0]}); expect about {took} and "
          f"{memory / 2**30:.1f} GiB of memory here, unless it diverges first.", file=stream)
    stream.flush()


def cmd_run(ns: argparse.Namespace) -> int:
    from core.run.engine import train
    from core.io.export import write_table

    cfg = _config_from_args(ns)
    threads = _int_opt("threads", ns.threads, 1, 256)
    _check_memory(cfg)
    out = ns.out
    if not out.lower().endswith((".csv", ".parquet", ".json")):
        raise ConfigError("out", f"Invalid out {out!r}: the file must end in .csv, .parquet or .json.")
    _check_out_writable(out)
    _warn_if_far_beyond_the_server(cfg)
    show = not ns.quiet and cfg.steps >= 50 and sys.stderr.isatty()
    bar = _Progress(cfg.steps) if show else None
    result = train(cfg, progress=bar, threads=threads)
    if bar:
        bar.close()
    try:
        write_table(result, out)
    except OSError as e:
        raise ConfigError("out", f"Cannot write {out!r}: {e.strerror or e}.") from None
    note = f"; {result.message}" if result.divergence else ""
    print(f"{result.status}: {len(result.steps)} records × {cfg.rows} {cfg.architecture.row_label}s in {result.elapsed:.1f} s "
          f"→ {out}{note}", file=sys.stderr)
    return 0


def cmd_theory(ns: argparse.Namespace) -> int:
    from core import theory

    ns.activation = FIELDS["activation"].resolve(ns.activation)  # 'swish' is SiLU here as in a run
    if ns.activation not in ACTIVATIONS:
        raise ConfigError("activation", f"Invalid activation {ns.activation!r}: must be one of {', '.join(ACTIVATIONS)}.")
    sw = _float_opt("sigma_w", ns.sigma_w, 0.0, 100.0)
    sb = _float_opt("sigma_b", ns.sigma_b, 0.0, 100.0)
    depth = _int_opt("depth", ns.depth, 1, 10000)
    q0 = _float_opt("q0", ns.q0, 0.0, 1e6)
    out = ns.out
    if out and not out.lower().endswith((".csv", ".json")):
        raise ConfigError("out", f"Invalid out {out!r}: the file must end in .csv or .json.")
    summary = theory.summary(ns.activation, sw, sb, depth=depth, q0=q0)
    if out:
        table = theory.profile_table(ns.activation, sw, sb, depth, q0=q0)
        try:
            if out.lower().endswith(".csv"):
                table.to_csv(out, index=False, na_rep="nan")
            else:
                with open(out, "w") as f:
                    json.dump({"summary": summary, "layers": json.loads(table.to_json(orient="records"))}, f)
        except OSError as e:
            raise ConfigError("out", f"Cannot write {out!r}: {e.strerror or e}.") from None
    if ns.json:
        print(json.dumps(summary))
    else:
        for k, v in summary.items():
            print(f"{k:>20}: {v}")
    return 0


def cmd_sweep(ns: argparse.Namespace) -> int:
    from core.sweep import ResultStore, SweepSpec, run_sweep, write_table
    from core.sweep.backends import BACKENDS, BackendError, default_workers
    from core.sweep.table import check_out_path

    if not ns.axis:
        raise ConfigError("axis", "Give at least one --axis FIELD=SPEC, e.g. --axis depth=10:60:6.")
    spec = SweepSpec.parse(ns.axis, _config_from_args(ns))
    check_out_path(ns.out)
    if ns.backend not in BACKENDS:
        raise ConfigError("backend", f"Invalid backend {ns.backend!r}: must be one of {', '.join(BACKENDS)}.")
    workers = _int_opt("workers", ns.workers, 1, 1024) if ns.workers is not None else default_workers()
    for cfg in spec.cells():
        _check_memory(cfg)
    try:
        store = None if ns.no_store else ResultStore(ns.store)
    except OSError as e:
        raise ConfigError("store", str(e)) from None
    show = not ns.quiet and sys.stderr.isatty()
    t0 = time.monotonic()

    def progress(cell, done, total):
        if show:
            rate = done / max(time.monotonic() - t0, 1e-9)
            sys.stderr.write(f"\r{done}/{total} cells  ETA {(total - done) / rate:4.0f} s ")
            sys.stderr.flush()

    try:
        result = run_sweep(spec, backend=ns.backend, workers=workers, ray_address=ns.ray_address, store=store,
                           progress=progress)
    except BackendError as e:
        raise ConfigError("backend", str(e)) from None
    if show:
        sys.stderr.write("\n")
    table = result.table
    try:
        write_table(table, ns.out, spec)
    except OSError as e:
        raise ConfigError("out", f"Cannot write {ns.out!r}: {e.strerror or e}.") from None
    failed = int(table["status"].str.startswith("failed").sum())
    print(f"{spec.size} cell{'s' if spec.size != 1 else ''} ({result.computed} trained, {spec.size - result.computed} from the store"
          f"{f', {failed} failed' if failed else ''}) in {result.elapsed:.1f} s → {ns.out}", file=sys.stderr)
    return 0


def _one_line(text: str) -> str:
    """The sentence with control characters an argument brought in (a carriage return...) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
        if ns.command is None:
            parser.print_help(sys.stderr)
            return 2
        return {"run": cmd_run, "theory": cmd_theory, "sweep": cmd_sweep}[ns.command](ns)
    except (UsageError, ConfigError) as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; use fewer or narrower layers, or a smaller batch.", file=sys.stderr)
        return 2

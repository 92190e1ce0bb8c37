"""The Sweep page: axes from widgets, everything else from Explore's sidebar controls,
a background `SweepRun` on the server's run queue, and the charts filling in.

The page's URL carries the base settings under their usual names and each
axis as `axis=FIELD=SPEC` (the CLI's `--axis`), plus `metric=`: a sweep is a
link. Opening one reads every finished cell from the results store at once;
Run computes only the cells the store does not have.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from core.figures.style import PLOTLY_CONFIG
from core.schema import FIELDS, ConfigError, RunConfig, RunStatus
from core.sweep import ResultStore, SweepRun, SweepSnapshot, SweepSpec, cell_key, sweepable_fields, trained_threshold
from core.sweep.backends import BackendError, ServerEngine, default_workers
from core.sweep.cells import TRAINED_FRACTION
from core.sweep.scenarios import SWEEP_SCENARIOS
from core.sweep.store import clean_row
from core.sweep.table import export_bytes

from .markdown import escape_markdown
from .session import HEARTBEAT_SECONDS, run_slots, server_limits
from .share import app_url, config_from_query, explore_url, show_notes
from .state import SlotKeys

KEY = "sweep"
KEYS = SlotKeys(KEY)  # this page's session keys (ui.state); the sidebar's widgets use the same slot
PAGE = "Sweep"
AXIS_PARAM, METRIC_PARAM = "axis", "metric"
NONE = "(none)"
REFRESH_SECONDS = 1.0
MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "json": "application/json"}


# -- the URL ----------------------------------------------------------------------------------------

def sweep_query(spec: SweepSpec, metric: str) -> list[tuple[str, str]]:
    """The sweep as query parameters: the base settings, then `axis=FIELD=a,b,c` per axis, then the metric."""
    pairs = list(spec.base.to_query().items())
    pairs += [(AXIS_PARAM, t) for t in spec.axis_texts()]
    return pairs + [(METRIC_PARAM, metric)]


def sweep_url(spec: SweepSpec, metric: str, base: str | None = None) -> str:
    return f"{(app_url() if base is None else base).rstrip('/')}/{PAGE}?{urlencode(sweep_query(spec, metric))}"


def sweep_from_query(params: dict[str, Any] | None = None) -> tuple[RunConfig, list[str], str | None, list[str]]:
    """(base settings, axis texts, metric, notes) from the URL; lenient like every page's link."""
    if params is None:
        qp = st.query_params
        params = {k: qp.get_all(k) for k in qp}
    axes = params.get(AXIS_PARAM, [])
    axes = [axes] if isinstance(axes, str) else list(axes)
    metric = params.get(METRIC_PARAM)
    metric = metric[-1] if isinstance(metric, list) and metric else metric
    rest = {k: (v[-1] if isinstance(v, list) and len(v) == 1 else v) for k, v in params.items()
            if k not in (AXIS_PARAM, METRIC_PARAM)}
    base, notes = config_from_query(rest)
    return base, [str(a) for a in axes], metric, notes


# -- the store and the run --------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def sweep_store() -> ResultStore:
    """The server's results store ($GFL_STORE_DIR), opened once."""
    return ResultStore()


def current_sweep() -> SweepRun | None:
    return st.session_state.get(KEYS.run)


def start_sweep(spec: SweepSpec) -> str | None:
    """Start `spec` in the background (stopping this session's previous sweep); the reason if it may not run."""
    limits = server_limits()
    problem = limits.sweep_violation(spec.cells())
    if problem is not None:
        return f"Not started: {problem[1]}"
    try:
        engine = ServerEngine.from_env()
    except BackendError as e:
        return f"Not started: {e}"
    stop_sweep()
    run = SweepRun(spec, workers=sweep_workers(), store=sweep_store(), slots=run_slots(),
                   heartbeat_timeout=HEARTBEAT_SECONDS, backend=engine.backend, ray_address=engine.address)
    st.session_state[KEYS.run] = run.start()
    return None


def sweep_workers() -> int:
    """Cells at once: one per core, within the server's limit of concurrent runs."""
    return min(default_workers(), server_limits().max_concurrent_runs)


def engine_caption() -> None:
    """Where Run sends the cells (the server's setting, never the link's)."""
    try:
        where = ServerEngine.from_env().describe(sweep_workers())
    except BackendError as e:
        st.error(str(e))
        return
    st.caption(f"Cells run on {where}; the server's operator chooses it (GFL_SWEEP_BACKEND, GFL_RAY_ADDRESS).")


def stop_sweep() -> None:
    run = current_sweep()
    if run is not None and run.alive:
        run.stop()


def stored_snapshot(spec: SweepSpec) -> SweepSnapshot:
    """What the store already has of `spec` (instant: one query)."""
    cfgs = spec.cells()
    found = sweep_store().get_many(cfgs)
    rows, profiles = {}, {}
    for i, cfg in enumerate(cfgs):
        hit = found.get(cell_key(cfg))
        if hit is not None:
            rows[i], profiles[i] = clean_row(hit[0]), hit[1]
    done = len(rows) == spec.size
    # READY: nothing runs; the store has `done` of the cells
    return SweepSnapshot(spec, RunStatus.FINISHED if done else RunStatus.READY, rows, profiles, 0, 0.0,
                         0.0 if done else None, 0)


def snapshot(spec: SweepSpec) -> SweepSnapshot:
    """This session's sweep of `spec` if there is one, else what the store has."""
    run = current_sweep()
    if run is not None and run.spec == spec:
        return run.snapshot()
    return stored_snapshot(spec)


# -- widgets ----------------------------------------------------------------------------------------

def _axis_defaults(axis_texts: list[str]) -> list[tuple[str, str]]:
    out = []
    for text in axis_texts[:2]:
        name, _, values = str(text).partition("=")
        out.append((name.strip(), values.strip()))
    return out


def axis_controls(axis_texts: list[str], base: RunConfig, container=None) -> tuple[SweepSpec | None, list[str]]:
    """Two axis pickers (a setting and its values); the SweepSpec they describe, or None and why not."""
    box = container or st
    fields = sweepable_fields()
    defaults = _axis_defaults(axis_texts) or [("depth", "4:60:8"), ("sigma_w", "0.8:2.4:8")]
    source = KEYS.control("axes_source")
    if st.session_state.get(source) != axis_texts:  # a new link: the widgets follow it
        st.session_state[source] = list(axis_texts)
        for i in range(2):
            name, values = defaults[i] if i < len(defaults) else (NONE, "")
            st.session_state[KEYS.control(f"axis{i}_field")] = name if name in fields else (fields[0] if i == 0 else NONE)
            st.session_state[KEYS.control(f"axis{i}_values")] = values
    texts, problems = [], []
    cols = box.columns(2)
    for i, col in enumerate(cols):
        with col:
            options = fields if i == 0 else [NONE, *fields]
            field = st.selectbox(f"Axis {i + 1}" + (" (rows)" if i == 0 else " (columns; optional)"), options,
                                 key=KEYS.control(f"axis{i}_field"),
                                 help="Any setting; the sidebar gives every other one. "
                                      + ("" if i == 0 else "Leave at (none) for lines over one axis."))
            if field == NONE:
                continue
            values = st.text_input(f"Values of {field}", key=KEYS.control(f"axis{i}_values"),
                                   placeholder="a,b,c or start:stop:count",
                                   help=f"{FIELDS[field].help} A list `a,b,c`, or for numbers a range "
                                        "`start:stop:count` (count values, both ends included).")
            texts.append(f"{field}={values}")
    try:
        return SweepSpec.parse(texts, base), texts
    except ConfigError as e:
        problems.append(e.message)
        for p in problems:
            box.error(escape_markdown(p))
        return None, texts


def metric_control(default: str | None) -> str:
    from core.figures.sweep import METRICS

    options = list(METRICS)
    key = KEYS.control("metric")
    if key not in st.session_state or (default in options and st.session_state.get(KEYS.control("metric_source")) != default):
        st.session_state[key] = default if default in options else options[0]
        st.session_state[KEYS.control("metric_source")] = default
    return st.selectbox("Colour by", options, key=key, format_func=lambda m: METRICS[m][0],
                        help=f"'Trained' means a final accuracy at least {TRAINED_FRACTION:.0%} of the way from chance "
                             "to perfect (held-out accuracy when it is measured).")


def scenario_links() -> None:
    """The shipped sweeps, one link each."""
    for s in SWEEP_SCENARIOS.values():
        c1, c2 = st.columns([1, 3], vertical_alignment="center")
        c1.link_button(s.title, sweep_url(s.spec, s.metric), width="stretch")
        c2.caption(s.story)


# -- drawing ----------------------------------------------------------------------------------------

def _theory_overlays(spec: SweepSpec) -> dict[str, Any]:
    return _theory_overlays_cached(spec)


@st.cache_data(show_spinner=False, max_entries=32)
def _theory_overlays_cached(spec: SweepSpec) -> dict[str, Any]:
    import numpy as np

    from core.figures.sweep import critical_curve, xi_c_curve

    fields = spec.fields
    out: dict[str, Any] = {}
    if len(fields) == 2 and fields[0] == "depth" and fields[1] == "sigma_w":
        sw = spec.axes[1].values
        out["xi_c"] = xi_c_curve(spec.base, np.linspace(min(sw), max(sw), 160))
    if len(fields) == 2 and set(fields) == {"sigma_w", "sigma_b"}:
        sb = spec.axes[fields.index("sigma_b")].values
        out["critical"] = critical_curve(spec.base, np.linspace(min(sb), max(sb), 80))
    return out


@st.cache_data(show_spinner=False, max_entries=256)
def _predicted(cfg: RunConfig):
    from core.theory import predicted_profile

    try:
        return predicted_profile(cfg, 1.0)
    except Exception:  # noqa: BLE001 - no theory line is better than no chart
        return None


def cell_urls(spec: SweepSpec) -> list[str]:
    base = app_url()
    return [explore_url(cfg, base) for cfg in spec.cells()]


def draw(snap: SweepSnapshot, metric: str) -> None:
    """Progress, the chart, the variance-by-initializer view, the cells with their links, the downloads."""
    from core.figures.sweep import fig_sweep_heatmap, fig_sweep_lines, fig_variance_by_init

    spec = snap.spec
    table = snap.table
    _progress(snap)
    urls = cell_urls(spec)
    if len(spec.axes) == 2:
        over = _theory_overlays(spec)
        st.plotly_chart(fig_sweep_heatmap(table, spec.fields, metric, urls=urls, **over), key=KEYS.fig("heatmap"), config=PLOTLY_CONFIG)
        if spec.fields == ["depth", "sigma_w"]:
            st.caption("White lines: ξ_c (dotted) and 6 ξ_c (solid), the mean-field depth scale of correlations for "
                       "these settings; Schoenholz et al. (2017) found networks deeper than about 6 ξ_c do not train.")
        elif "critical" in over and over["critical"] is None:
            st.caption("The order-to-chaos line is drawn for the normal/uniform initializers, where σ_w and σ_b are "
                       "the weights' and biases' own scales.")
    else:
        threshold = trained_threshold(spec.base)
        st.plotly_chart(fig_sweep_lines(table, spec.fields[0], metric, threshold=threshold, urls=urls), key=KEYS.fig("lines"), config=PLOTLY_CONFIG)
    if "init" in spec.fields and snap.profiles:
        cfgs = spec.cells()
        curves = []
        for i, cfg in enumerate(cfgs):
            if i in snap.profiles and snap.profiles[i]:
                other = ", ".join(f"{f}={FIELDS[f].format(getattr(cfg, f))}" for f in spec.fields if f != "init")
                curves.append((cfg.init + (f" ({other})" if other else ""), snap.profiles[i], _predicted(cfg)))
        st.plotly_chart(fig_variance_by_init(curves[:12]), key=KEYS.fig("variance_by_init"), config=PLOTLY_CONFIG)
    _cells_table(table, urls, spec)
    _downloads(snap)


def _progress(snap: SweepSnapshot) -> None:
    total = snap.spec.size
    if snap.status is RunStatus.QUEUED:
        st.info(f"Waiting for a free place on the server: number {snap.queue_position} in the queue. "
                "The sweep starts on its own.", icon=":material/hourglass_top:")
        return
    running = snap.status is RunStatus.RUNNING
    left = f" · about {_duration(snap.seconds_left)} left" if running and snap.seconds_left is not None else ""
    words = {RunStatus.RUNNING: f"Running on {snap.workers} worker{'s' if snap.workers != 1 else ''}",
             RunStatus.FINISHED: "Finished", RunStatus.STOPPED: "Stopped", RunStatus.FAILED: "Failed",
             RunStatus.READY: "From the store"}.get(snap.status, str(snap.status))
    st.progress(snap.done / max(total, 1), text=f"**{words}** · {snap.done} / {total} cells{left}"
                                               + (f" · {snap.elapsed:.0f} s" if running else ""))
    if snap.status is RunStatus.READY:
        st.caption(f"{snap.done} of {total} cells are already in the results store; **Run sweep** trains the "
                   f"other {total - snap.done}.")
    elif snap.status is RunStatus.FINISHED and snap.computed == 0:
        st.caption("Every cell came from the results store: nothing was trained again.")
    if snap.status in (RunStatus.STOPPED, RunStatus.FAILED) and snap.message:
        (st.warning if snap.status is RunStatus.STOPPED else st.error)(snap.message)
    failed = [r["status"] for r in snap.rows.values() if str(r.get("status", "")).startswith("failed")]
    if failed:
        st.warning(f"{len(failed)} cell{'s' if len(failed) != 1 else ''} failed (marked ✕): {failed[0]}")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _cells_table(table: pd.DataFrame, urls: list[str], spec: SweepSpec) -> None:
    with st.expander(f"All {len(table)} cells, each a link to its run in Explore", icon=":material/table:"):
        shown = table.copy()
        for name in spec.fields:  # the axes as people read them: registry labels ("He/Kaiming normal"), not names
            if name in shown.columns and FIELDS[name].registry is not None:
                shown[name] = shown[name].map(FIELDS[name].show)
        shown.insert(0, "open", urls)
        st.dataframe(shown, hide_index=True, key=KEYS.control("cells"),
                     column_config={"open": st.column_config.LinkColumn("run", display_text="open in Explore",
                                                                         help="The cell's settings in Explore: the same run, same seed.")})


def _downloads(snap: SweepSnapshot) -> None:
    if snap.running:
        st.caption("The downloads appear when the sweep ends.")
        return
    table, spec = snap.table, snap.spec
    stem = "sweep_" + "_x_".join(spec.fields) + f"_{spec.base.activation}_seed{spec.base.seed}"
    cols = st.columns(3)
    for col, fmt in zip(cols, ("csv", "parquet", "json")):
        col.download_button(fmt.upper(), icon=":material/download:", data=lambda fmt=fmt: export_bytes(table, fmt, spec),
                            file_name=f"{stem}.{fmt}", mime=MIME[fmt], key=KEYS.control(f"dl_{fmt}"), on_click="ignore",
                            width="stretch", help="One row per cell: its axes' values, then its metrics (the CLI's table).")


def live_sweep(spec: SweepSpec, metric: str) -> None:
    """Draw `spec`, redrawing every second while this session's sweep of it runs."""
    run = current_sweep()
    live = run is not None and run.spec == spec and run.alive

    def body():
        snap = snapshot(spec)
        draw(snap, metric)
        if live and not snap.running:
            st.rerun()  # once: the page redraws without polling, with the downloads

    st.fragment(run_every=REFRESH_SECONDS if live else None)(body)()


def run_buttons(spec: SweepSpec | None) -> None:
    run = current_sweep()
    live = run is not None and run.alive
    c1, c2, _ = st.columns([1.2, 1, 3])
    if c1.button("Run sweep", icon=":material/play_arrow:", type="primary", key=KEYS.button("run"),
                 disabled=spec is None, width="stretch",
                 help="Train every cell the results store does not have yet, on this server's workers."):
        problem = start_sweep(spec)
        if problem:
            st.error(problem)
        else:
            st.rerun()
    if c2.button("Stop", icon=":material/stop:", key=KEYS.button("stop"), disabled=not live, width="stretch",
                 help="Stop training; finished cells stay in the store and the next Run goes on from there."):
        stop_sweep()
        st.rerun()
    engine_caption()


def share_sweep(spec: SweepSpec, metric: str) -> None:
    st.markdown("**Link to this sweep**")
    st.code(sweep_url(spec, metric), language=None, wrap_lines=True)
    st.caption("The link holds the axes and every other setting: it reopens from the results store at once.")


__all__ = ["sweep_query", "sweep_url", "sweep_from_query", "sweep_store", "axis_controls", "metric_control",
           "scenario_links", "run_buttons", "live_sweep", "share_sweep", "start_sweep", "stop_sweep", "draw"]

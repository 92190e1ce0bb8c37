"""Compare: two settings, A and B, trained side by side on the same seed and data.

The page reads A and B from the URL (A under the plain names, B under `b_`
names, `ui.share.compare_from_query`), draws both sets of controls in sidebar
tabs, runs both as background `core.run.background.Run`s (`ui.session`, keys
`compare_a` / `compare_b`) and shows them in one fragment that polls while
either trains: progress, verdicts, the overlaid variance-by-layer chart, the
layer × step heatmaps with shared colour limits, and loss / accuracy.

B follows A: when a setting of A changes, B takes the new value too unless
the user had already given B a value of its own for that setting. So B starts
as a copy of A and stays "A, except for what I changed".
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core import figures as F
from core.schema import FIELDS, RunConfig
from core.io.diagnosis import diagnose
from core.run.record import RunRecord as Snapshot
from core.schema import RunStatus

from .live import chart, memo, show_verdict
from .saved import SavedRun, opened, saved_run_box, saved_status, showing_saved
from .session import current_run, is_live, server_limits, start_run, status_line, stop_run
from .sidebar import config_controls, set_widgets, widget_values

KEYS = {"A": "compare_a", "B": "compare_b"}
REFRESH_SECONDS = 0.5   # two runs, six charts: ~2 redraws a second is plenty
PAUSED_SECONDS = 5.0    # keeps a paused run's heartbeat alive
_PREV_A = "compare__prev_a"
RUN_COLOURS = {"A": "#1f77b4", "B": "#d62728"}


# -- settings ---------------------------------------------------------------------------------------

def follow_a(prev_a: RunConfig | None, new_a: RunConfig, b_prefix: str = KEYS["B"]) -> list[str]:
    """Carry A's changes over to B's widgets where B still had A's old value.

    Call after A's controls are drawn and before B's. Returns the widget names
    it changed."""
    if prev_a is None or prev_a == new_a:
        return []
    old, new = widget_values(prev_a), widget_values(new_a)
    changed = []
    for name, value in new.items():
        key = f"{b_prefix}_{name}"
        if old[name] != value and key in st.session_state and st.session_state[key] == old[name]:
            st.session_state[key] = value
            changed.append(name)
    return changed


def _copy_a_to_b(a: RunConfig) -> None:
    set_widgets(a, KEYS["B"])


def controls(a_defaults: RunConfig, b_defaults: RunConfig) -> tuple[RunConfig, RunConfig]:
    """Both sets of controls, in two sidebar tabs; returns (A, B)."""
    st.sidebar.header("Settings")
    tab_a, tab_b = st.sidebar.tabs(["Setting A", "Setting B"])
    with tab_a:
        st.caption("The baseline. Every change here is copied to B, unless B already differs in that setting.")
    a = config_controls(a_defaults, KEYS["A"], container=tab_a)
    follow_a(st.session_state.get(_PREV_A), a)
    st.session_state[_PREV_A] = a
    with tab_b:
        st.caption("A copy of A: change what you want to compare.")
        st.button("Make B a copy of A again", icon=":material/content_copy:", key="compare__copy",
                  on_click=_copy_a_to_b, args=(a,),
                  width="stretch", help="Set every control of B to A's current value.")
    b = config_controls(b_defaults, KEYS["B"], container=tab_b)
    return a, b


def _show(spec, value) -> str:
    if value is None:
        return {"widths": "depth × width", "input_dim": "first width"}.get(spec.name, "default")
    return spec.format(value)


def settings_diff(a: RunConfig, b: RunConfig) -> pd.DataFrame:
    """One row per setting that differs: `setting`, `A`, `B` (as the URL writes them)."""
    rows = []
    for name, spec in FIELDS.items():
        va, vb = getattr(a, name), getattr(b, name)
        if va == vb:
            continue
        if name in ("depth", "width") and (a.widths is not None or b.widths is not None) and \
                a.hidden_widths == b.hidden_widths:
            continue
        rows.append({"setting": name, "A": _show(spec, va), "B": _show(spec, vb)})
    return pd.DataFrame(rows, columns=["setting", "A", "B"])


def describe(cfg: RunConfig) -> str:
    """'20 × 128 tanh, xavier_normal, BatchNorm, digits, 300 steps of sgd (lr 0.05), seed 0'."""
    shape = f"{cfg.depth} × {cfg.width}" if cfg.widths is None else "widths " + ",".join(map(str, cfg.widths))
    init = cfg.init + (f" (σ_w = {cfg.sigma_w:g})" if cfg.sigma_w != 1.0 else "")
    return (f"{shape} {cfg.activation}, {init}{', BatchNorm' if cfg.batchnorm else ''}, {cfg.dataset}, "
            f"{cfg.steps} steps of {cfg.optimizer} (lr {cfg.lr:g}), seed {cfg.seed}")


# -- running ----------------------------------------------------------------------------------------

def runs() -> dict[str, object]:
    return {label: current_run(key) for label, key in KEYS.items()}


def start_pair(a: RunConfig, b: RunConfig) -> list[str]:
    """Start A and B afresh (stopping their previous runs); returns problems (nothing started then)."""
    limits = server_limits()
    problems = []
    for label, cfg in (("A", a), ("B", b)):
        v = limits.violation(cfg)
        if v is not None:
            problems.append(f"Setting {label}: {v[1]}")
    if problems:
        return problems
    for label, cfg in (("A", a), ("B", b)):
        start_run(cfg, KEYS[label])
    return []


def stop_pair() -> None:
    for key in KEYS.values():
        stop_run(key)


def run_buttons(a: RunConfig, b: RunConfig) -> None:
    """Run A and B / Stop, and what is wrong if they cannot start."""
    live = any(is_live(r) for r in runs().values())
    c1, c2, _ = st.columns([1.4, 1, 3], vertical_alignment="center")
    go_ = c1.button("Run A and B", icon=":material/play_arrow:", key="compare__run", type="primary", width="stretch",
                    help="Train both networks from scratch, side by side (each with its own seed setting).")
    stop = c2.button("Stop", icon=":material/stop:", key="compare__stop", disabled=not live, width="stretch",
                     help="End both runs; what they recorded stays on screen.")
    if go_:
        problems = start_pair(a, b)
        if problems:
            for p in problems:
                st.error(f"Not started. {p}")
        else:
            st.rerun()
    elif stop:
        stop_pair()
        st.rerun()
    current = runs()
    stale = [label for label, cfg in (("A", a), ("B", b))
             if current[label] is not None and current[label].cfg != cfg and showing_saved(KEYS[label]) is None]
    if stale:
        st.info(f"The sidebar settings of {' and '.join(stale)} differ from the run{'s' if len(stale) > 1 else ''} "
                "on screen. The charts show the runs with their own settings; press **Run A and B** to apply the "
                "new ones.", icon=":material/info:")


# -- saved runs -------------------------------------------------------------------------------------

def _after_use_a(cfg: RunConfig) -> None:
    # A's widgets now hold the file's settings: that is not a change for B to follow.
    st.session_state[_PREV_A] = cfg


def saved_boxes(a: RunConfig, b: RunConfig) -> None:
    """An uploader for A and one for B (ui.saved): each opened run replaces
    that side's live run on screen, and **Use these settings** puts it into
    that side's controls (B does not follow A's file)."""
    cols = st.columns(2, gap="medium")
    for col, label, cfg in zip(cols, ("A", "B"), (a, b)):
        with col:
            saved_run_box(KEYS[label], settings_prefix=KEYS[label], sidebar_cfg=cfg,
                          label=f"Saved run for {label} (.parquet or .json)", after_use=_after_use_a if label == "A" else None)


def any_opened() -> bool:
    return any(opened(key) is not None for key in KEYS.values())


def _sources() -> dict[str, object]:
    """For A and B: what is on screen, the SavedRun opened from a file or else the live Run (or None)."""
    return {label: showing_saved(key) or current_run(key) for label, key in KEYS.items()}


def shown() -> dict[str, tuple[Snapshot | None, SavedRun | None]]:
    """For A and B: the snapshot on screen and, when it comes from a file, the SavedRun."""
    return {label: (None if src is None else src.record if isinstance(src, SavedRun) else src.snapshot(),
                    src if isinstance(src, SavedRun) else None)
            for label, src in _sources().items()}


# -- figures (pure) ---------------------------------------------------------------------------------

def shared_zrange(snaps: Mapping[str, Snapshot | None], column: str) -> tuple[float, float]:
    """One set of colour limits for every heatmap of `column`: what the first
    run with records would use (forward: ±6 decades around 1; backward: around
    its last layer's gradient variance at step 0)."""
    for snap in snaps.values():
        if snap is not None and len(snap.steps):
            return F.heatmap_zrange(snap.stats, column)
    return -F.HEATMAP_SPAN, F.HEATMAP_SPAN


def fig_loss_compare(series: Mapping[str, tuple[np.ndarray, np.ndarray]], height: int = 340) -> go.Figure:
    """Training loss (left) and held-out accuracy (right) of several runs,
    `series` mapping a label to (steps of records, the runs' step table)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=("Training loss (batch)",
                                                                                 "Held-out accuracy"))
    all_loss = []
    for label, steps in series.items():
        steps = np.asarray(steps)
        if len(steps) == 0:
            continue
        idx = F.sample_indices(len(steps))
        colour = RUN_COLOURS.get(label, "#444444")
        x = steps[idx, 0].astype(np.int32)
        loss = steps[idx, 1].astype(np.float64)
        all_loss.append(loss[np.isfinite(loss) & (loss > 0)])
        fig.add_trace(go.Scatter(x=x, y=np.where(np.isfinite(loss), loss, np.nan).astype(np.float32), mode="lines",
                                 name=f"{label}: loss", line=dict(color=colour, width=2),
                                 hovertemplate=f"{label}, step %{{x}}: loss %{{y:.4g}}<extra></extra>"), row=1, col=1)
        tested = np.flatnonzero(np.isfinite(steps[:, 3]))
        if tested.size:
            t = tested[F.sample_indices(tested.size)]
            fig.add_trace(go.Scatter(x=steps[t, 0].astype(np.int32), y=steps[t, 3].astype(np.float32),
                                     mode="lines+markers", name=f"{label}: held-out accuracy",
                                     line=dict(color=colour, width=2, dash="dot"), marker=dict(size=4),
                                     hovertemplate=f"{label}, step %{{x}}: %{{y:.1%}}<extra></extra>"), row=1, col=2)
    finite = np.concatenate(all_loss) if all_loss else np.zeros(0)
    if finite.size and finite.max() / finite.min() > 10:
        fig.update_yaxes(**F.log_ticks(finite), row=1, col=1)  # the same log axis as Explore's loss chart
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(template=F.TEMPLATE, height=height, title=dict(text="Loss and accuracy: A vs B", x=0.0,
                                                                     font=dict(size=16)),
                      margin=dict(l=70, r=20, t=80, b=130), hovermode="closest", uirevision="keep",
                      legend=dict(orientation="h", yanchor="top", y=-0.42, xanchor="left", x=0.0))
    return fig


# -- the live view ----------------------------------------------------------------------------------

def show_pair(snaps: Mapping[str, Snapshot | None], saved: Mapping[str, SavedRun | None] | None = None,
              sources: Mapping[str, object] | None = None) -> None:
    """Progress, verdicts and charts of A and B (whatever has been recorded
    so far); a side in `saved` is a run opened from a file. With `sources`
    (the Run or SavedRun behind each snapshot), the verdicts and figures are
    rebuilt only when a snapshot's version changes (`ui.live.memo`)."""
    saved = saved or {}
    if sources is None:
        cached = lambda name, build: build()  # noqa: E731
    else:
        token = tuple((sources.get(label), s.version if s is not None else -1) for label, s in snaps.items())
        cached = lambda name, build: memo("compare__memo", token, name, build)  # noqa: E731
    cols = st.columns(2, gap="medium")
    for col, (label, snap) in zip(cols, snaps.items()):
        with col:
            st.markdown(f"**{label}** · {describe(snap.config) if snap else 'not run yet'}")
            if saved.get(label) is not None:
                saved_status(saved[label])
            elif snap is not None:
                status_line(snap)
            if snap is not None:
                show_verdict(snap, cached(f"diagnosis_{label}", lambda: diagnose(snap)))
    recorded = {label: s for label, s in snaps.items() if s is not None and len(s.steps)}
    if not recorded:
        st.caption("Building the networks and taking the first records…")
        return
    chart(cached("variance", lambda: F.fig_variance_compare({label: (s.stats, s.steps)
                                                              for label, s in recorded.items()})),
          "compare__fig_variance")
    st.caption("Colour = quantity (blue: activations Var(h), red: gradients Var(∂L/∂h)); solid line = A, dashed = B. "
               "Each run at its latest recorded step.")
    for column, what in (("preact_var", "Forward: log10 Var(h)"), ("grad_preact_var", "Backward: log10 Var(∂L/∂h)")):
        zr = cached(f"zrange_{column}", lambda: shared_zrange(recorded, column))
        cols = st.columns(2, gap="medium")
        for col, label in zip(cols, ("A", "B")):
            with col:
                s = recorded.get(label)
                if s is None:
                    st.caption(f"{label}: nothing recorded yet.")
                    continue
                chart(cached(f"heat_{column}_{label}", lambda: F.fig_layer_step_heatmap(
                    s.stats, s.steps, column, zrange=zr, title=f"{label} · {what}", height=340)),
                      f"compare__fig_heat_{column}_{label}")
    st.caption("Both heatmaps of a row share their colour limits, so the same colour is the same variance in A and B: "
               "white is variance 1 (forward) or A's last-layer gradient variance at step 0 (backward); blue is "
               "smaller, red larger. Grey: 0, inf or nan.")
    chart(cached("loss", lambda: fig_loss_compare({label: s.steps for label, s in recorded.items()})),
          "compare__fig_loss")


def _live_shown() -> dict[str, object]:
    """The live runs that are on screen (a side showing a saved run is left out)."""
    return {label: r for label, r in runs().items() if r is not None and showing_saved(KEYS[label]) is None}


def _draw(polling: bool) -> None:
    sources = _sources()
    pair = shown()
    if polling and not any(is_live(r) for r in _live_shown().values()):
        st.rerun()  # both ended: redraw the page once, without polling
    try:
        show_pair({label: snap for label, (snap, _) in pair.items()},
                  {label: saved for label, (_, saved) in pair.items()}, sources)
    except Exception as e:  # a chart must never become a traceback
        st.error(f"The charts could not be drawn ({type(e).__name__}: {e}). The runs themselves are unaffected.")


def live_pair() -> bool:
    """Draw A and B (live runs or saved ones), refreshed live while a shown
    run trains; False when there is nothing to show."""
    if all(src is None for src in _sources().values()):  # (no snapshots taken just to ask)
        return False
    statuses = {r.status for r in _live_shown().values()}
    if any(s.moving for s in statuses):
        every = REFRESH_SECONDS
    elif RunStatus.PAUSED in statuses:
        every = PAUSED_SECONDS
    else:
        every = None
    st.fragment(run_every=every)(_draw)(every == REFRESH_SECONDS)
    return True


__all__ = ["KEYS", "follow_a", "controls", "settings_diff", "describe", "start_pair", "stop_pair", "run_buttons",
           "shared_zrange", "fig_loss_compare", "show_pair", "live_pair", "saved_boxes", "any_opened", "shown"]

"""The live view of a run: status, the health verdict and the charts, redrawn
by a fragment that polls `Run.snapshot()` while the run is going.

The fragment polls every `REFRESH_SECONDS` while the run is queued or
running, slowly while it is paused (only to keep the run's heartbeat: a run
nobody polls is stopped), and not at all once it has ended; when it sees the
run end it reruns the whole page once, which stops the polling and shows the
downloads.
"""
from __future__ import annotations

from functools import lru_cache

import streamlit as st

from core import figures as F
from core.config import RunConfig
from core.diagnosis import SEVERITY, diagnose
from core.engine import Snapshot

from .session import current_run, status_line

REFRESH_SECONDS = 0.4   # ≥ 2 refreshes a second while training
DETAIL_SECONDS = 2.0    # distributions, saturation, update ratio: they change slowly
PAUSED_SECONDS = 5.0    # keeps a paused run's heartbeat (30 s) alive
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


@lru_cache(maxsize=64)
def theory_profile(cfg: RunConfig):
    """core.theory.predicted_profile for `cfg` (inputs standardized: second moment 1), or None if it fails."""
    from core.theory import predicted_profile
    try:
        return predicted_profile(cfg, 1.0)
    except Exception:
        return None


def show_verdict(result) -> None:
    """The health verdict in words (a Snapshot or RunResult): the headline in a
    box coloured by severity, then every finding with what to try."""
    d = diagnose(result)
    if d.verdict == "pending":
        return
    if d.verdict == "healthy":
        st.success(f"**{d.headline}**", icon=":material/check_circle:")
        return
    worst = max(SEVERITY.get(f.kind, 1) for f in d.findings)
    box = st.error if worst >= 2 else st.warning
    lines = []
    for f in d.findings:
        lines.append(f"- {f.sentence}  \n  **Try:** {f.advice}")
    box("**Health check**\n\n" + "\n".join(lines), icon=":material/warning:" if worst < 2 else ":material/emergency_home:")


def _chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, theme=None, config=PLOTLY_CONFIG)


def show_theory_preview(cfg: RunConfig, key: str) -> None:
    """Before any run: what the theory predicts for `cfg` (also loads the chart library early)."""
    theory = theory_profile(cfg)
    try:
        _chart(F.fig_theory_profile(theory), f"{key}__fig_theory_preview")
    except Exception as e:
        _failed(e)
        return
    if theory is not None and theory.attrs.get("note"):
        st.caption(theory.attrs["note"])


def show_main_charts(snap: Snapshot, key: str) -> None:
    """Variance by layer, the two layer × step heatmaps, loss and accuracy."""
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    theory = theory_profile(cfg)
    _chart(F.fig_variance_by_layer(stats, steps, theory=theory), f"{key}__fig_variance")
    if theory is not None and theory.attrs.get("note"):
        prefix = "" if theory.attrs.get("applies", True) else "Theory line hidden. "
        st.caption(prefix + theory.attrs["note"])
    st.caption("Dotted, faint: the same curves at step 0 (initialization). Dashed: mean-field theory's prediction "
               "at initialization, the gradient curve scaled to meet the last layer.")
    c1, c2 = st.columns(2)
    with c1:
        _chart(F.fig_layer_step_heatmap(stats, steps, "preact_var", title="Forward: log10 Var(h) by layer and step"),
               f"{key}__fig_heat_forward")
    with c2:
        _chart(F.fig_layer_step_heatmap(stats, steps, "grad_preact_var",
                                        title="Backward: log10 Var(∂L/∂h) by layer and step"),
               f"{key}__fig_heat_backward")
    st.caption("Colour limits are fixed for the whole run: white is variance 1 (forward) or the last layer's gradient "
               "variance at step 0 (backward); blue is smaller, red larger, ±6 decades. Grey cells: 0, inf or nan.")
    _chart(F.fig_loss_accuracy(steps), f"{key}__fig_loss")


def show_detail_charts(snap: Snapshot, key: str, *, histograms: bool = True) -> None:
    """Per-layer distributions (unless `histograms=False`: a saved run has
    none), saturation and dead units, update:data ratio."""
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    if histograms:
        c1, c2 = st.columns(2)
        with c1:
            _chart(F.fig_histograms(snap.hist, "act"), f"{key}__fig_hist_act")
        with c2:
            _chart(F.fig_histograms(snap.hist, "grad_preact"), f"{key}__fig_hist_grad")
        st.caption("Each ridge is one layer's histogram over the batch, scaled to its own peak, on a shared x axis: "
                   "a signal that vanishes turns into a spike at 0.")
    else:
        st.caption("Per-layer distributions are not part of a saved run (it keeps the statistics only): "
                   "**Use these settings** and **Run** to see them live.")
    c1, c2 = st.columns(2)
    with c1:
        _chart(F.fig_saturation(stats, steps, activation=cfg.activation), f"{key}__fig_saturation")
    with c2:
        _chart(F.fig_update_ratio(stats, steps), f"{key}__fig_update")


def show_charts(snap: Snapshot, key: str) -> None:
    """All six Explore charts for one snapshot (keys prefixed with `key`)."""
    show_main_charts(snap, key)
    show_detail_charts(snap, key)


def _failed(e: Exception) -> None:
    st.error(f"The charts could not be drawn ({type(e).__name__}: {e}). The run itself is unaffected; "
             "the downloads below still hold everything recorded.")


def _draw_main(key: str, polling: bool) -> None:
    run = current_run(key)
    if run is None:
        return
    snap = run.snapshot()
    if polling and snap.status in ("finished", "stopped", "diverged", "failed"):
        st.rerun()  # once: the page redraws without polling and with the downloads
    try:
        status_line(snap)
        if len(snap.steps) == 0:
            if snap.config.record_every == 0:
                st.info("Recording is off (record every 0 steps): this run trains without measuring anything, "
                        "the baseline the overhead benchmark compares against. Set **Record statistics every N "
                        "steps** under Recording to see the charts.")
            elif snap.status in ("running", "queued", "paused"):
                st.caption("Building the network and taking the first record…")
            return
        show_verdict(snap)
        show_main_charts(snap, key)
    except Exception as e:  # a chart must never turn into a traceback in the browser
        _failed(e)


def _draw_detail(key: str) -> None:
    run = current_run(key)
    if run is None:
        return
    snap = run.snapshot()
    if len(snap.steps) == 0:
        return
    try:
        show_detail_charts(snap, key)
    except Exception as e:
        _failed(e)


def live_view(key: str) -> Snapshot | None:
    """Status, verdict and charts of this page's run, refreshed live while it
    trains. Returns the snapshot taken now (None when no run was started).

    Two fragments: the status, verdict and main charts every REFRESH_SECONDS;
    the detail charts (distributions, saturation, update ratio) every
    DETAIL_SECONDS, which halves what the browser redraws per refresh.
    """
    run = current_run(key)
    if run is None:
        return None
    status = run.status
    live = status in ("queued", "running", "ready")
    every = REFRESH_SECONDS if live else (PAUSED_SECONDS if status == "paused" else None)
    st.fragment(run_every=every)(_draw_main)(key, live)
    st.fragment(run_every=DETAIL_SECONDS if live else None)(_draw_detail)(key)
    return run.snapshot()


__all__ = ["REFRESH_SECONDS", "theory_profile", "show_theory_preview", "show_verdict", "show_charts", "show_main_charts", "show_detail_charts",
           "live_view"]

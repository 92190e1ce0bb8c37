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
from typing import Any, Callable, Sequence

import streamlit as st

from core import figures as F
from core.schema import RunConfig
from core.io.diagnosis import SEVERITY, diagnose
from core.run.record import RunRecord as Snapshot
from core.schema import RunStatus

from .boundary import beside_loss
from .session import current_run, status_line
from .state import SlotKeys

REFRESH_SECONDS = 0.4   # ≥ 2 refreshes a second while training
DETAIL_SECONDS = 2.0    # distributions, saturation, update ratio: they change slowly
PAUSED_SECONDS = 5.0    # keeps a paused run's heartbeat (ui.session.HEARTBEAT_SECONDS, 20 s) alive
PLOTLY_CONFIG = F.PLOTLY_CONFIG  # one home: core.figures.style (the mode bar on hover only)


@lru_cache(maxsize=64)
def theory_profile(cfg: RunConfig):
    """The by-layer theory for `cfg`'s architecture (`core.theory.architectures.layer_profile`: for an MLP,
    core.theory.predicted_profile with inputs of second moment 1), or None if it fails."""
    from core.theory.architectures import layer_profile
    try:
        return layer_profile(cfg)
    except Exception:
        return None


def memo(slot: str, token: Sequence[tuple[object, int]], name: str, build: Callable[[], Any]) -> Any:
    """`build()`, reused in this session while `token` stays the same: pairs of
    (the run or saved run on screen, its snapshot's version). A refresh that
    brings no new record (a paused run, records every N steps, a saved run)
    redraws the figures and the verdict it already has instead of rebuilding
    them. Each `slot` keeps one token's results."""
    entry = st.session_state.get(slot)
    if entry is None or len(entry[0]) != len(token) or any(
            o1 is not o2 or v1 != v2 for (o1, v1), (o2, v2) in zip(entry[0], token)):
        entry = (tuple(token), {})
        st.session_state[slot] = entry
    built = entry[1]
    if name not in built:
        built[name] = build()
    return built[name]


def show_verdict(result, diagnosis=None, *, apply_to: str | None = None) -> None:
    """The health verdict in words (a Snapshot or RunResult): the headline in a
    box coloured by severity, then every finding with what to try. Pass
    `diagnosis` when it was already computed (`diagnose(result)`). With
    `apply_to` (a settings slot, e.g. "explore"), each suggestion is also a
    button that puts its changes into that slot's sidebar ("Switch to He")."""
    d = diagnose(result) if diagnosis is None else diagnosis
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
    if apply_to is not None:
        suggestion_buttons(d, apply_to)


MAX_SUGGESTION_BUTTONS = 3


def suggestion_buttons(diagnosis, slot: str) -> None:
    """The verdict's suggestions (nearest first, each once) as buttons; a click puts the suggestion's
    changes into the sidebar of `slot` (ui.sidebar.suggest) and redraws the page. Training starts on Run."""
    from .session import flash
    from .sidebar import suggest

    seen, offers = set(), []
    for f in diagnosis.findings:
        for sg in f.suggestions:
            mark = tuple(sorted((k, repr(v)) for k, v in sg.changes.items()))
            if mark not in seen:
                seen.add(mark)
                offers.append(sg)
    offers = offers[:MAX_SUGGESTION_BUTTONS]
    if not offers:
        return
    cols = st.columns(len(offers))
    for i, (col, sg) in enumerate(zip(cols, offers)):
        if col.button(sg.label, key=SlotKeys(slot).control(f"suggest_{i}"), icon=":material/auto_fix_high:",
                      help=f"Put this change into the sidebar: {sg.why} Then press Run.", width="stretch"):
            suggest(sg.changes, slot)
            flash(slot, "info", f"Applied to the sidebar: {sg.label}. Press **Run** to train it.")
            st.rerun(scope="app")  # the sidebar is outside this fragment


def chart(fig, key: str) -> None:
    """A Plotly figure as every page draws it (its own template, no Streamlit theme)."""
    st.plotly_chart(fig, key=key, theme=None, config=PLOTLY_CONFIG)


def _no_memo(name: str, build: Callable[[], Any]) -> Any:
    return build()


def memo_for(key: str, group: str, owner, snap: Snapshot | None) -> Callable[[str, Callable[[], Any]], Any]:
    """memo() bound to this page's `group` of charts and what is on screen (no reuse without an owner)."""
    if owner is None or snap is None:
        return _no_memo
    token = ((owner, snap.version),)
    return lambda name, build: memo(SlotKeys(key).memo(group), token, name, build)


def show_theory_preview(cfg: RunConfig, key: str) -> None:
    """Before any run: what the theory predicts for `cfg` (also loads the chart library early)."""
    if cfg.time_steps:
        from .recurrent import show_theory_preview as by_time
        return by_time(cfg, key, chart)
    theory = theory_profile(cfg)
    try:
        chart(F.fig_theory_profile(theory), SlotKeys(key).fig("theory_preview"))
    except Exception as e:
        _failed(e)
        return
    if theory is not None and theory.attrs.get("note"):
        st.caption(theory.attrs["note"])


def show_main_charts(snap: Snapshot, key: str, owner=None) -> None:
    """Variance by layer, the two layer × step heatmaps, loss and accuracy.
    With `owner` (the Run or SavedRun `snap` comes from), figures are rebuilt
    only when the snapshot's version changes (see `memo`)."""
    if snap.config.time_steps:  # rows per layer and time step (recurrent nets): the charts by time step
        from .recurrent import show_main_charts as by_time
        return by_time(snap, key, memo_for(key, "main", owner, snap), chart)
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    fig_key = SlotKeys(key).fig
    cached = memo_for(key, "main", owner, snap)
    theory = theory_profile(cfg)
    chart(cached("variance", lambda: F.fig_variance_by_layer(stats, steps, theory=theory)), fig_key("variance"))
    if theory is not None and theory.attrs.get("note"):
        prefix = "" if theory.attrs.get("applies", True) else "Theory line hidden. "
        st.caption(prefix + theory.attrs["note"])
    st.caption("Dotted, faint: the same curves at step 0 (initialization). Dashed: mean-field theory's prediction "
               "at initialization, the gradient curve scaled to meet the last layer.")
    from core.figures.architectures import arch_figures  # the architecture's own charts (residual stream, ...)

    for name, fig in cached("arch", lambda: arch_figures(cfg, stats, steps)):
        chart(fig, fig_key(name))
    c1, c2 = st.columns(2)
    with c1:
        chart(cached("heat_forward", lambda: F.fig_layer_step_heatmap(
            stats, steps, "preact_var", title="Forward: log10 Var(h) by layer and step")), fig_key("heat_forward"))
    with c2:
        chart(cached("heat_backward", lambda: F.fig_layer_step_heatmap(
            stats, steps, "grad_preact_var", title="Backward: log10 Var(∂L/∂h) by layer and step")),
              fig_key("heat_backward"))
    st.caption("Colour limits are fixed for the whole run: white is variance 1 (forward) or the last layer's gradient "
               "variance at step 0 (backward); blue is smaller, red larger, ±6 decades. Grey cells: 0, inf or nan.")
    with beside_loss(snap, key):  # 2-D data: the decision boundary beside the loss (ui/boundary.py)
        chart(cached("loss", lambda: F.fig_loss_accuracy(steps)), fig_key("loss"))


def show_detail_charts(snap: Snapshot, key: str, *, histograms: bool = True, owner=None) -> None:
    """Per-layer distributions (unless `histograms=False`: a saved run has
    none), saturation and dead units, update:data ratio. `owner` as for
    `show_main_charts`."""
    if snap.config.time_steps:
        from .recurrent import show_detail_charts as by_time
        return by_time(snap, key, memo_for(key, "detail", owner, snap), chart)
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    fig_key = SlotKeys(key).fig
    cached = memo_for(key, "detail", owner, snap)
    if histograms:
        c1, c2 = st.columns(2)
        with c1:
            chart(cached("hist_act", lambda: F.fig_histograms(snap.hist, "act")), fig_key("hist_act"))
        with c2:
            chart(cached("hist_grad", lambda: F.fig_histograms(snap.hist, "grad_preact")), fig_key("hist_grad"))
        st.caption("Each ridge is one layer's histogram over the batch, scaled to its own peak, on a shared x axis: "
                   "a signal that vanishes turns into a spike at 0.")
    else:
        st.caption("Per-layer distributions are not part of a saved run (it keeps the statistics only): "
                   "**Use these settings** and **Run** to see them live.")
    c1, c2 = st.columns(2)
    with c1:
        chart(cached("saturation", lambda: F.fig_saturation(stats, steps, activation=cfg.activation)),
              fig_key("saturation"))
    with c2:
        chart(cached("update", lambda: F.fig_update_ratio(stats, steps)), fig_key("update"))


def _failed(e: Exception) -> None:
    st.error(f"The charts could not be drawn ({type(e).__name__}: {e}). The run itself is unaffected; "
             "the downloads below still hold everything recorded.")


def _draw_main(key: str, polling: bool) -> None:
    run = current_run(key)
    if run is None:
        return
    snap = run.snapshot()
    if polling and snap.status.ended:
        st.rerun()  # once: the page redraws without polling and with the downloads
    try:
        status_line(snap)
        if len(snap.steps) == 0:
            if snap.config.record_every == 0:
                st.info("Recording is off (record every 0 steps): this run trains without measuring anything, "
                        "the baseline the overhead benchmark compares against. Set **Record statistics every N "
                        "steps** under Recording to see the charts.")
            elif snap.status.live:
                st.caption("Building the network and taking the first record…")
            return
        cached = memo_for(key, "main", run, snap)
        show_verdict(snap, cached("diagnosis", lambda: diagnose(snap)), apply_to=key)
        show_main_charts(snap, key, owner=run)
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
        show_detail_charts(snap, key, owner=run)
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
    live = status.moving
    every = REFRESH_SECONDS if live else (PAUSED_SECONDS if status is RunStatus.PAUSED else None)
    st.fragment(run_every=every)(_draw_main)(key, live)
    st.fragment(run_every=DETAIL_SECONDS if live else None)(_draw_detail)(key)
    return run.snapshot()


__all__ = ["REFRESH_SECONDS", "PLOTLY_CONFIG", "chart", "memo", "memo_for", "theory_profile", "show_theory_preview", "show_verdict",
           "show_main_charts", "show_detail_charts", "live_view"]

"""The live view of a run: status, the health verdict and the charts, redrawn
by a fragment that polls `Run.snapshot()` while the run is going.

The fragment polls every `REFRESH_SECONDS` while the run is queued or
running, slowly while it is paused (only to keep the run's heartbeat: a run
nobody polls is stopped), and not at all once it has ended; when it sees the
run end it reruns the whole page once, which stops the polling and shows the
downloads.
"""
from __future__ import annotations

import uuid
import weakref
from functools import lru_cache
from typing import Any, Callable, Sequence

import streamlit as st

from core import figures as F
from core.figures import live as LF
from core.schema import RunConfig
from core.io.diagnosis import SEVERITY, diagnose
from core.run.record import RunRecord as Snapshot
from core.schema import RunStatus

from .boundary import beside_loss
from .session import current_run, pressed, status_line
from .livechart import live_chart, preload, refresh, stable_columns
from .state import SlotKeys

REFRESH_SECONDS = 0.2   # ≥ 4 refreshes a second while training: the live charts get patches only
PLAY_SECONDS = 0.3      # play-back of a finished run: one frame per poll
PLAY_FRAMES = 60        # play-back shows at most this many frames (a long run skips records)
DETAIL_SECONDS = 2.0    # distributions, update ratio: they change slowly (a run takes its histograms this often)
SLOW_SECONDS = 1.0      # the heatmaps, loss and saturation are patched at most once a second while a run moves:
                        # each draw holds the browser's main thread 30-200 ms, which the by-layer chart needs more
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


_tokens: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()


def owner_token(owner) -> str:
    """A short id of the run (or saved run) on screen, part of each live chart's base: a new run is
    drawn afresh, never patched onto the last one's figure."""
    if owner is None:
        return uuid.uuid4().hex[:8]
    try:
        return _tokens.setdefault(owner, uuid.uuid4().hex[:8])
    except TypeError:
        return f"{id(owner):x}"


def show_theory_preview(cfg: RunConfig, key: str) -> None:
    """Before any run: what the theory predicts for `cfg` (and Plotly.js loaded for the live charts)."""
    preload(SlotKeys(key).fig("preload"))
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


# -- the step scrubber -----------------------------------------------------------------------------

def _play_key(key: str) -> str:
    return SlotKeys(key).control("playing")


def _step_key(key: str) -> str:
    return SlotKeys(key).control("scrub_step")


def is_playing(key: str) -> bool:
    return bool(st.session_state.get(_play_key(key)))


def _toggle_play(key: str, steps: list[int]) -> None:
    playing = not is_playing(key)
    if playing and st.session_state.get(_step_key(key)) == steps[-1]:
        st.session_state[_step_key(key)] = steps[0]  # Play at the end starts again from step 0
    st.session_state[_play_key(key)] = playing


def step_scrubber(steps: Sequence[int], key: str, *, label: str = "Step shown") -> int:
    """A slider over the recorded `steps` (step 0 included) with a Play button that steps through them
    (while `is_playing(key)`, each call moves one frame on); returns the step to show. The by-layer
    charts are drawn at that step."""
    steps = [int(s) for s in steps]
    sk, pk = _step_key(key), _play_key(key)
    if st.session_state.get(sk) not in steps:
        st.session_state[sk] = steps[-1]
        st.session_state[pk] = False
    if is_playing(key):
        i = steps.index(st.session_state[sk])
        nxt = min(len(steps) - 1, i + max(1, len(steps) // PLAY_FRAMES))
        st.session_state[sk] = steps[nxt]
        if nxt == len(steps) - 1:
            st.session_state[pk] = False
    c1, c2 = st.columns([6, 1], vertical_alignment="bottom")
    with c1:
        step = st.select_slider(label, options=steps, key=sk,
                                help="Every by-layer chart is drawn at this step; the heatmaps and the loss show "
                                     "the whole run.")
    with c2:
        st.button("Pause" if is_playing(key) else "Play", key=SlotKeys(key).control("play"),
                  icon=":material/pause:" if is_playing(key) else ":material/play_arrow:", width="stretch",
                  on_click=_toggle_play, args=(key, steps), help="Play the run back, step by step.")
    return int(step)


def record_at(steps, step: int) -> int:
    """The index of the last record taken at or before `step`."""
    import numpy as np
    return max(0, int(np.searchsorted(np.asarray(steps)[:, 0], step, side="right")) - 1)


# -- the charts ------------------------------------------------------------------------------------

def show_main_charts(snap: Snapshot, key: str, owner=None, *, record: int = -1) -> None:
    """The by-layer charts at `record` (default the latest), then the charts of the whole run: live
    charts, drawn once and then patched (ui.livechart)."""
    show_step_charts(snap, key, owner, record=record)
    show_run_charts(snap, key, owner)


def show_step_charts(snap: Snapshot, key: str, owner=None, *, record: int = -1) -> None:
    """The charts the step scrubber moves: variance by layer and saturation by layer at `record`."""
    if snap.config.time_steps:  # rows per layer and time step (recurrent nets): the charts by time step
        from .recurrent import show_main_charts as by_time
        return by_time(snap, key, memo_for(key, "main", owner, snap), chart)
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    fig_key = SlotKeys(key).fig
    token = owner_token(owner)
    theory = theory_profile(cfg)
    live_chart(LF.live_variance(stats, steps, owner=token, record=record, theory=theory), fig_key("variance"))
    if theory is not None and theory.attrs.get("note"):
        prefix = "" if theory.attrs.get("applies", True) else "Theory line hidden. "
        st.caption(prefix + theory.attrs["note"])
    st.caption("Dotted, faint: the same curves at step 0 (initialization). Dashed: mean-field theory's prediction "
               "at initialization, the gradient curve scaled to meet the last layer.")
    if snap.divergence is not None and len(steps) > 1 and record % len(steps) == len(steps) - 1:
        st.caption(f"The run diverged: the last record (step {int(steps[-1, 0])}) holds inf/nan, drawn as gaps. "
                   "Move **Step shown** back to see the steps before it.")
    live_chart(LF.live_saturation(stats, steps, owner=token, record=record, activation=cfg.activation),
               fig_key("saturation"), every=SLOW_SECONDS)


def show_run_charts(snap: Snapshot, key: str, owner=None) -> None:
    """The charts of the whole run: the architecture's own charts, the two layer × step heatmaps, loss and
    accuracy (beside the decision boundary for 2-D data). Nothing more for a recurrent net (its charts by
    time step are all in `show_step_charts`)."""
    if snap.config.time_steps:
        return
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    fig_key = SlotKeys(key).fig
    token = owner_token(owner)
    x_end = cfg.steps if snap.status.live else None  # while it trains, the step axes run to the planned end
    from core.figures.architectures import arch_figures  # the architecture's own charts (residual stream, ...)

    cached = memo_for(key, "run", owner, snap)  # its own slot: the fragments take their snapshots apart
    for name, fig in cached("arch", lambda: arch_figures(cfg, stats, steps)):
        chart(fig, fig_key(name))
    c1, c2 = stable_columns(SlotKeys(key).control("heatmaps"), 2)
    with c1:
        live_chart(LF.live_heatmap(stats, steps, "preact_var", owner=token, x_end=x_end,
                                   title="Forward: log10 Var(h) by layer and step"), fig_key("heat_forward"))
    with c2:
        live_chart(LF.live_heatmap(stats, steps, "grad_preact_var", owner=token, x_end=x_end,
                                   title="Backward: log10 Var(∂L/∂h) by layer and step"), fig_key("heat_backward"))
    st.caption("Colour limits are fixed for the whole run: white is variance 1 (forward) or the last layer's gradient "
               "variance at step 0 (backward); blue is smaller, red larger, ±6 decades. Grey cells: 0, inf or nan.")
    with beside_loss(snap, key):  # 2-D data: the decision boundary beside the loss (ui/boundary.py)
        live_chart(LF.live_loss(steps, owner=token, x_end=x_end), fig_key("loss"))


def show_detail_charts(snap: Snapshot, key: str, owner=None, *, histograms: bool = True) -> None:
    """Per-layer distributions at the latest record (unless `histograms=False`: a saved run has
    none) and the update:data ratio over the steps. `owner` as for `show_main_charts`."""
    if snap.config.time_steps:
        from .recurrent import show_detail_charts as by_time
        return by_time(snap, key, memo_for(key, "detail", owner, snap), chart)
    stats, steps = snap.stats, snap.steps
    fig_key = SlotKeys(key).fig
    token = owner_token(owner)
    if histograms:
        c1, c2 = stable_columns(SlotKeys(key).control("distributions"), 2)
        with c1:
            live_chart(LF.live_histograms(snap.hist, "act", owner=token), fig_key("hist_act"))
        with c2:
            live_chart(LF.live_histograms(snap.hist, "grad_preact", owner=token), fig_key("hist_grad"))
        st.caption("Each ridge is one layer's histogram over the batch, scaled to its own peak, on a shared x axis: "
                   "a signal that vanishes turns into a spike at 0 (at the latest record).")
    else:
        st.caption("Per-layer distributions are not part of a saved run (it keeps the statistics only): "
                   "**Use these settings** and **Run** to see them live.")
    x_end = snap.config.steps if snap.status.live else None
    live_chart(LF.live_update_ratio(stats, steps, owner=token, x_end=x_end), fig_key("update"))


def show_run(snap: Snapshot, key: str, owner, *, scrub: bool, whole: bool = True) -> None:
    """The verdict and the main charts of `snap`; with `scrub`, the step scrubber above them; without
    `whole`, only the charts the scrubber moves (the live view draws the rest in a slower fragment)."""
    cached = memo_for(key, "main", owner, snap)
    show_verdict(snap, cached("diagnosis", lambda: diagnose(snap)), apply_to=key)
    scrubbed_charts(snap, key, owner, scrub=scrub, whole=whole)


def scrubbed_charts(snap: Snapshot, key: str, owner, *, scrub: bool = True, whole: bool = True) -> None:
    """The main charts of `snap` (without `whole`, the by-layer ones only); with `scrub`, at the step of the
    step scrubber above them."""
    record = -1
    slot = st.container()  # always here, empty while the run moves: the charts below keep their place (no remount)
    if scrub and len(snap.steps) > 1:
        with slot:
            record = record_at(snap.steps, step_scrubber(snap.steps[:, 0], key))
    (show_main_charts if whole else show_step_charts)(snap, key, owner, record=record)


def replay_view(snap: Snapshot, key: str, owner) -> None:
    """A finished run that is not this page's live one (a saved run): the step scrubber and the main charts, in
    a fragment that polls every PLAY_SECONDS while Play steps through the records, and not at all otherwise."""
    playing = is_playing(key)
    st.fragment(run_every=PLAY_SECONDS if playing else None)(_draw_replay)(snap, key, owner, playing)


def _draw_replay(snap: Snapshot, key: str, owner, play_polled: bool) -> None:
    try:
        scrubbed_charts(snap, key, owner)
    except Exception as e:  # a chart must never turn into a traceback in the browser
        _failed(e)
    if is_playing(key) != play_polled:
        st.rerun()  # Play pressed (poll to play back) or play-back ended (stop polling): the whole page once


def _failed(e: Exception) -> None:
    st.error(f"The charts could not be drawn ({type(e).__name__}: {e}). The run itself is unaffected; "
             "the downloads below still hold everything recorded.")


def _draw_main(key: str, polling: bool, play_polled: bool = False) -> None:
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
        with refresh(polling):
            show_run(snap, key, run, scrub=not snap.status.moving, whole=False)
        if is_playing(key) != play_polled:
            st.rerun()  # Play pressed (poll to play back) or play-back ended (stop polling): the whole page once
    except Exception as e:  # a chart must never turn into a traceback in the browser
        _failed(e)


def _waits(key: str, run) -> bool:
    """True on the rerun that Run caused: the slower fragments draw nothing yet (their first poll, a
    second later, draws them), so the browser draws the first chart alone."""
    return pressed(key, "run") and run.status.moving


def _draw_later(key: str, draw: Callable[..., None]) -> None:
    """A slower fragment: `draw(snap, key, owner)` for this page's run, patched at most once per poll."""
    run = current_run(key)
    if run is None or _waits(key, run):
        return
    snap = run.snapshot()
    if len(snap.steps) == 0:
        return
    try:
        with refresh(snap.status.moving):
            draw(snap, key, run)
    except Exception as e:
        _failed(e)


def _draw_more(key: str) -> None:
    _draw_later(key, show_run_charts)


def _draw_detail(key: str) -> None:
    _draw_later(key, show_detail_charts)


def live_view(key: str) -> Snapshot | None:
    """Status, verdict and charts of this page's run, refreshed live while it
    trains. Returns the snapshot taken now (None when no run was started).

    Three fragments, so that what changes fast reruns alone: the status, verdict and the by-layer
    charts (live charts, patched in place) every REFRESH_SECONDS; the charts of the whole run
    (heatmaps, loss) every SLOW_SECONDS; the distributions and update ratio every DETAIL_SECONDS.
    Each rerun of a fragment redraws all of its elements in the browser (React, style, layout:
    more of the main thread than the charts' own drawing), so the fast one holds as few as it can.
    Once the run stops moving, the first fragment has the step scrubber, and polls every
    PLAY_SECONDS while Play steps through the run.
    """
    run = current_run(key)
    if run is None:
        return None
    status = run.status
    live = status.moving
    if live:
        every = REFRESH_SECONDS
    elif is_playing(key):
        every = PLAY_SECONDS
    else:
        every = PAUSED_SECONDS if status is RunStatus.PAUSED else None
    st.fragment(run_every=every)(_draw_main)(key, live, every == PLAY_SECONDS)
    st.fragment(run_every=SLOW_SECONDS if live else None)(_draw_more)(key)
    st.fragment(run_every=DETAIL_SECONDS if live else None)(_draw_detail)(key)
    return run.snapshot()


__all__ = ["REFRESH_SECONDS", "SLOW_SECONDS", "PLOTLY_CONFIG", "chart", "memo", "memo_for", "theory_profile", "show_theory_preview",
           "show_verdict", "owner_token", "step_scrubber", "is_playing", "record_at", "show_main_charts",
           "show_step_charts", "show_run_charts", "show_detail_charts", "show_run", "scrubbed_charts", "replay_view", "live_view"]

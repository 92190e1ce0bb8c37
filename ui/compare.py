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

import pandas as pd
import streamlit as st

from core import figures as F
from core.schema import RunConfig, RunStatus
from core.run.record import RunRecord as Snapshot

from core.figures import live as LF

from .live import PLAY_SECONDS, SLOW_SECONDS, chart, is_playing, memo, owner_token, show_verdict, step_scrubber, theory_profile
from .livechart import live_chart, refresh, stable_columns
from .follow import SavedWatch
from .saved import SavedRun, opened, saved_run_box, saved_status, showing_saved
from .session import current_run, is_live, server_limits, start_run, status_line, stop_run
from .sidebar import config_controls, set_widgets, widget_values
from .state import SlotKeys

# The page's session keys: each side's slot (its run, saved run and settings widgets), and the page's own.
SLOTS = {"A": SlotKeys("compare_a"), "B": SlotKeys("compare_b")}
PAGE = SlotKeys("compare")
PREV_A = PAGE.control("prev_a")  # A's settings on the previous render, for B to follow A's changes
REFRESH_SECONDS = 0.25  # two runs, six live charts (patches only): 4 redraws a second
PAUSED_SECONDS = 5.0    # keeps a paused run's heartbeat alive


# -- settings ---------------------------------------------------------------------------------------

def follow_a(prev_a: RunConfig | None, new_a: RunConfig, b_slot: SlotKeys = SLOTS["B"]) -> list[str]:
    """Carry A's changes over to B's widgets where B still had A's old value.

    Call after A's controls are drawn and before B's. Returns the widget names
    it changed."""
    if prev_a is None or prev_a == new_a:
        return []
    old, new = widget_values(prev_a), widget_values(new_a)
    changed = []
    for name, value in new.items():
        key = b_slot.widget(name)
        if old[name] != value and key in st.session_state and st.session_state[key] == old[name]:
            st.session_state[key] = value
            changed.append(name)
    return changed


def _copy_a_to_b(a: RunConfig) -> None:
    set_widgets(a, SLOTS["B"].slot)


def controls(a_defaults: RunConfig, b_defaults: RunConfig) -> tuple[RunConfig, RunConfig]:
    """Both sets of controls, in two sidebar tabs; returns (A, B)."""
    st.sidebar.header("Settings")
    tab_a, tab_b = st.sidebar.tabs(["Setting A", "Setting B"])
    with tab_a:
        st.caption("The baseline. Every change here is copied to B, unless B already differs in that setting.")
    a = config_controls(a_defaults, SLOTS["A"].slot, container=tab_a)
    if PREV_A not in st.session_state:
        st.session_state[PREV_A] = None
    follow_a(st.session_state[PREV_A], a)
    st.session_state[PREV_A] = a
    with tab_b:
        st.caption("A copy of A: change what you want to compare.")
        st.button("Make B a copy of A again", icon=":material/content_copy:", key=PAGE.control("copy"),
                  on_click=_copy_a_to_b, args=(a,),
                  width="stretch", help="Set every control of B to A's current value.")
    b = config_controls(b_defaults, SLOTS["B"].slot, container=tab_b)
    return a, b


def settings_diff(a: RunConfig, b: RunConfig) -> pd.DataFrame:
    """One row per setting that differs (`RunConfig.diff`): `setting`, `A`, `B`, as people read them."""
    return pd.DataFrame([(c.label, c.old, c.new) for c in a.diff(b)], columns=["setting", "A", "B"])


# -- running ----------------------------------------------------------------------------------------

def runs() -> dict[str, object]:
    return {label: current_run(keys.slot) for label, keys in SLOTS.items()}


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
        start_run(cfg, SLOTS[label].slot)
    return []


def stop_pair() -> None:
    for keys in SLOTS.values():
        stop_run(keys.slot)


def run_buttons(a: RunConfig, b: RunConfig) -> None:
    """Run A and B / Stop, and what is wrong if they cannot start."""
    live = any(is_live(r) for r in runs().values())
    c1, c2, _ = st.columns([1.4, 1, 3], vertical_alignment="center")
    go_ = c1.button("Run A and B", icon=":material/play_arrow:", key=PAGE.control("run"), type="primary", width="stretch",
                    help="Train both networks from scratch, side by side (each with its own seed setting).")
    stop = c2.button("Stop", icon=":material/stop:", key=PAGE.control("stop"), disabled=not live, width="stretch",
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
             if current[label] is not None and current[label].cfg != cfg and showing_saved(SLOTS[label].slot) is None]
    if stale:
        st.info(f"The sidebar settings of {' and '.join(stale)} differ from the run{'s' if len(stale) > 1 else ''} "
                "on screen. The charts show the runs with their own settings; press **Run A and B** to apply the "
                "new ones.", icon=":material/info:")


# -- saved runs -------------------------------------------------------------------------------------

def _after_use_a(cfg: RunConfig) -> None:
    # A's widgets now hold the file's settings: that is not a change for B to follow.
    st.session_state[PREV_A] = cfg


def saved_boxes(a: RunConfig, b: RunConfig) -> None:
    """An uploader for A and one for B (ui.saved): each opened run replaces
    that side's live run on screen, and **Use these settings** puts it into
    that side's controls (B does not follow A's file)."""
    cols = st.columns(2, gap="medium")
    for col, label, cfg in zip(cols, ("A", "B"), (a, b)):
        with col:
            saved_run_box(SLOTS[label].slot, settings_prefix=SLOTS[label].slot, sidebar_cfg=cfg,
                          label=f"Saved run for {label} (.parquet or .json)",
                          after_use=_after_use_a if label == "A" else None)


def any_opened() -> bool:
    return any(opened(keys.slot) is not None for keys in SLOTS.values())


def _sources() -> dict[str, object]:
    """For A and B: what is on screen, the SavedRun opened from a file or else the live Run (or None)."""
    return {label: showing_saved(keys.slot) or current_run(keys.slot) for label, keys in SLOTS.items()}


def shown() -> dict[str, tuple[Snapshot | None, SavedRun | None]]:
    """For A and B: the snapshot on screen and, when it comes from a file, the SavedRun."""
    return {label: (None if src is None else src.record if isinstance(src, SavedRun) else src.snapshot(),
                    src if isinstance(src, (SavedRun, SavedWatch)) else None)
            for label, src in _sources().items()}


# -- the live view ----------------------------------------------------------------------------------

def _moving(snap) -> bool:
    """Still training (a RunRecord's status, or a watch run's status word)."""
    try:
        return RunStatus(str(snap.status)).moving
    except ValueError:
        return False


def _theory(cfg):
    """Mean-field theory for a lab run's settings; None for a watched model (it has no such settings)."""
    return theory_profile(cfg) if isinstance(cfg, RunConfig) else None


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
        cached = lambda name, build: memo(PAGE.memo("pair"), token, name, build)  # noqa: E731
    cols = st.columns(2, gap="medium")
    for col, (label, snap) in zip(cols, snaps.items()):
        with col:
            st.markdown(f"**{label}** · {snap.config.describe(short=True) if snap else 'not run yet'}")
            if saved.get(label) is not None:
                saved_status(saved[label])
            elif snap is not None:
                status_line(snap)
            if snap is not None:
                # a RunRecord, or a watch run's RunView (its verdict has its own advice)
                show_verdict(snap, cached(f"diagnosis_{label}", lambda: snap.diagnosis))
    recorded = {label: s for label, s in snaps.items() if s is not None and len(s.steps)}
    if not recorded:
        st.caption("Building the networks and taking the first records…")
        return
    if all(s.config.time_steps for s in recorded.values()):  # recurrent runs: by time step
        from .recurrent import show_pair_by_time
        return show_pair_by_time(recorded, cached, chart, PAGE)
    sources = sources or {}
    tokens = {label: owner_token(sources.get(label)) for label in recorded}
    owner = "+".join(f"{label}{t}" for label, t in tokens.items())
    moving = any(_moving(s) for s in recorded.values())
    step = None
    slot = st.container()  # always here (the charts below keep their place): the step scrubber once both stop
    all_steps = sorted({int(v) for s in recorded.values() for v in s.steps[:, 0]})
    if not moving and len(all_steps) > 1:
        with slot:
            step = step_scrubber(all_steps, PAGE.slot, label="Step shown (A and B)")
    theories = {label: _theory(s.config) for label, s in recorded.items()}
    live_chart(LF.live_variance_compare({label: (s.stats, s.steps) for label, s in recorded.items()}, owner=owner,
                                        step=step, theories=theories), PAGE.fig("variance"))
    st.caption("Colour = quantity (blue: activations Var(h), red: gradients Var(∂L/∂h)); solid line = A, dashed = B; "
               "faint: each run at step 0 (initialization); thin dark: mean-field theory for each. "
               + ("Both at the step chosen above (a run that stopped earlier at its last record)."
                  if step is not None else "Each run at its latest recorded step."))
    x_end = max(getattr(s.config, "steps", 0) for s in recorded.values()) if moving else None
    for column, what in (("preact_var", "Forward: log10 Var(h)"), ("grad_preact_var", "Backward: log10 Var(∂L/∂h)")):
        zr = cached(f"zrange_{column}", lambda: F.shared_zrange({k: s.stats for k, s in recorded.items()}, column))
        cols = stable_columns(PAGE.control(f"heat_{column}"), 2, gap="medium")
        for col, label in zip(cols, ("A", "B")):
            with col:
                s = recorded.get(label)
                if s is None:
                    st.caption(f"{label}: nothing recorded yet.")
                    continue
                live_chart(LF.live_heatmap(s.stats, s.steps, column, owner=tokens[label], zrange=zr, x_end=x_end,
                                           title=f"{label} · {what}", height=340), PAGE.fig(f"heat_{column}_{label}"),
                           every=SLOW_SECONDS)
    st.caption("Both heatmaps of a row share their colour limits, so the same colour is the same variance in A and B: "
               "white is variance 1 (forward) or A's last-layer gradient variance at step 0 (backward); blue is "
               "smaller, red larger. Grey: 0, inf or nan.")
    live_chart(LF.live_loss_compare({label: s.steps for label, s in recorded.items()}, owner=owner, x_end=x_end),
               PAGE.fig("loss"), every=SLOW_SECONDS)


def _live_shown() -> dict[str, object]:
    """The live runs that are on screen (a side showing a saved run is left out)."""
    return {label: r for label, r in runs().items() if r is not None and showing_saved(SLOTS[label].slot) is None}


def _draw(polling: bool, play_polled: bool = False) -> None:
    sources = _sources()
    pair = shown()
    if polling and not any(is_live(r) for r in _live_shown().values()):
        st.rerun()  # both ended: redraw the page once, without polling
    try:
        with refresh(polling):
            show_pair({label: snap for label, (snap, _) in pair.items()},
                      {label: saved for label, (_, saved) in pair.items()}, sources)
        if is_playing(PAGE.slot) != play_polled:
            st.rerun()  # Play pressed (poll to play back) or play-back ended (stop polling): the whole page once
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
    elif is_playing(PAGE.slot):
        every = PLAY_SECONDS
    elif RunStatus.PAUSED in statuses:
        every = PAUSED_SECONDS
    else:
        every = None
    st.fragment(run_every=every)(_draw)(every == REFRESH_SECONDS, every == PLAY_SECONDS)
    return True


__all__ = ["SLOTS", "PAGE", "follow_a", "controls", "settings_diff", "start_pair", "stop_pair", "run_buttons",
           "show_pair", "live_pair", "saved_boxes", "any_opened", "shown"]

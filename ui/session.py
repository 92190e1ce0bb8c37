"""One training run per page and session, and the buttons that drive it.

The run is a `core.run.remote.ProcessRun` (a background thread here, the training in a worker
process, so it never waits for this server's own Python threads) kept in
`st.session_state[slot(key).run]` (ui.state). It owns its RunConfig: changing a widget
reruns the script but never touches the run; the new settings apply when the
user presses Run again. Server-wide, `run_slots()` caps concurrent training
threads (`Limits.max_concurrent_runs`) and queues the rest; `heartbeat_timeout`
stops a run whose page stopped polling (a closed tab).

A closed tab's run stops within `CLOSED_TAB_STOP_SECONDS` (the README's
promise): the last poll happened at most when the tab closed, the run notices
a silent heartbeat `HEARTBEAT_SECONDS` later, after at most one more check
(`HEARTBEAT_CHECK_SECONDS`, or one step while it trains). The heartbeat is
several of the slowest polls (a paused page's, `ui.live.PAUSED_SECONDS`) long,
so a page that is still open never loses its run to a late refresh.
"""
from __future__ import annotations

import threading
import time

import streamlit as st

from core.schema import RunConfig, RunStatus
from core.run.background import HEARTBEAT_CHECK_SECONDS, Run, RunSlots
from core.run.remote import ProcessRun
from core.run.record import RunRecord, status_text
from core.limits import Limits

from .state import slot

CLOSED_TAB_STOP_SECONDS = 30.0  # promised in the README: a closed tab's run stops within this
HEARTBEAT_SECONDS = 20.0        # a run nobody polled for this long is stopped; 30 s left no margin (30.5 s measured)


@st.cache_resource(show_spinner=False)
def server_limits() -> Limits:
    """This server's limits (`GFL_MAX_...` environment variables), read once."""
    try:
        return Limits.from_env()
    except ValueError:
        return Limits()  # a bad variable: the defaults; `limits_problem()` says why


def limits_problem() -> str | None:
    try:
        Limits.from_env()
    except ValueError as e:
        return f"{e} The server uses its default limits instead."
    return None


@st.cache_resource(show_spinner=False)
def warm_up_engine() -> threading.Thread:
    """Once per server, in the background: start the worker processes the first runs train in (two: Compare
    runs A and B at once), each warmed up, and warm this process up too (`core.run.remote.warm_up`: the
    compiled statistics kernels and one tiny training step; Learn measures a network here), so the first
    Run a visitor presses does not pay several seconds of start-up."""
    from core.run.remote import warm_up, warm_up_job
    from core.workers import prewarm
    prewarm(min(2, server_limits().max_concurrent_runs), warm_up_job)
    thread = threading.Thread(target=warm_up, name="gfl-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def run_slots() -> RunSlots:
    """Server-wide places for training threads, first come first served."""
    return RunSlots(server_limits().max_concurrent_runs)


def current_run(key: str) -> Run | None:
    """The run of this page (`key`) in this session, if one was started."""
    return st.session_state[slot(key).run]


def is_live(run: Run | None) -> bool:
    """Queued, running or paused: a thread that may still produce records."""
    return run is not None and run.status.live


def start_run(cfg: RunConfig, key: str, *, paused: bool = False) -> Run | None:
    """Stop this page's previous run and start `cfg`; None (with the reason
    flashed on the next render) when `cfg` is over this server's limits."""
    limits = server_limits()
    problem = limits.violation(cfg)
    if problem is not None:
        field, sentence = problem
        flash(key, "error", f"Not started: {sentence}")
        return None
    stop_run(key, wait=False)
    from .live import DETAIL_SECONDS  # the distributions are drawn this often while a run moves: measured as often
    run = ProcessRun(cfg, max_seconds=limits.max_run_seconds, heartbeat_timeout=HEARTBEAT_SECONDS, slots=run_slots(),
                     hist_interval=DETAIL_SECONDS)
    st.session_state[slot(key).run] = run.start(paused=paused)
    st.session_state[slot(key).show_saved] = False  # a new run is what the page shows (ui.saved)
    return run


def stop_run(key: str, wait: bool = True) -> None:
    run = current_run(key)
    if run is not None and run.alive:
        run.stop()
        if wait:
            run.join(timeout=3.0)


def flash(key: str, kind: str, text: str) -> None:
    """A message shown once, on the next render of `run_controls`."""
    st.session_state[slot(key).flash] = (kind, text)


def _show_flash(key: str) -> None:
    keys = slot(key)
    flashed, st.session_state[keys.flash] = st.session_state[keys.flash], None
    if flashed is not None:
        kind, text = flashed
        getattr(st, kind)(text)


def _wait_for(run: Run, done, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not done(run.snapshot()):
        time.sleep(0.02)


def pressed(key: str, name: str) -> bool:
    """The run button `name` ('run', 'pause', 'step', 'stop') of this page was clicked: true only on the
    rerun the click caused (Streamlit puts a click in session_state for that run only), never on a
    fragment's later rerun."""
    return bool(st.session_state.get(slot(key).button(name)))


def _handle_clicks(cfg: RunConfig, key: str) -> None:
    """Act on a button clicked in the browser before the buttons are drawn
    (Streamlit puts a click in session_state first), so they are drawn once,
    already showing the run's new state."""
    run = current_run(key)
    live = is_live(run)
    if pressed(key, "run"):
        run = start_run(cfg, key)
        if run is not None:  # draw the first record right away rather than on the next poll
            _wait_for(run, lambda s: len(s.steps) > 0 or s.status.ended, 1.5)
    elif pressed(key, "pause") and live:
        if run.status is RunStatus.PAUSED:
            run.resume()
        else:
            run.pause()
            _wait_for(run, lambda s: s.status is not RunStatus.RUNNING, 1.0)
    elif pressed(key, "step"):
        if not live:
            run = start_run(cfg, key, paused=True)
        if run is not None:
            before = run.snapshot().steps_taken
            run.step(1)
            _wait_for(run, lambda s: (s.steps_taken > before and s.status is RunStatus.PAUSED) or s.status.ended)
    elif pressed(key, "stop") and live:
        stop_run(key)


def run_controls(cfg: RunConfig, key: str, *, stale_note: bool = True) -> Run | None:
    """Run / Pause·Resume / Step / Stop for this page's run of `cfg`.

    Returns the current run (or None). Run starts `cfg` afresh (stopping the
    previous run); Step takes one optimizer step and pauses (starting a new
    paused run first when none is live); limits are checked before starting.
    Button keys are `slot(key).button("run")`, "pause", "step", "stop" (ui.state).
    `stale_note=False` leaves out the note that the sidebar differs from the
    run (when the page shows something else, e.g. a saved run).
    """
    _handle_clicks(cfg, key)
    run = current_run(key)
    live = is_live(run)
    paused = live and run.status is RunStatus.PAUSED
    button = slot(key).button
    c1, c2, c3, c4, _ = st.columns([1.1, 1.2, 1, 1, 3], vertical_alignment="center")
    c1.button("Run", icon=":material/play_arrow:", key=button("run"), type="primary", width="stretch",
              help="Train this network from scratch with the settings in the sidebar.")
    c2.button("Resume" if paused else "Pause", icon=":material/play_arrow:" if paused else ":material/pause:",
              key=button("pause"), disabled=not live, width="stretch",
              help="Pause or resume training; the charts keep what was recorded.")
    c3.button("Step", icon=":material/skip_next:", key=button("step"), width="stretch",
              help="Take one training step, then pause. With no run going, starts one paused at initialization.")
    c4.button("Stop", icon=":material/stop:", key=button("stop"), disabled=not live, width="stretch",
              help="End the run; what it recorded stays on screen and can be downloaded.")
    _show_flash(key)
    if stale_note and run is not None and run.cfg != cfg:
        diff = [str(change) for change in run.cfg.diff(cfg)]
        st.info("The sidebar settings differ from this run's "
                f"({'; '.join(diff[:6])}{'; …' if len(diff) > 6 else ''}). "
                "The charts show the run with its own settings; press **Run** to apply the new ones.",
                icon=":material/info:")
    return run


def status_line(snap: RunRecord) -> None:
    """Progress bar and one line of status for a run record (`core.run.record.status_text`)."""
    total = max(snap.config.steps, 1)
    frac = min(max(snap.steps_taken / total, 0.0), 1.0)
    if snap.status is RunStatus.QUEUED:
        st.info(f"Waiting for a free place on the server: you are number {snap.queue_position} in the queue. "
                "Training starts on its own.", icon=":material/hourglass_top:")
        return
    st.progress(frac, text=status_text(snap))
    outcome_line(snap)


def outcome_line(snap: RunRecord) -> None:
    """How a run ended, when that needs saying: diverged (where and when), failed, stopped (why); and what a
    reader noticed about a saved file."""
    if snap.status is RunStatus.DIVERGED:
        st.error(f"**Diverged.** {snap.message} The charts keep everything recorded up to that step.", icon=":material/error:")
    elif snap.status is RunStatus.FAILED:
        st.error(snap.message or "The run failed.")
    elif snap.status is RunStatus.STOPPED and snap.message:
        st.warning(snap.message)
    if snap.note:
        st.warning(snap.note, icon=":material/info:")


__all__ = ["HEARTBEAT_SECONDS", "CLOSED_TAB_STOP_SECONDS", "HEARTBEAT_CHECK_SECONDS", "server_limits",
           "limits_problem", "run_slots", "current_run", "is_live", "pressed", "start_run", "stop_run", "flash",
           "warm_up_engine", "run_controls", "status_line", "outcome_line"]

"""Explore → Follow a run: a run made by `watch(model)` in the user's own script,
drawn from its live store while the script trains, or from its saved JSON.

    mode = mode_switch(key)                 # "Train a network" or "Follow a run"
    if mode == FOLLOW: follow_view(key)     # the runs in GFL_RUNS_DIR (default runs/), the chosen one live
    show_watch_run(run, key)                # verdict, charts, exports of a core.watch.view.WatchRun

The store is read incrementally (only the records after the last one seen),
by a fragment that polls every `REFRESH_SECONDS` while the run is live and
stops once its writer has finished, failed or gone.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from core.schema import RunStatus
from core.watch import view
from core.watch.store import StoreError, StoreState, list_runs, read_store

from .live import chart, show_verdict
from .markdown import escape_markdown

TRAIN, FOLLOW = "Train a network", "Follow a run"
RUNS_ENV = "GFL_RUNS_DIR"
REFRESH_SECONDS = 2.0  # each refresh remounts the charts in the browser: more often left them blank on a busy machine
SNIPPET = """from core import watch
with watch(model, live="runs/my_run") as w:      # every Linear, Conv, RNN/LSTM/GRU module
    for x, y in batches:
        loss = loss_fn(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        w.step(loss)
w.save("runs/my_run.json")                        # opens in Explore and Compare"""


def runs_dir() -> Path:
    """Where the live stores are: $GFL_RUNS_DIR, or runs/ in the working directory."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


def mode_switch(key: str) -> str:
    """Explore's two modes; returns the chosen one."""
    mode = st.segmented_control(
        "Mode", [TRAIN, FOLLOW], default=TRAIN, key=f"{key}__mode", label_visibility="collapsed",
        help="**Train a network**: the lab's own network, set in the sidebar. **Follow a run**: a network of "
             "your own, trained by your script under `watch(model, live=...)`, drawn live from its store.")
    return mode or TRAIN


# -- a saved watch run in the "Open a saved run" box --------------------------------------------------

@dataclass(frozen=True)
class SavedWatch:
    """A saved watch(model) run that opened from an uploaded file."""

    name: str
    file_id: str
    size: int
    run: view.WatchRun

    def snapshot(self) -> view.RunView:
        """The run in the run table's columns (`view.AS_RUN`), for the pages that draw saved
        runs side by side (Compare); its config is the run's `WatchSetting`."""
        return view.as_run_view(self.run)


def open_watch_file(data: bytes, name: str, file_id: str = ""):
    """A SavedWatch, a one-sentence refusal (str), or None when `data` is not a watch run file at all."""
    if f'"{view.FORMAT}"'.encode() not in data:
        return None
    try:
        return SavedWatch(name, file_id, len(data), view.from_json(data, name.rsplit(".", 1)[0]))
    except view.WatchFileError as e:
        return str(e)
    except Exception as e:  # a reader bug must not become a traceback in the browser
        return f"The file could not be read as a saved watch run ({type(e).__name__})."


def watch_file_box(item: SavedWatch, key: str, shown: bool, set_show, close) -> SavedWatch | None:
    """Below the uploader: what the file holds, and show/close buttons (no settings to use: it is your model)."""
    r = item.run
    st.caption(f"Opened **{escape_markdown(item.name)}**: a `watch(model)` run of {escape_markdown(r.model or 'a model')}, "
               f"{len(r.steps):,} records × {len(r.names)} layers, {r.status}.")
    row = st.container(horizontal=True, wrap=True)
    if not shown:
        row.button("Show the saved run", icon=":material/folder_open:", key=f"{key}__show_file", width="content",
                   on_click=set_show, args=(key, True))
    row.button("Close the file", icon=":material/close:", key=f"{key}__close_saved", width="content",
               on_click=close, args=(key,), help="Stop showing this saved run (the file on your disk is untouched).")
    return item if shown else None


# -- drawing a watched run ---------------------------------------------------------------------------

def status_box(run: view.WatchRun, where: str) -> None:
    words = {RunStatus.RUNNING: "training now", RunStatus.FINISHED: "finished", RunStatus.FAILED: "stopped by an error",
             RunStatus.STOPPED: "its script stopped without closing the run"}.get(run.status, str(run.status))
    st.info(f"**{escape_markdown(run.name)}** · {escape_markdown(where)} · {words} · step {run.last_step:,} · "
            f"{len(run.steps):,} records × {len(run.names)} layers"
            + (f" · {escape_markdown(run.model)}" if run.model else ""),
            icon=":material/monitoring:" if run.status is RunStatus.RUNNING else ":material/folder_open:")
    if run.message:
        st.caption(f"The script ended with {escape_markdown(run.message)}")


def show_watch_run(run: view.WatchRun, key: str) -> None:
    """Non-finite note, verdict, the run charts (module names as layer labels) and exports."""
    if len(run.steps) == 0:
        st.caption("No record yet: the first appears when the script calls `w.step(loss)` for the first time.")
        return
    try:
        if run.first_nonfinite is not None:
            st.error(escape_markdown(run.first_nonfinite.sentence()) + " The records go on as measured (inf and nan "
                     "are kept).", icon=":material/emergency_home:")
        show_verdict(run, view.diagnosis(run))
        st.caption(f"Layers in forward order: {escape_markdown(run.legend())}. The verdict reads each layer's output "
                   "as the lab's h and ∂L/∂output as its ∂L/∂h.")
        figs = view.figures(run)
        chart(figs["variance"], f"{key}__watch_variance")
        st.caption("Dotted, faint: the same curves at step 0. No theory line: mean-field theory describes the lab's "
                   "MLPs, not an arbitrary network.")
        c1, c2 = st.columns(2)
        with c1:
            chart(figs["heat_forward"], f"{key}__watch_heat_forward")
        with c2:
            chart(figs["heat_backward"], f"{key}__watch_heat_backward")
        chart(figs["loss"], f"{key}__watch_loss")
        c1, c2 = st.columns(2)
        with c1:
            chart(figs["update"], f"{key}__watch_update")
        with c2:
            if "saturation" in figs:
                chart(figs["saturation"], f"{key}__watch_saturation")
            else:
                st.caption("No saturation chart: no measured layer feeds an activation module the lab knows "
                           "(functional calls such as `F.relu` are not seen).")
    except Exception as e:  # a chart must never become a traceback
        st.error(f"The charts could not be drawn ({type(e).__name__}: {escape_markdown(str(e)[:200])}).")
    export_buttons(run, key)


def export_buttons(run: view.WatchRun, key: str) -> None:
    """The table as CSV / Parquet (inf and nan kept as such) and the saved run as JSON."""
    table = run.table()
    files = {
        "csv": (lambda: table.to_csv(index=False, na_rep="nan").encode(), "text/csv"),
        "parquet": (lambda: table.to_parquet(index=False), "application/vnd.apache.parquet"),
        "json": (lambda: json.dumps(view.to_json_dict(run), allow_nan=False, ensure_ascii=False).encode(),
                 "application/json"),
    }
    cols = st.columns(3)
    for col, (fmt, (make, mime)) in zip(cols, files.items()):
        col.download_button(fmt.upper(), data=make, file_name=f"{run.name}.{fmt}", mime=mime, icon=":material/download:",
                            key=f"{key}__watch_dl_{fmt}", on_click="ignore", width="stretch",
                            help={"csv": "One row per recorded step and layer: the table `w.table()` returns.",
                                  "parquet": "The same table, typed.",
                                  "json": "The saved run: **Open a saved run** in Explore or Compare opens it."}[fmt])


# -- following a store -------------------------------------------------------------------------------

def _cache_key(key: str) -> str:
    return f"{key}__follow_cache"


def _read(key: str, path: Path) -> StoreState:
    """The store at `path`, reading only the records after those already in this session."""
    cached: StoreState | None = st.session_state.get(_cache_key(key))
    mtime = max((p.stat().st_mtime_ns for p in (path, Path(f"{path}-wal")) if p.exists()), default=0)
    if cached is not None and cached.path == path and len(cached.steps) and cached.meta.get("_mtime") == mtime:
        return cached
    after = int(cached.steps[-1, 0]) if cached is not None and cached.path == path and len(cached.steps) else None
    new = read_store(path, after_step=after)
    if after is not None and new.stats.shape[1:] == cached.stats.shape[1:]:
        new = StoreState(path, new.meta, np.concatenate([cached.steps, new.steps]),
                         np.concatenate([cached.stats, new.stats]))
    elif after is not None:
        new = read_store(path)
    new.meta["_mtime"] = mtime
    st.session_state[_cache_key(key)] = new
    return new


def _draw_follow(key: str, path: Path, polling: bool) -> None:
    try:
        state = _read(key, path)
    except StoreError as e:
        st.error(escape_markdown(str(e)))
        return
    run = view.from_store(state)
    if polling and run.status is not RunStatus.RUNNING:
        st.rerun()  # once: the page redraws without polling
    status_box(run, f"following {path}")
    show_watch_run(run, key)


def follow_view(key: str) -> None:
    """The run stores in the runs folder, and the chosen one drawn live."""
    folder = runs_dir()
    runs = list_runs(folder)
    st.subheader("Follow a run")
    if not runs:
        st.info(f"No run in **{escape_markdown(str(folder.resolve()))}** yet. Train your own model under "
                f"`watch(model, live=\"{folder}/NAME\")` (or set `{RUNS_ENV}` to another folder) and it appears "
                "here; `python examples/watch_my_model.py` makes one.", icon=":material/info:")
        st.code(SNIPPET, language="python", wrap_lines=True)
        return
    names = [n for n, _ in runs]
    choice = st.selectbox(f"Runs in {folder}", names, key=f"{key}__follow_run",
                          help=f"The `live=` stores (`*.sqlite`) in {folder.resolve()} (set {RUNS_ENV} for another "
                               "folder), newest first.")
    if choice is None:
        return
    path = dict(runs)[choice]
    try:
        live = read_store(path, after_step=2**62).live
    except StoreError as e:
        st.error(escape_markdown(str(e)))
        return
    st.fragment(run_every=REFRESH_SECONDS if live else None)(_draw_follow)(key, path, live)
    with st.expander("How to make a run to follow", icon=":material/code:"):
        st.code(SNIPPET, language="python", wrap_lines=True)


__all__ = ["TRAIN", "FOLLOW", "RUNS_ENV", "SavedWatch", "runs_dir", "mode_switch", "open_watch_file",
           "watch_file_box", "show_watch_run", "follow_view", "status_box"]

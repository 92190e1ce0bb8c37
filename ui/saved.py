"""Saved runs: a Parquet or JSON download opened again, shown like a live run.

    opened = open_run_file(data, name)      # SavedRun, or Refused with one sentence
    saved = saved_run_box(key, settings_prefix=key)   # the uploader; the SavedRun to show, if any
    snap = show_saved_run(saved, key) if saved else live_view(key)

Per page slot `key` (the same key as the slot's live run: "explore",
"compare_a", "compare_b") the session holds (keys named in `ui.state.SlotKeys`):

- `file(n)`: the file uploader (Streamlit's widget state; a new key once
  **Close the file** has emptied it, counted by `file_generation`);
- `opened`: what was made of its file, a `SavedRun` or a `Refused`
  (parsed once, when the file arrives, in the uploader's callback);
- `show_saved`: True while the page shows the opened run rather than
  the live one. Opening a file sets it; starting a run
  (`ui.session.start_run`) clears it; two buttons switch back and forth.

A saved run opens as the same `core.run.record.RunRecord` a live run's
snapshot is (`core.io.export.read_saved_run`), so the verdict, the charts and
the downloads are drawn by the same code as a live run's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from core.io.export import ImportErrorForPeople, read_saved_run
from core.limits import SAVED_RUN_MAX_MB
from core.run.record import RunRecord, progress_text

from .follow import SavedWatch, open_watch_file, show_watch_run, status_box, watch_file_box
from .live import replay_view, show_detail_charts, show_verdict
from .markdown import escape_markdown
from .session import current_run, is_live, outcome_line, stop_run
from .sidebar import set_widgets
from .state import slot

UPLOAD_HELP = (
    "A run saved from this app: the **Parquet** (compact) or **JSON** download under *Take it with you*, or the "
    "file `python -m core run --out run.parquet` (or `.json`) writes, or a `watch(model)` run's "
    "`w.save(\"run.json\")`. It opens with the same charts, verdict and "
    "downloads as a live run; **Use these settings** then puts its settings in the sidebar so that **Run** replays "
    f"it. At most {SAVED_RUN_MAX_MB} MB: the Parquet file of the largest run this server allows fits."
)


@dataclass(frozen=True)
class SavedRun:
    """A run file that opened: the file's name, its uploader id and size, and the run it holds."""

    name: str
    file_id: str
    size: int
    record: RunRecord


@dataclass(frozen=True)
class Refused:
    """A run file that did not open, and the one sentence that says why."""

    name: str
    file_id: str
    sentence: str


def open_run_file(data: bytes, name: str = "saved run", file_id: str = "") -> SavedRun | SavedWatch | Refused:
    """Uploaded bytes → what the page shows: a SavedRun, or a Refused with one
    sentence (never an exception: a hostile file is only a message)."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in ("csv", "py"):
        return Refused(name, file_id, f"This is a .{suffix} file; only the Parquet or JSON download of a run can be "
                                      "opened again (they alone hold the run's settings).")
    try:
        result = read_saved_run(bytes(data))
    except ImportErrorForPeople as e:
        watched = open_watch_file(bytes(data), name, file_id)  # a watch(model) run: drawn by ui.follow
        if isinstance(watched, SavedWatch):
            return watched
        return Refused(name, file_id, watched if isinstance(watched, str) else str(e))
    except Exception as e:  # a reader bug must not become a traceback in the browser
        return Refused(name, file_id, f"The file could not be read as a saved run ({type(e).__name__}).")
    return SavedRun(name, file_id, len(data), result)


# -- session state ------------------------------------------------------------------------------------

def _file_key(key: str) -> str:
    """The uploader's widget key; a new one after **Close the file**, which empties it."""
    keys = slot(key)
    return keys.file(st.session_state[keys.file_generation])


def _opened_key(key: str) -> str:
    return slot(key).opened


def _show_key(key: str) -> str:
    return slot(key).show_saved


def opened(key: str) -> SavedRun | Refused | None:
    """What the uploader of slot `key` holds (parsed), if anything."""
    return st.session_state.get(_opened_key(key))


def showing_saved(key: str) -> SavedRun | None:
    """The SavedRun the page shows for slot `key` instead of its live run, if any."""
    item = opened(key)
    if isinstance(item, (SavedRun, SavedWatch)) and st.session_state.get(_show_key(key), False):
        return item
    return None


def put_file(key: str, data: bytes | None, name: str = "saved run", file_id: str = "") -> SavedRun | Refused | None:
    """Open `data` in slot `key` as if it had been uploaded (None closes it).
    A run file that opens is shown at once, and a live run of the slot is
    stopped (its records stay; the page can switch back to them)."""
    ss = st.session_state
    if data is None:
        ss.pop(_opened_key(key), None)
        ss[_show_key(key)] = False
        return None
    item = open_run_file(data, name, file_id)
    ss[_opened_key(key)] = item
    if isinstance(item, (SavedRun, SavedWatch)):
        if is_live(current_run(key)):
            stop_run(key, wait=False)
        ss[_show_key(key)] = True
    return item


def _on_upload(key: str) -> None:
    up = st.session_state.get(_file_key(key))
    if up is None:
        put_file(key, None)
    else:
        put_file(key, up.getvalue(), up.name, up.file_id)


def _sync(key: str) -> None:
    """Parse a file the callback did not see (e.g. one already in the uploader's state)."""
    up = st.session_state.get(_file_key(key))
    item = opened(key)
    if up is not None and (item is None or item.file_id != up.file_id):
        _on_upload(key)


def _set_show(key: str, value: bool) -> None:
    if value and is_live(current_run(key)):
        stop_run(key, wait=False)  # nothing would poll it (its records stay)
    st.session_state[_show_key(key)] = value


def _close(key: str) -> None:
    put_file(key, None)
    st.session_state[slot(key).file_generation] += 1


def _use_settings(key: str, settings_prefix: str, after: Callable | None) -> None:
    item = opened(key)
    if isinstance(item, SavedRun):
        set_widgets(item.record.config, settings_prefix)
        if after is not None:
            after(item.record.config)


# -- drawing ------------------------------------------------------------------------------------------

def saved_run_box(key: str, *, settings_prefix: str, sidebar_cfg=None,
                  label: str = "Open a saved run (.parquet or .json)",
                  after_use: Callable | None = None) -> SavedRun | None:
    """The file uploader for slot `key`, and below it what became of the file:
    the refusal sentence, or the opened run with **Use these settings** (which
    sets the widgets of `settings_prefix`) and a switch between it and the
    live run. Returns the SavedRun the page should show, if any."""
    _sync(key)
    # No `type=` filter: a file with another name is refused by us, with a sentence, rather than by Streamlit.
    st.file_uploader(label, key=_file_key(key), help=UPLOAD_HELP, on_change=_on_upload, args=(key,),
                     max_upload_size=SAVED_RUN_MAX_MB)
    item = opened(key)
    if isinstance(item, Refused):
        st.error(f"**Not opened:** {escape_markdown(item.sentence)}", icon=":material/block:")
        return None
    if item is None:
        return None
    if isinstance(item, SavedWatch):
        return watch_file_box(item, key, showing_saved(key) is not None, _set_show, _close)
    cfg = item.record.config
    shown = showing_saved(key)
    st.caption(f"Opened **{escape_markdown(item.name)}**: {item.record.records:,} records × "
               f"{item.record.layer_count} layers, {item.record.status}.")
    same = sidebar_cfg is not None and sidebar_cfg == cfg
    live = current_run(key)
    row = st.container(horizontal=True, wrap=True)  # buttons wrap in a narrow column (Compare) instead of truncating
    row.button("Use these settings", icon=":material/tune:", key=slot(key).control("use_saved"), width="content",
               on_click=_use_settings, args=(key, settings_prefix, after_use), disabled=same,
               help="Put this run's settings (seed included) into the sidebar; then **Run** replays it."
                    + (" The sidebar already has them." if same else ""))
    if shown is not None and live is not None:
        row.button("Show the live run", icon=":material/monitoring:", key=slot(key).control("show_live"), width="content",
                   on_click=_set_show, args=(key, False), help="Back to the run you trained on this page.")
    elif shown is None:
        row.button("Show the saved run", icon=":material/folder_open:", key=slot(key).control("show_file"), width="content",
                   on_click=_set_show, args=(key, True),
                   help="Show this file's run instead of the live one (a run still training is stopped; its records "
                        "stay).")
    row.button("Close the file", icon=":material/close:", key=slot(key).control("close_saved"), width="content",
               on_click=_close, args=(key,), help="Stop showing this saved run (the file on your disk is untouched).")
    if shown is not None and sidebar_cfg is not None and not same:
        diff = [str(change) for change in cfg.diff(sidebar_cfg)]
        st.caption("The sidebar differs from this saved run "
                   f"({escape_markdown('; '.join(diff[:4]))}{'; …' if len(diff) > 4 else ''}): "
                   "**Use these settings** to replay it.")
    return shown


def saved_status(saved: SavedRun | SavedWatch) -> None:
    """One line on what is shown, in the live status line's words, then how the run ended."""
    if isinstance(saved, SavedWatch):
        status_box(saved.run, "saved run")
        return
    r = saved.record
    st.info(f"**Saved run** · {escape_markdown(saved.name)} · {r.status} · {progress_text(r)}",
            icon=":material/folder_open:")
    outcome_line(r)


def show_saved_run(saved: SavedRun, key: str) -> RunRecord:
    """The saved run with the live view's verdict and charts; returns its RunRecord (for the downloads; None
    for a watch(model) run, which has its own)."""
    if isinstance(saved, SavedWatch):
        status_box(saved.run, "saved run")
        show_watch_run(saved.run, key)
        return None
    snap = saved.record
    saved_status(saved)
    if len(snap.steps) == 0:
        st.info("This saved run has no records (it was run with recording off).")
        return snap
    try:
        show_verdict(snap, snap.diagnosis)
        replay_view(snap, key, saved)  # the step scrubber and Play, as for a finished live run
        show_detail_charts(snap, key, histograms=False, owner=saved)
    except Exception as e:  # a chart must never become a traceback
        st.error(f"The charts could not be drawn ({type(e).__name__}: {escape_markdown(str(e)[:200])}).")
    return snap


__all__ = ["UPLOAD_HELP", "SavedRun", "Refused", "open_run_file", "opened", "showing_saved", "put_file",
           "saved_run_box", "saved_status", "show_saved_run"]

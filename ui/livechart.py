"""A chart that stays mounted while a run trains: a Streamlit custom component (components v2)
around one Plotly chart, which `static/livechart.js` draws once and then patches in place.

`live_chart(chart, key)` sends the browser only what it lacks: the full figure the first time (or
when the chart's structure changes), else the patch since the records it was sent the time before
last (`core.figures.live.LiveChart.payload`); a browser that cannot apply a patch asks for the full
figure once (the `resync` trigger). `st.plotly_chart` remounts its element whenever its figure
changes, which is fine for still charts and is what every other chart uses.

Plotly.js is served by this server (`server.enableStaticServing`, `static/plotly.min.js`, copied
from the installed plotly package by `ensure_plotly_js`): nothing comes from a CDN.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import streamlit as st

from core.figures.live import LiveChart

STATIC = Path(__file__).resolve().parent.parent / "static"
MODULE = STATIC / "livechart.js"
PLOTLY_JS = STATIC / "plotly.min.js"


def ensure_plotly_js() -> Path:
    """static/plotly.min.js, the same file as the installed plotly package's (copied when missing or different)."""
    import plotly
    source = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not PLOTLY_JS.exists() or PLOTLY_JS.stat().st_size != source.stat().st_size:
        tmp = PLOTLY_JS.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(PLOTLY_JS)
    return PLOTLY_JS


def _version(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:10]


ensure_plotly_js()
# Sent with every refresh of every live chart, so it only loads the module (cached by the browser;
# the version in its URL changes with the file). Relative to the page: works under a base URL path.
# (Streamlit reads a one-line string as a file path: these keep their newline.)
LOADER = ("export default async function (c) {\n"
          f"  const m = await import(new URL('app/static/livechart.js?v={_version(MODULE)}', document.baseURI).href);\n"
          "  return m.default(c);\n}\n")
HTML = '<div class="gfl-live"></div>'
CSS = ".gfl-live { width: 100%; }\n"

_component = st.components.v2.component("gfl_livechart", html=HTML, css=CSS, js=LOADER, isolate_styles=False)


def element_key(key: str) -> str:
    """The component's key: a chart key ('explore__fig_variance') without '__', which Streamlit
    reserves in a component's id ('explore.fig_variance')."""
    return key.replace("__", ".")


def _state_key(key: str) -> str:
    return f"{key}__sent"


def _forget(key: str) -> None:
    """The browser asked for the full figure (resync): send it on this rerun."""
    st.session_state[_state_key(key)] = None


HISTORY = 3  # a patch starts from the records sent this many refreshes ago: a browser that missed the last ones still applies it
FULL_SENDS = 2  # a new base's figure goes out on this many refreshes in a row
_BUDGET = "livechart__builds_left"  # a count while a run moves (inside `refresh(True)`), else None


@contextmanager
def refresh(live: bool):
    """Wrap a fragment's drawing of live charts: while a run moves (`live`), each refresh builds at
    most one new full figure (the others follow on the next refreshes), so the first chart shows
    after one figure's build time rather than after all of them; and a chart drawn with `every`
    is patched at most that often."""
    st.session_state[_BUDGET] = 1 if live else None
    try:
        yield
    finally:
        st.session_state[_BUDGET] = None


def _may_build() -> bool:
    left = st.session_state.get(_BUDGET)
    if left is None:
        return True
    if left <= 0:
        return False
    st.session_state[_BUDGET] = left - 1
    return True


def live_chart(chart: LiveChart, key: str, *, every: float | None = None) -> None:
    """Draw `chart` under the element `key`, sending only what the browser does not hold yet.

    The browser renders only the latest of the payloads that reach it together (when it falls
    behind, Streamlit's deltas for one element overtake each other), so a patch starts from the
    records sent HISTORY refreshes ago (the browser appends only what it lacks), and a new figure
    goes out FULL_SENDS times (built once, then with a patch from its records). A browser that
    still cannot apply a patch asks for the full figure (resync).

    `every`: while a run moves (inside `refresh(True)`), patch this chart at most every `every`
    seconds; in between the element keeps its place and what it shows (a `pending` payload of a few
    bytes; the next patch starts from records sent before it, so a browser that missed one still
    catches up). Drawing a chart holds the browser's main thread 30-200 ms on a 2-core machine: the
    charts that change slowly leave it to the one that moves."""
    sk = _state_key(key)
    # (base, record counts sent on the last HISTORY refreshes, full sends left, figure JSON, its record counts,
    #  when the last patch went out)
    sent = st.session_state.get(sk)
    same = sent is not None and sent[0] == chart.base
    now = time.monotonic()
    moving = st.session_state.get(_BUDGET) is not None
    if same and sent[2] == 0 and every and moving and now - sent[5] < every:
        _component(key=element_key(key), data={"pending": True}, on_resync_change=partial(_forget, key))
        return
    if same and sent[2] == 0:
        payload = chart.update(sent[1][0])
        fig_json, fig_n, left = None, None, 0
    elif same:
        fig_json, fig_n, left = sent[3], sent[4], sent[2] - 1
        payload = chart.full(fig_json, fig_n)
    elif _may_build():
        fig_json, fig_n, left = chart.figure_json(), chart.n, FULL_SENDS - 1
        payload = chart.full(fig_json, fig_n)
    else:  # its turn comes on a later refresh; the element keeps its place (and what it shows)
        _component(key=element_key(key), data={"pending": True}, on_resync_change=partial(_forget, key))
        return
    if moving:  # the browser may hold it while the chart is off-screen (static/livechart.js)
        payload["live"] = True
    _component(key=element_key(key), data=payload, on_resync_change=partial(_forget, key))
    history = (sent[1] if same else ()) + (chart.n,)
    st.session_state[sk] = (chart.base, history[-HISTORY:], left, fig_json if left else None, fig_n if left else None,
                            now)


def stable_columns(key: str, spec, **kwargs):
    """`st.columns(spec, **kwargs)` inside a container keyed `key`, for live charts in a polling fragment. Bare
    columns there were now and then mounted afresh with everything in them (a live chart then starts over: a
    new element, a resync, the full figure again): 25-29 full heatmap figures in a 500-record run where its
    grid's changes need 12. Keyed, 12 and 18 in two runs; charts outside columns were never remounted."""
    return st.container(key=key).columns(spec, **kwargs)


def preload(key: str) -> None:
    """Start loading Plotly.js in the browser before the first live chart needs it."""
    _component(key=element_key(key), data={"preload": True}, height=1)


__all__ = ["live_chart", "refresh", "stable_columns", "preload", "element_key", "ensure_plotly_js"]

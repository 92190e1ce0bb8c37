"""The one list of pages, and the sidebar's links to them, labelled as people
expect ("Home", not the entry file's name). Streamlit's own list is off
(`client.showSidebarNavigation`); the pages themselves are discovered from
pages/ (classic multipage app), so a new page is its file plus one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from .state import enter_page

APP_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Page:
    label: str   # in the sidebar, and the URL's path ("/Explore")
    path: str    # the script, relative to the app's folder
    icon: str


PAGES = (
    Page("Home", "app.py", ":material/home:"),
    Page("Explore", "pages/1_Explore.py", ":material/science:"),
    Page("Compare", "pages/2_Compare.py", ":material/compare_arrows:"),
    Page("Theory", "pages/3_Theory.py", ":material/functions:"),
    Page("Learn", "pages/4_Learn.py", ":material/school:"),
    Page("Sweep", "pages/5_Sweep.py", ":material/grid_on:"),
)


def page_file(label: str) -> str | None:
    """'pages/1_Explore.py' for 'Explore' (for st.page_link), or None if there is no such page (yet)."""
    for page in PAGES:
        if page.label.lower() == label.lower() and (APP_DIR / page.path).is_file():
            return page.path
    return None


# Streamlit's own status widget ("Running…" with its Stop button, top right) would be a second Stop beside the
# page's own Run controls; it is hidden while a script or a live chart's refresh runs (connection states stay).
_ONE_STOP_CSS = """<style>
[data-testid="stStatusWidget"]:has([data-testid="stStatusWidgetRunningIcon"]),
[data-testid="stStatusWidget"]:has([data-testid="stStatusWidgetRunningManIcon"]) { display: none !important; }
</style>"""


def nav() -> None:
    """Links to every page at the top of the sidebar (and the page's one Stop: see _ONE_STOP_CSS)."""
    enter_page()
    st.html(_ONE_STOP_CSS)
    with st.sidebar:
        for page in PAGES:
            if page_file(page.label) is None:
                continue
            try:
                st.page_link(page.path, label=page.label, icon=page.icon)
            except StreamlitAPIException:  # a page script run on its own (AppTest): no page registry
                return
        st.divider()


__all__ = ["Page", "PAGES", "page_file", "nav"]

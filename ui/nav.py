"""The sidebar's page list, labelled as people expect ("Home", not the entry
file's name). Streamlit's own list is off (`client.showSidebarNavigation`)."""
from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from .share import page_file

PAGES = [
    ("Home", "app.py", ":material/home:"),
    ("Explore", None, ":material/science:"),
    ("Compare", None, ":material/compare_arrows:"),
    ("Theory", None, ":material/functions:"),
    ("Learn", None, ":material/school:"),
    ("Sweep", None, ":material/grid_on:"),
]


def nav() -> None:
    """Links to every page at the top of the sidebar."""
    with st.sidebar:
        for label, path, icon in PAGES:
            target = path or page_file(label)
            if target is None:
                continue
            try:
                st.page_link(target, label=label, icon=icon)
            except StreamlitAPIException:  # a page script run on its own (AppTest): no page registry
                return
        st.divider()


__all__ = ["nav"]

"""Links between pages that carry settings: `st.page_link` (navigation inside
the session) when the page is registered, a plain link otherwise (a page
script run on its own, as in `AppTest.from_file("pages/...")`)."""
from __future__ import annotations

from typing import Iterable, Mapping

import streamlit as st
from streamlit.errors import StreamlitAPIException

from .nav import page_file
from .share import page_url


def page_link(page: str, label: str, query: Mapping[str, str] | Iterable[tuple[str, str]],
              icon: str | None = None) -> None:
    """A link to `page` ("Explore", "Compare", ...) with `query` as its settings: a mapping, or
    (name, value) pairs where a name repeats (a sweep's `axis`)."""
    query = dict(query) if isinstance(query, Mapping) else list(query)
    path = page_file(page)
    if path is not None:
        try:
            st.page_link(path, label=label, icon=icon, query_params=query)
            return
        except StreamlitAPIException:  # page not registered in this run (a page script run alone)
            pass
    st.markdown(f"{icon + ' ' if icon else ''}[{label}]({page_url(page, query)})")


__all__ = ["page_link"]

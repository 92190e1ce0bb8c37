"""A scenario's story beside its charts: what it shows and what to watch for (core.scenarios)."""
from __future__ import annotations

import streamlit as st

from core.schema import RunConfig

from .share import Link


def scenario_story(link: Link, shown: RunConfig, shown_b: RunConfig | None = None) -> bool:
    """The story of the scenario `link` names, while the settings on screen (`shown`: the run's, or the
    sidebar's before a run; `shown_b` B's on Compare) are still the scenario's. True when it was drawn."""
    sc = link.scenario
    if sc is None or shown != link.config or (shown_b is not None and shown_b != link.b_config):
        return False
    with st.container(border=True, key=f"story_{sc.key}"):
        st.markdown(f"**{sc.title}** · {sc.story}")
        if sc.watch_for:
            st.markdown(f":material/visibility: **What to watch for:** {sc.watch_for}")
    return True


__all__ = ["scenario_story"]

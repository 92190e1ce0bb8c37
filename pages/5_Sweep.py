"""Sweep: one or two settings as axes, a real training run per cell, the picture filling in live.

URL → sidebar (every other setting, as in Explore) → axes → Run → heatmap or
lines with theory on top → cells as Explore links → downloads → share link.
The logic lives in ui/sweep.py and core/sweep/.
"""
import streamlit as st

st.set_page_config(page_title="Sweep · Gradient Flow Lab", page_icon="📉", layout="wide")

from ui.nav import nav  # noqa: E402

nav()

from ui.share import show_notes  # noqa: E402
from ui.sidebar import sidebar  # noqa: E402
from ui.sweep import (axis_controls, live_sweep, metric_control, run_buttons, scenario_links,  # noqa: E402
                      share_sweep, sweep_from_query)

KEY = "sweep"

st.title("Sweep")
st.caption("Choose one or two settings as axes: every cell is a real training run with the sidebar's other "
           "settings. The picture fills in as cells finish; finished cells are kept, so a sweep reopens at once.")

base_defaults, axis_texts, metric_default, notes = sweep_from_query()
show_notes(notes)
base = sidebar(base_defaults, key_prefix=KEY)
st.sidebar.caption("An axis' setting takes the axis' values; the sidebar gives every other setting.")

with st.expander("Reference sweeps", icon=":material/auto_awesome:", expanded=not axis_texts):
    scenario_links()
spec, _ = axis_controls(axis_texts, base)
metric = metric_control(metric_default)
run_buttons(spec)
if spec is not None:
    live_sweep(spec, metric)
    st.divider()
    share_sweep(spec, metric)

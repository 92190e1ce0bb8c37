"""Explore: one network, trained live, every layer's signal on screen.

URL → sidebar → Run controls → a saved run, if one is opened → live status,
health verdict and charts (of the live run or the saved one) → downloads and
code → share link. The logic lives in ui/ and core/.
"""
import streamlit as st

st.set_page_config(page_title="Explore · Gradient Flow Lab", page_icon="📉", layout="wide")

from ui.nav import nav  # noqa: E402

nav()

from ui.downloads import code_snippets, download_buttons  # noqa: E402
from ui.follow import FOLLOW, follow_view, mode_switch  # noqa: E402
from ui.live import live_view, show_theory_preview  # noqa: E402
from ui.saved import opened, saved_run_box, show_saved_run, showing_saved  # noqa: E402
from ui.session import current_run, limits_problem, run_controls, start_run, warm_up_engine  # noqa: E402
from ui.share import explore_url, follow_url, link_query, open_link, settle_link, share_box, show_notes  # noqa: E402
from ui.sidebar import reset_widgets, sidebar  # noqa: E402
from ui.story import scenario_story  # noqa: E402
from ui.state import SlotKeys  # noqa: E402

KEY = SlotKeys("explore").slot  # this page's run, saved run, settings widgets and charts (ui.state)
warm_up_engine()

st.title("Explore")
st.caption("Pick a network in the sidebar and press **Run**: a real PyTorch network trains while every layer's "
           "activation and gradient variance is drawn live.")

link, arrived = open_link(KEY)  # the URL's settings when a link arrives; else the page's own echo (ui.share)
if arrived:
    reset_widgets(link.config, KEY)
if problem := limits_problem():
    st.error(problem)
cfg = sidebar(link.config, key_prefix=KEY)
if arrived:
    link = settle_link(KEY, link, cfg)
show_notes(list(link.notes) if cfg == link.config else [])  # until a setting is changed
follow_url(KEY, link_query(cfg, link))  # the address bar is always the sidebar's experiment
if arrived and link.autorun:  # a scenario link runs on open (autorun=false: it waits for Run)
    start_run(cfg, KEY)
if mode_switch(KEY) == FOLLOW:  # a run of the user's own model (core.watch), not the sidebar's network
    follow_view(KEY)
    st.stop()

run_controls(cfg, KEY, stale_note=showing_saved(KEY) is None)
with st.expander("Open a saved run", icon=":material/folder_open:", expanded=opened(KEY) is not None):
    saved = saved_run_box(KEY, settings_prefix=KEY, sidebar_cfg=cfg)
run = current_run(KEY)
scenario_story(link, run.cfg if run is not None and saved is None else cfg)
snap = show_saved_run(saved, KEY) if saved is not None else live_view(KEY)
if snap is None and saved is None:
    st.info(f"{cfg.describe()}. Press **Run** to train it, or **Step** to look at it at initialization.",
            icon=":material/arrow_back:")
    show_theory_preview(cfg, KEY)

st.divider()
st.subheader("Take it with you")
c1, c2 = st.columns([1, 1.4], gap="large")
with c1:
    st.markdown("**Statistics of this run**")
    download_buttons(snap, KEY)
    if snap is not None and snap.config != cfg:
        # The run on screen was made with other settings than the sidebar's now: link to both.
        share_box(explore_url(snap.config), label="Link to the run on screen")
        share_box(explore_url(cfg), label="Link to the sidebar's settings")
    else:
        share_box(explore_url(cfg), label="Link to these settings")
with c2:
    if code_snippets(cfg, KEY):
        st.caption("Code that builds and initializes this exact network.")

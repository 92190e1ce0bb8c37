"""Compare: two settings side by side, same seed and data, overlaid and as heatmaps.

URL (A plain, B as b_...) → sidebar tabs A and B → Run both, or open saved
runs for A and/or B → progress, verdicts and charts → what differs → share link. The logic lives in ui/compare.py.
"""
import streamlit as st

st.set_page_config(page_title="Compare · Gradient Flow Lab", page_icon="📉", layout="wide")

from ui.nav import nav  # noqa: E402

nav()

from ui.compare import (PAGE, PREV_A, SLOTS, any_opened, controls, live_pair, run_buttons, runs, saved_boxes,  # noqa: E402
                        settings_diff, start_pair)
from ui.downloads import code_snippets  # noqa: E402
from ui.session import limits_problem  # noqa: E402
from ui.share import (compare_url, explore_url, follow_url, link_query, open_link, settle_link, share_box,  # noqa: E402
                      show_notes)
from ui.sidebar import reset_widgets  # noqa: E402
from ui.story import scenario_story  # noqa: E402

st.title("Compare")
st.caption("Two networks that differ only in what you change, trained side by side on the same data: "
           "set **A** in the sidebar, change what you want in **B**, and press **Run A and B**.")

link, arrived = open_link(PAGE, "Compare")  # A and B from the URL when a link arrives (ui.share)
if arrived:
    reset_widgets(link.config, SLOTS["A"].slot)
    reset_widgets(link.b_config, SLOTS["B"].slot)
    st.session_state[PREV_A] = link.config  # the link's A is not a change for B to follow
if problem := limits_problem():
    st.error(problem)
a, b = controls(link.config, link.b_config)
if arrived:
    link = settle_link(PAGE, link, a, b)
show_notes(list(link.notes) if (a, b) == (link.config, link.b_config) else [])
follow_url(PAGE, link_query(a, link, b))  # the address bar is always this comparison
if arrived and link.autorun:  # a scenario link runs A and B on open (autorun=false: it waits)
    for problem in start_pair(a, b):
        st.error(f"Not started. {problem}")

st.subheader("What differs")
diff = settings_diff(a, b)
if diff.empty:
    st.info("A and B are identical so far: open the **Setting B** tab in the sidebar and change something "
            "(for example the initializer, or BatchNorm).", icon=":material/tune:")
else:
    st.table(diff, hide_index=True, width="content")
if (a.seed, a.dataset) != (b.seed, b.dataset):
    st.warning("A and B use a different seed or dataset, so part of any difference comes from different data "
               "or weights, not only from the settings you changed.")

run_buttons(a, b)
ran = runs()
scenario_story(link, *(ran[x].cfg if ran[x] is not None else cfg for x, cfg in (("A", a), ("B", b))))
with st.expander("Open saved runs", icon=":material/folder_open:", expanded=any_opened()):
    saved_boxes(a, b)
if not live_pair():
    st.info("Press **Run A and B** to train both networks; their charts appear here as they train.",
            icon=":material/play_arrow:")

st.divider()
st.subheader("Take it with you")
c1, c2 = st.columns([1, 1.4], gap="large")
with c1:
    share_box(compare_url(a, b), label="Link to this comparison")
    st.markdown(f"Open [A alone]({explore_url(a)}) or [B alone]({explore_url(b)}) in Explore.")
with c2:
    tab_a, tab_b = st.tabs(["Code for A", "Code for B"])
    with tab_a:
        code_snippets(a, SLOTS["A"].slot)
    with tab_b:
        code_snippets(b, SLOTS["B"].slot)

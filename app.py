"""Gradient Flow Lab — Home: what this is, and one-click scenarios.

Classic multipage app: the pages are discovered from pages/ (no
st.navigation, which misroutes deep links on a fresh server).
"""
import streamlit as st

st.set_page_config(page_title="Gradient Flow Lab", page_icon="📉", layout="wide")

from ui.nav import nav  # noqa: E402

nav()

from core.scenarios import SCENARIOS  # noqa: E402
from ui.links import page_link  # noqa: E402
from ui.session import warm_up_engine  # noqa: E402
from core.schema import RunConfig  # noqa: E402
from ui.share import explore_query, scenario_query  # noqa: E402

warm_up_engine()  # the first Run on this server should not wait for start-up

st.title("Gradient Flow Lab")
st.markdown(
    "**See why weight initialization matters.** Pick a depth, an activation, an initializer and BatchNorm on or off, "
    "then watch every layer's activations and back-propagated gradients vanish, explode or flow while a real PyTorch "
    "network trains, beside what mean-field theory predicts, in an experiment you can share as a link."
)
page_link("Explore", "Start from scratch in Explore", explore_query(RunConfig()), icon=":material/science:")

st.subheader("One-click scenarios")
st.caption("Each card opens its experiment and starts training at once, with what to watch for beside the charts.")
cols = st.columns(3, gap="medium")
for i, sc in enumerate(SCENARIOS.values()):
    cfg = sc.config
    with cols[i % 3].container(border=True):
        st.markdown(f"**{sc.title}**")
        st.write(sc.story)
        if sc.compare is not None:
            st.caption(f"{cfg.describe(short=True)}  \nA → B: {'; '.join(map(str, cfg.diff(sc.compare)))}")
            page_link("Compare", "Run A and B in Compare", scenario_query(sc), icon=":material/compare_arrows:")
            a, b = st.columns(2)
            with a:
                page_link("Explore", "A in Explore", explore_query(cfg), icon=":material/science:")
            with b:
                page_link("Explore", "B in Explore", explore_query(sc.compare), icon=":material/science:")
        else:
            st.caption(cfg.describe(short=True))
            page_link("Explore", "Run it in Explore", scenario_query(sc), icon=":material/play_arrow:")

st.subheader("Sweeps: many runs, one picture")
from core.sweep.scenarios import SWEEP_SCENARIOS  # noqa: E402
from ui.sweep import sweep_query  # noqa: E402

cols = st.columns(3, gap="medium")
for i, sw in enumerate(SWEEP_SCENARIOS.values()):
    with cols[i % 3].container(border=True):
        st.markdown(f"**{sw.title}**")
        st.write(sw.story)
        st.caption(f"{sw.spec.size} runs: {' × '.join(sw.spec.axis_texts())}")
        page_link("Sweep", "Open the sweep", sweep_query(sw.spec, sw.metric), icon=":material/grid_on:")

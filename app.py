"""Gradient Flow Lab — Home: what this is, and one-click scenarios.

Classic multipage app: the pages are discovered from pages/ (no
st.navigation, which misroutes deep links on a fresh server).
"""
import streamlit as st

st.set_page_config(page_title="Gradient Flow Lab", page_icon="📉", layout="wide")

from ui.nav import nav  # noqa: E402

nav()

from core.scenarios import SCENARIOS  # noqa: E402
from ui.session import warm_up_engine  # noqa: E402
from ui.share import compare_query, explore_query, page_file  # noqa: E402

warm_up_engine()  # the first Run on this server should not wait for start-up

st.title("Gradient Flow Lab")
st.markdown(
    "**See why weight initialization matters.** Pick a depth, an activation, an initializer and BatchNorm on or off, "
    "then watch every layer's activations and back-propagated gradients vanish, explode or flow while a real PyTorch "
    "network trains, beside what mean-field theory predicts, in an experiment you can share as a link."
)
explore = page_file("Explore")
if explore:
    st.page_link(explore, label="Start from scratch in Explore", icon=":material/science:")

st.subheader("One-click scenarios")
compare_page = page_file("Compare")
cols = st.columns(3, gap="medium")
for i, sc in enumerate(SCENARIOS.values()):
    cfg = sc.config
    with cols[i % 3].container(border=True):
        st.markdown(f"**{sc.title}**")
        st.write(sc.story)
        if sc.compare is not None:
            qa, qb = cfg.to_query(), sc.compare.to_query()
            diff = [f"{k} {v} → {qb[k]}" for k, v in qa.items() if qb.get(k) != v]
            st.caption(f"depth {cfg.depth} · {cfg.activation} · A → B: {', '.join(diff)}")
            if compare_page:
                st.page_link(compare_page, label="Compare A and B", icon=":material/compare_arrows:",
                             query_params=compare_query(cfg, sc.compare))
            if explore:
                a, b = st.columns(2)
                with a:
                    st.page_link(explore, label="A in Explore", icon=":material/science:", query_params=explore_query(cfg))
                with b:
                    st.page_link(explore, label="B in Explore", icon=":material/science:",
                                 query_params=explore_query(sc.compare))
        else:
            st.caption(f"depth {cfg.depth} · {cfg.activation} · {cfg.init}"
                       f"{f' (σ_w = {cfg.sigma_w:g})' if cfg.sigma_w != 1 else ''}"
                       f"{' · BatchNorm' if cfg.batchnorm else ''} · {cfg.steps} steps")
            if explore:
                st.page_link(explore, label="Open in Explore", icon=":material/science:", query_params=explore_query(cfg))

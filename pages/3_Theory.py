"""Theory: mean-field signal propagation for the current settings.

URL → small sidebar → the numbers in words → per-layer prediction beside a
measurement at initialization → variance map and phase diagram → Jacobian
spectrum → links. Everything is computed in core.theory and drawn by core.figures;
ui/theory.py caches those calls.
"""
import streamlit as st

st.set_page_config(page_title="Theory · Gradient Flow Lab", page_icon="📉", layout="wide")

from ui.nav import nav  # noqa: E402

nav()

from core import figures as F  # noqa: E402
from core import theory as T  # noqa: E402
from core.registry import ACTIVATIONS  # noqa: E402
from ui import theory as TH  # noqa: E402
from ui.links import page_link  # noqa: E402
from ui.live import chart  # noqa: E402
from ui.share import config_from_query, explore_query, follow_url, page_url, share_box, show_notes  # noqa: E402


st.title("Theory")
st.caption("What mean-field theory predicts for a wide random network at initialization: how the signal's "
           "variance settles from layer to layer, whether gradients shrink or grow, and how far the "
           "input–output map is from an isometry.")

base, notes = config_from_query()
base, limit_notes = TH.clamp_to_limits(base)
show_notes(notes)
for note in limit_notes:
    st.warning(note, icon=":material/warning:")
cfg = TH.sidebar(base)
follow_url(TH.KEYS, list(explore_query(cfg).items()))  # the address bar follows the settings
link_cfg = cfg                     # what the links below carry: the link's own network
if not cfg.architecture.mlp_theory:
    TH.show_own_theory(cfg)
cfg = TH.mean_field_config(cfg)  # the mean-field sections: cfg, or a plain MLP of the same settings
act = ACTIVATIONS[cfg.activation].label

with st.expander("What the theory assumes, and when it does not apply", expanded=False):
    st.markdown(TH.ASSUMPTIONS)
prof = TH.profile(cfg)
for sentence in T.limitations(cfg, prof):
    st.warning(sentence, icon=":material/warning:")

# -- the numbers ------------------------------------------------------------------------------------
n = TH.numbers(cfg)
s = n.summary
st.subheader(f"{act} at σ_w² = {n.sigma_w2:.3g}, σ_b² = {n.sigma_b2:.3g}")
st.caption(n.source)
c = st.columns(5)
c[0].metric("q*", TH.fmt(s["q_star"]) if s["phase"] != "unbounded" else "∞",
            help="The fixed point of the pre-activation second moment E[h²]: the value every deep layer settles to, "
                 "q* = σ_w² E[φ(√q* z)²] + σ_b².")
c[1].metric("χ₁", TH.fmt(s["chi1"]),
            help="The gradient factor per layer, χ₁ = σ_w² E[φ'(√q* z)²]: each layer multiplies the back-propagated "
                 "gradient's second moment by χ₁. Below 1 gradients vanish with depth, above 1 they explode.")
story = T.phase_story(s, prof)
c[2].metric("phase", story.word,
            help=story.help + " Ordered (χ₁ < 1): gradients vanish with depth. Chaotic (χ₁ > 1): they explode. "
                 "Critical, the edge of chaos: both survive to great depth. The word is checked against what these "
                 "layers do (the chart below): near the edge, a network of finite depth can still go the other way.")
c[3].metric("ξ_q", TH.depth_scale_text(s["depth_scale_q"], s["phase"]),
            help="Depth scale of the variance: about how many layers it takes to reach q*, ξ_q = −1/log f'(q*).")
c[4].metric("ξ_c", TH.depth_scale_text(s["depth_scale_c"], s["phase"]),
            help="Depth scale of correlations: about how many layers information about the input (and the gradient) "
                 "survives, ξ_c = −1/log χ_c. Infinite at the edge of chaos; networks train to a depth of a few ξ_c.")
st.markdown(story.text)

# -- layer by layer ---------------------------------------------------------------------------------
st.subheader("Layer by layer")
with st.spinner("Measuring the real network at initialization…"):
    measured = TH.measured_at_init(cfg)
mq, mg = (None, None) if isinstance(measured, str) else (measured["q"], measured["grad_rel"])
chart(F.fig_predicted_profile(prof, mq, mg), TH.KEYS.fig("profile"))
st.caption("Dashed: the theory's qˡ, iterated from the input with each layer's own σ_w², and its gradient profile "
           "E[(∂L/∂hˡ)²] relative to the last layer. Dots: the same network measured at step 0 on one batch "
           f"of {cfg.batch_size} {cfg.dataset} examples. "
           + (measured if isinstance(measured, str) else "They agree when layers are wide and the setting is one the "
                                                        "theory covers."))

# -- variance map and phase diagram -----------------------------------------------------------------
st.subheader("The variance map")
chart(TH.variance_map_figure(cfg.activation, n.sigma_w2, n.sigma_b2), TH.KEYS.fig("map"))
st.caption("Each layer maps the second moment q of its pre-activations to the next layer's f(q). Where the curve "
           "crosses the diagonal is the fixed point q* (black); the purple staircase follows the layers from an input of "
           "second moment 1.")

st.subheader("The order-to-chaos phase diagram")
quantity = st.radio("Colour the diagram by", ["chi1", "xi_c"], horizontal=True, key=TH.QUANTITY,
                    format_func={"chi1": "χ₁: order ↔ chaos", "xi_c": "ξ_c: how deep signals survive"}.get,
                    help="χ₁ says whether gradients shrink or grow per layer; ξ_c how many layers a signal about "
                         "the input survives.")
chart(TH.phase_figure(cfg.activation, n.sigma_w2, n.sigma_b2, quantity), TH.KEYS.fig("phase"))
st.caption("Every (σ_w², σ_b²) at once; the star is this setting, the black line the edge of chaos (χ₁ = 1). "
           "He initialization puts ReLU on it (σ_w² = 2, σ_b² = 0); Xavier and LeCun put tanh and SELU at "
           "σ_w² = 1.")

# -- Jacobian ---------------------------------------------------------------------------------------
st.subheader("Input–output Jacobian at initialization")
with st.spinner("Computing the Jacobian's singular values…"):
    jac = TH.jacobian(cfg)
if isinstance(jac, str):
    st.info(jac)
else:
    svs, mean = jac
    chart(F.fig_jacobian_spectrum(svs, mean), TH.KEYS.fig("jacobian"))
    st.caption("The singular values of ∂aᴸ/∂x, how much the whole network stretches each input direction "
               f"({T.jacobian_inputs(cfg)} random inputs, float64, this network's real weights). All near 1 is "
               "dynamical isometry: every direction, and so every gradient, passes through unchanged. "
               "Orthogonal weights with tanh at the edge of chaos get close; ReLU cannot, since it zeroes half "
               "of every layer's directions. The theory predicts the mean squared value (Π χ₁, for infinitely wide "
               "layers; at finite width the measured mean drifts below it with depth), not the spread.")

# -- links ------------------------------------------------------------------------------------------
st.divider()
c1, c2 = st.columns([1, 1.4], gap="large")
with c1:
    st.markdown("**Try it on a real network**")
    page_link("Explore", "Open these settings in Explore", explore_query(link_cfg), icon=":material/science:")
    st.caption("Explore trains this network live, with the theory's curves drawn over the measured ones.")
with c2:
    share_box(page_url("Theory", link_cfg.to_query()), label="Link to this page")

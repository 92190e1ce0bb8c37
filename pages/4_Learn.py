"""Learn: the questions people ask about initialization, each answered briefly with
its formula, a small live experiment and a link to the full one.

Text on the left, chart on the right. The numbers come from core (a network measured at
initialization, the theory's curves: cached in ui/learn.py), the charts from core.figures.
"""
import numpy as np
import streamlit as st

st.set_page_config(page_title="Learn · Gradient Flow Lab", page_icon="📉", layout="wide")

from ui.nav import nav  # noqa: E402

nav()

from core import figures as F  # noqa: E402
from core.io.codegen import keras_code, pytorch_code  # noqa: E402
from core.scenarios import SCENARIOS  # noqa: E402
from core.theory import pow10  # noqa: E402
from ui import learn as L  # noqa: E402
from ui.links import page_link  # noqa: E402
from ui.live import chart  # noqa: E402

QUESTIONS = [
    "What is the vanishing gradient problem, and how does it slow or stop training?",
    "How does Xavier/Glorot initialization balance the forward and the backward pass?",
    "Which activations saturate, and why does ReLU help?",
    "What are exploding gradients, and why do they make training unstable?",
    "Why does initialization matter at all?",
    "What does BatchNorm change about the need for careful initialization?",
    "How do I write He initialization in PyTorch and in TensorFlow/Keras?",
]
# Each question's anchor on this ~6,000-pixel page: the list at the top links to them (…/Learn#he-init-code).
ANCHORS = ["vanishing-gradients", "xavier-glorot", "saturating-activations", "exploding-gradients",
           "why-initialization", "batchnorm", "he-init-code"]

st.title("Learn")
st.markdown(
    "Seven questions about initialization, each answered in a few lines with the formula behind it. Every chart "
    f"is a real network **at initialization** (width {L.MINI_WIDTH}, one batch of digits, no training yet), "
    "computed when you open this page; each link opens the full experiment, trained live."
)
st.markdown("\n".join(f"{i}. [{q}](#{a})" for i, (q, a) in enumerate(zip(QUESTIONS, ANCHORS), 1)))
st.caption("Notation: layer l computes h = W a + b and a = φ(h); fan_in is the number of inputs of a layer, "
           "σ_w² = fan_in · Var(W); δ = ∂L/∂h is the gradient that flows back.")


def question(i: int):
    st.divider()
    st.subheader(f"{i}. {QUESTIONS[i - 1]}", anchor=ANCHORS[i - 1])
    return st.columns([1.15, 1], gap="large")


# 1 -- vanishing gradients ---------------------------------------------------------------------------
text, fig = question(1)
sig = L.mini(SCENARIOS["sigmoid_vanishing"].config)
relu_he = sig.replace(activation="relu", init="kaiming_normal")
g_sig = L.grad_rel(sig)
g_he = L.grad_rel(relu_he)
with text:
    st.markdown("Training moves every weight by −lr × ∂L/∂W, and ∂L/∂W of a layer is its input times δ, the "
                "gradient that arrives from above. δ reaches layer l only by passing back through every layer "
                "above it:")
    st.latex(r"\delta^{l} = \varphi'(h^{l}) \odot (W^{l+1})^{\top}\,\delta^{l+1}")
    st.latex(r"\mathbb{E}[(\delta^{l})^2] \approx \chi\,\mathbb{E}[(\delta^{l+1})^2],"
             r"\qquad \chi = \sigma_w^2\,\mathbb{E}[\varphi'(h)^2]")
    st.markdown(
        f"Each layer multiplies the gradient's second moment by χ, so over L layers it changes by about χᴸ. "
        f"When χ < 1 it **vanishes** geometrically toward the input. Sigmoid's slope is at most 1/4, so χ is "
        f"about 1/18 with Xavier weights: in this {sig.depth}-layer network, layer 1's gradient is "
        f"**{pow10(g_sig[0])}** of the last layer's (chart, red).")
    st.markdown("With plain SGD the first layers then barely move: they keep their random weights, and the layers "
                "above have to learn on top of random features. Training crawls, or stalls at a poor loss. "
                "ReLU with He initialization (blue) keeps χ = 1, and every layer gets a gradient of the same size.")
    L.scenario_link("sigmoid_vanishing")
with fig:
    L.by_layer_chart({"sigmoid, Xavier normal": g_sig, "ReLU, He normal": g_he}, sig.depth, "vanishing",
                     what="Var(∂L/∂h)", y_title="relative to the last layer")

# ... and through time, in a recurrent net (the same product, one factor per time step)
seq = SCENARIOS["rnn_vs_lstm_long_lag"]
rnn_cfg, lstm_cfg = seq.config.replace(width=L.MINI_WIDTH), seq.compare.replace(width=L.MINI_WIDTH)
g_rnn, g_lstm = L.through_time(rnn_cfg), L.through_time(lstm_cfg)
text, fig = st.columns([1.15, 1], gap="large")
with text:
    st.markdown(
        "A recurrent network has the same problem **through time**: it applies one W_hh at every step, so the "
        "gradient that reaches the input at step t has been multiplied by W_hhᵀ and φ′ once per step since:")
    st.latex(r"\frac{\partial L}{\partial h_{t-1}} = W_{hh}^{\top}\big(\varphi'(z_t) \odot "
             r"\frac{\partial L}{\partial h_t}\big)")
    st.latex(r"\mathbb{E}\big[(\partial L/\partial h_{t-k})^2\big] \propto "
             r"\big(\rho(W_{hh})^2\,\mathbb{E}[\varphi'^2]\big)^{k}")
    st.markdown(
        f"With ρ(W_hh) ≤ 1 and tanh's slope below 1, a vanilla RNN's gradient from the last of "
        f"{rnn_cfg.seq_len} steps is **{pow10(g_rnn[0])}** of its size by the time it reaches t = 1 (chart, red): "
        f"it cannot learn what it saw first. An LSTM's cell state c_t = f_t ⊙ c_{{t−1}} + … passes its gradient "
        f"back through the forget gate alone, with no W_hh and no φ′ on the way: at the same lag it keeps "
        f"**{pow10(g_lstm[0])}** (blue), and trained on the recall task it names the class the RNN forgets.")
    L.scenario_link("rnn_vs_lstm_long_lag")
with fig:
    chart(F.fig_lines({"vanilla tanh RNN": g_rnn, "LSTM, forget bias 1": g_lstm},
                      title=f"Var(∂L/∂h_t) by time step at initialization, {rnn_cfg.seq_len} steps",
                      x_title="time step t (the output reads h_T)", y_title="relative to the last step"),
          L.KEYS.fig("through_time"))

# 2 -- Xavier ----------------------------------------------------------------------------------------
text, fig = question(2)
sc = SCENARIOS["tanh_small_vs_xavier"]
small, xavier = L.mini(sc.config), L.mini(sc.compare)
q_small, q_xav = L.var_h(small), L.var_h(xavier)
with text:
    st.markdown("For a unit that is close to linear around 0 (tanh is, with slope 1), one layer multiplies the "
                "variance of the signal going forward by fan_in · Var(W), and of the gradient going backward by "
                "fan_out · Var(W):")
    st.latex(r"\text{forward: }\ \mathrm{Var}(h^{l+1}) = n_{\mathrm{in}}\,\mathrm{Var}(W)\,\mathrm{Var}(a^{l})")
    st.latex(r"\text{backward: }\ \mathrm{Var}(\delta^{l}) = n_{\mathrm{out}}\,\mathrm{Var}(W)\,"
             r"\mathrm{Var}(\delta^{l+1})")
    st.markdown("Forward wants Var(W) = 1/n_in, backward wants 1/n_out. Glorot and Bengio (2010) take the "
                "compromise between the two, which is exact for square layers:")
    st.latex(r"\mathrm{Var}(W) = \frac{2}{n_{\mathrm{in}} + n_{\mathrm{out}}}")
    st.latex(r"W \sim \mathcal{N}\!\left(0, \tfrac{2}{n_{\mathrm{in}}+n_{\mathrm{out}}}\right)"
             r"\ \text{ or }\ W \sim \mathcal{U}\!\left(\pm\sqrt{\tfrac{6}{n_{\mathrm{in}}+n_{\mathrm{out}}}}\right)")
    st.markdown(
        f"Weights 2.5× too small (σ_w = {sc.config.sigma_w:g}) lose a factor σ_w² = {sc.config.sigma_w ** 2:.2f} per "
        f"layer: by layer {small.depth} the signal's variance is {pow10(q_small[-1])} (red). Xavier loses only "
        f"a factor {q_xav[0] / q_xav[-1]:.0f} over the same depth (blue; a slow drift, because tanh's slope falls "
        "below 1 away from 0). "
        "Xavier assumes a zero-centred activation with slope 1 at 0: right for tanh, wrong for ReLU (next questions).")
    L.scenario_link("tanh_small_vs_xavier")
with fig:
    L.by_layer_chart({f"tanh, σ_w = {sc.config.sigma_w:g} (too small)": q_small, "tanh, Xavier normal": q_xav},
                     small.depth, "xavier")

# 3 -- saturation and ReLU ---------------------------------------------------------------------------
text, fig = question(3)
h, d = L.slope_curves(("sigmoid", "tanh", "relu"))
with text:
    st.markdown("Sigmoid and tanh flatten out for large |h|: their slope goes to 0, and a unit sitting there "
                "passes almost no gradient back (δ is multiplied by φ'(h)). Large weights push pre-activations "
                "into this flat region; sigmoid is also never steeper than 1/4, and its outputs have mean 1/2, "
                "which shifts every layer above it.")
    st.latex(r"\sigma'(h) = \sigma(h)\,(1-\sigma(h)) \le \tfrac14,\qquad \mathrm{relu}'(h) = \mathbb{1}[h>0]")
    st.latex(r"\tanh'(h) = 1-\tanh^2(h) < 0.1\ \text{ for }\ |h| > 1.82")
    st.markdown("ReLU never saturates for h > 0: an active unit passes its gradient on unchanged, however large h "
                "is. The price: it zeroes half of its inputs, so E[relu(h)²] = Var(h)/2 and every layer halves the "
                "signal unless Var(W) = 2/n_in, He initialization. With Xavier, a 30-layer ReLU network keeps only "
                "2⁻²⁹ of its variance by the last layer. And a unit whose input is negative for every example is "
                "dead: it gets no gradient at all.")
    L.scenario_link("relu_xavier_vs_he")
with fig:
    chart(F.fig_lines({"sigmoid′": d["sigmoid"], "tanh′": d["tanh"], "ReLU′": d["relu"]},
                        x={"sigmoid′": h, "tanh′": h, "ReLU′": h}, log_y=False, x_title="pre-activation h",
                        y_title="slope φ′(h)", title="How much gradient each activation lets through"),
            L.KEYS.fig("saturation"))

# 4 -- exploding gradients ---------------------------------------------------------------------------
text, fig = question(4)
boom = L.mini(SCENARIOS["exploding"].config)
he = boom.replace(init="kaiming_normal", sigma_w=1.0)
q_boom, q_he = L.var_h(boom), L.var_h(he)
g_boom = L.grad_rel(boom)
with text:
    st.markdown("The same product, with factors above 1. For ReLU with W ~ N(0, σ_w²/n_in), each layer multiplies "
                "both the forward variance and the gradient's second moment by σ_w²/2:")
    st.latex(r"\mathrm{Var}(h^{L}) \approx \left(\tfrac{\sigma_w^2}{2}\right)^{L-1}\mathrm{Var}(h^{1})")
    st.latex(r"\mathbb{E}[(\delta^{1})^2] \approx \left(\tfrac{\sigma_w^2}{2}\right)^{L-1}\mathbb{E}[(\delta^{L})^2]")
    st.markdown(
        f"With σ_w = {boom.sigma_w:g} that is ×{boom.sigma_w ** 2 / 2:.1f} per layer: the last layer's activations "
        f"have variance {pow10(q_boom[-1])} (red) and layer 1's gradient is "
        f"{pow10(g_boom[0])} times the last layer's. The logits are huge, the loss and its gradients are "
        "huge, and the first SGD step throws the weights far away: the loss jumps around, becomes inf or nan, and "
        "training diverges. A smaller learning rate can keep the first steps finite, but the network stays badly "
        "conditioned; the cure is the right scale (He, blue).")
    L.scenario_link("exploding")
with fig:
    L.by_layer_chart({f"ReLU, σ_w = {boom.sigma_w:g}": q_boom, "ReLU, He normal": q_he}, boom.depth,
                     "exploding")

# 5 -- why initialization matters --------------------------------------------------------------------
text, fig = question(5)
grid = tuple(float(x) for x in np.round(np.linspace(1.0, 3.0, 81), 4))
window = L.gradient_window("relu", (10, 30, 50), grid)
with text:
    st.markdown("A deep network is a long product: the signal goes through every layer forward, the gradient "
                "through every layer backward, and each layer multiplies their size by some factor. After L "
                "layers only a factor of exactly 1 neither vanishes nor explodes, and the deeper the network, the "
                "narrower the window around 1. Mean-field theory makes this exact: a deep network trains well at the "
                "edge of chaos,")
    st.latex(r"\chi_1 = \sigma_w^2\,\mathbb{E}_{z\sim\mathcal{N}(0,1)}\!\left[\varphi'(\sqrt{q^*}\,z)^2\right] = 1")
    st.markdown("He (σ_w² = 2 for ReLU), Xavier/LeCun (σ_w² = 1 for tanh and SELU) and orthogonal weights are "
                "recipes for χ₁ ≈ 1. The chart shows the theory's gradient ratio between the first and the last "
                f"layer for ReLU: at depth 50, missing σ_w² = 2 by only 10% (σ_w² = 1.8) already leaves layer 1 "
                f"with {pow10(window[50][grid.index(1.8)])} of the last layer's gradient. "
                "Initialization also has to break symmetry: with all weights equal (zeros), every unit of a layer "
                "computes and learns the same thing forever.")
    page_link("Theory", "See the phase diagram for any activation on the Theory page", {"activation": "relu",
              "init": "kaiming_normal", "depth": "30"}, icon=":material/functions:")
with fig:
    chart(F.fig_lines({f"depth {k}": v for k, v in window.items()}, x={f"depth {k}": grid for k in window},
                        x_title="σ_w² = fan_in · Var(W)", y_title="E[δ¹²] / E[δᴸ²] (theory)",
                        title="ReLU: gradient at layer 1 relative to the last layer", marks=[(2.0, "He")]),
            L.KEYS.fig("window"))

# 6 -- BatchNorm -------------------------------------------------------------------------------------
text, fig = question(6)
sc = SCENARIOS["batchnorm_rescue"]
bad, bn = L.mini(sc.config), L.mini(sc.compare)
q_bad, q_bn = L.var_h(bad), L.var_h(bn)
g_bn = L.grad_rel(bn)
with text:
    st.markdown("BatchNorm standardizes every unit's pre-activation over the batch before the activation, then "
                "applies a learned scale γ and shift β (γ = 1, β = 0 at the start):")
    st.latex(r"\hat h = \frac{h - \mu_{\mathcal{B}}}{\sqrt{\sigma_{\mathcal{B}}^2 + \epsilon}},\qquad "
             r"\mathrm{BN}(h) = \gamma\,\hat h + \beta")
    st.markdown(
        f"So the forward signal has variance 1 in every layer whatever the weights' scale: the too-small init of "
        f"question 2 (red) becomes harmless (blue). BatchNorm makes the forward pass forgiving, and training "
        f"tolerates much larger learning rates. It does not make initialization irrelevant: the backward pass is "
        f"not normalized, and without skip connections a deep BatchNorm network's gradients grow toward the input "
        f"at initialization (here layer 1 gets {g_bn[0]:.0f}× the last layer's; at depth 50 with ReLU, about "
        "10⁸×). Weights still must not be zero (symmetry), and at test time BatchNorm uses running averages, "
        "which a bad init makes noisy.")
    L.scenario_link("batchnorm_rescue")
    L.scenario_link("batchnorm_depth50")
with fig:
    L.by_layer_chart({f"tanh, σ_w = {sc.config.sigma_w:g}, no BatchNorm": q_bad,
                      f"tanh, σ_w = {sc.config.sigma_w:g}, BatchNorm": q_bn}, bad.depth, "batchnorm",
                     y_title="Var(h), after BN when on")

# 7 -- He initialization in code ---------------------------------------------------------------------
st.divider()
st.subheader(f"7. {QUESTIONS[6]}", anchor=ANCHORS[6])
st.markdown("He et al. (2015): W ~ N(0, 2/fan_in), biases 0. The factor 2 makes up for the half of the signal "
            "ReLU zeroes (for leaky ReLU with slope a: 2/(1 + a²)). `fan_in` is the number of inputs: "
            "`in_features` of an `nn.Linear` (its weight is out × in), the first axis of a Keras `Dense` kernel "
            "(in × out).")
st.latex(r"W \sim \mathcal{N}\!\left(0,\ \frac{2}{n_{\mathrm{in}}}\right),\qquad "
         r"\text{uniform: } W \sim \mathcal{U}\!\left(\pm\sqrt{\tfrac{6}{n_{\mathrm{in}}}}\right)")
PYTORCH_HE = '''import torch
from torch import nn

model = nn.Sequential(
    nn.Linear(784, 256), nn.ReLU(),
    nn.Linear(256, 256), nn.ReLU(),
    nn.Linear(256, 10),
)

@torch.no_grad()
def he_init(m):
    if isinstance(m, nn.Linear):
        # std = sqrt(2 / fan_in), fan_in = m.in_features
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(m.bias)

model.apply(he_init)
# Uniform variant: nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
# Leaky ReLU:      nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")'''

KERAS_HE = '''import tensorflow as tf

model = tf.keras.Sequential([
    tf.keras.Input(shape=(784,)),
    tf.keras.layers.Dense(256, activation="relu",
                          kernel_initializer=tf.keras.initializers.HeNormal(),
                          bias_initializer="zeros"),
    tf.keras.layers.Dense(256, activation="relu",
                          kernel_initializer="he_normal"),  # the same, by name
    tf.keras.layers.Dense(10),
])
# Keras' HeNormal is a truncated normal (cut at 2 std, rescaled to the same variance).
# PyTorch's exact distribution:
#   tf.keras.initializers.VarianceScaling(scale=2.0, mode="fan_in", distribution="untruncated_normal")
# Uniform variant: tf.keras.initializers.HeUniform()'''

st.markdown("**PyTorch**")
st.code(PYTORCH_HE, language="python", wrap_lines=True)
st.caption("nn.Linear's own default is not He: it is kaiming_uniform_ with a = √5, i.e. U(±1/√fan_in), "
           "Var(W) = 1/(3·fan_in), six times smaller.")
st.markdown("**TensorFlow / Keras**")
st.code(KERAS_HE, language="python", wrap_lines=True)
st.caption("Keras' Dense default is GlorotUniform (Xavier), not He.")
he_cfg = SCENARIOS["relu_xavier_vs_he"].compare
with st.expander(f"The complete, runnable script for the {he_cfg.depth}-layer ReLU network with He initialization"):
    tab_t, tab_k = st.tabs(["PyTorch", "Keras"])
    with tab_t:
        st.code(pytorch_code(he_cfg), language="python", wrap_lines=True)
    with tab_k:
        st.code(keras_code(he_cfg), language="python", wrap_lines=True)
    st.caption("Explore shows this code for whatever network you set up there.")
page_link("Explore", "Run a 30-layer ReLU network with He initialization in Explore",
          he_cfg.to_query(), icon=":material/science:")

"""The Theory page's helpers: its small sidebar, cached mean-field computations, and the words.

Everything heavy is cached with `st.cache_data` keyed on the (hashable,
frozen) RunConfig or on plain numbers, so moving between settings already
seen is instant.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import theory as T
from core.figures import theory as TF
from core.schema import FIELDS, RunConfig
from core.run.engine import train
from core.measure.records import COL
from core.registry import ACTIVATIONS, INITIALIZERS

from .session import server_limits
from .sidebar import prepare_widgets

KEY = "theory"
JACOBIAN_MAX_COST = 3e9      # depth · width² · inputs: a few seconds of float64 at most
MEASURE_WORK_FACTOR = 20     # the step-0 measurement is one step: 20× a run's per-step budget (~1 s)
ASSUMPTIONS = (
    "**What the theory assumes.** Mean-field theory (Poole et al. 2016, Schoenholz et al. 2017) describes a "
    "fully connected network **at initialization** (before any training step) with **infinitely wide** layers, "
    "weights W ~ N(0, σ_w²/fan_in) and biases b ~ N(0, σ_b²), **no BatchNorm**, and inputs whose features have "
    "second moment 1 (the lab standardizes every dataset). Other initializers enter only through their effective "
    "σ_w² = fan_in · Var(W) (He: 2, LeCun: 1, Xavier on square layers: 1, orthogonal: 1, PyTorch's default: 1/3). "
    "It does not cover BatchNorm (which renormalizes every layer), LSUV (which sets each layer's scale from data), "
    "narrow layers (expect deviations of about 1/√width per layer, compounding with depth), or anything after "
    "training starts."
)


# -- the sidebar ------------------------------------------------------------------------------------

def _k(name: str) -> str:
    return f"{KEY}_{name}"


def clamp_to_limits(cfg: RunConfig) -> tuple[RunConfig, list[str]]:
    """Depth and width within this server's limits (a link may ask for more); notes name the parameter."""
    limits = server_limits()
    notes = []
    widths = cfg.hidden_widths
    if len(widths) > limits.max_depth or max(widths) > limits.max_width:
        depth = min(len(widths), limits.max_depth)
        width = min(max(widths), limits.max_width)
        if len(widths) > limits.max_depth:
            notes.append(f"depth={len(widths)} is over this server's limit of {limits.max_depth} hidden layers; "
                         f"using {depth}.")
        if max(widths) > limits.max_width:
            notes.append(f"width={max(widths)} is over this server's limit of {limits.max_width} units; using {width}.")
        cfg = cfg.replace(depth=depth, width=width)
    return cfg, notes


def sidebar(defaults: RunConfig) -> RunConfig:
    """Activation, initializer, σ_w, σ_b, depth, width and BatchNorm; the other
    settings (dataset, seed, ...) come from the link unchanged."""
    prepare_widgets(defaults, KEY)  # a new link starts from it; widgets forgotten after a page switch come back
    limits = server_limits()
    sb = st.sidebar
    sb.header("Settings")
    activation = sb.selectbox("Activation φ", list(ACTIVATIONS), key=_k("activation"),
                              format_func=lambda n: ACTIVATIONS[n].label, help=FIELDS["activation"].help)
    sb.caption(ACTIVATIONS[activation].help)
    init = sb.selectbox("Initializer", list(INITIALIZERS), key=_k("init"), format_func=lambda n: INITIALIZERS[n].label,
                        help=FIELDS["init"].help + " The theory sees it only through its effective σ_w² and σ_b².")
    ini = INITIALIZERS[init]
    sb.markdown(f"`{ini.formula}`")
    c1, c2 = sb.columns(2)
    sigma_w = c1.number_input("σ_w", 0.0, 100.0, step=0.05, format="%g", key=_k("sigma_w"), help=FIELDS["sigma_w"].help)
    sigma_b = c2.number_input("σ_b", 0.0, 100.0, step=0.05, format="%g", key=_k("sigma_b"),
                              disabled=not ini.uses_sigma_b,
                              help=FIELDS["sigma_b"].help + ("" if ini.uses_sigma_b else
                                                             " Biases start at 0 under this initializer."))
    depth = sb.slider("Depth (hidden layers)", 1, limits.max_depth, key=_k("depth"),
                      help=FIELDS["depth"].help + " For the per-layer profile and the Jacobian.")
    width = sb.number_input("Width (units per layer)", 1, limits.max_width, step=16, key=_k("width"),
                            help=FIELDS["width"].help + " The theory assumes it is large; the Jacobian and the "
                                                        "measured points use this real width.")
    batchnorm = sb.toggle("BatchNorm", key=_k("batchnorm"),
                          help=FIELDS["batchnorm"].help + " The theory does not cover it: turn it on to see why.")
    changes = dict(activation=activation, init=init, sigma_w=float(sigma_w), sigma_b=float(sigma_b),
                   batchnorm=bool(batchnorm))
    if defaults.widths is None or depth != len(defaults.hidden_widths) or width != defaults.hidden_widths[0]:
        changes.update(depth=int(depth), width=int(width), widths=None)
    else:
        sb.caption(f"Per-layer widths from the link: {FIELDS['widths'].format(defaults.widths)} "
                   "(change depth or width to replace them).")
    sb.caption(f"Data, seed and training settings come from the link ({defaults.dataset}, seed {defaults.seed}) "
               "and go with it to Explore.")
    return dataclasses.replace(defaults, **changes)  # keeps per-layer widths unless depth/width changed


# -- the numbers ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Numbers:
    sigma_w2: float          # effective σ_w² of a square hidden layer
    sigma_b2: float
    summary: dict            # core.theory.meanfield.summary at (σ_w, σ_b) = √ of the above
    source: str              # where σ_w², σ_b² come from, in words


@st.cache_data(show_spinner=False, max_entries=256)
def numbers(cfg: RunConfig) -> Numbers:
    """Effective (σ_w², σ_b²) of a square hidden layer under cfg's initializer, and the theory's summary."""
    width = cfg.hidden_widths[-1]
    init = "orthogonal" if cfg.init == "lsuv" else cfg.init
    eff = T.effective_sigma2(init, width, width, cfg.sigma_w if cfg.init != "lsuv" else 1.0, cfg.sigma_b)
    sw2, sb2 = eff
    if not cfg.bias:
        sb2 = 0.0
    ini = INITIALIZERS[cfg.init]
    if cfg.init == "lsuv":
        source = "LSUV starts from orthogonal weights (σ_w² = 1); the theory shows that starting point."
    elif ini.uses_sigma_b:
        source = f"σ_w² = {cfg.sigma_w:g}² and σ_b² = {cfg.sigma_b:g}² of the {ini.label} parameterization."
    else:
        source = (f"{ini.label} on a {width} × {width} layer has Var(W) = {sw2 / width:.3g} = {sw2:.3g}/fan_in, "
                  f"so σ_w² = {sw2:.3g}" + (f"; its biases have σ_b² = {sb2:.3g}." if sb2 else "; biases start at 0."))
    summ = T.summary(cfg.activation, math.sqrt(sw2), math.sqrt(sb2), depth=len(cfg.hidden_widths), q0=1.0)
    return Numbers(sw2, sb2, summ, source)


@st.cache_data(show_spinner=False, max_entries=256)
def profile(cfg: RunConfig) -> pd.DataFrame:
    return T.predicted_profile(cfg, 1.0)


@st.cache_data(show_spinner=False, max_entries=64)
def measured_at_init(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray] | str:
    """Step 0 of a real run (one batch, this width): per-layer Var(h) and Var(∂L/∂h) relative to the last
    layer; or a sentence on why it was not measured."""
    probe_cfg = cfg.replace(steps=0, record_every=1, eval_every=0)
    # One forward and backward pass, not a training run: allow 20× the per-step work of a run.
    limits = server_limits()
    problem = dataclasses.replace(limits, max_work=limits.max_work * MEASURE_WORK_FACTOR).violation(probe_cfg)
    if problem is not None:
        return f"Not measured: {problem[1]}"
    result = train(probe_cfg)
    if not len(result.steps):
        return "Not measured: the network produced no record."
    rec = result.stats[0]
    q = rec[:, COL["preact_var"]]
    g = rec[:, COL["grad_preact_var"]]
    with np.errstate(all="ignore"):
        rel = g / g[-1] if math.isfinite(g[-1]) and g[-1] > 0 else np.full_like(g, np.nan)
    return q, rel


def _jacobian_cost(cfg: RunConfig) -> int:
    """The work of one input point's Jacobian: Σ fan_in · fan_out · the widest layer."""
    widths = cfg.hidden_widths
    return sum(a * b for a, b in zip((cfg.features, *widths[:-1]), widths)) * max(widths)


def jacobian_inputs(cfg: RunConfig) -> int:
    """How many input points to take: ~256 singular values in all, within the cost budget."""
    per_point = min(cfg.hidden_widths[-1], cfg.features)
    n = max(1, min(8, math.ceil(256 / max(per_point, 1))))
    cost = _jacobian_cost(cfg)
    while n > 1 and n * cost > JACOBIAN_MAX_COST:
        n -= 1
    return n


@st.cache_data(show_spinner=False, max_entries=64)
def jacobian(cfg: RunConfig) -> tuple[np.ndarray, float | None] | str:
    """Singular values of ∂a^L/∂x at initialization and the theory's mean squared value; or why not."""
    if cfg.batchnorm:
        return ("With BatchNorm, the Jacobian at initialization depends on the whole batch, so it is not shown; "
                "turn BatchNorm off to see it.")
    if _jacobian_cost(cfg) > 4 * JACOBIAN_MAX_COST:
        return "This network is too large to compute its Jacobian here; make it narrower or shallower."
    svs = T.jacobian_singular_values(cfg, n_inputs=jacobian_inputs(cfg))
    return svs, T.jacobian_theory_mean(cfg, 1.0)


@st.cache_data(show_spinner=False, max_entries=128)
def variance_map_figure(activation: str, sigma_w2: float, sigma_b2: float) -> go.Figure:
    return TF.fig_variance_map(activation, sigma_w2, sigma_b2)


@st.cache_data(show_spinner=False, max_entries=128)
def phase_figure(activation: str, sigma_w2: float, sigma_b2: float, quantity: str) -> go.Figure:
    return TF.fig_phase_diagram(activation, sigma_w2, sigma_b2, quantity=quantity)


# -- the words --------------------------------------------------------------------------------------

def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}g}"


def depth_scale_text(value: float | None, phase: str) -> str:
    if value is None:
        return "∞" if phase == "critical" else "—"
    return f"{value:.3g} layers"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def pow10(x: float) -> str:
    """10 to the nearest whole power of x, in print: 1.3e-24 → '10⁻²⁴' ('—' if x is not a positive number)."""
    if not (math.isfinite(x) and x > 0):
        return "—"
    return "10" + str(int(round(math.log10(x)))).translate(_SUPERSCRIPT)


def ratio_text(x: float) -> str:
    """0.051 as '0.051', 1.3e-24 as 'about 10⁻²⁴'."""
    return f"{x:.2g}" if 1e-3 <= x <= 1e3 else f"about {pow10(x)}"


def gradient_sentence(prof: pd.DataFrame) -> str | None:
    """How much the gradient changes from the last layer to the first, predicted along the actual q path."""
    if not prof.attrs.get("applies", True) or len(prof) < 2:
        return None
    g = float(prof["grad_rel"].iloc[0])
    L = len(prof)
    if not math.isfinite(g):
        return f"The predicted gradient second moment overflows over {L} layers: it explodes."
    if g <= 0:
        return f"No gradient reaches layer 1: the predicted gradient second moment there is 0 (of layer {L}'s)."
    dec = math.log10(g)
    if abs(dec) < 0.3:
        return f"Over {L} layers the gradient keeps its size: layer 1 gets {g:.2g}× the last layer's second moment."
    word = "shrinks" if dec < 0 else "grows"
    return (f"Over {L} layers the gradient {word}: layer 1's second moment is predicted at {ratio_text(g)} × "
            f"layer {L}'s.")


def limitations(cfg: RunConfig, prof: pd.DataFrame) -> list[str]:
    """Sentences on where the theory does not apply (or only roughly) for this setting."""
    out = []
    if cfg.batchnorm:
        out.append("**BatchNorm is on:** every layer's pre-activations are renormalized to variance 1, whatever the "
                   "weights, so the forward prediction is q = 1 in every layer and the backward pass is not covered. "
                   "The variance map and phase diagram below describe the same network without BatchNorm.")
    if cfg.init == "lsuv":
        out.append("**LSUV** sets each layer's scale from a batch of data, so the theory, which needs the weight "
                   "variance in advance, does not apply; the numbers below are for its orthogonal starting point.")
    note = prof.attrs.get("note", "")
    if note and not cfg.batchnorm and cfg.init != "lsuv":
        out.append(note)
    return out


__all__ = ["KEY", "ASSUMPTIONS", "clamp_to_limits", "sidebar", "Numbers", "numbers", "profile", "measured_at_init",
           "jacobian_inputs", "jacobian", "variance_map_figure", "phase_figure", "fmt", "depth_scale_text",
           "gradient_sentence", "limitations", "pow10", "ratio_text"]

"""The Theory page's helpers: its small sidebar, cached calls into `core.theory`, and number formats.

Everything heavy is computed in core (`core.theory`: the setting's summary,
the predicted and the measured profile, the Jacobian spectrum; `core.figures`:
the charts) and cached here with `st.cache_data`, keyed on the (hashable,
frozen) RunConfig or on plain numbers, so moving between settings already
seen is instant.
"""
from __future__ import annotations

import dataclasses
import math

import pandas as pd
import streamlit as st

from core import figures as F
from core import theory as T
from core.schema import FIELDS, RunConfig
from core.registry import ACTIVATIONS, DEFAULT_ARCH, INITIALIZERS

from .session import server_limits
from .sidebar import prepare_widgets
from .state import SlotKeys

KEYS = SlotKeys("theory")           # the page's settings widgets, charts and controls
QUANTITY = KEYS.control("quantity")  # what colours the phase diagram
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

def clamp_to_limits(cfg: RunConfig) -> tuple[RunConfig, list[str]]:
    """Settings within this server's limits (a link may ask for more); notes name the parameter (`Limits.clamp`)."""
    return server_limits().clamp(cfg)


def sidebar(defaults: RunConfig) -> RunConfig:
    """Activation, initializer, σ_w, σ_b, depth, width and BatchNorm; the other
    settings (dataset, seed, ...) come from the link unchanged."""
    prepare_widgets(defaults, KEYS.slot)  # a new link starts from it; widgets forgotten after a page switch come back
    limits = server_limits()
    sb = st.sidebar
    sb.header("Settings")
    activation = sb.selectbox("Activation φ", list(ACTIVATIONS), key=KEYS.widget("activation"),
                              format_func=lambda n: ACTIVATIONS[n].label, help=FIELDS["activation"].help)
    sb.caption(ACTIVATIONS[activation].help)
    init = sb.selectbox("Initializer", list(INITIALIZERS), key=KEYS.widget("init"),
                        format_func=lambda n: INITIALIZERS[n].label,
                        help=FIELDS["init"].help + " The theory sees it only through its effective σ_w² and σ_b².")
    ini = INITIALIZERS[init]
    sb.markdown(f"`{ini.formula}`")
    c1, c2 = sb.columns(2)
    sigma_w = c1.number_input("σ_w", 0.0, 100.0, step=0.05, format="%g", key=KEYS.widget("sigma_w"),
                              help=FIELDS["sigma_w"].help)
    sigma_b = c2.number_input("σ_b", 0.0, 100.0, step=0.05, format="%g", key=KEYS.widget("sigma_b"),
                              disabled=not ini.uses_sigma_b,
                              help=FIELDS["sigma_b"].help + ("" if ini.uses_sigma_b else
                                                             " Biases start at 0 under this initializer."))
    depth = sb.slider("Depth (hidden layers)", 1, limits.max_depth, key=KEYS.widget("depth"),
                      help=FIELDS["depth"].help + " For the per-layer profile and the Jacobian.")
    width = sb.number_input("Width (units per layer)", 1, limits.max_width, step=16, key=KEYS.widget("width"),
                            help=FIELDS["width"].help + " The theory assumes it is large; the Jacobian and the "
                                                        "measured points use this real width.")
    batchnorm = sb.toggle("BatchNorm", key=KEYS.widget("batchnorm"),
                          help=FIELDS["batchnorm"].help + " The theory does not cover it: turn it on to see why.")
    changes = dict(activation=activation, init=init, sigma_w=float(sigma_w), sigma_b=float(sigma_b),
                   batchnorm=bool(batchnorm))
    if defaults.widths is None or depth != len(defaults.hidden_widths) or width != defaults.hidden_widths[0]:
        changes.update(depth=int(depth), width=int(width), widths=None)
    else:
        sb.caption(f"Per-layer widths from the link: {FIELDS['widths'].format(defaults.widths)} "
                   "(change depth or width to replace them).")
    sb.caption(f"The architecture, data, seed and training settings come from the link "
               f"({defaults.architecture.label}, {defaults.dataset}, seed {defaults.seed}) and go with it "
               "to Explore.")
    return dataclasses.replace(defaults, **changes)  # keeps per-layer widths unless depth/width changed


# -- another architecture -------------------------------------------------------------------------

def mean_field_config(cfg: RunConfig) -> RunConfig:
    """What this page's mean-field sections describe: `cfg` itself where the MLP's theory covers its
    architecture's rows as they are (`Architecture.mlp_theory`), else a plain MLP with the same activation,
    initializer, σ_w, σ_b, depth and width (`RunConfig.for_arch`)."""
    return cfg if cfg.architecture.mlp_theory else cfg.for_arch(DEFAULT_ARCH)


def show_own_theory(cfg: RunConfig) -> None:
    """For a link whose architecture the MLP's theory does not describe as it is: that architecture's own
    theory at initialization (the chart Explore shows before a run; hidden with the entry's reason where
    there is none), and a sentence on what the rest of the page is about."""
    from .live import show_theory_preview

    arch = cfg.architecture
    st.subheader(f"This link's network: {arch.label}")
    show_theory_preview(cfg, KEYS.slot)
    tail = ("the per-layer theory that the prediction above builds on." if arch.theory is not None else
            "a reference only: this network itself has no mean-field prediction (above).")
    st.info(f"The link's network is not a plain MLP: {arch.label}, {cfg.depth} {arch.depth_means} of {cfg.width} "
            f"{arch.width_means}. The sections below are mean-field theory for a **plain MLP** with the same "
            f"activation, initializer, σ_w, σ_b, depth and width: {tail}", icon=":material/info:")


# -- cached core calls -----------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=256)
def numbers(cfg: RunConfig) -> T.SettingSummary:
    """Effective (σ_w², σ_b²) of a square hidden layer under cfg's initializer, and the theory's summary."""
    return T.setting_summary(cfg)


@st.cache_data(show_spinner=False, max_entries=256)
def profile(cfg: RunConfig) -> pd.DataFrame:
    return T.predicted_profile(cfg, 1.0)


@st.cache_data(show_spinner=False, max_entries=64)
def measured_at_init(cfg: RunConfig) -> pd.DataFrame | str:
    """The real network measured at step 0 (`core.theory.measured_profile`: layer, q, grad_rel), or a
    sentence on why it was not measured (over this server's limits, or no record)."""
    # One forward and backward pass, not a training run: allow 20× the per-step work of a run.
    limits = server_limits()
    problem = dataclasses.replace(limits, max_work=limits.max_work * MEASURE_WORK_FACTOR).violation(
        T.at_init_config(cfg))
    if problem is not None:
        return f"Not measured: {problem[1]}"
    try:
        return T.measured_profile(cfg)
    except RuntimeError as e:
        return f"Not measured: {e}"


@st.cache_data(show_spinner=False, max_entries=64)
def jacobian(cfg: RunConfig):
    """Singular values of ∂a^L/∂x at initialization and the theory's mean squared value; or why not."""
    return T.jacobian_at_init(cfg)


@st.cache_data(show_spinner=False, max_entries=128)
def variance_map_figure(activation: str, sigma_w2: float, sigma_b2: float):
    return F.fig_variance_map(activation, sigma_w2, sigma_b2)


@st.cache_data(show_spinner=False, max_entries=128)
def phase_figure(activation: str, sigma_w2: float, sigma_b2: float, quantity: str):
    return F.fig_phase_diagram(activation, sigma_w2, sigma_b2, quantity=quantity)


# -- number formats --------------------------------------------------------------------------------------

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


__all__ = ["KEYS", "QUANTITY", "ASSUMPTIONS", "clamp_to_limits", "sidebar", "mean_field_config", "show_own_theory",
           "numbers", "profile",
           "measured_at_init", "jacobian", "variance_map_figure", "phase_figure", "fmt", "depth_scale_text"]

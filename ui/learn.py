"""The Learn page's helpers: its mini-experiments as cached core calls, and their links.

Every measured chart is a real network at initialization
(`core.theory.measured_profile`: one forward and backward pass on one batch),
width 256 unless the scenario says otherwise; the theory's curves come from
`core.theory`, the charts from `core.figures.learn`. All cached with
`st.cache_data`, so the page opens in about a second once warm.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from core import figures as F
from core import theory as T
from core.schema import RunConfig
from core.scenarios import SCENARIOS, Scenario

from .links import page_link
from .live import chart
from .share import scenario_query
from .state import SlotKeys

KEYS = SlotKeys("learn")  # the page's charts
MINI_WIDTH = 256


def mini(cfg: RunConfig, width: int = MINI_WIDTH) -> RunConfig:
    """The scenario's network at initialization only, at a width where the statistics are steady."""
    return T.at_init_config(cfg.replace(depth=cfg.depth, width=width))


@st.cache_data(show_spinner=False, max_entries=64)
def measured(cfg: RunConfig) -> pd.DataFrame:
    """`cfg`'s network measured at step 0: `layer`, `q` = Var(h), `grad_rel` = Var(∂L/∂h) ÷ the last layer's."""
    return T.measured_profile(cfg)


def var_h(cfg: RunConfig) -> np.ndarray:
    """Var(h) by layer at initialization."""
    return measured(cfg)["q"].to_numpy()


def grad_rel(cfg: RunConfig) -> np.ndarray:
    """Var(∂L/∂h) by layer at initialization, relative to the last layer's."""
    return measured(cfg)["grad_rel"].to_numpy()


@st.cache_data(show_spinner=False, max_entries=8)
def through_time(cfg: RunConfig) -> np.ndarray:
    """A recurrent net's Var(∂L/∂h_t) at initialization (the engine's step-0 record), top layer, t = 1..T,
    relative to the last step's: the gradient through time."""
    from core.measure.records import COL
    from core.run.engine import train

    stats = train(cfg.replace(steps=0)).stats[0, -cfg.seq_len:]
    g = stats[:, COL["grad_act_var"]]
    return g / g[-1]


@st.cache_data(show_spinner=False)
def slope_curves(names: tuple[str, ...]) -> tuple[np.ndarray, dict]:
    """(h, {name: φ'(h)}) on a grid (`core.theory.slope_curves`)."""
    return T.slope_curves(names)


@st.cache_data(show_spinner=False)
def gradient_window(activation: str, depths: tuple[int, ...], sigma_w2: tuple[float, ...]) -> dict[int, np.ndarray]:
    """The theory's E[(∂L/∂h¹)²] / E[(∂L/∂h^L)²] over σ_w², per depth (`core.theory.gradient_window`)."""
    return T.gradient_window(activation, depths, sigma_w2)


def by_layer_chart(series: Mapping[str, Sequence[float]], depth: int, name: str, *, what: str = "Var(h)",
                   y_title: str = "pre-activation variance") -> None:
    """The questions' usual chart: one statistic by layer at initialization, one line per setting."""
    chart(F.fig_by_layer(series, depth, what=what, y_title=y_title), KEYS.fig(name))


def scenario_link(key: str, label: str | None = None) -> None:
    """'Open in Explore' / 'Compare A and B' for a registered scenario."""
    sc: Scenario = SCENARIOS[key]
    if sc.compare is not None:
        page_link("Compare", label or f"Compare it: {sc.title}", scenario_query(sc),  # runs on open
                  icon=":material/compare_arrows:")
    else:
        page_link("Explore", label or f"Run it: {sc.title}", scenario_query(sc), icon=":material/science:")


__all__ = ["KEYS", "MINI_WIDTH", "mini", "measured", "var_h", "grad_rel", "through_time", "slope_curves", "gradient_window",
           "by_layer_chart", "scenario_link"]

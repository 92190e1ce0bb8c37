"""The Learn page's mini-experiments: tiny cached computations and their small charts.

Every measured chart is a real network at initialization (`train` with
steps=0: one forward and backward pass on one batch), width 256 unless the
scenario says otherwise; the theory chart iterates `core.theory.meanfield`. All cached
with `st.cache_data`, so the page opens in about a second once warm.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from core import theory as T
from core.schema import RunConfig
from core.run.engine import train
from core.figures import TEMPLATE
from core.measure.records import COL
from core.registry import ACTIVATIONS
from core.scenarios import SCENARIOS, Scenario

from .links import page_link
from .live import chart
from .share import compare_query, explore_query
from .theory import pow10

MINI_WIDTH = 256
PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")  # the "bad" setting first, then the good ones


def mini(cfg: RunConfig, width: int = MINI_WIDTH) -> RunConfig:
    """The scenario's network at initialization only, at a width where the statistics are steady."""
    return cfg.replace(depth=cfg.depth, width=width, steps=0, eval_every=0, record_every=1)


@st.cache_data(show_spinner=False, max_entries=64)
def at_init(cfg: RunConfig) -> np.ndarray:
    """Per-layer statistics at step 0: (layers, len(STAT_COLUMNS)) float64."""
    return train(cfg).stats[0]


def column(cfg: RunConfig, name: str, relative_to_last: bool = False) -> np.ndarray:
    """One statistic by layer at initialization (optionally divided by the last layer's)."""
    values = at_init(cfg)[:, COL[name]].copy()
    if relative_to_last:
        last = values[-1]
        values = values / last if np.isfinite(last) and last > 0 else np.full_like(values, np.nan)
    return values


def fig_lines(series: Mapping[str, Sequence[float]], *, title: str, x_title: str = "layer (1 = next to the input)",
              y_title: str = "", x: Mapping[str, Sequence[float]] | None = None, log_y: bool = True,
              height: int = 380, marks: Sequence[tuple[float, str]] = ()) -> go.Figure:
    """A small line chart: one line per entry of `series` (x = 1..n unless given), log y by default;
    `marks` are vertical reference lines (x, label). Non-positive or non-finite values are gaps."""
    fig = go.Figure()
    for k, (name, ys) in enumerate(series.items()):
        ys = np.asarray(ys, dtype=np.float64)
        xs = np.asarray(x[name]) if x is not None else np.arange(1, ys.size + 1)
        ok = np.isfinite(ys) & ((ys > 0) if log_y else True)
        fig.add_trace(go.Scatter(x=xs, y=np.where(ok, ys, np.nan).astype(np.float32), mode="lines+markers"
                                 if ys.size <= 60 else "lines", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)], width=2.5), marker=dict(size=4),
                                 hovertemplate=f"{name}<br>%{{x}}: %{{y:.3g}}<extra></extra>"))
    for xv, label in marks:
        fig.add_vline(x=xv, line=dict(color="#555555", dash="dash", width=1.2), annotation_text=label,
                      annotation_position="top", annotation_font=dict(size=11, color="#555555"))
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    fig.update_layout(template=TEMPLATE, height=height, title=dict(text=title, x=0.0, font=dict(size=14)),
                      xaxis_title=x_title, yaxis_title=y_title, margin=dict(l=80, r=15, t=50, b=120),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0.0),
                      hovermode="closest")
    fig.update_yaxes(title_standoff=8)
    return fig


def by_layer_chart(series: Mapping[str, Sequence[float]], depth: int, key: str, *, what: str = "Var(h)",
                   y_title: str = "pre-activation variance") -> None:
    """The questions' usual chart: one statistic by layer at initialization, one line per setting."""
    chart(fig_lines(series, title=f"{what} by layer at initialization, depth {depth}", y_title=y_title), key)


# -- the specific mini-experiments --------------------------------------------------------------------

@st.cache_data(show_spinner=False)
def derivative_curves(names: tuple[str, ...], lo: float = -6.0, hi: float = 6.0, n: int = 241):
    """φ'(h) on a grid for each activation (autograd on the registry's functions)."""
    h = torch.linspace(lo, hi, n, dtype=torch.float64, requires_grad=True)
    out = {}
    for name in names:
        (g,) = torch.autograd.grad(ACTIVATIONS[name].fn(h).sum(), h)
        out[name] = g.detach().numpy()
    return h.detach().numpy(), out


@st.cache_data(show_spinner=False)
def gradient_window(activation: str, depths: tuple[int, ...], sigma_w2: tuple[float, ...]) -> dict[int, np.ndarray]:
    """Predicted E[(∂L/∂h¹)²] / E[(∂L/∂h^L)²] over σ_w² (σ_b = 0), per depth: the theory's gradient profile."""
    out = {}
    for L in depths:
        out[L] = np.array([T.profile_table(activation, float(np.sqrt(s)), 0.0, L)["grad_rel"].iloc[0]
                           for s in sigma_w2])
    return out


def scenario_link(key: str, label: str | None = None) -> None:
    """'Open in Explore' / 'Compare A and B' for a registered scenario."""
    sc: Scenario = SCENARIOS[key]
    if sc.compare is not None:
        page_link("Compare", label or f"Compare it: {sc.title}", compare_query(sc.config, sc.compare),
                  icon=":material/compare_arrows:")
    else:
        page_link("Explore", label or f"Run it: {sc.title}", explore_query(sc.config), icon=":material/science:")


__all__ = ["MINI_WIDTH", "mini", "at_init", "column", "fig_lines", "chart", "by_layer_chart", "pow10", "derivative_curves",
           "gradient_window", "scenario_link"]

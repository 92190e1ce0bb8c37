"""The charts' shared vocabulary: palette, names, a small Plotly template, and
helpers for log axes, downsampling, gaps and notes (no Streamlit).

Kept small on the wire: float32 arrays (Plotly sends numpy arrays as base64
typed arrays), at most ~200 steps per line or heatmap (evenly spaced records,
always the first and the last) and a tiny template instead of Plotly's 6.5 KB
default one. Non-finite values (and, on log axes, zeros) become gaps, and a
red note in the figure says where they are.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_POINTS = 200  # steps kept per line or heatmap row: enough to see the dynamics, small on the wire
MAX_RIDGES = 25   # histograms drawn per ridge plot: more overlap into a blur
HEALTHY_UPDATE_RATIO = 1e-3

# Colours by quantity, the same on every chart (and in Compare).
COLOURS = {
    "preact_var": "#1f77b4",      # h
    "act_var": "#2ca02c",         # a = φ(h)
    "grad_preact_var": "#d62728",  # ∂L/∂h
    "grad_act_var": "#ff7f0e",
    "saturation": "#9467bd",
    "dead_units": "#8c564b",
    "loss": "#1f77b4",
    "train_accuracy": "#aec7e8",
    "test_accuracy": "#ff7f0e",
    "theory": "#333333",
    "warning": "#b2182b",
}
NAMES = {
    "preact_var": "Var(h), pre-activation",
    "act_var": "Var(a), a = φ(h)",
    "grad_preact_var": "Var(∂L/∂h)",
    "grad_act_var": "Var(∂L/∂a)",
    "saturation": "saturated entries",
    "dead_units": "dead units",
}
INK, MUTED = "#222222", "#7f7f7f"  # text; reference lines (identity, isometry)
RUN_COLOURS = {"A": "#1f77b4", "B": "#d62728"}  # Compare's two runs
SERIES_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")  # small multi-line charts: the "bad" setting first
THEORY_LABEL = "theory: wide layers, at initialization, no BatchNorm"
LAYER_AXIS = "layer (1 = next to the input)"
HEATMAP_SPAN = 6.0  # decades either side of the colour scale's centre

# A tiny template (Plotly's default one is ~6.5 KB of JSON in every figure).
TEMPLATE = go.layout.Template(layout=dict(
    font=dict(family="Source Sans Pro, Arial, sans-serif", size=13, color=INK),
    paper_bgcolor="white", plot_bgcolor="white",
    xaxis=dict(gridcolor="#ebebeb", zerolinecolor="#d0d0d0", linecolor="#bbbbbb", showline=True, ticks="outside"),
    yaxis=dict(gridcolor="#ebebeb", zerolinecolor="#d0d0d0", linecolor="#bbbbbb", showline=True, ticks="outside"),
    hoverlabel=dict(font_size=12),
))


# -- small helpers ---------------------------------------------------------------------------------

def sample_indices(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most `max_points` evenly spaced indices into range(n), always the first and the last."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n <= max_points:
        return np.arange(n)
    max_points = max(2, int(max_points))
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


F32_MAX, F32_TINY = 3.0e38, 1.2e-38  # beyond these float32 overflows or loses precision down to 0


def as_f32(values) -> np.ndarray:
    """float32 (half the bytes of float64 on the wire) with every non-finite
    value as NaN: a gap. Where float32 cannot hold a finite value (an
    exploding variance of 1e40, a vanished one of 1e-42), float64 instead, so
    a real number never turns into a gap or a zero."""
    a = np.array(values, dtype=np.float64)
    a[~np.isfinite(a)] = np.nan
    mag = np.abs(a[np.isfinite(a) & (a != 0)])
    if mag.size and (mag.max() > F32_MAX or mag.min() < F32_TINY):
        return a
    return a.astype(np.float32)


def for_log_axis(values) -> np.ndarray:
    """For a log axis: float32, NaN where the value is not a positive finite number."""
    a = np.asarray(values, dtype=np.float64)
    a = np.where(np.isfinite(a) & (a > 0), a, np.nan)
    return as_f32(a)


def log10_or_gap(values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        out = np.where(np.isfinite(a) & (a > 0), np.log10(np.where(a > 0, a, 1.0)), np.nan)
    return out.astype(np.float32)


def log_ticks(*arrays) -> dict:
    """Tick spacing for a log axis holding `arrays`: 1-2-5 labels when the
    data span under two decades, one label per decade up to 12, else auto."""
    values = [np.asarray(a, dtype=np.float64).ravel() for a in arrays if a is not None]
    v = np.concatenate(values) if values else np.zeros(0)
    v = v[np.isfinite(v) & (v > 0)]
    out = dict(type="log", exponentformat="power")
    if v.size:
        lo, hi = math.log10(v.min()), math.log10(v.max())
        span = hi - lo
        if span < 2:
            # 1-2-5 ticks written out in full: plotly's "D2" labels 0.5 as a bare "5".
            ticks = [m * 10.0 ** e for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)]
            ticks = [t for t in ticks if 10 ** (lo - 0.3) <= t <= 10 ** (hi + 0.3)]
            out.update(tickmode="array", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
        elif span <= 12:
            out["dtick"] = 1
    return out


def step_ticks(steps) -> dict:
    """Whole-number step ticks when only a few steps are shown (no 0.5 ticks)."""
    steps = np.asarray(steps)
    return dict(dtick=1, tick0=0) if steps.size and steps.max() - steps.min() < 8 else {}


def layer_axis(n: int) -> np.ndarray:
    return np.arange(1, n + 1, dtype=np.int32)


def ranges_text(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> '1–3, 7, 9–10' (at most four groups)."""
    groups: list[list[int]] = []
    for v in sorted(set(int(x) for x in numbers)):
        if groups and v == groups[-1][1] + 1:
            groups[-1][1] = v
        else:
            groups.append([v, v])
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in groups]
    return ", ".join(parts[:4]) + (", …" if len(parts) > 4 else "")


def gap_note(values: np.ndarray, what: str, log_axis: bool = True) -> str | None:
    """A sentence on which layers (of a 1-D per-layer array) cannot be drawn, or None."""
    a = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(a)
    zero = np.isfinite(a) & (a <= 0) if log_axis else np.zeros_like(bad)
    notes = []
    if bad.any():
        notes.append(f"{what} is inf/nan in layer{'s' if bad.sum() > 1 else ''} {ranges_text(np.flatnonzero(bad) + 1)}")
    if zero.any():
        notes.append(f"{what} is 0 in layer{'s' if zero.sum() > 1 else ''} {ranges_text(np.flatnonzero(zero) + 1)}")
    return "; ".join(notes) if notes else None


NOTE = "note"  # the `name` of every note annotation: a live chart replaces these and keeps the others


def note_annotation(lines: Sequence[str | None], y: float = 1.0, panel: int = 1) -> dict | None:
    """The annotation `add_note` adds, as a plain dict (None when there is nothing to say)."""
    lines = [s for s in lines if s]
    if not lines:
        return None
    text = "<br>".join(f"⚠ {s}" for s in lines[:3])
    axis = "" if panel == 1 else str(panel)
    return dict(name=NOTE, text=text, x=0.0, y=y, xref=f"x{axis} domain", yref=f"y{axis} domain", xanchor="left",
                yanchor="top", showarrow=False, align="left", font=dict(color=COLOURS["warning"], size=12),
                bgcolor="rgba(255,255,255,0.85)")


def add_note(fig: go.Figure, lines: Sequence[str | None], y: float = 1.0, panel: int = 1) -> None:
    """A red note in the top-left corner of a plotting area (gaps, divergence);
    `panel` is the subplot (1 = the first x/y axes)."""
    note = note_annotation(lines, y, panel)
    if note is not None:
        fig.add_annotation(**note)


def two_panels(left: str, right: str, spacing: float = 0.1) -> go.Figure:
    """Two side-by-side panels titled `left` and `right`. Their titles are small and short, and
    `layer_axes` writes the long axis title once, so nothing overlaps on a phone (~130 px a panel)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=spacing, subplot_titles=(left, right))
    fig.update_annotations(font_size=13)
    return fig


def layer_axes(fig: go.Figure, n_layers: int | None = None) -> None:
    """The x axes of a two-panel by-layer chart: the full title under the left panel, 'layer' under
    the right one; with fewer than 3 layers, a range that keeps the points off the edges."""
    rng = [0.5, n_layers + 0.5] if n_layers is not None and n_layers < 3 else None
    fig.update_xaxes(title_text="layer (1 = input side)", range=rng, row=1, col=1)
    fig.update_xaxes(title_text="layer", range=rng, row=1, col=2)


def empty_figure(title: str, message: str, height: int = 320) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#666666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return apply_layout(fig, title, height)


def title_with_note(title: str, note: str | None) -> str:
    """The title with a red warning line under it (for notes that would cover the plot)."""
    if not note:
        return title
    return f"{title}<br><span style='font-size:12px;color:{COLOURS['warning']}'>⚠ {note}</span>"


def title_lines(title: str, detail: str = "") -> str:
    """A title with a second, smaller line of detail (Plotly does not wrap titles)."""
    return f"{title}<br><span style='font-size:12px'>{detail}</span>" if detail else title


def apply_layout(fig: go.Figure, title: str, height: int, legend_bottom: bool = False, *,
                 x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """The one layout every figure ends with: TEMPLATE, the title at the top left, the legend on top
    (or, with `legend_bottom`, under the plot), the user's zoom kept across live refreshes."""
    legend = (dict(orientation="h", yref="container", yanchor="bottom", y=0.0, xanchor="left", x=0.0) if legend_bottom else
              dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1.0))
    fig.update_layout(
        template=TEMPLATE, height=height, title=dict(text=title, x=0.0, xanchor="left", font=dict(size=16)),
        margin=dict(l=70, r=20, t=80, b=60 if not legend_bottom else 105), legend=legend,
        hovermode="closest", uirevision="keep",  # keep the user's zoom across live refreshes
    )
    if x_title is not None:
        fig.update_layout(xaxis_title=x_title)
    if y_title is not None:
        fig.update_layout(yaxis_title=y_title)
    return fig


def record_index(steps: np.ndarray, record: int) -> int:
    n = len(steps)
    if not -n <= record < n:
        raise IndexError(f"record {record} is out of range: the run has {n} records.")
    return record % n


def record_axes(stats: np.ndarray, steps: np.ndarray, record: int) -> tuple[int, int, int, np.ndarray]:
    """(record index, its step, number of layers, the layer axis 1..L) for a by-layer chart."""
    i = record_index(steps, record)
    L = stats.shape[1]
    return i, int(steps[i, 0]), L, layer_axis(L)


def check_arrays(stats: np.ndarray, steps: np.ndarray) -> None:
    if stats.ndim != 3 or steps.ndim != 2 or len(stats) != len(steps):
        raise ValueError(f"stats must be (records, layers, columns) and steps (records, 4) with the same number of "
                         f"records; got {stats.shape} and {steps.shape}.")

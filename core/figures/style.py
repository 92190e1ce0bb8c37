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

from core.fmt import sci

MAX_POINTS = 200  # steps kept per line or heatmap row: enough to see the dynamics, small on the wire
MAX_RIDGES = 25   # histograms drawn per ridge plot: more overlap into a blur
HEALTHY_UPDATE_RATIO = 1e-3

# The palette, once. One colour language on every page: a colour is a quantity (blue = the forward signal h,
# green = a = φ(h), red = the gradient ∂L/∂h), wherever it is drawn; runs (Compare's A and B) and training
# curves never reuse those colours: A and B differ by line style (RUN_DASHES), the loss is dark grey.
COLOURS = {
    "preact_var": "#1f77b4",      # h
    "act_var": "#2ca02c",         # a = φ(h)
    "grad_preact_var": "#d62728",  # ∂L/∂h
    "grad_act_var": "#ff7f0e",
    "saturation": "#9467bd",
    "dead_units": "#8c564b",
    "loss": "#4d4d4d",
    "train_accuracy": "#b3b3b3",
    "test_accuracy": "#17becf",
    "theory": "#333333",
    "other": "#9467bd",            # the Theory page's other curves (cobweb, spectrum): no quantity's colour
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
SETTING_COLOURS = ("#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#4d4d4d", "#7f7f7f")  # one per setting
CLASS_COLOURS = ("#ff7f0e", "#e377c2", "#bcbd22", "#7f7f7f")  # a dataset's classes (decision boundary): no quantity's
RUN_DASHES = {"A": "solid", "B": "dash"}  # Compare's two runs: the same colours (quantities), two line styles
RUN_COLOURS = {"A": "#4d4d4d", "B": "#9467bd"}  # where a run needs a colour of its own (labels): no quantity's
PLOTLY_CONFIG = {  # how every chart is shown: the mode bar only while the pointer is over the chart
    "displaylogo": False, "displayModeBar": "hover", "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}
SERIES_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")  # small multi-line charts: the "bad" setting first
THEORY_LABEL = "theory: wide layers, at initialization, no BatchNorm"
LAYER_AXIS = "layer (1 = next to the input)"
NOTE_NAME = "note"  # the `name` of a figure's note annotation
PANEL_TITLE_CHARS = 20  # a subplot title longer than this is broken onto two lines (a phone's panel is ~140 px)
LEGEND_GAP_PX = 62  # from the x axis line to a bottom legend: tick labels and the axis title fit in between
HEATMAP_SPAN = 6.0  # decades either side of the colour scale's centre

# A tiny template (Plotly's default one is ~6.5 KB of JSON in every figure).
TEMPLATE = go.layout.Template(layout=dict(
    font=dict(family="Source Sans Pro, Arial, sans-serif", size=13, color=INK),
    paper_bgcolor="white", plot_bgcolor="white",
    # automargin: the margins grow to hold tick labels and axis titles, so a title never lands on its ticks
    xaxis=dict(gridcolor="#ebebeb", zerolinecolor="#d0d0d0", linecolor="#bbbbbb", showline=True, ticks="outside",
               automargin=True, title=dict(standoff=6)),
    yaxis=dict(gridcolor="#ebebeb", zerolinecolor="#d0d0d0", linecolor="#bbbbbb", showline=True, ticks="outside",
               automargin=True, title=dict(standoff=6)),
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
    data span under two decades, one label per decade up to 6, else one per few decades (at most ~7 labels)."""
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
            out.update(tickmode="array", tickvals=ticks, ticktext=[sci(t, 1) for t in ticks])
        else:  # one label per decade, or per few decades: never Plotly's crowded 2…9 minor labels
            out["dtick"] = 1 if span <= 6 else math.ceil(span / 6)
    return out


def linear_ticks(values, narrow: float = 0.05) -> dict:
    """Tick settings for a linear axis of non-negative values (a loss): when the values sit in a band narrower
    than `narrow` of their size (a diverged run's loss at 29,491.2 … 29,491.8), the axis starts at 0, so its
    labels read 0, 10k, 20k, 30k instead of 29.4915k, 29.492k, … ."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size and v.min() >= 0 and v.max() > 0 and (v.max() - v.min()) < narrow * v.max():
        return dict(rangemode="tozero")
    return {}


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


NOTE_CHARS = 38  # a note's lines are broken to this length: they must fit a phone's plot (~240 px)
NOTE = NOTE_NAME  # a live chart replaces the note annotation and keeps the others


def note_annotation(lines: Sequence[str | None], y: float = 1.0, panel: int = 1) -> dict | None:
    """The note annotation `add_note` adds to a figure with none yet, as a plain dict (None when there is
    nothing to say): long lines broken so the box stays inside a phone's plot."""
    lines = [s for s in lines if s]
    if not lines:
        return None
    text = "<br>".join(f"⚠ {_short_lines(s, NOTE_CHARS)}" for s in lines[:6])
    axis = "" if panel == 1 else str(panel)
    return dict(name=NOTE_NAME, text=text, x=0.0, y=y, xref=f"x{axis} domain", yref=f"y{axis} domain",
                xanchor="left", yanchor="top", showarrow=False, align="left",
                font=dict(color=COLOURS["warning"], size=11), bgcolor="rgba(255,255,255,0.85)")


def add_note(fig: go.Figure, lines: Sequence[str | None], y: float = 1.0, panel: int = 1) -> None:
    """A red note in the top-left corner of the plotting area (gaps, divergence). Every figure has at
    most one note box: notes for the second panel of a two-panel figure join the first panel's box (two
    boxes side by side would overlap each other and the ticks on a phone); `panel` says where the box goes
    when there is none yet."""
    lines = [s for s in lines if s]
    if not lines:
        return
    new = [f"⚠ {_short_lines(s, NOTE_CHARS)}" for s in lines]
    for a in fig.layout.annotations:
        if a.name == NOTE_NAME:
            notes = [t for t in (a.text or "").split("<br>") if t]
            notes += [t for t in new if t not in notes]
            a.text = "<br>".join(notes[:6])
            return
    fig.add_annotation(**note_annotation(lines, y, panel))


def _short_lines(text: str, width: int = PANEL_TITLE_CHARS) -> str:
    """A panel title broken after ': ' or ', ' when it is longer than `width` characters (Plotly does not wrap)."""
    if len(text) <= width:
        return text
    for sep in (": ", ", ", " "):
        cut = text.rfind(sep, 0, width + 1)
        if cut > 0:
            return text[:cut + len(sep.rstrip())] + "<br>" + _short_lines(text[cut + len(sep):], width)
    return text


def two_panels(left: str, right: str, spacing: float = 0.08) -> go.Figure:
    """Two side-by-side panels titled `left` and `right`, readable down to a phone (~140 px a panel):
    short titles broken onto two lines, the right panel's tick labels on its right side (so they never sit
    on the left panel), and `layer_axes` writes the long axis title once."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=spacing,
                        subplot_titles=(_short_lines(left), _short_lines(right)))
    fig.update_annotations(font_size=12, yanchor="bottom")
    fig.update_yaxes(side="right", row=1, col=2)
    return fig


def layer_axes(fig: go.Figure, n_layers: int | None = None) -> None:
    """The x axes of a two-panel by-layer chart: the full title under the left panel, 'layer' under
    the right one; with fewer than 3 layers, a range that keeps the points off the edges."""
    rng = [0.5, n_layers + 0.5] if n_layers is not None and n_layers < 3 else None
    fig.update_xaxes(title_text="layer (1 = input)", range=rng, row=1, col=1)
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
    (or, with `legend_bottom`, under the plot), the user's zoom kept across live refreshes.

    The legend under the plot is placed in paper coordinates below the x axis' title, so Plotly grows the
    bottom margin to hold it however many rows it wraps into (a phone wraps it into four); the plot area
    shrinks instead of the legend covering the axis."""
    if legend_bottom:
        plot_height = max(height - 80 - 60, 120)  # the plot area on a wide screen, where the legend is one row
        legend = dict(orientation="h", yref="paper", yanchor="top", y=-LEGEND_GAP_PX / plot_height,
                      xanchor="left", x=0.0)
    else:
        legend = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1.0)
    # The top margin holds the title's lines and, over two panels, their titles; Plotly places a title of
    # several lines unreliably with yanchor "top", so its middle is placed instead.
    title_lines_n = title.count("<br>") + 1
    title_px = 8 + 20 * title_lines_n
    panel_lines = max([(a.text or "").count("<br>") + 1 for a in fig.layout.annotations
                       if a.yref == "paper" and a.y == 1 and a.yanchor == "bottom" and a.name != NOTE_NAME] or [0])
    top = title_px + 16 * panel_lines + (28 if not legend_bottom else 10)
    fig.update_layout(
        template=TEMPLATE, height=height,
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=16), yref="container",
                   y=1 - (6 + 10 * title_lines_n) / height, yanchor="middle"),
        margin=dict(l=60, r=20, t=top, b=30, autoexpand=True), legend=legend,
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

"""The Learn page's small charts: a few named lines, one per setting.

Pure functions, numbers in, `go.Figure` out; the numbers come from
`core.theory` (a network measured at initialization, the theory's curves).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from core.figures.style import LAYER_AXIS, MUTED, SERIES_COLOURS, apply_layout, as_f32, log_ticks


def fig_lines(series: Mapping[str, Sequence[float]], *, title: str, x_title: str = LAYER_AXIS, y_title: str = "",
              x: Mapping[str, Sequence[float]] | None = None, log_y: bool = True, height: int = 380,
              marks: Sequence[tuple[float, str]] = ()) -> go.Figure:
    """One line per entry of `series` (x = 1..n unless `x` gives it), log y by default,
    coloured in order by `SERIES_COLOURS`; `marks` are dashed vertical reference lines
    (x, label). Values a log axis cannot show (≤ 0, inf, nan) are gaps."""
    fig = go.Figure()
    shown = []
    for k, (name, ys) in enumerate(series.items()):
        ys = np.asarray(ys, dtype=np.float64)
        xs = np.asarray(x[name]) if x is not None else np.arange(1, ys.size + 1)
        ok = np.isfinite(ys) & ((ys > 0) if log_y else True)
        shown.append(ys[ok])
        fig.add_trace(go.Scatter(x=xs, y=as_f32(np.where(ok, ys, np.nan)), name=name,
                                 mode="lines+markers" if ys.size <= 60 else "lines",
                                 line=dict(color=SERIES_COLOURS[k % len(SERIES_COLOURS)], width=2.5),
                                 marker=dict(size=4), hovertemplate=f"{name}<br>%{{x}}: %{{y:.3g}}<extra></extra>"))
    for xv, label in marks:
        fig.add_vline(x=xv, line=dict(color=MUTED, dash="dash", width=1.2), annotation_text=label,
                      annotation_position="top", annotation_font=dict(size=11, color=MUTED))
    if log_y:
        fig.update_yaxes(**log_ticks(*shown))  # whole decades or 1-2-5, in superscripts
    fig.update_yaxes(title_standoff=8)
    return apply_layout(fig, title, height, legend_bottom=True, x_title=x_title, y_title=y_title)


def fig_by_layer(series: Mapping[str, Sequence[float]], depth: int, *, what: str = "Var(h)",
                 y_title: str = "pre-activation variance", height: int = 380) -> go.Figure:
    """The Learn questions' usual chart: one statistic by layer at initialization, one line per setting."""
    return fig_lines(series, title=f"{what} by layer at initialization, depth {depth}", y_title=y_title,
                     height=height)


__all__ = ["fig_lines", "fig_by_layer"]

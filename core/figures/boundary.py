"""The decision boundary of a 2-D dataset: what the network predicts over the plane, with the data on top.

A pure function, a `core.run.boundary.Boundary` in, `go.Figure` out (TensorFlow Playground's view): the
predicted class at every grid point as a light heatmap, shaded by the network's confidence, and a sample of
the training points in their class colours. Class colours are none of the quantities' colours, so the page
keeps one colour language.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.figures.style import CLASS_COLOURS, apply_layout, empty_figure, title_lines


def _class_colour(k: int) -> str:
    return CLASS_COLOURS[k % len(CLASS_COLOURS)]


def _discrete_scale(n: int) -> list:
    """A colour scale that maps class k (z in [k - 0.5, k + 0.5]) to its colour, no blending between classes."""
    scale = []
    for k in range(n):
        scale += [[k / n, _class_colour(k)], [(k + 1) / n, _class_colour(k)]]
    return scale


def fig_decision_boundary(boundary, step: int | None = None, *, height: int = 380) -> go.Figure:
    """The predicted class over the input plane at the latest evaluation at or before `step` (default: the
    latest), the training points over it. Paler where the network is less sure (softmax probability)."""
    title = "What the network predicts"
    i = None if boundary is None else boundary.at(step)
    if i is None:
        return empty_figure(title, "No prediction over the plane yet.", height)
    n = int(boundary.n_classes)
    # small on the wire (it is redrawn with every refresh): one byte a grid point per layer of the picture
    classes = boundary.classes[i]                                            # uint8
    conf = boundary.confidence[i]
    percent = np.round(100 * np.nan_to_num(conf, nan=0.0)).astype(np.uint8)  # for the hover
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        x=boundary.xs, y=boundary.ys, z=classes, zmin=-0.5, zmax=n - 0.5, colorscale=_discrete_scale(n),
        showscale=False, opacity=0.35, customdata=percent, name="predicted class",
        hovertemplate="x₁ = %{x:.2f}, x₂ = %{y:.2f}<br>predicted class %{z} (p = %{customdata}%)<extra></extra>"))
    # where the network is unsure, a white veil: 1/n (a guess) is fully veiled, 1 (certain) not at all
    unsure = np.clip((1.0 - np.nan_to_num(conf, nan=0.0)) / max(1.0 - 1.0 / n, 1e-9), 0.0, 1.0)
    fig.add_trace(go.Heatmap(x=boundary.xs, y=boundary.ys, z=np.round(100 * unsure).astype(np.uint8), zmin=0, zmax=100,
                             colorscale=[[0, "rgba(255,255,255,0)"], [1, "rgba(255,255,255,0.75)"]],
                             showscale=False, hoverinfo="skip", name="confidence"))
    for k in range(n):
        sel = boundary.labels == k
        if not sel.any():
            continue
        fig.add_trace(go.Scatter(
            x=boundary.points[sel, 0], y=boundary.points[sel, 1], mode="markers", name=f"class {k}",
            marker=dict(color=_class_colour(k), size=5, line=dict(color="white", width=0.6)),
            hovertemplate=f"training point, class {k}<br>x₁ = %{{x:.2f}}, x₂ = %{{y:.2f}}<extra></extra>"))
    s = int(boundary.steps[i])
    fig.update_xaxes(title_text="x₁ (standardized)", range=[float(boundary.xs[0]), float(boundary.xs[-1])],
                     showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(title_text="x₂", range=[float(boundary.ys[0]), float(boundary.ys[-1])], showgrid=False,
                     zeroline=False, scaleanchor="x", scaleratio=1, constrain="domain")
    return apply_layout(fig, title_lines(f"{title} at step {s}", "colour: the predicted class; dots: training points"),
                        height, legend_bottom=True)


__all__ = ["fig_decision_boundary"]

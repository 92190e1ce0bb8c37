"""Compare's charts: several runs (A, B, ...) on one figure, or on figures that share colour limits.

Pure functions, arrays in, `go.Figure` out; `runs` maps a label ("A", "B")
to that run's arrays (see `core.figures.runs` for `stats` and `steps`).
Quantities keep their colours (`COLOURS`); runs differ by line style (`RUN_DASHES`) on every chart, so
blue and red mean the same on the whole page.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from core.figures.runs import heatmap_zrange
from core.figures.style import (
    COLOURS, HEATMAP_SPAN, NAMES, RUN_DASHES, add_note, apply_layout, as_f32, check_arrays, for_log_axis, gap_note,
    layer_axes, layer_axis, linear_ticks, log_ticks, record_index, sample_indices, two_panels,
)
from core.measure.records import COL


def shared_zrange(runs: Mapping[str, np.ndarray | None], column: str) -> tuple[float, float]:
    """One set of colour limits for every heatmap of `column`, so a colour is the
    same variance in every run: what the first run with records would use
    (`heatmap_zrange`: forward ±6 decades around 1; backward around its last
    layer's gradient variance at step 0). `runs` maps a label to its `stats`."""
    for stats in runs.values():
        if stats is not None and len(stats):
            return heatmap_zrange(np.asarray(stats), column)
    return -HEATMAP_SPAN, HEATMAP_SPAN


def fig_variance_compare(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, record: int = -1,
                         height: int = 430) -> go.Figure:
    """Several runs on one variance-by-layer chart (Compare): `runs` maps a
    label ("A", "B") to (stats, steps). Forward Var(h) left, Var(∂L/∂h) right;
    runs differ by line style, quantities by colour."""
    dashes = [RUN_DASHES["A"], RUN_DASHES["B"], "dot", "dashdot"]
    fig = two_panels("Forward: Var(h)", "Backward: Var(∂L/∂h)")
    notes: dict[int, list] = {1: [], 2: []}
    for k, (label, (stats, steps)) in enumerate(runs.items()):
        stats, steps = np.asarray(stats), np.asarray(steps)
        check_arrays(stats, steps)
        if len(steps) == 0:
            notes[1].append(f"{label}: nothing recorded yet")
            continue
        i = record_index(steps, record)
        step = int(steps[i, 0])
        x = layer_axis(stats.shape[1])
        for col, c in ((1, "preact_var"), (2, "grad_preact_var")):
            fig.add_trace(go.Scatter(
                x=x, y=for_log_axis(stats[i, :, COL[c]]), mode="lines+markers",
                name=f"{label}: {NAMES[c]} (step {step})",
                line=dict(color=COLOURS[c], width=2.5, dash=dashes[k % len(dashes)]), marker=dict(size=4),
                hovertemplate=f"{label}, {NAMES[c]} at step {step}<br>layer %{{x}}: %{{y:.3g}}<extra></extra>"),
                row=1, col=col)
            notes[col].append(gap_note(stats[i, :, COL[c]], f"{label}: {NAMES[c]}"))
    for col, lines in notes.items():
        add_note(fig, lines, panel=col)
    layer_axes(fig)
    for col, c in ((1, "preact_var"), (2, "grad_preact_var")):
        fig.update_yaxes(**log_ticks(*[np.asarray(st)[..., COL[c]] for st, _ in runs.values()]), row=1, col=col)
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    return apply_layout(fig, "Variance by layer", height, legend_bottom=True)


def fig_loss_compare(runs: Mapping[str, np.ndarray], *, height: int = 340) -> go.Figure:
    """Training loss (left, log scale when it spans more than a decade) and
    held-out accuracy (right) of several runs; `runs` maps a label to its
    `steps` table. Colours are quantities (loss, accuracy), line styles runs (`RUN_DASHES`), as in
    `fig_variance_compare`."""
    fig = two_panels("Training loss (batch)", "Held-out accuracy")
    all_loss = []
    for label, steps in runs.items():
        steps = np.asarray(steps)
        if len(steps) == 0:
            continue
        idx = sample_indices(len(steps))
        dash = RUN_DASHES.get(label, "dot")
        x = steps[idx, 0].astype(np.int32)
        loss = steps[idx, 1].astype(np.float64)
        all_loss.append(loss[np.isfinite(loss) & (loss > 0)])
        fig.add_trace(go.Scatter(x=x, y=as_f32(loss), mode="lines", name=f"{label}: loss",
                                 line=dict(color=COLOURS["loss"], width=2, dash=dash),
                                 hovertemplate=f"{label}, step %{{x}}: loss %{{y:.4g}}<extra></extra>"), row=1, col=1)
        tested = np.flatnonzero(np.isfinite(steps[:, 3]))
        if tested.size:
            t = tested[sample_indices(tested.size)]
            fig.add_trace(go.Scatter(x=steps[t, 0].astype(np.int32), y=as_f32(steps[t, 3]),
                                     mode="lines+markers", name=f"{label}: held-out accuracy",
                                     line=dict(color=COLOURS["test_accuracy"], width=2, dash=dash), marker=dict(size=4),
                                     hovertemplate=f"{label}, step %{{x}}: %{{y:.1%}}<extra></extra>"), row=1, col=2)
    finite = np.concatenate(all_loss) if all_loss else np.zeros(0)
    if finite.size and finite.max() / finite.min() > 10:
        fig.update_yaxes(**log_ticks(finite), row=1, col=1)  # the same log axis as Explore's loss chart
    else:
        fig.update_yaxes(**linear_ticks(finite), row=1, col=1)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    return apply_layout(fig, "Loss and accuracy: A vs B" if list(runs) == ["A", "B"] else "Loss and accuracy",
                        height, legend_bottom=True)


__all__ = ["shared_zrange", "fig_variance_compare", "fig_loss_compare"]

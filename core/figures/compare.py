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

from core.figures.runs import heatmap_zrange, theory_traces
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


def compare_records(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], step: int | None = None) -> dict[str, int]:
    """Which record of each run a by-layer chart shows: its latest (`step=None`), or its last record
    taken at or before optimizer step `step` (A and B at the same step; a run not that far yet shows its latest)."""
    out = {}
    for label, (_, steps) in runs.items():
        steps = np.asarray(steps)
        if len(steps) == 0:
            continue
        if step is None:
            out[label] = len(steps) - 1
        else:
            out[label] = max(0, int(np.searchsorted(steps[:, 0], step, side="right")) - 1)
    return out


def compare_title(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], records: Mapping[str, int]) -> str:
    shown = {label: int(np.asarray(runs[label][1])[i, 0]) for label, i in records.items()}
    if len(set(shown.values())) == 1:
        return f"Variance by layer at step {next(iter(shown.values()))}"
    return "Variance by layer: " + ", ".join(f"{label} at step {s}" for label, s in shown.items())


def fig_variance_compare(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], *, record: int = -1,
                         step: int | None = None, theories: Mapping[str, object] | None = None, ghost: bool = True,
                         height: int = 430) -> go.Figure:
    """Several runs on one variance-by-layer chart (Compare): `runs` maps a
    label ("A", "B") to (stats, steps). Forward Var(h) left, Var(∂L/∂h) right;
    runs differ by line style (`RUN_DASHES`), quantities by colour. Each run at its record
    `record` (default the latest) or, with `step`, at its last record up to
    that step (`compare_records`); with `ghost`, each run's step-0 curves
    faint; with `theories` (label → `core.theory.predicted_profile`), each
    run's mean-field prediction as a thin dark line."""
    dashes = [RUN_DASHES["A"], RUN_DASHES["B"], "dot", "dashdot"]
    fig = two_panels("Forward: Var(h)", "Backward: Var(∂L/∂h)")
    notes: dict[int, list] = {1: [], 2: []}
    theories = theories or {}
    arrays = {label: (np.asarray(st), np.asarray(sp)) for label, (st, sp) in runs.items()}
    records = compare_records(arrays, step)
    if step is None and record != -1:
        records = {label: record_index(arrays[label][1], record) for label in records}
    shown_values: dict[int, list] = {1: [], 2: []}
    for k, (label, (stats, steps)) in enumerate(arrays.items()):
        check_arrays(stats, steps)
        dash = dashes[k % len(dashes)]
        if len(steps) == 0:
            notes[1].append(f"{label}: nothing recorded yet")
            continue
        i = records[label]
        step_i = int(steps[i, 0])
        x = layer_axis(stats.shape[1])
        for col, c in ((1, "preact_var"), (2, "grad_preact_var")):
            if ghost and i != 0:
                fig.add_trace(go.Scatter(
                    x=x, y=for_log_axis(stats[0, :, COL[c]]), mode="lines", name=f"{label} at step 0 (faint)",
                    legendgroup=f"ghost{label}", showlegend=(col == 1),
                    line=dict(color=COLOURS[c], width=2, dash=dash), opacity=0.3,
                    hovertemplate=f"{label}, {NAMES[c]} at step 0<br>layer %{{x}}: %{{y:.3g}}<extra></extra>"),
                    row=1, col=col)
                shown_values[col].append(stats[0, :, COL[c]])
            fig.add_trace(go.Scatter(
                x=x, y=for_log_axis(stats[i, :, COL[c]]), mode="lines+markers",
                name=f"{label}: {NAMES[c]} (step {step_i})",
                line=dict(color=COLOURS[c], width=2.5, dash=dash), marker=dict(size=4),
                hovertemplate=f"{label}, {NAMES[c]} at step {step_i}<br>layer %{{x}}: %{{y:.3g}}<extra></extra>"),
                row=1, col=col)
            shown_values[col].append(stats[:, :, COL[c]])
            notes[col].append(gap_note(stats[i, :, COL[c]], f"{label}: {NAMES[c]}"))
    for k, (label, (stats, steps)) in enumerate(arrays.items()):
        if len(steps) == 0:
            continue
        q, grad = theory_traces(theories.get(label), stats, steps)
        x = layer_axis(stats.shape[1])
        for col, values, what in ((1, q, "Var(h)"), (2, grad, "Var(∂L/∂h)")):
            if values is None or not np.isfinite(values).any():
                continue
            fig.add_trace(go.Scatter(
                x=x, y=for_log_axis(values), mode="lines", name=f"{label}: theory", legendgroup=f"theory{label}",
                showlegend=(col == 1 or q is None), line=dict(color=COLOURS["theory"], width=1.3,
                                                              dash=dashes[k % len(dashes)]), opacity=0.8,
                hovertemplate=f"{label}, theory {what}, layer %{{x}}: %{{y:.3g}}<extra></extra>"), row=1, col=col)
            shown_values[col].append(values)
    for col, lines in notes.items():
        add_note(fig, lines, panel=col)
    layer_axes(fig)
    for col in (1, 2):
        fig.update_yaxes(**log_ticks(*shown_values[col]), row=1, col=col)
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    title = compare_title(arrays, records) if records else "Variance by layer"
    return apply_layout(fig, title, height, legend_bottom=True)


def fig_loss_compare(runs: Mapping[str, np.ndarray], *, height: int = 340,
                     idx: Mapping[str, np.ndarray] | None = None) -> go.Figure:
    """Training loss (left, log scale when it spans more than a decade) and
    held-out accuracy (right) of several runs; `runs` maps a label to its
    `steps` table. Colours are quantities (loss, accuracy), line styles runs (`RUN_DASHES`), as in
    `fig_variance_compare`. At most `MAX_POINTS` records per run (evenly spaced), or the records `idx[label]`."""
    fig = two_panels("Training loss (batch)", "Held-out accuracy")
    all_loss = []
    for label, steps in runs.items():
        steps = np.asarray(steps)
        if len(steps) == 0:
            continue
        kept = sample_indices(len(steps)) if idx is None else np.asarray(idx[label], dtype=np.int64)
        dash = RUN_DASHES.get(label, "dot")
        x = steps[kept, 0].astype(np.int32)
        loss = steps[kept, 1].astype(np.float64)
        all_loss.append(loss[np.isfinite(loss) & (loss > 0)])
        fig.add_trace(go.Scatter(x=x, y=as_f32(loss), mode="lines", name=f"{label}: loss",
                                 line=dict(color=COLOURS["loss"], width=2, dash=dash),
                                 hovertemplate=f"{label}, step %{{x}}: loss %{{y:.4g}}<extra></extra>"), row=1, col=1)
        tested = np.flatnonzero(np.isfinite(steps[:, 3]))
        if tested.size:
            t = tested[sample_indices(tested.size)] if idx is None else tested
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


__all__ = ["shared_zrange", "compare_records", "compare_title", "fig_variance_compare", "fig_loss_compare"]

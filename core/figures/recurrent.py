"""Charts of a recurrent run: statistics by time step, and the time step × training step heatmap.

A recurrent run's `stats` are (records, layers × time steps, columns), rows
layer-major (`core.models.recurrent`): `by_time` reshapes them to
(records, layers, time steps, columns). For recurrent nets the quantity of
interest is the gradient through time, `grad_act_var` = Var(∂L/∂h_t): it
vanishes (or explodes) geometrically with the lag T − t in a vanilla RNN and
far less in an LSTM. Pure functions, arrays in, `go.Figure` out.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from core.figures.style import (
    COLOURS, MAX_POINTS, THEORY_LABEL, add_note, apply_layout, check_arrays, empty_figure, for_log_axis, gap_note,
    log10_or_gap, log_ticks, record_axes, sample_indices, step_ticks, title_with_note, two_panels,
)
from core.measure.records import COL

TIME_AXIS = "time step t (1 = first input)"
TIME_NAMES = {
    "preact_var": "Var(h), pre-activation",   # an LSTM's cell state c_t, a GRU's candidate pre-activation
    "act_var": "Var(h_t), the state",
    "grad_act_var": "Var(∂L/∂h_t)",
    "grad_preact_var": "Var(∂L/∂h), pre-activation",
}
TIME_HEATMAP_SPAN = 10.0  # decades either side: the gradient through time spans many more than a layer's


def by_time(stats: np.ndarray, time_steps: int) -> np.ndarray:
    """(records, layers, time steps, columns) from a recurrent run's (records, rows, columns)."""
    stats = np.asarray(stats)
    n, rows, c = stats.shape
    if time_steps <= 0 or rows % time_steps:
        raise ValueError(f"{rows} rows are not a whole number of layers of {time_steps} time steps.")
    return stats.reshape(n, rows // time_steps, time_steps, c)


def _layer_colours(L: int) -> list[str]:
    return sample_colorscale("Viridis", list(np.linspace(0.0, 0.8, L))) if L > 1 else [None]


def fig_variance_by_time(stats: np.ndarray, steps: np.ndarray, time_steps: int, *, record: int = -1,
                         theory=None, theory_note: str = "", ghost: bool = True, height: int = 430) -> go.Figure:
    """Forward: Var(h_t) by time step (left); backward: Var(∂L/∂h_t), the gradient through time (right),
    log scale, one line per stacked layer, at one record (default: the latest), with step 0 as a faint
    ghost. `theory` (`core.theory.recurrent.gradient_through_time`'s table) draws the predicted
    decay dashed, scaled to meet the top layer's last step at step 0 (`theory_note`, why there is
    none, is for the page's caption: a note inside the chart collides with its axes on a phone)."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    title = "Variance by time step"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    i, step, _, _ = record_axes(stats, steps, record)
    s = by_time(stats, time_steps)
    L = s.shape[1]
    t = np.arange(1, time_steps + 1, dtype=np.int32)
    fig = two_panels("Forward: Var(h_t)", "Backward: Var(∂L/∂h_t)")  # short: two panels share a phone's width
    colours = _layer_colours(L)
    notes: dict[int, list] = {1: [], 2: []}
    for panel, col in ((1, "act_var"), (2, "grad_act_var")):
        colour = COLOURS[col]
        for l in range(L):
            name = TIME_NAMES[col] + (f", layer {l + 1}" if L > 1 else "")
            line = dict(color=colours[l] or colour, width=2.5)
            if ghost and i != 0:
                fig.add_trace(go.Scatter(
                    x=t, y=for_log_axis(s[0, l, :, COL[col]]), mode="lines", name="at step 0 (faint)",
                    legendgroup="ghost", showlegend=panel == 1 and l == 0,
                    line=dict(color=line["color"], width=2, dash="dot"), opacity=0.35,
                    hovertemplate=f"{name} at step 0<br>t = %{{x}}: %{{y:.3g}}<extra></extra>"), row=1, col=panel)
            fig.add_trace(go.Scatter(
                x=t, y=for_log_axis(s[i, l, :, COL[col]]), mode="lines+markers" if time_steps <= 60 else "lines",
                name=name, line=line, marker=dict(size=4),
                hovertemplate=f"{name} at step {step}<br>t = %{{x}}: %{{y:.3g}}<extra></extra>"), row=1, col=panel)
            notes[panel].append(gap_note(s[i, l, :, COL[col]], name))
    predicted = theory_by_time(theory, s, time_steps)
    if predicted is not None:
        fig.add_trace(go.Scatter(x=t, y=for_log_axis(predicted), mode="lines", name=THEORY_LABEL.split(",")[0]
                                 + ": ρ(W_hh)² E[φ′²] per step", line=dict(color=COLOURS["theory"], width=1.5, dash="dash"),
                                 hovertemplate="theory Var(∂L/∂h_t), t = %{x}: %{y:.3g}<extra></extra>"), row=1, col=2)
    for panel, lines in notes.items():
        add_note(fig, lines, panel=panel)
    fig.update_xaxes(title_text="time step t", row=1, col=1)
    fig.update_xaxes(title_text="t", row=1, col=2)
    fig.update_yaxes(**log_ticks(s[i, :, :, COL["act_var"]], *(s[0, :, :, COL["act_var"]],) * ghost), row=1, col=1)
    fig.update_yaxes(**log_ticks(s[i, :, :, COL["grad_act_var"]], *(s[0, :, :, COL["grad_act_var"]],) * ghost,
                                 *(() if predicted is None else (predicted,))), row=1, col=2)
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    return apply_layout(fig, f"{title} at step {step}", height, legend_bottom=True)


def theory_by_time(theory, s: np.ndarray, time_steps: int) -> np.ndarray | None:
    """The predicted Var(∂L/∂h_t) of the top layer, scaled to the measured top layer's last step at step 0."""
    if theory is None or not theory.attrs.get("applies", True) or not len(s):
        return None
    top = theory[theory["layer"] == theory["layer"].max()]
    rel = np.asarray(top["grad_rel"], dtype=np.float64)
    anchor = float(s[0, -1, -1, COL["grad_act_var"]])
    if rel.size != time_steps or not (math.isfinite(anchor) and anchor > 0):
        return None
    return rel * anchor


def fig_time_step_heatmap(stats: np.ndarray, steps: np.ndarray, time_steps: int, column: str = "grad_act_var", *,
                          layer: int = -1, zrange: tuple[float, float] | None = None, max_steps: int = MAX_POINTS,
                          title: str | None = None, height: int = 400) -> go.Figure:
    """Time step × training step heatmap of log10 of a variance column for one stacked layer (default:
    the top one), t = 1 at the top: how the gradient through time changes as the network learns.
    Colour limits are fixed (`zrange`, default ±10 decades around the last step's value at step 0 for
    gradients, around 1 for the forward pass); 0, inf and nan are grey gaps."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    name = TIME_NAMES.get(column, column)
    if len(steps) == 0:
        return empty_figure(title or f"log10 {name} by time step and training step", "Nothing recorded yet: press Run.",
                            height)
    s = by_time(stats, time_steps)
    L = s.shape[1]
    l = layer % L
    title = title or (f"log10 {name} by time step and training step" + (f", layer {l + 1}" if L > 1 else ""))
    idx = sample_indices(len(steps), max_steps)
    raw = s[idx, l, :, COL[column]]  # (k, T)
    if zrange is None:
        centre = 0.0
        v = float(s[0, l, -1, COL[column]])
        if column.startswith("grad") and math.isfinite(v) and v > 0:
            centre = float(np.round(math.log10(v)))
        zrange = (centre - TIME_HEATMAP_SPAN, centre + TIME_HEATMAP_SPAN)
    zmin, zmax = zrange
    fig = go.Figure(go.Heatmap(
        z=log10_or_gap(raw).T, x=steps[idx, 0].astype(np.int32), y=np.arange(1, time_steps + 1, dtype=np.int32),
        zmin=zmin, zmax=zmax, zmid=(zmin + zmax) / 2, colorscale="RdBu", reversescale=True, hoverongaps=False,
        colorbar=dict(title=dict(text="log10", side="right"), thickness=14),
        hovertemplate="step %{x}, t = %{y}<br>log10 " + name + " = %{z:.2f}<extra></extra>"))
    bad = ~(np.isfinite(raw) & (raw > 0))
    note = None
    if bad.any():
        r, t = np.argwhere(bad)[0]
        note = f"grey = 0, inf or nan (first at step {int(steps[idx[r], 0])}, t = {int(t) + 1})"
    fig.update_yaxes(title_text="time step t", autorange="reversed", showgrid=False)
    fig.update_xaxes(title_text="step", showgrid=False, **step_ticks(steps[idx, 0]))
    apply_layout(fig, title_with_note(title, note), height)
    fig.update_layout(plot_bgcolor="#c8c8c8")
    return fig


def fig_variance_by_time_compare(runs, *, record: int = -1, height: int = 430) -> go.Figure:
    """Several recurrent runs on one chart (Compare): `runs` maps a label ("A", "B") to (stats, steps,
    time steps). Var(h_t) left, Var(∂L/∂h_t) right, of each run's top layer at its latest record (or
    `record`); runs differ by line style, quantities by colour; step 0 faint."""
    dashes = ["solid", "dash", "dot", "dashdot"]
    fig = two_panels("Forward: Var(h_t)", "Backward: Var(∂L/∂h_t)")
    shown = {1: [], 2: []}
    for k, (label, (stats, steps, T)) in enumerate(runs.items()):
        stats, steps = np.asarray(stats), np.asarray(steps)
        check_arrays(stats, steps)
        if len(steps) == 0:
            continue
        i, step, _, _ = record_axes(stats, steps, record)
        s = by_time(stats, T)[:, -1]  # (records, T, columns): the top layer
        t = np.arange(1, T + 1, dtype=np.int32)
        for panel, col in ((1, "act_var"), (2, "grad_act_var")):
            for r, faint in ((0, True), (i, False)) if i != 0 else ((i, False),):
                fig.add_trace(go.Scatter(
                    x=t, y=for_log_axis(s[r, :, COL[col]]), mode="lines" if faint else "lines+markers",
                    name=f"{label}: {TIME_NAMES[col]} (step {int(steps[r, 0])})", opacity=0.35 if faint else 1.0,
                    showlegend=not faint, marker=dict(size=4),
                    line=dict(color=COLOURS[col], width=2 if faint else 2.5, dash="dot" if faint else dashes[k % 4]),
                    hovertemplate=f"{label}, {TIME_NAMES[col]} at step {int(steps[r, 0])}<br>t = %{{x}}: "
                                  f"%{{y:.3g}}<extra></extra>"), row=1, col=panel)
                shown[panel].append(s[r, :, COL[col]])
    fig.update_xaxes(title_text="time step t", row=1, col=1)
    fig.update_xaxes(title_text="t", row=1, col=2)
    for panel, arrays in shown.items():
        if arrays:
            fig.update_yaxes(**log_ticks(*arrays), row=1, col=panel)
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    return apply_layout(fig, "Variance by time step: A (solid) and B (dashed)", height, legend_bottom=True)


def time_zrange(stats: np.ndarray, time_steps: int, column: str) -> tuple[float, float]:
    """The colour limits `fig_time_step_heatmap` would choose for `stats` (to share them between runs)."""
    v = float(by_time(stats, time_steps)[0, -1, -1, COL[column]]) if len(stats) else math.nan
    centre = float(np.round(math.log10(v))) if column.startswith("grad") and math.isfinite(v) and v > 0 else 0.0
    return centre - TIME_HEATMAP_SPAN, centre + TIME_HEATMAP_SPAN


def fig_gate_saturation(stats: np.ndarray, steps: np.ndarray, time_steps: int, *, record: int = -1,
                        height: int = 320) -> go.Figure:
    """Gated cells: the share of sigmoid-gate entries in its flat region by time step, at one record, with
    step 0 faint; the share of the state's pre-activation in φ's flat region beside it."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    title = "Saturated gates by time step"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    i, step, _, _ = record_axes(stats, steps, record)
    s = by_time(stats, time_steps)
    t = np.arange(1, time_steps + 1, dtype=np.int32)
    fig = go.Figure()
    for col, name, colour in (("gate_saturation", "saturated gate entries", "#9467bd"),
                              ("saturation", "saturated pre-activations", "#8c564b")):
        values = s[:, -1, :, COL[col]]
        if not np.isfinite(values).any():
            continue
        if i != 0:
            fig.add_trace(go.Scatter(x=t, y=100 * values[0], mode="lines", name="at step 0 (faint)",
                                     showlegend=col == "gate_saturation", legendgroup="ghost",
                                     line=dict(color=colour, dash="dot", width=2), opacity=0.35))
        fig.add_trace(go.Scatter(x=t, y=100 * values[i], mode="lines+markers", name=name, marker=dict(size=4),
                                 line=dict(color=colour, width=2.5),
                                 hovertemplate=f"{name} at step {step}<br>t = %{{x}}: %{{y:.1f}}%<extra></extra>"))
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text="% of entries", range=[-2, 102])
    return apply_layout(fig, f"{title} at step {step} (top layer)", height, legend_bottom=True)


__all__ = ["by_time", "fig_variance_by_time", "fig_time_step_heatmap", "fig_gate_saturation", "theory_by_time",
           "fig_variance_by_time_compare", "time_zrange", "TIME_AXIS"]

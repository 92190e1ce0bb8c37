"""Plotly figures of a run's statistics: pure functions, arrays in, `go.Figure` out.

No Streamlit here: the pages lay these out, a notebook can call them too.

Inputs are the arrays a `core.run.record.RunRecord` carries:
  `stats` (records, layers, len(STAT_COLUMNS)) float64, columns in
  `core.measure.probes.STAT_COLUMNS`; `steps` (records, 4) with columns
  step, loss, train_accuracy, test_accuracy (`core.run.record.STEP_COLUMNS`);
  `hist` the latest per-layer histograms ({'act' | 'grad_preact' | 'preact':
  [(edges, counts), ...], 'step': int}).

The figures are sent to the browser several times a second while a run
trains, so they are kept small (see `core.figures.style`, their shared palette,
template and helpers). Lines are SVG `Scatter`, not `Scattergl`: with
at most ~10 lines of 200 points, SVG draws in ~20 ms, while each WebGL
chart costs 200-300 ms to mount in a browser without a GPU (measured in
headless Chromium), and Streamlit mounts a chart afresh when it changes.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from core.figures.style import (
    COLOURS, HEALTHY_UPDATE_RATIO, HEATMAP_SPAN, LAYER_AXIS, MAX_POINTS, MAX_RIDGES, NAMES, THEORY_LABEL, add_note,
    apply_layout, as_f32, check_arrays, empty_figure, for_log_axis, gap_note, layer_axes, layer_axis, log10_or_gap,
    linear_ticks, log_ticks, ranges_text, record_axes, sample_indices, step_ticks, title_with_note, two_panels,
)
from core.measure.records import COL
from core.registry import ACTIVATIONS

# -- 1. variance by layer --------------------------------------------------------------------------

def theory_traces(theory, stats: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The theory's predicted Var(h) and Var(∂L/∂h) per layer, the gradient
    curve scaled so that it meets the measured last layer at step 0 (the
    theory predicts ratios between layers, not the loss's own scale)."""
    if theory is None or not theory.attrs.get("applies", True) or len(steps) == 0:
        return None, None
    q = np.asarray(theory["q"], dtype=np.float64)
    grad = None
    anchor = stats[0, -1, COL["grad_preact_var"]]
    if math.isfinite(anchor) and anchor > 0 and "grad_rel" in theory:
        grad = np.asarray(theory["grad_rel"], dtype=np.float64) * anchor
    return q, grad


def fig_variance_by_layer(stats: np.ndarray, steps: np.ndarray, *, record: int = -1, theory=None,
                          ghost: bool = True, height: int = 430) -> go.Figure:
    """Variance of every layer's activations (left) and back-propagated
    gradients ∂L/∂h (right) at one record (default: the latest), log scale,
    with the step-0 curves as faint ghosts and, when `theory` (the DataFrame of
    `core.theory.predicted_profile`) applies, its predicted Var(h) and gradient
    profile as dashed lines. One point per layer in every measured trace."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    title = "Variance by layer"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    i, step, L, x = record_axes(stats, steps, record)
    fig = two_panels("Forward", "Backward: ∂L/∂h")
    panels = {1: ("preact_var", "act_var"), 2: ("grad_preact_var",)}
    notes: dict[int, list] = {1: [], 2: []}
    for col, columns in panels.items():
        for c in columns:
            if ghost and i != 0:
                fig.add_trace(go.Scatter(
                    x=x, y=for_log_axis(stats[0, :, COL[c]]), mode="lines", name="at step 0 (faint)",
                    legendgroup="ghost", showlegend=(c == "preact_var"),
                    line=dict(color=COLOURS[c], width=2, dash="dot"), opacity=0.35,
                    hovertemplate=f"{NAMES[c]} at step 0<br>layer %{{x}}: %{{y:.3g}}<extra></extra>"), row=1, col=col)
            fig.add_trace(go.Scatter(
                x=x, y=for_log_axis(stats[i, :, COL[c]]), mode="lines+markers", name=NAMES[c],
                line=dict(color=COLOURS[c], width=2.5), marker=dict(size=5 if L <= 60 else 3),
                hovertemplate=f"{NAMES[c]} at step {step}<br>layer %{{x}}: %{{y:.3g}}<extra></extra>"), row=1, col=col)
            notes[col].append(gap_note(stats[i, :, COL[c]], NAMES[c]))
    q, grad = theory_traces(theory, stats, steps)
    if q is not None:
        fig.add_trace(go.Scatter(x=x, y=for_log_axis(q), mode="lines", name=THEORY_LABEL, legendgroup="theory",
                                 line=dict(color=COLOURS["theory"], width=1.5, dash="dash"),
                                 hovertemplate="theory Var(h), layer %{x}: %{y:.3g}<extra></extra>"), row=1, col=1)
    if grad is not None and np.isfinite(grad).any():
        fig.add_trace(go.Scatter(x=x, y=for_log_axis(grad), mode="lines", name=THEORY_LABEL, legendgroup="theory",
                                 showlegend=q is None, line=dict(color=COLOURS["theory"], width=1.5, dash="dash"),
                                 hovertemplate="theory Var(∂L/∂h), layer %{x}: %{y:.3g}<extra></extra>"), row=1, col=2)
    if theory is not None and not theory.attrs.get("applies", True):
        fig.add_annotation(text="theory line hidden: mean-field theory does not cover this setting",
                           x=1.0, y=-0.17, xref="paper", yref="paper", xanchor="right", showarrow=False,
                           font=dict(size=11, color="#666666"))
    for col, lines in notes.items():
        add_note(fig, lines, panel=col)
    layer_axes(fig, L)
    for col, columns in panels.items():
        shown = [stats[i, :, COL[c]] for c in columns] + ([stats[0, :, COL[c]] for c in columns] if ghost else [])
        shown.append(q if col == 1 else grad)
        fig.update_yaxes(**log_ticks(*shown), row=1, col=col)
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    apply_layout(fig, f"{title} at step {step}", height, legend_bottom=True)
    return fig


def fig_theory_profile(theory, *, height: int = 380) -> go.Figure:
    """What mean-field theory predicts before anything runs: Var(h) per layer
    (left) and the gradient's second moment relative to the last layer
    (right), from `core.theory.predicted_profile`."""
    title = "What theory predicts"
    if theory is None or not theory.attrs.get("applies", True) or not np.isfinite(np.asarray(theory["q"], float)).any():
        return empty_figure(title, "Mean-field theory does not cover this setting: press Run to measure it.", height)
    x = np.asarray(theory["layer"], dtype=np.int32)
    q = np.asarray(theory["q"], dtype=np.float64)
    g = np.asarray(theory["grad_rel"], dtype=np.float64)
    fig = two_panels("Forward: predicted Var(h)", "Backward, ÷ the last layer")
    fig.add_trace(go.Scatter(x=x, y=for_log_axis(q), mode="lines+markers", name="predicted Var(h)",
                             line=dict(color=COLOURS["preact_var"], width=2, dash="dash"), marker=dict(size=4),
                             hovertemplate="layer %{x}: %{y:.3g}<extra></extra>"), row=1, col=1)
    if np.isfinite(g).any():
        fig.add_trace(go.Scatter(x=x, y=for_log_axis(g), mode="lines+markers",
                                 name="predicted Var(∂L/∂h), relative",
                                 line=dict(color=COLOURS["grad_preact_var"], width=2, dash="dash"),
                                 marker=dict(size=4),
                                 hovertemplate="layer %{x}: %{y:.3g} × the last layer's<extra></extra>"), row=1, col=2)
    else:  # Fixup, ReZero: no gradient reaches a branch's h at init (the theory table's note says why)
        fig.add_trace(go.Scatter(x=x, y=np.full(len(x), np.nan), mode="lines", showlegend=False, hoverinfo="skip"),
                      row=1, col=2)  # no curve and no legend entry, but the panel keeps its axes for the note
        add_note(fig, ["∂L/∂h = 0 at init"], panel=2)  # short: it fits a phone's half panel
        fig.update_yaxes(showticklabels=False, row=1, col=2)
    layer_axes(fig, len(x))
    fig.update_yaxes(**log_ticks(q), row=1, col=1)
    fig.update_yaxes(**log_ticks(g), row=1, col=2)
    # The conditions on a line of their own in small type: on one line the title ran off a phone's screen.
    return apply_layout(fig, title + "<br><sup>" + THEORY_LABEL.split(": ", 1)[1] + "</sup>", height,
                        legend_bottom=True)


# -- 2. layer × step heatmaps ----------------------------------------------------------------------

def heatmap_zrange(stats: np.ndarray, column: str, span: float = HEATMAP_SPAN) -> tuple[float, float]:
    """Fixed colour limits for a log10-variance heatmap, so colours mean the
    same thing on every refresh of a run: ±`span` decades around 1 for the
    forward pass (variance 1 is what a healthy init keeps), and around the
    last layer's value at step 0 for gradients (whose scale is set by the loss)."""
    centre = 0.0
    if column.startswith("grad") and len(stats):
        v = float(stats[0, -1, COL[column]])
        if math.isfinite(v) and v > 0:
            centre = float(np.round(math.log10(v)))
    return centre - span, centre + span


def heatmap_note(raw: np.ndarray, record_steps: np.ndarray) -> str | None:
    """Where a heatmap's grey cells start: `raw` (records, layers) of the drawn records, at `record_steps`."""
    bad = ~(np.isfinite(raw) & (raw > 0))
    if not bad.any():
        return None
    r, l = np.argwhere(bad)[0]
    return f"grey = 0, inf or nan (first at step {int(record_steps[r])}, layer {int(l) + 1})"


def fig_layer_step_heatmap(stats: np.ndarray, steps: np.ndarray, column: str = "preact_var", *,
                           zrange: tuple[float, float] | None = None, max_steps: int = MAX_POINTS,
                           title: str | None = None, height: int = 400, idx: np.ndarray | None = None,
                           records_major: bool = False) -> go.Figure:
    """Layer × step heatmap of log10 of a variance column (`preact_var`,
    `act_var`, `grad_preact_var`...), layer 1 at the top. Colour limits are
    fixed (`zrange`, default `heatmap_zrange`); blue is smaller, red larger;
    0, inf and nan are grey gaps. At most `max_steps` records (evenly spaced,
    first and last kept), or the records `idx`. `records_major` stores z as
    (records, layers) with Plotly's `transpose` (the same picture), so a live
    chart can append records as rows (`core.figures.live`)."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    name = NAMES.get(column, column)
    title = title or f"log10 {name} by layer and step"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    idx = sample_indices(len(steps), max_steps) if idx is None else np.asarray(idx, dtype=np.int64)
    raw = stats[idx, :, COL[column]]                       # (k, L)
    z = log10_or_gap(raw) if records_major else log10_or_gap(raw).T   # (k, L) or (L, k)
    zmin, zmax = zrange if zrange is not None else heatmap_zrange(stats, column)
    L = stats.shape[1]
    fig = go.Figure(go.Heatmap(
        z=z, x=steps[idx, 0].astype(np.int32), y=layer_axis(L), transpose=records_major or None,
        zmin=zmin, zmax=zmax, zmid=(zmin + zmax) / 2, colorscale="RdBu", reversescale=True,
        hoverongaps=False, colorbar=dict(title=dict(text="log10", side="right"), thickness=14),
        hovertemplate="step %{x}, layer %{y}<br>log10 " + name + " = %{z:.2f}<extra></extra>",
    ))
    note = heatmap_note(raw, steps[idx, 0])
    fig.update_yaxes(title_text="layer", autorange="reversed", showgrid=False)
    fig.update_xaxes(title_text="step", showgrid=False, **step_ticks(steps[idx, 0]))
    apply_layout(fig, title_with_note(title, note), height)
    fig.update_layout(plot_bgcolor="#c8c8c8")
    return fig


# -- 3. loss and accuracy --------------------------------------------------------------------------

def loss_is_log(steps: np.ndarray) -> bool:
    """The loss chart's y axis is logarithmic when the finite, positive losses span more than a decade."""
    loss = np.asarray(steps)[:, 1]
    finite = loss[np.isfinite(loss) & (loss > 0)]
    return bool(finite.size and finite.max() / finite.min() > 10)


def loss_note(steps: np.ndarray) -> str | None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(steps)[:, 1]))
    return f"the loss became inf/nan at step {int(steps[bad[0], 0])}" if bad.size else None


def fig_loss_accuracy(steps: np.ndarray, *, max_points: int = MAX_POINTS, height: int = 340,
                      idx: np.ndarray | None = None) -> go.Figure:
    """Training loss (left; log scale when it spans more than a decade) and
    accuracy (right): the training batch's, faint, and held-out, where measured.
    At most `max_points` records (evenly spaced), or the records `idx`."""
    steps = np.asarray(steps)
    title = "Loss and accuracy"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    idx = sample_indices(len(steps), max_points) if idx is None else np.asarray(idx, dtype=np.int64)
    x = steps[idx, 0].astype(np.int32)
    fig = two_panels("Training loss", "Accuracy")
    loss = steps[idx, 1]
    few = len(x) <= 20  # a single point of a line would not show
    fig.add_trace(go.Scatter(x=x, y=as_f32(loss), mode="lines+markers" if few else "lines", name="training loss (batch)",
                               line=dict(color=COLOURS["loss"], width=2),
                               hovertemplate="step %{x}: loss %{y:.4g}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=as_f32(steps[idx, 2]), mode="lines+markers" if few else "lines",
                               name="training batch accuracy",
                               line=dict(color=COLOURS["train_accuracy"], width=1.5),
                               hovertemplate="step %{x}: batch accuracy %{y:.1%}<extra></extra>"), row=1, col=2)
    tested = np.flatnonzero(np.isfinite(steps[:, 3]))
    if tested.size:
        t = tested[sample_indices(tested.size, max_points)]
        fig.add_trace(go.Scatter(x=steps[t, 0].astype(np.int32), y=as_f32(steps[t, 3]), mode="lines+markers",
                                   name="held-out accuracy", line=dict(color=COLOURS["test_accuracy"], width=2.5),
                                   marker=dict(size=5), hovertemplate="step %{x}: held-out accuracy %{y:.1%}<extra></extra>"),
                      row=1, col=2)
    if loss_is_log(steps):
        finite = steps[:, 1][np.isfinite(steps[:, 1]) & (steps[:, 1] > 0)]
        fig.update_yaxes(**log_ticks(finite), row=1, col=1)
    else:
        fig.update_yaxes(**linear_ticks(steps[:, 1]), row=1, col=1)
    add_note(fig, [loss_note(steps)])
    fig.update_xaxes(title_text="step", **step_ticks(x))
    fig.update_yaxes(title_text="cross-entropy", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    return apply_layout(fig, title, height, legend_bottom=True)


# -- 4. distributions (ridge plot) -----------------------------------------------------------------

HIST_KINDS = {"act": "activations a = φ(h)", "preact": "pre-activations h", "grad_preact": "gradients ∂L/∂h"}


def histogram_ridges(hist: dict | None, kind: str = "act", *, max_layers: int = MAX_RIDGES) -> dict:
    """What `fig_histograms` draws, as plain numbers: `title` (with its layer subset and note), `empty`
    (why there is nothing to draw, or None), `range` (the shared x range) and `ridges`, one
    (k, layer, x, y) per drawn layer, k its place among the `shown` layers sampled (layer 1 at the top,
    each scaled to its own peak)."""
    what = HIST_KINDS.get(kind, kind)
    title = f"Distribution of {what}"
    if not hist or not hist.get(kind):
        return dict(title=title, empty="No distributions recorded yet.", what=what)
    per_layer = hist[kind]
    L = len(per_layer)
    title += f" at step {hist.get('step', '?')}"
    chosen = sample_indices(L, max_layers)
    # The shared x range: what holds 99.5% of each layer's entries, over all layers.
    lo, hi = math.inf, -math.inf
    for l in chosen:
        edges, counts = (np.asarray(a, dtype=np.float64) for a in per_layer[l])
        total = counts.sum()
        if total <= 0 or not np.isfinite(edges).all():
            continue
        cdf = np.cumsum(counts) / total
        lo = min(lo, edges[min(np.searchsorted(cdf, 0.0025), len(counts) - 1)])
        hi = max(hi, edges[min(np.searchsorted(cdf, 0.9975) + 1, len(edges) - 1)])
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return dict(title=title, empty="Every value was inf/nan or the layers were empty.", what=what)
    ridges, empty = [], []
    for k, l in enumerate(chosen):
        edges, counts = (np.asarray(a, dtype=np.float64) for a in per_layer[l])
        peak = counts.max() if counts.size else 0
        if peak <= 0:
            empty.append(int(l) + 1)
            continue
        centres = (edges[:-1] + edges[1:]) / 2
        height_ = 1.6 * counts / peak
        xs = np.concatenate([[centres[0]], centres, [centres[-1]]])
        ys = float(l + 1) - np.concatenate([[0.0], height_ * (L / max(len(chosen), 1)) * 0.9, [0.0]])
        ridges.append((k, int(l) + 1, as_f32(xs), as_f32(ys)))
    pad = 0.03 * (hi - lo)
    subset = "" if len(chosen) == L else f" ({len(chosen)} of {L} layers)"
    note = f"no finite values in layer{'s' if len(empty) > 1 else ''} {ranges_text(empty)}" if empty else None
    return dict(title=title_with_note(title + subset, note), empty=None, what=what, layers=L, shown=len(chosen),
                range=[lo - pad, hi + pad], ridges=ridges)


def fig_histograms(hist: dict | None, kind: str = "act", *, max_layers: int = MAX_RIDGES, height: int = 520) -> go.Figure:
    """Per-layer distributions at the step `hist['step']`, one ridge per layer
    (layer 1 at the top) on a shared x axis, each ridge scaled to its own
    peak: a layer whose signal has vanished shows as a spike at 0. With more
    than `max_layers` layers, evenly spaced ones are drawn (first and last kept)."""
    return ridges_figure(histogram_ridges(hist, kind, max_layers=max_layers), height)


def ridges_figure(r: dict, height: int = 520) -> go.Figure:
    """The ridge plot of `histogram_ridges`' result (`fig_histograms`)."""
    if r["empty"]:
        return empty_figure(r["title"], r["empty"], height)
    L = r["layers"]
    colours = sample_colorscale("Viridis", list(np.linspace(0.0, 0.85, r["shown"])))
    fig = go.Figure()
    for k, layer, xs, ys in r["ridges"]:
        colour = colours[k]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", fill="toself", name=f"layer {layer}", showlegend=False,
            line=dict(color=colour, width=1), fillcolor=colour.replace("rgb", "rgba").replace(")", ", 0.45)"),
            hoveron="fills+points", hovertemplate=f"layer {layer}<br>x = %{{x:.3g}}<extra></extra>"))
    fig.update_xaxes(range=r["range"], title_text=r["what"], zeroline=True)
    step_ticks = max(1, L // 10)
    ticks = [l for l in range(1, L + 1) if l == 1 or l == L or l % step_ticks == 0]
    fig.update_yaxes(autorange="reversed", title_text="layer", tickvals=ticks, showgrid=False, zeroline=False)
    return apply_layout(fig, r["title"], height)


# -- 5. saturation and dead units ------------------------------------------------------------------

def fig_saturation(stats: np.ndarray, steps: np.ndarray, *, record: int = -1, activation: str | None = None,
                   ghost: bool = True, height: int = 340) -> go.Figure:
    """Per layer, at one record: the share of pre-activations in the
    activation's flat region (saturation) and the share of units flat for the
    whole batch (dead), in percent, with step 0 as a faint ghost."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    title = "Saturation and dead units by layer"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    i, step, L, x = record_axes(stats, steps, record)
    fig = go.Figure()
    for c in ("saturation", "dead_units"):
        if ghost and i != 0:
            fig.add_trace(go.Scatter(x=x, y=as_f32(100 * stats[0, :, COL[c]]), mode="lines", name="at step 0 (faint)",
                                     legendgroup="ghost", showlegend=c == "saturation",
                                     line=dict(color=COLOURS[c], dash="dot", width=2), opacity=0.35,
                                     hovertemplate=f"{NAMES[c]} at step 0<br>layer %{{x}}: %{{y:.1f}}%<extra></extra>"))
        fig.add_trace(go.Scatter(x=x, y=as_f32(100 * stats[i, :, COL[c]]), mode="lines+markers", name=NAMES[c],
                                 line=dict(color=COLOURS[c], width=2.5), marker=dict(size=5 if L <= 60 else 3),
                                 hovertemplate=f"{NAMES[c]} at step {step}<br>layer %{{x}}: %{{y:.1f}}%<extra></extra>"))
    if activation is not None and not ACTIVATIONS[activation].has_flat_region:
        add_note(fig, [f"{ACTIVATIONS[activation].label} has no flat region: nothing can saturate or die"])
    fig.update_xaxes(title_text=LAYER_AXIS)
    fig.update_yaxes(title_text="% of entries / units", range=[-2, 102])
    return apply_layout(fig, f"{title} at step {step}", height, legend_bottom=True)


# -- 6. update:data ratio --------------------------------------------------------------------------

UPDATE_LAYERS = 10  # the update-ratio chart draws at most this many layers (evenly spaced, first and last kept)


def update_ratio_notes(stats: np.ndarray, steps: np.ndarray, idx: np.ndarray, layers: np.ndarray) -> list[str]:
    """The update-ratio chart's notes: each drawn layer whose ratio became inf/nan, from which step (records `idx`)."""
    notes = []
    for l in layers:
        bad = np.flatnonzero(~np.isfinite(stats[idx, l, COL["update_ratio"]]))
        if bad.size:
            notes.append(f"layer {l + 1}: inf/nan from step {int(steps[idx[bad[0]], 0])}")
    return notes


def fig_update_ratio(stats: np.ndarray, steps: np.ndarray, *, max_steps: int = MAX_POINTS,
                     max_layers: int = UPDATE_LAYERS, height: int = 380, idx: np.ndarray | None = None) -> go.Figure:
    """std(ΔW)/std(W) of each layer's last update over the steps (log scale),
    with the dashed 1e-3 rule of thumb. With more than `max_layers` layers,
    evenly spaced ones are drawn (first and last kept), coloured from the
    input side (dark) to the output side (light). At most `max_steps` records
    after step 0 (evenly spaced), or the records `idx`."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    title = "Update:data ratio per layer"
    rows = np.flatnonzero(steps[:, 0] > 0) if idx is None else np.asarray(idx, dtype=np.int64)
    rows = rows[steps[rows, 0] > 0]  # no update has happened at step 0
    if rows.size == 0:
        fig = empty_figure(title, "No update yet: the ratio appears after the first step.", height)
        return fig
    idx = rows if idx is not None else rows[sample_indices(rows.size, max_steps)]
    x = steps[idx, 0].astype(np.int32)
    L = stats.shape[1]
    chosen = sample_indices(L, max_layers)
    colours = sample_colorscale("Viridis", list(np.linspace(0.0, 0.9, len(chosen))))
    fig = go.Figure()
    for k, l in enumerate(chosen):
        y = stats[idx, l, COL["update_ratio"]]
        fig.add_trace(go.Scatter(x=x, y=for_log_axis(y), mode="lines" if len(x) > 20 else "lines+markers",
                                   name=f"layer {l + 1}", line=dict(color=colours[k], width=1.8),
                                   hovertemplate=f"layer {l + 1}, step %{{x}}: %{{y:.2e}}<extra></extra>"))
    notes = update_ratio_notes(stats, steps, idx, chosen)
    fig.add_hline(y=HEALTHY_UPDATE_RATIO, line=dict(color="#555555", dash="dash", width=1.5))
    # On a log axis an annotation's y is log10 of the value (a shape's is the value itself).
    fig.add_annotation(x=0.0, xref="paper", xanchor="left", y=math.log10(HEALTHY_UPDATE_RATIO), yanchor="bottom",
                       text="10⁻³: the usual healthy value", showarrow=False, font=dict(size=11, color="#555555"))
    add_note(fig, notes[:2])
    fig.update_xaxes(title_text="step", **step_ticks(x))
    shown = stats[idx][:, chosen, COL["update_ratio"]]
    fig.update_yaxes(**log_ticks(shown, HEALTHY_UPDATE_RATIO), title_text="std(ΔW) / std(W)")
    ok = shown[np.isfinite(shown) & (shown > 0)]
    if ok.size:  # keep the 1e-3 line inside, with some room
        lo = math.log10(min(ok.min(), HEALTHY_UPDATE_RATIO)) - 0.25
        hi = math.log10(max(ok.max(), HEALTHY_UPDATE_RATIO)) + 0.25
        fig.update_yaxes(range=[lo, hi])
    subset = "" if len(chosen) == L else f" ({len(chosen)} of {L} layers)"
    apply_layout(fig, title + subset, height)
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02), margin=dict(r=90))
    return fig


__all__ = [
    "heatmap_zrange", "heatmap_note", "loss_is_log", "loss_note", "theory_traces", "fig_variance_by_layer", "fig_theory_profile", "fig_layer_step_heatmap",
    "fig_loss_accuracy", "fig_histograms", "histogram_ridges", "ridges_figure", "fig_saturation", "fig_update_ratio",
    "update_ratio_notes", "UPDATE_LAYERS",
]

"""Plotly figures of the mean-field theory (pure functions: numbers in, `go.Figure` out).

No Streamlit here; the Theory page puts these on screen. The template, the
palette and the layout are `core.figures.style`'s, as for every figure. See
`core.theory.meanfield` for the formulas.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from core import theory as T
from core.figures.style import COLOURS, INK, MUTED, apply_layout, for_log_axis, layer_axes, log_ticks, title_lines, two_panels
from core.registry import ACTIVATIONS

# q is the forward signal's second moment (blue, as Var(h) everywhere); the gradient is red; the fixed point,
# the cobweb and the spectrum are neither, so they take colours no quantity uses.
CURVE, ACCENT, COBWEB = COLOURS["preact_var"], COLOURS["grad_preact_var"], COLOURS["other"]
FIXED_POINT, SPECTRUM = INK, COLOURS["other"]


def _label(activation: str) -> str:
    return ACTIVATIONS[activation].label


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "undefined"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}g}"


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 440, detail: str = "") -> go.Figure:
    """The theory charts' layout: `detail` on a second, smaller title line and the legend under the plot,
    so a long title and the legend never overlap, even on a phone."""
    return apply_layout(fig, title_lines(title, detail), height + 60, legend_bottom=True, x_title=x, y_title=y)


def fig_variance_map(activation: str, sigma_w2: float, sigma_b2: float, q1: float | None = None,
                     cobweb_steps: int = 8, q_max: float | None = None) -> go.Figure:
    """The variance map q → f(q) = σ_w² E[φ(√q z)²] + σ_b² with the identity line and q* marked.

    Where the curve crosses the diagonal is the fixed point q*. The cobweb
    (thin line) follows the layers from q¹ (default σ_w² + σ_b², an input of
    second moment 1) for `cobweb_steps` layers; 0 hides it.
    """
    sw2, sb2 = float(sigma_w2), float(sigma_b2)
    q1 = sw2 + sb2 if q1 is None else float(q1)
    q_star = T.fixed_point(activation, sw2, sb2, q_init=q1)
    chi = T.chi1(activation, sw2, sb2, q=q_star)
    if q_max is None:
        q_max = max(1.5 * q1, 1.0)
        if math.isfinite(q_star):
            q_max = max(q_max, 2.0 * q_star)
        q_max = min(q_max, 1e6)
    q = np.linspace(0.0, q_max, 301)
    f = T.variance_map(activation, sw2, sb2, q)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=q, y=q, mode="lines", name="identity f(q) = q",
                             line=dict(color=MUTED, dash="dash", width=1.5), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=q, y=f, mode="lines", name="variance map f(q)", line=dict(color=CURVE, width=3),
                             hovertemplate="q = %{x:.4g}<br>f(q) = %{y:.4g}<extra></extra>"))
    if cobweb_steps > 0:
        path = T.q_path(activation, sw2, sb2, q1, cobweb_steps + 1)
        xs, ys = [path[0]], [0.0]
        for a, b in zip(path[:-1], path[1:]):
            if not (math.isfinite(b) and b <= 1.2 * q_max):
                break
            xs += [a, b]
            ys += [b, b]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"layers from q¹ = {_fmt(q1)}",
                                 line=dict(color=COBWEB, width=1.2), hoverinfo="skip"))
    if math.isfinite(q_star):
        fig.add_trace(go.Scatter(
            x=[q_star], y=[q_star], mode="markers+text", name="fixed point q*",
            marker=dict(color=FIXED_POINT, size=11, line=dict(color="white", width=1.5)),
            text=[f"q* = {_fmt(q_star)}"], textposition="middle right", textfont=dict(color=FIXED_POINT),
            hovertemplate="q* = %{x:.5g}<extra></extra>"))
        status = f"q* = {_fmt(q_star)}, χ₁ = {_fmt(chi)}"
    else:
        status = f"no finite fixed point: q grows without bound (χ₁ → {_fmt(chi)})"
    fig.update_xaxes(range=[0, q_max], rangemode="tozero")
    fig.update_yaxes(range=[0, max(q_max, float(np.max(np.where(np.isfinite(f), f, 0.0))))])
    return _layout(
        fig, f"Variance map, {_label(activation)}", "q = E[h²] in layer l (pre-activation)",
        "f(q) = E[h²] in layer l + 1", detail=f"σ_w² = {sw2:.3g}, σ_b² = {sb2:.3g}: {status}")


def fig_phase_diagram(activation: str, sigma_w2: float, sigma_b2: float, quantity: str = "chi1",
                      sigma_w2_max: float | None = None, sigma_b2_max: float | None = None,
                      n: int = 150) -> go.Figure:
    """The order-to-chaos phase diagram over (σ_w², σ_b²), the current setting marked.

    quantity="chi1": log₁₀ χ₁ (blue: ordered, gradients vanish; red: chaotic,
    they explode; white: critical). quantity="xi_c": log₁₀ of the correlation
    depth scale ξ_c in layers (bright along the edge of chaos, where it
    diverges; blank where q* is infinite). The line χ₁ = 1 is drawn where the
    grid crosses it (Poole et al. 2016, Fig. 2; Schoenholz et al. 2017, Fig. 1).
    """
    if quantity not in ("chi1", "xi_c"):
        raise ValueError("quantity must be 'chi1' or 'xi_c'.")
    sw2, sb2 = float(sigma_w2), float(sigma_b2)
    crit_here = T.critical_sigma_w2(activation, sb2)
    x_max = sigma_w2_max or max(4.0, 1.5 * sw2)
    off_chart = None
    if sigma_w2_max is None and crit_here is not None:
        if crit_here > x_max and crit_here < 10 * x_max:
            x_max = 1.2 * crit_here
        elif crit_here > x_max:
            off_chart = crit_here
    y_max = sigma_b2_max or max(1.0, 1.5 * sb2)
    w = np.linspace(x_max / n, x_max, n)
    b = np.linspace(0.0, y_max, n)
    d = T.phase_diagram(activation, w, b)
    chi, q_star, xi_c = d["chi1"], d["q_star"], d["xi_c"]
    custom = np.stack([chi, q_star, xi_c], axis=-1)
    custom = np.where(np.isfinite(custom), custom, np.nan).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        if quantity == "chi1":
            z = np.log10(chi)
            heat = dict(colorscale="RdBu_r", zmid=0.0, zmin=-0.5, zmax=0.5,
                        colorbar=dict(title=dict(text="χ₁ (log scale)", side="right"),
                                      tickvals=[-0.5, np.log10(0.5), 0, np.log10(2), 0.5],
                                      ticktext=["≤ 0.32", "0.5", "1", "2", "≥ 3.2"]))
            what = "log₁₀ χ₁: blue = ordered (gradients vanish), red = chaotic (gradients explode)"
        else:
            z = np.log10(np.where(np.isinf(xi_c), 1e6, xi_c))
            heat = dict(colorscale="Viridis", zmin=0.0, zmax=3.0,
                        colorbar=dict(title=dict(text="log₁₀ ξ_c (layers)", side="right"), tickvals=[0, 1, 2, 3],
                                      ticktext=["1", "10", "100", "≥1000"]))
            what = "correlation depth scale ξ_c (layers), longest at the edge of chaos"
    z = np.where(np.isfinite(z), z, np.nan).astype(np.float32)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        x=w, y=b, z=z, customdata=custom, name="", **heat,
        hovertemplate=("σ_w² = %{x:.3f}<br>σ_b² = %{y:.3f}<br>χ₁ = %{customdata[0]:.3g}"
                       "<br>q* = %{customdata[1]:.3g}<br>ξ_c = %{customdata[2]:.3g} layers<extra></extra>")))
    unbounded = ~np.isfinite(q_star)
    if unbounded.any():
        grey = "rgba(60,60,60,0.35)"
        fig.add_trace(go.Heatmap(x=w, y=b, z=np.where(unbounded, 1.0, np.nan).astype(np.float32), showscale=False,
                                 colorscale=[[0, grey], [1, grey]], hoverinfo="skip", name=""))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="q* = ∞ (variance grows without bound)",
                                 marker=dict(symbol="square", size=12, color=grey)))
    cx, cy = T.critical_line(d)
    if np.isfinite(cx).sum() >= 2:
        fig.add_trace(go.Scatter(x=cx, y=cy, mode="lines", name="χ₁ = 1 (edge of chaos)",
                                 line=dict(color="black", width=2.5), connectgaps=False, hoverinfo="skip"))
    else:
        crit0 = T.critical_sigma_w2(activation, 0.0)
        if crit0 is not None and crit0 <= x_max:
            fig.add_trace(go.Scatter(x=[crit0], y=[0.0], mode="markers", name=f"critical point (σ_w² = {crit0:.3g}, σ_b² = 0)",
                                     marker=dict(symbol="circle", size=12, color="black"), cliponaxis=False,
                                     hovertemplate="critical point<br>σ_w² = %{x:.4g}, σ_b² = 0<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[sw2], y=[sb2], mode="markers+text", name="this setting",
        marker=dict(symbol="star", size=17, color="#ffbf00", line=dict(color="black", width=1.5)),
        text=[f"σ_w² = {sw2:.3g}, σ_b² = {sb2:.3g}"], textposition="top right" if sw2 < 0.6 * x_max else "top left",
        textfont=dict(color="black", size=13), cliponaxis=False, hovertemplate="this setting<br>σ_w² = %{x:.3f}<br>σ_b² = %{y:.3f}<extra></extra>"))
    if off_chart is not None:
        fig.add_annotation(x=1, y=1, xref="paper", yref="paper", xanchor="right", yanchor="top", showarrow=False,
                           text=f"edge of chaos at σ_w² ≈ {off_chart:.3g} (σ_b² = {sb2:.3g}), off this chart",
                           bgcolor="rgba(255,255,255,0.8)")
    # a little room around the grid, so a setting on an edge (σ_b² = 0, the usual case) shows its whole star
    fig.update_xaxes(range=[-0.02 * x_max, 1.02 * x_max], zeroline=False)
    fig.update_yaxes(range=[-0.05 * y_max, 1.04 * y_max], zeroline=False)
    return _layout(fig, f"Phase diagram, {_label(activation)}", "σ_w² (weight variance × fan-in, unitless)",
                   "σ_b² (bias variance, unitless)", height=500, detail=what)


def fig_jacobian_spectrum(singular_values, theory_mean: float | None = None) -> go.Figure:
    """Histogram of the input-output Jacobian's singular values at initialization.

    Marks the measured root-mean-square singular value and, when given, the
    theory's (√ of `theory_mean`, the predicted mean squared singular value,
    Π χ₁), and 1 (dynamical isometry: every direction keeps its length).
    A spread over more than three decades is shown on a log₁₀ axis.
    """
    s = np.asarray(singular_values, dtype=np.float64).reshape(-1)
    s = s[np.isfinite(s)]
    fig = go.Figure()
    if s.size == 0:
        fig.add_annotation(text="no singular values", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return _layout(fig, "Input–output Jacobian spectrum", "singular value", "count")
    pos = s[s > 0]
    use_log = pos.size > 0 and pos.max() / pos.min() > 1e3
    zeros = int(s.size - pos.size)
    rms = float(np.sqrt(np.mean(s * s)))
    tr = (lambda v: np.log10(v)) if use_log else (lambda v: v)
    data = tr(pos) if use_log else s
    fig.add_trace(go.Histogram(x=data, nbinsx=60, name="singular values", marker=dict(color=SPECTRUM, opacity=0.8),
                               hovertemplate="%{x}<br>%{y} values<extra></extra>"))
    lines = [(1.0, "isometry (σ = 1)", MUTED, "dot"), (rms, f"measured RMS = {_fmt(rms)}", INK, "solid")]
    if theory_mean is not None and math.isfinite(theory_mean) and theory_mean > 0:
        lines.append((math.sqrt(theory_mean), f"theory RMS = {_fmt(math.sqrt(theory_mean))}", INK, "dash"))
    for value, name, color, dash in lines:
        if value <= 0:
            continue
        x = float(tr(value))
        fig.add_trace(go.Scatter(x=[x, x], y=[0, 1], yaxis="y2", mode="lines", name=name,
                                 line=dict(color=color, dash=dash, width=2), hoverinfo="skip"))
    fig.update_layout(yaxis2=dict(overlaying="y", range=[0, 1], visible=False))
    theory = "" if theory_mean is None else f" (theory {_fmt(theory_mean)})"
    title = "Input–output Jacobian at initialization"
    detail = f"{s.size} singular values, mean σ² = {_fmt(rms * rms)}{theory}"
    if use_log and zeros:
        detail += f"; {zeros} exactly 0 (not shown on the log axis)"
    xlabel = ("log₁₀ singular value of ∂aᴸ/∂x (unitless)" if use_log
              else "singular value of ∂aᴸ/∂x (output length per input length)")
    return _layout(fig, title, xlabel, "count", detail=detail)


def fig_predicted_profile(profile, measured_q=None, measured_grad_rel=None, height: int = 420) -> go.Figure:
    """The theory's per-layer prediction at initialization, optionally beside a measurement.

    `profile` is `core.theory.predicted_profile(cfg)` (columns `layer`, `q`,
    `grad_rel`; `attrs['applies']`, `attrs['note']`). Left: q^l = E[h²], the
    pre-activation second moment; right: E[(∂L/∂h)²] relative to the last
    layer. Both on log axes, the prediction as a line; `measured_q` and
    `measured_grad_rel` (one value per layer, e.g. a run's step-0
    `preact_var` and `grad_preact_var / grad_preact_var[last]`) as markers.
    Values that are 0, inf or nan are gaps.
    """
    layer = np.asarray(profile["layer"], dtype=np.int32)
    L = int(layer.size)
    fig = two_panels("Forward: q = E[h²]", "Backward, ÷ the last layer")
    applies = bool(profile.attrs.get("applies", True))
    theory_name = "theory (wide layers, at init)" if applies else "theory (does not apply here)"
    for col, key in ((1, "q"), (2, "grad_rel")):
        y = for_log_axis(profile[key])
        if np.isfinite(y).any():
            fig.add_trace(go.Scatter(x=layer, y=y, mode="lines", name=theory_name, showlegend=col == 1,
                                     legendgroup="theory", line=dict(color=INK, width=2, dash="dash"),
                                     hovertemplate="theory, layer %{x}: %{y:.3g}<extra></extra>"), row=1, col=col)
    for col, values, label in ((1, measured_q, "measured: Var(h) at step 0"),
                               (2, measured_grad_rel, "measured: Var(∂L/∂h) at step 0")):
        if values is None:
            continue
        y = for_log_axis(values)
        fig.add_trace(go.Scatter(x=np.arange(1, y.size + 1, dtype=np.int32), y=y, mode="markers", name=label,
                                 marker=dict(color=CURVE if col == 1 else ACCENT, size=7 if L <= 60 else 4),
                                 hovertemplate=label + ", layer %{x}: %{y:.3g}<extra></extra>"), row=1, col=col)
    apply_layout(fig, "Predicted per layer at initialization" + ("" if applies else " (the theory does not apply)"),
                 height, legend_bottom=True)
    layer_axes(fig, L)
    fig.update_yaxes(type="log", exponentformat="power")
    for col, key, values in ((1, "q", measured_q), (2, "grad_rel", measured_grad_rel)):
        shown = [for_log_axis(profile[key])] + ([] if values is None else [for_log_axis(values)])
        shown = np.concatenate(shown)
        shown = shown[np.isfinite(shown) & (shown > 0)]
        if shown.size:  # a flat profile still gets a readable axis: at least 1.2 decades
            lo, hi = float(np.log10(shown.min())), float(np.log10(shown.max()))
            if hi - lo < 1.2:
                mid = (lo + hi) / 2
                fig.update_yaxes(range=[mid - 0.6, mid + 0.6], row=1, col=col,
                                 **log_ticks(10.0 ** np.array([mid - 0.6, mid + 0.6])))
            else:  # 1-2-5 or one label per decade, never Plotly's crowded 2…9 minor labels
                fig.update_yaxes(row=1, col=col, **log_ticks(shown))
    fig.update_yaxes(title_text="second moment (log scale)", row=1, col=1)
    return fig


__all__ = ["fig_variance_map", "fig_phase_diagram", "fig_jacobian_spectrum", "fig_predicted_profile"]

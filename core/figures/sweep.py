"""The Sweep page's charts, as pure functions of the sweep table (no Streamlit).

* `fig_sweep_heatmap`: two axes, one metric as colour; ξ_c and 6 ξ_c over a
  depth × σ_w sweep (Schoenholz et al. 2017, Fig. 3), the order-to-chaos
  line over a σ_w × σ_b sweep;
* `fig_sweep_lines`: one axis, the metric as a line;
* `fig_variance_by_init`: variance by depth at step 0, one curve per
  initializer, with the theory's prediction beside each.

Pending cells are gaps; failed cells are marked ✕ with their reason on hover.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.figures.style import COLOURS, SETTING_COLOURS, apply_layout, log_ticks, title_lines, two_panels
from core.schema import FIELDS, RunConfig

# Each metric the page can colour by: label, colour scale, fixed range (None: the data's).
METRICS = {
    "final_test_accuracy": ("final test accuracy", "Viridis", (0.0, 1.0)),
    "final_train_accuracy": ("final train accuracy (last batch)", "Viridis", (0.0, 1.0)),
    "trained": ("trained (1) or not (0)", [[0, "#f0f0f0"], [1, "#2c7fb8"]], (0.0, 1.0)),
    "final_loss": ("final loss", "Magma_r", None),
    "grad_ratio_init": ("log₁₀ Var(∂L/∂h) layer 1 / last, at init", "RdBu", None),
    "diverged_step": ("step it diverged at", "Reds_r", None),
    "depth_scale_c": ("ξ_c (theory)", "Cividis", None),
    "seconds": ("seconds", "Greys", None),
}
AXIS_LABELS = {"sigma_w": "σ_w", "sigma_b": "σ_b"}  # the rest are shown by their URL names
XI_MULTIPLE = 6  # "trainable depth is about 6 ξ_c" (Schoenholz et al. 2017)
INIT_PALETTE = SETTING_COLOURS  # one colour per initializer: none of the quantities' colours


def axis_label(field: str) -> str:
    return AXIS_LABELS.get(field, field)


def _layout(fig: go.Figure, title: str, height: int, legend_bottom: bool = False) -> go.Figure:
    return apply_layout(fig, title, height, legend_bottom=legend_bottom)  # the one layout (core.figures.style)


def _values(table: pd.DataFrame, field: str) -> list:
    """The axis' values in table order, as the figure's coordinates (text for non-numeric settings)."""
    values = list(dict.fromkeys(table[field].tolist()))
    if FIELDS[field].kind in (int, float) and all(v is not None and not pd.isna(v) for v in values):
        return [float(v) for v in values]
    return [FIELDS[field].format(v) if v is not None and not pd.isna(v) else "none" for v in values]


def _metric_values(table: pd.DataFrame, metric: str) -> np.ndarray:
    col = table[metric]
    v = pd.to_numeric(col.astype("Float64") if metric != "trained" else col.astype(float), errors="coerce")
    out = v.to_numpy(dtype=float, na_value=np.nan)
    out[~table["status"].eq("ok").to_numpy()] = np.nan  # pending or failed: a gap
    return np.where(np.isfinite(out), out, np.nan)


def _failed_marks(fig: go.Figure, table: pd.DataFrame, x: str | None, y: str) -> None:
    failed = table[table["status"].str.startswith("failed")]
    if failed.empty:
        return
    xs = _coords(failed, x) if x else _coords(failed, y)
    ys = _coords(failed, y) if x else [0.0] * len(failed)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="failed", marker=dict(symbol="x", size=11, color=COLOURS["warning"]),
                             text=failed["status"].tolist(), hovertemplate="%{text}<extra></extra>"))


def _coords(table: pd.DataFrame, field: str) -> list:
    if FIELDS[field].kind in (int, float) and table[field].notna().all():
        return [float(v) for v in table[field]]
    return [FIELDS[field].format(v) if v is not None and not pd.isna(v) else "none" for v in table[field]]


def fig_sweep_heatmap(table: pd.DataFrame, fields: Sequence[str], metric: str = "final_test_accuracy", *,
                      xi_c: tuple[np.ndarray, np.ndarray] | None = None,
                      critical: tuple[np.ndarray, np.ndarray] | None = None,
                      urls: Sequence[str] | None = None, height: int = 520) -> go.Figure:
    """Two axes: rows are `fields[0]`, columns `fields[1]`, colour `metric`.

    `xi_c` = (σ_w values, ξ_c) draws ξ_c and 6 ξ_c (rows must be depth, columns σ_w);
    `critical` = (σ_w values, σ_b values) draws the order-to-chaos line (columns σ_w, rows σ_b, or the reverse).
    `urls`: each cell's Explore link, in table order (on hover and in the click's customdata)."""
    y_field, x_field = fields[0], fields[1]
    ys, xs = _values(table, y_field), _values(table, x_field)
    z = _metric_values(table, metric).reshape(len(ys), len(xs))
    label, scale, zrange = METRICS.get(metric, (metric, "Viridis", None))
    status = table["status"].to_numpy(dtype=object).reshape(len(ys), len(xs))
    custom = np.asarray(list(urls) if urls is not None else [""] * len(table), dtype=object).reshape(len(ys), len(xs))
    heat = go.Heatmap(
        x=xs, y=ys, z=z, colorscale=scale, zmin=zrange[0] if zrange else None, zmax=zrange[1] if zrange else None,
        colorbar=dict(title=dict(text=label, side="right")), hoverongaps=True, text=status, customdata=custom,
        hovertemplate=f"{axis_label(x_field)} = %{{x}}<br>{axis_label(y_field)} = %{{y}}<br>{label}: %{{z:.3g}}"
                      "<br>%{text}<extra></extra>")
    if metric == "grad_ratio_init":
        finite = z[np.isfinite(z)]
        span = float(np.max(np.abs(finite))) if finite.size else 1.0
        heat.update(zmin=-span, zmax=span, zmid=0)
    fig = go.Figure(heat)
    if xi_c is not None:
        sw, xi = np.asarray(xi_c[0], float), np.asarray(xi_c[1], float)
        top = max(ys) if ys and isinstance(ys[0], float) else None
        for mult, dash, name in ((1, "dot", "ξ_c"), (XI_MULTIPLE, "solid", f"{XI_MULTIPLE} ξ_c")):
            yv = mult * xi
            if top is not None:
                yv = np.where(yv > 1.5 * top, np.nan, yv)  # off the chart near criticality (ξ_c → ∞)
            fig.add_trace(go.Scatter(x=sw, y=yv, mode="lines", name=name, line=dict(color="white", width=3 if mult > 1 else 2, dash=dash),
                                     hovertemplate=f"{name} = %{{y:.3g}} layers at σ_w = %{{x:.3g}}<extra></extra>"))
        if top is not None:
            fig.update_yaxes(range=[min(ys) - 0.5 * _step(ys), top + 0.5 * _step(ys)])
    if critical is not None:
        cw, cb = np.asarray(critical[0], float), np.asarray(critical[1], float)
        line_x, line_y = (cw, cb) if x_field == "sigma_w" else (cb, cw)
        fig.add_trace(go.Scatter(x=line_x, y=line_y, mode="lines", name="order–chaos line (χ₁ = 1)",
                                 line=dict(color="white", width=3), hovertemplate="χ₁ = 1<extra></extra>"))
        if xs and isinstance(xs[0], float):
            fig.update_xaxes(range=[min(xs) - 0.5 * _step(xs), max(xs) + 0.5 * _step(xs)])
        if ys and isinstance(ys[0], float):
            fig.update_yaxes(range=[min(ys) - 0.5 * _step(ys), max(ys) + 0.5 * _step(ys)])
    _failed_marks(fig, table, x_field, y_field)
    # the theory lines are white on the colours: a dark legend shows them
    fig.update_layout(legend=dict(bgcolor="rgba(50,50,50,0.8)", font=dict(color="white")))
    fig.update_xaxes(title=axis_label(x_field), showgrid=False)
    fig.update_yaxes(title=axis_label(y_field), showgrid=False)
    done = int(table["status"].ne("pending").sum())
    title = f"{label} over {axis_label(y_field)} × {axis_label(x_field)}"
    if done < len(table):
        title += f" <span style='font-size:12px;color:#666'>({done} of {len(table)} cells)</span>"
    return _layout(fig, title, height)


def _step(values: Sequence[float]) -> float:
    return (max(values) - min(values)) / max(len(values) - 1, 1) if len(values) > 1 else 1.0


def fig_sweep_lines(table: pd.DataFrame, field: str, metric: str = "final_test_accuracy", *,
                    threshold: float | None = None, urls: Sequence[str] | None = None, height: int = 420) -> go.Figure:
    """One axis: `metric` against the axis' values; `threshold` (the "trained" accuracy) as a dashed line."""
    xs = _coords(table, field)
    y = _metric_values(table, metric)
    label = METRICS.get(metric, (metric,))[0]
    fig = go.Figure(go.Scatter(x=xs, y=y, mode="lines+markers", name=label, line=dict(color=COLOURS["loss"], width=2),
                               customdata=list(urls) if urls is not None else None, text=table["status"].tolist(),
                               hovertemplate=f"{axis_label(field)} = %{{x}}<br>{label}: %{{y:.3g}}<br>%{{text}}"
                                             "<extra></extra>"))
    if threshold is not None and metric.endswith("accuracy"):
        fig.add_hline(y=threshold, line=dict(color=COLOURS["theory"], dash="dash", width=1),
                      annotation_text="trained above this", annotation_position="top left")
    if metric.endswith("accuracy") or metric == "trained":
        fig.update_yaxes(range=[-0.02, 1.02])
    _failed_marks(fig, table, None, field)
    fig.update_xaxes(title=axis_label(field))
    fig.update_yaxes(title=label)
    return _layout(fig, f"{label} by {axis_label(field)}", height)


def fig_variance_by_init(curves: Sequence[tuple[str, dict, pd.DataFrame | None]], height: int = 460) -> go.Figure:
    """Variance by depth at initialization, one colour per initializer.

    `curves`: (label, step-0 profile from the sweep store — `preact_var` and
    `grad_preact_var` by layer —, `core.theory.predicted_profile(cfg)` or None).
    Left: Var(h) measured (solid) and predicted (dashed); right: Var(∂L/∂h)
    relative to the last layer, measured and predicted. Log scales."""
    fig = two_panels("Var(h) by layer, at init", "Var(∂L/∂h) ÷ last layer's, at init")
    shown: dict[int, list] = {1: [], 2: []}
    for i, (label, profile, theory) in enumerate(curves):
        colour = INIT_PALETTE[i % len(INIT_PALETTE)]
        h = np.asarray(profile.get("preact_var", []), float)
        g = np.asarray(profile.get("grad_preact_var", []), float)
        if h.size == 0:
            continue
        layers = np.arange(1, h.size + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            g_rel = g / g[-1] if g.size and g[-1] > 0 else np.full(g.shape, np.nan)
        for col, values in ((1, h), (2, g_rel)):
            values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
            shown[col].append(values)
            fig.add_trace(go.Scatter(x=layers, y=values, mode="lines+markers", name=label, legendgroup=label,
                                     showlegend=col == 1, line=dict(color=colour, width=2), marker=dict(size=5),
                                     hovertemplate=f"{label}<br>layer %{{x}}: %{{y:.3g}}<extra>measured</extra>"), 1, col)
        if theory is not None and theory.attrs.get("applies", True):
            for col, name in ((1, "q"), (2, "grad_rel")):
                values = theory[name].to_numpy(dtype=float)
                values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
                shown[col].append(values)
                fig.add_trace(go.Scatter(x=theory["layer"], y=values, mode="lines", name=f"{label} · theory",
                                         legendgroup=label, showlegend=False, line=dict(color=colour, width=1.5, dash="dash"),
                                         hovertemplate=f"{label}<br>layer %{{x}}: %{{y:.3g}}<extra>theory</extra>"), 1, col)
    if not fig.data:
        fig.add_annotation(text="No finished cells yet.", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    for col, arrays in shown.items():
        fig.update_yaxes(**log_ticks(*arrays), row=1, col=col)
    fig.update_xaxes(title="layer")
    return _layout(fig, title_lines("Variance by depth for each initializer",
                                    "solid: measured at step 0; dashed: mean-field theory"), height, legend_bottom=True)


def xi_c_curve(base: RunConfig, sigma_w: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(σ_w, ξ_c) of `base` at each σ_w (through the cell's own theory columns, so any init works)."""
    from core.sweep.cells import theory_columns

    sw = np.asarray(sigma_w, float)
    xi = np.array([theory_columns(base.replace(sigma_w=float(s)))["depth_scale_c"] for s in sw])
    return sw, xi


def critical_curve(base: RunConfig, sigma_b: Sequence[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """(σ_w, σ_b) on the order-to-chaos line (χ₁ = 1) for `base`'s activation; None where σ_w, σ_b are not the
    weights' and biases' own scales (initializers other than normal/uniform, or BatchNorm)."""
    from core import theory as T
    from core.registry import INITIALIZERS

    if not INITIALIZERS[base.init].uses_sigma_b or base.batchnorm or not base.bias:
        return None
    sb = np.asarray(sigma_b, float)
    crit = np.array([T.critical_sigma_w2(base.activation, float(b) ** 2) for b in sb], dtype=float)
    with np.errstate(invalid="ignore"):
        return np.sqrt(crit), sb


__all__ = ["METRICS", "XI_MULTIPLE", "axis_label", "fig_sweep_heatmap", "fig_sweep_lines", "fig_variance_by_init",
           "xi_c_curve", "critical_curve"]

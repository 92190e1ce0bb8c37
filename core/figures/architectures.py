"""Figures of the architectures' own statistics: pure functions, arrays in, `go.Figure` out.

* `fig_residual_stream`: the residual MLP's stream by block — Var(x) after each
  block and Var(α·F(x)) added there (left, with the theory's recursion dashed),
  Var(∂L/∂x) (right) — at one record, the step-0 curves faint behind;
* `fig_branch_ratio`: Var(α·F(x)) / Var(x) by block: how much each block
  changes the stream (1/√L and Fixup keep it small; plain blocks add as much as
  they receive).

`arch_figures(cfg, stats, steps)` lists the figures an architecture's registry
entry names (`Architecture.figures`), so a page draws them without knowing which
architecture it shows.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.figures.style import (
    COLOURS, THEORY_LABEL, add_note, apply_layout, as_f32, check_arrays, empty_figure, for_log_axis, gap_note, layer_axes,
    log_ticks, record_axes, two_panels,
)
from core.measure.records import COL

# Colours and names of the residual stream's quantities (the by-layer charts' palette: x like h, ∂L/∂x like ∂L/∂h)
STREAM = {
    "stream_var": ("Var(x), the stream after the block", COLOURS["preact_var"]),
    "branch_var": ("Var(α·F(x)), the branch's contribution", COLOURS["act_var"]),
    "grad_stream_var": ("Var(∂L/∂x)", COLOURS["grad_preact_var"]),
}


def _line(fig, x, y, name, colour, col, step, *, faint=False, dash=None, legend=True, group=None):
    fig.add_trace(go.Scatter(
        x=x, y=for_log_axis(y), mode="lines" if faint or dash else "lines+markers", name=name,
        legendgroup=group or name, showlegend=legend, opacity=0.35 if faint else 1.0,
        line=dict(color=colour, width=2 if faint else 2.5, dash="dot" if faint else dash),
        marker=dict(size=5), hovertemplate=f"{name} at step {step}<br>block %{{x}}: %{{y:.3g}}<extra></extra>"),
        row=1, col=col)


def fig_residual_stream(stats: np.ndarray, steps: np.ndarray, *, record: int = -1, theory=None, ghost: bool = True,
                        height: int = 430) -> go.Figure:
    """The residual stream by block at one record (default: the latest): forward Var(x) and Var(α·F(x))
    (left), backward Var(∂L/∂x) (right), log scale; `theory` is `core.theory.architectures.residual_stream`'s
    table (its stream_var, branch_var and grad_stream_rel, the last scaled to meet the measured last block)."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    title = "Residual stream by block"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    i, step, L, x = record_axes(stats, steps, record)
    fig = two_panels("Forward: stream and branch", "Backward: ∂L/∂x")
    panels = {1: ("stream_var", "branch_var"), 2: ("grad_stream_var",)}
    shown: dict[int, list] = {1: [], 2: []}
    notes: dict[int, list] = {1: [], 2: []}
    for col, columns in panels.items():
        for c in columns:
            name, colour = STREAM[c]
            if ghost and i != 0:
                _line(fig, x, stats[0, :, COL[c]], "at step 0 (faint)", colour, col, 0, faint=True,
                      legend=c == "stream_var", group="ghost")
                shown[col].append(stats[0, :, COL[c]])
            _line(fig, x, stats[i, :, COL[c]], name, colour, col, step)
            shown[col].append(stats[i, :, COL[c]])
            notes[col].append(gap_note(stats[i, :, COL[c]], name))
    if theory is not None and theory.attrs.get("applies", True) and len(theory) == L:
        first = True
        for c in ("stream_var", "branch_var"):
            y = np.asarray(theory[c], dtype=np.float64)
            _line(fig, x, y, THEORY_LABEL, COLOURS["theory"], 1, 0, dash="dash", legend=first, group="theory")
            shown[1].append(y)
            first = False
        anchor = stats[0, -1, COL["grad_stream_var"]]
        if np.isfinite(anchor) and anchor > 0:
            y = np.asarray(theory["grad_stream_rel"], dtype=np.float64) * anchor
            _line(fig, x, y, THEORY_LABEL, COLOURS["theory"], 2, 0, dash="dash", legend=False, group="theory")
            shown[2].append(y)
    for col, lines in notes.items():
        add_note(fig, lines, panel=col)
    layer_axes(fig, L)
    fig.update_xaxes(title_text="block (1 = input side)", row=1, col=1)
    fig.update_xaxes(title_text="block", row=1, col=2)
    for col in (1, 2):
        fig.update_yaxes(**log_ticks(*shown[col]), row=1, col=col)
    fig.update_yaxes(title_text="variance (log scale)", row=1, col=1)
    return apply_layout(fig, f"{title} at step {step}", height, legend_bottom=True)


def fig_branch_ratio(stats: np.ndarray, steps: np.ndarray, *, record: int = -1, theory=None,
                     height: int = 340) -> go.Figure:
    """Var(α·F(x)) / Var(x before the block), by block, at one record and at step 0. A linear axis: the
    ratio is of order 1 for plain blocks, 1/depth under 1/√depth, and exactly 0 for Fixup and ReZero at
    initialization."""
    stats, steps = np.asarray(stats), np.asarray(steps)
    check_arrays(stats, steps)
    title = "Branch-to-stream ratio by block"
    if len(steps) == 0:
        return empty_figure(title, "Nothing recorded yet: press Run.", height)
    i, step, L, x = record_axes(stats, steps, record)

    def ratio(rec: np.ndarray) -> np.ndarray:
        stream, branch = rec[:, COL["stream_var"]], rec[:, COL["branch_var"]]
        with np.errstate(all="ignore"):
            return branch / (stream - branch)  # the stream before the block: x_l = x_{l-1} + α·F at init

    fig = go.Figure()
    lines = [ratio(stats[i])]
    if i != 0:
        lines.append(ratio(stats[0]))
        fig.add_trace(go.Scatter(x=x, y=as_f32(lines[-1]), mode="lines", name="at step 0 (faint)",
                                 line=dict(color=COLOURS["act_var"], width=2, dash="dot"), opacity=0.35,
                                 hovertemplate="step 0, block %{x}: %{y:.3g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=as_f32(lines[0]), mode="lines+markers",
                             name="Var(α·F(x)) / Var(x before the block)",
                             line=dict(color=COLOURS["act_var"], width=2.5), marker=dict(size=5),
                             hovertemplate=f"step {step}, block %{{x}}: %{{y:.3g}}<extra></extra>"))
    if theory is not None and theory.attrs.get("applies", True) and len(theory) == L:
        with np.errstate(all="ignore"):
            y = np.asarray(theory["branch_var"]) / (np.asarray(theory["stream_var"]) - np.asarray(theory["branch_var"]))
        lines.append(y)
        fig.add_trace(go.Scatter(x=x, y=as_f32(y), mode="lines", name=THEORY_LABEL,
                                 line=dict(color=COLOURS["theory"], width=1.5, dash="dash"),
                                 hovertemplate="theory, block %{x}: %{y:.3g}<extra></extra>"))
    add_note(fig, [gap_note(lines[0], "the ratio", log_axis=False)])
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(title_text="block (1 = input side)", range=[0.5, L + 0.5] if L < 3 else None)
    return apply_layout(fig, f"{title} at step {step}", height, legend_bottom=True, y_title="ratio")


def arch_figures(cfg, stats: np.ndarray, steps: np.ndarray, *, record: int = -1) -> list[tuple[str, go.Figure]]:
    """(key, figure) for each figure `cfg`'s architecture entry names, with its theory where it has one."""
    arch = cfg.architecture
    if not arch.figures:
        return []
    try:
        theory = arch.theory_table(cfg)
    except Exception:  # the theory is a guide; the measurement is shown regardless
        theory = None
    out = []
    for name in arch.figures:
        build = globals()[name]
        out.append((name, build(stats, steps, record=record, theory=theory)))
    return out


__all__ = ["fig_residual_stream", "fig_branch_ratio", "arch_figures", "STREAM"]

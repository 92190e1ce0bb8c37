"""The live charts of a recurrent run (rows per layer and time step): by time step instead of by layer.

`ui.live` hands a snapshot here when its config has time steps (`RunConfig.time_steps`): the
variance of h_t and of ∂L/∂h_t by time step (the gradient through time, with the vanilla RNN's
theory), the time step × training step heatmaps, loss and accuracy; in the details, gate
saturation by time step and each layer's update ratio.
"""
from __future__ import annotations

from functools import lru_cache

import streamlit as st

from core import figures as F
from core.figures import recurrent as FR
from core.schema import RunConfig

from .state import SlotKeys


@lru_cache(maxsize=32)
def theory_by_time(cfg: RunConfig):
    """The architecture's own theory table for `cfg` (the vanilla RNN's gradient through time), or None."""
    try:
        return cfg.architecture.theory_table(cfg)
    except Exception:
        return None


def show_main_charts(snap, key: str, cached, chart) -> None:
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    T = cfg.time_steps
    fig_key = SlotKeys(key).fig
    theory = theory_by_time(cfg)
    note = "" if theory is not None else cfg.architecture.theory_note
    chart(cached("variance", lambda: FR.fig_variance_by_time(stats, steps, T, theory=theory, theory_note=note)),
          fig_key("variance"))
    if theory is None and note:
        st.caption("Theory line hidden. " + note)
    st.caption("One line per stacked layer. Dotted, faint: the same curves at step 0 (initialization). "
               + ("Dashed: mean-field theory's gradient through time, ρ(W_hh)² E[φ′²] per step back, scaled to "
                  "meet the last step. " if theory is not None else "")
               + "The output reads only h_T, so every earlier step's gradient has come back through time.")
    c1, c2 = st.columns(2)
    with c1:
        chart(cached("heat_forward", lambda: FR.fig_time_step_heatmap(
            stats, steps, T, "act_var", title="Forward: log10 Var(h_t) by time step and step")),
              fig_key("heat_forward"))
    with c2:
        chart(cached("heat_backward", lambda: FR.fig_time_step_heatmap(
            stats, steps, T, "grad_act_var", title="Backward: log10 Var(∂L/∂h_t) by time step and step")),
              fig_key("heat_backward"))
    st.caption("The top layer. Colour limits are fixed for the whole run: white is variance 1 (forward) or the last "
               "step's gradient variance at step 0 (backward); blue is smaller, red larger, ±10 decades.")
    chart(cached("loss", lambda: F.fig_loss_accuracy(steps)), fig_key("loss"))


def show_detail_charts(snap, key: str, cached, chart) -> None:
    stats, steps, cfg = snap.stats, snap.steps, snap.config
    T = cfg.time_steps
    fig_key = SlotKeys(key).fig
    c1, c2 = st.columns(2)
    with c1:
        chart(cached("saturation", lambda: FR.fig_gate_saturation(stats, steps, T)), fig_key("saturation"))
    with c2:
        # W_hh is shared by a layer's time steps: its update ratio is one line per layer
        chart(cached("update", lambda: F.fig_update_ratio(stats[:, ::T], steps)), fig_key("update"))


def show_theory_preview(cfg: RunConfig, key: str, chart) -> None:
    """Before any run: the vanilla RNN's predicted gradient through time, or why there is none."""
    theory = theory_by_time(cfg)
    if theory is None:
        st.caption("No prediction before the run: " + cfg.architecture.theory_note)
        return
    top = theory[theory["layer"] == cfg.depth]
    chart(F.fig_lines({"predicted Var(∂L/∂h_t) ÷ the last step's": top["grad_rel"].to_numpy()},
                      title=f"What theory predicts: the gradient through time decays by "
                            f"{theory.attrs['decay']:.3g} per step back", x_title=FR.TIME_AXIS,
                      y_title="relative to t = T"), SlotKeys(key).fig("theory_preview"))
    if theory.attrs.get("note"):
        st.caption(theory.attrs["note"])


def show_pair_by_time(recorded: dict, cached, chart, page: SlotKeys) -> None:
    """Compare with recurrent runs on both sides (A = rnn, B = lstm): the by-time overlay, the gradient
    through time as time step × step heatmaps with shared colour limits, loss and accuracy."""
    chart(cached("variance", lambda: FR.fig_variance_by_time_compare(
        {label: (s.stats, s.steps, s.config.time_steps) for label, s in recorded.items()})), page.fig("variance"))
    st.caption("Colour = quantity (green: the state Var(h_t), orange: the gradient through time Var(∂L/∂h_t)); "
               "solid line = A, dashed = B, faint dotted = step 0. The top layer of each.")
    first = next(iter(recorded.values()))
    zr = cached("zrange_time", lambda: FR.time_zrange(first.stats, first.config.time_steps, "grad_act_var"))
    cols = st.columns(2, gap="medium")
    for col, label in zip(cols, ("A", "B")):
        with col:
            s = recorded.get(label)
            if s is None:
                st.caption(f"{label}: nothing recorded yet.")
                continue
            chart(cached(f"heat_time_{label}", lambda: FR.fig_time_step_heatmap(
                s.stats, s.steps, s.config.time_steps, "grad_act_var", zrange=zr, height=340,
                title=f"{label} · Backward: log10 Var(∂L/∂h_t)")), page.fig(f"heat_time_{label}"))
    st.caption("Both heatmaps share their colour limits (±10 decades around A's last-step gradient at step 0): the "
               "same colour is the same gradient in A and B. Grey: 0, inf or nan.")
    chart(cached("loss", lambda: F.fig_loss_compare({label: s.steps for label, s in recorded.items()})),
          page.fig("loss"))

"""Explore's decision boundary: for a 2-D dataset, what the network predicts over the plane, beside the loss.

`beside_loss(snap, key)` is a context manager: inside it the caller draws the loss chart; for a run on a
plane dataset (`Dataset.plane`) it puts that chart in a left column and the decision boundary
(`core.figures.fig_decision_boundary`, from the predictions the run carries) in the right one. On a phone the
two columns stack. Any other run draws the loss full width, as before.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from core import figures as F
from core.run.boundary import MAX_MULTIPLY_ADDS, MIN_GRID_SIDE, grid_side, plane_dataset

from .livechart import stable_columns
from .state import SlotKeys

CAPTION = ("The colour is the class the network predicts at each point of the plane (paler where it is unsure); "
           "dots are training points. It is drawn from the grid the run evaluates at its records, so it moves as "
           "the network learns.")


def _draw(snap, key: str, step: int | None = None) -> None:
    from .live import chart  # the one way a chart goes on screen

    boundary = getattr(snap, "boundary", None)
    if boundary is None or not len(boundary):
        st.caption("A saved run keeps the statistics, not the predictions over the plane: **Use these settings** "
                   "and **Run** to see the decision boundary." if boundary is None and snap.records else
                   "The decision boundary appears with the first record.")
        return
    chart(F.fig_decision_boundary(boundary, step), SlotKeys(key).fig("boundary"))
    st.caption(CAPTION)


@contextmanager
def beside_loss(snap, key: str, step: int | None = None) -> Iterator[None]:
    """Draw the loss chart inside this block; for a 2-D dataset the decision boundary appears beside it."""
    if not plane_dataset(snap.config):
        yield
        return
    if grid_side(snap.config) == 0:  # too big a network to evaluate over a grid: the loss full width, and why
        yield
        st.caption(f"No decision boundary for this network: evaluating it over even a {MIN_GRID_SIDE} × "
                   f"{MIN_GRID_SIDE} grid of the plane would take more than {MAX_MULTIPLY_ADDS:,.0f} multiply-adds, "
                   "at every record it is drawn. Narrower or fewer layers bring it back.")
        return
    left, right = stable_columns(SlotKeys(key).control("loss_row"), [3, 2])  # the loss is a live chart
    with left:
        yield
    with right:
        _draw(snap, key, step)


__all__ = ["beside_loss", "CAPTION"]

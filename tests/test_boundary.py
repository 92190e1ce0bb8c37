"""The decision boundary of 2-D datasets: the grid predictions a run carries are the network's own.

Oracle: a direct forward pass of a copy of the network (taken before the step's update) on the grid's
points, argmax of the logits; the registry's `plane` fact decides which datasets get one. The figure draws
exactly the recorded classes, and exports and saved runs of a run with a boundary work as before.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core import figures as F
from core.io.export import read_saved_run, to_csv, to_json, to_parquet
from core.registry import DATASETS
from core.run.background import Run
from core.run.boundary import MAX_EVALUATIONS, evaluation_every, grid_side
from core.run.engine import Trainer, train
from core.schema import RunConfig, RunStatus

CFG = RunConfig(depth=3, width=16, activation="tanh", init="xavier_normal", dataset="moons", batch_size=64,
                steps=12, record_every=3, seed=5)


def _oracle(net, xs, ys) -> np.ndarray:
    """argmax of the logits of `net` (eval mode, no hooks) at every grid point (row i = ys[i])."""
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32))
    net = copy.deepcopy(net).eval()
    with torch.no_grad():
        return net(pts).argmax(dim=1).numpy().reshape(len(ys), len(xs))


@pytest.mark.parametrize("dataset", ["moons", "spirals", "circles"])
def test_grid_predictions_are_the_networks_argmax(dataset):
    cfg = CFG.replace(dataset=dataset, batchnorm=dataset == "circles")  # BatchNorm: eval mode, running stats
    trainer = Trainer(cfg)
    probe = trainer.boundary
    assert probe is not None and probe.side == grid_side(cfg)
    checked = 0
    while not trainer.done:
        before = copy.deepcopy(trainer.net)  # the weights the record is measured on
        rec = trainer.advance()
        if rec is not None and rec.boundary is not None:
            # the record's weights, with BatchNorm's running statistics as this step's forward left them
            # (what the held-out accuracy uses too); the update after the record changes only the weights
            for name, buf in trainer.net.named_buffers():
                before.get_buffer(name).copy_(buf)
            classes, conf = rec.boundary
            np.testing.assert_array_equal(classes, _oracle(before, probe.xs, probe.ys))
            assert conf.min() >= 1.0 / DATASETS[dataset].classes - 1e-6 and conf.max() <= 1.0 + 1e-6
            checked += 1
    assert checked == len(range(0, cfg.steps + 1, cfg.record_every))


def test_only_plane_datasets_have_a_boundary():
    assert {n for n, d in DATASETS.items() if d.plane} == {"spirals", "moons", "circles"}
    assert train(CFG.replace(dataset="gaussian", width=8)).boundary is None
    assert train(CFG.replace(record_every=0)).boundary is None


def test_train_and_the_background_run_carry_the_same_boundary():
    rec = train(CFG)
    b = rec.boundary
    assert list(b.steps) == [0, 3, 6, 9, 12]
    assert b.classes.shape == (5, len(b.ys), len(b.xs)) and b.classes.dtype == np.uint8
    assert len(b.points) == len(b.labels) and set(np.unique(b.labels)) <= set(range(b.n_classes))
    run = Run(CFG).start()
    assert run.join(timeout=60)
    snap = run.snapshot()
    assert snap.status is RunStatus.FINISHED
    np.testing.assert_array_equal(snap.boundary.steps, b.steps)
    np.testing.assert_array_equal(snap.boundary.classes, b.classes)  # same seed, same network, same grid


def test_evaluations_are_capped_and_include_the_first_and_last_step():
    cfg = CFG.replace(steps=2000, record_every=1)
    every = evaluation_every(cfg)
    evaluated = [s for s in range(cfg.steps + 1) if s % every == 0 or s == cfg.steps]
    assert evaluated[0] == 0 and evaluated[-1] == cfg.steps and len(evaluated) <= MAX_EVALUATIONS + 1
    assert grid_side(CFG.replace(depth=100, width=1024)) == 0  # too big a network for a grid: no boundary


def test_the_figure_draws_the_recorded_classes_at_the_chosen_step():
    rec = train(CFG)
    b = rec.boundary
    fig = F.fig_decision_boundary(b, step=7)  # the latest evaluation at or before step 7 is step 6
    assert "at step 6" in fig.layout.title.text
    heat = fig.data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), b.classes[2])
    assert len(fig.to_json()) < 30_000  # redrawn with every refresh: small on the wire
    points = [t for t in fig.data if t.type == "scatter"]
    assert sum(len(t.x) for t in points) == len(b.points)
    quantity = {F.COLOURS[c] for c in ("preact_var", "act_var", "grad_preact_var")}
    assert not {t.marker.color for t in points} & quantity  # one colour language on Explore
    assert "No prediction" in " ".join(a.text for a in F.fig_decision_boundary(None).layout.annotations)


def test_exports_and_saved_runs_of_a_run_with_a_boundary_still_work():
    rec = train(CFG)
    plain = train(CFG.replace(dataset="gaussian", width=16))
    assert to_csv(rec).splitlines()[0] == to_csv(plain).splitlines()[0]  # the same table, no new columns
    for write, suffix in ((to_parquet, "parquet"), (to_json, "json")):
        data = write(rec)
        back = read_saved_run(data)
        np.testing.assert_array_equal(back.stats, rec.stats)
        assert back.boundary is None  # a saved run keeps the statistics, not the predictions


@pytest.mark.parametrize("width, boundary", [(16, True), (256, False)])
def test_explore_says_why_a_network_too_big_for_the_grid_has_no_boundary(width, boundary):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    cfg = RunConfig(depth=6, width=width, dataset="moons", steps=4, batch_size=32, record_every=2)
    assert (grid_side(cfg) > 0) is boundary   # 6 × 256² multiply-adds a point: over the budget at 16 × 16 points
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "1_Explore.py"), default_timeout=90)
    at.query_params.update({k: str(v) for k, v in cfg.to_query().items()})
    at.run()
    at.button(key="explore__btn_run").click().run()
    run = at.session_state["explore__run"]
    try:
        assert run.join(timeout=60)
        at.run()
        assert not at.exception
        captions = "\n".join(c.value for c in at.caption)
        assert "A saved run keeps" not in captions            # this is a live run, not a saved one
        assert ("No decision boundary for this network" in captions) is not boundary
        assert ("explore.fig_boundary" in str([e.proto for e in at.get("plotly_chart")])
                or "explore__fig_boundary" in str([e.proto.id for e in at.get("plotly_chart")])) is boundary
    finally:
        run.stop()

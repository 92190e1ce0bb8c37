"""A watch(model) run in the dashboard: its saved JSON opens in Explore (AppTest,
through the real uploader), and Explore's "Follow a run" draws a store."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import _charts
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest
from torch import nn

from core import watch
from core.watch import view
from ui.follow import SavedWatch
from ui.saved import Refused, open_run_file

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = str(ROOT / "pages" / "1_Explore.py")
TIMEOUT = 60


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 12), nn.ReLU())
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        return self.head(self.enc(x))


def train(live=None, steps=6):
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    with watch(model, live=live) as w:
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss)
    return w


@pytest.fixture(scope="module")
def saved_file(tmp_path_factory) -> bytes:
    return train().save(tmp_path_factory.mktemp("w") / "mine.json").read_bytes()


def charts(at: AppTest) -> dict[str, dict]:
    """Figures on the page by their key, st.plotly_chart and live charts alike (tests/_charts.py)."""
    return _charts.charts(at)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_the_saved_file_round_trips_and_maps_onto_the_run_charts(saved_file):
    w = train()
    run = view.from_json(saved_file)
    stats, steps = w.arrays()
    assert np.array_equal(run.stats, stats, equal_nan=True) and np.array_equal(run.steps, steps)
    assert run.table().equals(w.table())
    # the by-layer charts' forward series is the output's variance, the backward one ∂L/∂output's
    from core.measure.records import COL

    assert np.array_equal(run.run_stats[..., COL["preact_var"]], stats[..., 1], equal_nan=True)
    assert np.array_equal(run.run_stats[..., COL["grad_preact_var"]], stats[..., 2], equal_nan=True)
    assert np.isnan(run.run_stats[..., COL["act_var"]]).all()
    fig = view.figures(run)["variance"].to_plotly_json()
    assert fig["layout"]["xaxis"]["ticktext"] == ["enc.0", "enc.2", "head"]
    assert {t["name"] for t in fig["data"]} == {"at step 0 (faint)", "Var(output)", "Var(∂L/∂output)"}


def test_open_run_file_tells_a_watch_file_from_a_broken_one(saved_file):
    assert isinstance(open_run_file(saved_file, "mine.json"), SavedWatch)
    broken = saved_file.replace(b'"rows": [', b'"rows": [{"step": 99}, ', 1)
    refused = open_run_file(broken, "broken.json")
    assert isinstance(refused, Refused) and "rows" in refused.sentence


def test_the_saved_json_opens_in_explore(saved_file):
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    at = at.file_uploader(key="explore__file").set_value(("mine.json", saved_file, "application/json")).run()
    assert not at.exception
    assert "mine" in texts(at.info) and "saved run" in texts(at.info)
    figs = charts(at)
    assert {"explore__watch_variance", "explore__watch_heat_forward", "explore__watch_heat_backward",
            "explore__watch_loss", "explore__watch_update", "explore__watch_saturation"} <= set(figs)
    assert figs["explore__watch_variance"]["layout"]["xaxis"]["ticktext"] == ["enc.0", "enc.2", "head"]
    verdicts = texts([*at.success, *at.warning, *at.error])
    assert "Healthy" in verdicts or "Health check" in verdicts
    assert {"CSV", "PARQUET", "JSON"} <= {str(b.proto.label) for b in at.get("download_button")}
    at.button(key="explore__close_saved").click().run()
    assert not at.exception and "explore__watch_variance" not in charts(at)


def test_follow_a_run_lists_the_stores_and_draws_the_chosen_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GFL_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    at.segmented_control(key="explore__mode").set_value("Follow a run").run()
    assert not at.exception
    assert "No run in" in texts(at.info)
    train(live=str(tmp_path / "first"), steps=3)
    train(live=str(tmp_path / "second"), steps=4)
    at.run()
    assert not at.exception
    box = at.selectbox(key="explore__follow_run")
    assert set(box.options) == {"first", "second"}
    box.set_value("first").run()
    assert not at.exception
    assert "first" in texts(at.info) and "finished" in texts(at.info) and "3 records" in texts(at.info)
    figs = charts(at)
    assert {"explore__watch_variance", "explore__watch_heat_forward", "explore__watch_loss"} <= set(figs)
    assert "explore__fig_variance" not in figs  # the sidebar's network is not drawn in this mode


def test_the_saved_json_opens_in_compare_beside_a_lab_run(saved_file):
    from core.io.export import to_json
    from core.run.engine import train as train_lab
    from core.schema import RunConfig

    lab = to_json(train_lab(RunConfig(depth=3, width=8, steps=2, batch_size=16)))
    at = AppTest.from_file(str(ROOT / "pages" / "2_Compare.py"), default_timeout=TIMEOUT).run()
    at = at.file_uploader(key="compare_a__file").set_value(("mine.json", saved_file, "application/json")).run()
    at = at.file_uploader(key="compare_b__file").set_value(("lab.json", lab, "application/json")).run()
    assert not at.exception
    assert "watch(model) run of Net: 3 layers" in texts(at.markdown)
    figs = charts(at)
    assert {"compare__fig_variance", "compare__fig_heat_preact_var_A", "compare__fig_heat_preact_var_B",
            "compare__fig_loss"} <= set(figs)
    names = {t["name"] for t in figs["compare__fig_variance"]["data"]}
    assert any(n.startswith("A:") for n in names) and any(n.startswith("B:") for n in names)


def deep_sigmoid():
    torch.manual_seed(0)
    layers = []
    for _ in range(12):
        layers += [nn.Linear(32, 32), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(32, 2))  # deep sigmoid at PyTorch's default init: gradients vanish
    x, y = torch.randn(64, 32), torch.randint(0, 2, (64,))
    with watch(model) as w:
        F.cross_entropy(model(x), y).backward()
        w.step()
    return w


def test_the_verdict_reads_the_mapped_columns_and_advises_for_a_network_of_ones_own():
    w = deep_sigmoid()
    g = w.table()["grad_out_var"].to_numpy()
    assert np.log10(g[0] / g[-1]) < -3  # the oracle: three decades lost between the last layer and the first
    d = view.diagnosis(view.from_watch(w))
    assert d.verdict == "vanishing"
    finding = next(f for f in d.findings if f.kind == "vanishing")
    assert finding.advice == view.WATCH_ADVICE["vanishing"] and finding.suggestions == ()


def test_compare_gives_a_watched_run_the_advice_for_a_network_of_ones_own(tmp_path):
    data = deep_sigmoid().save(tmp_path / "deep.json").read_bytes()
    at = AppTest.from_file(str(ROOT / "pages" / "2_Compare.py"), default_timeout=TIMEOUT).run()
    at = at.file_uploader(key="compare_a__file").set_value(("deep.json", data, "application/json")).run()
    assert not at.exception
    verdicts = texts([*at.warning, *at.error])
    assert "Gradients vanish" in verdicts and view.WATCH_ADVICE["vanishing"][:40] in verdicts


def test_the_charts_speak_of_outputs_not_pre_activations(saved_file):
    figs = view.figures(view.from_json(saved_file))
    titles = [a["text"] for a in figs["variance"].to_plotly_json()["layout"]["annotations"]]
    assert "Forward: each layer's output" in titles and "Backward: ∂L/∂output" in titles
    assert not any("∂L/∂h" in t or "Var(h)" in t for t in titles)

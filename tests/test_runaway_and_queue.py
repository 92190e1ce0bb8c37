"""Runaway runs and many users, in the Explore page (AppTest).

- A run that explodes stops at the first non-finite value: the page says in
  which layer and at which step, the charts keep what was recorded, and the
  files the download buttons hand out keep inf/nan.
- The server's wall-clock cap stops a long run with a sentence naming it.
- With the server's concurrent-run cap at 1, a second session's run waits and
  shows its place in the queue, then both finish. Two AppTests in one process
  share `st.cache_resource`, so they share the server's RunSlots, as two
  browser sessions do.

Server limits are read once per process (`ui.session.server_limits`, cached);
the `server_env` fixture sets `GFL_*` variables and clears those caches
before and after a test.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import _charts
from streamlit.testing.v1 import AppTest

from core.io.export import layers_equal
from core.scenarios import SCENARIOS
from ui.downloads import export_files
from ui.saved import SavedRun, open_run_file
from ui.session import run_slots, server_limits

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = str(ROOT / "pages" / "1_Explore.py")
TIMEOUT = 60


@pytest.fixture
def server_env(monkeypatch):
    """`server_env(GFL_MAX_...="1")`: this server's limits for one test."""
    def apply(**env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        server_limits.clear()
        run_slots.clear()
    yield apply
    monkeypatch.undo()
    server_limits.clear()
    run_slots.clear()


@pytest.fixture
def sessions():
    """AppTests whose runs are stopped at the end, whatever happened."""
    apps: list[AppTest] = []
    yield apps
    for at in apps:
        run = the_run(at)
        if run is not None:
            run.stop()
            run.join(timeout=10)


def explore(sessions: list, query: dict) -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.query_params.update(query)
    sessions.append(at)
    return at.run()


def the_run(at: AppTest):
    return at.session_state["explore__run"] if "explore__run" in at.session_state else None


def wait_until(predicate, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.05)
    assert predicate(), "timed out"


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def charts(at: AppTest) -> dict[str, dict]:
    return _charts.charts(at)  # st.plotly_chart and live charts alike


# -- runaway runs -----------------------------------------------------------------------------------------

EXPLODING = {
    "scenario": SCENARIOS["exploding"].config.to_query(),  # σ_w = 2.5, ReLU, depth 20: one SGD step overflows
    "sigma_w=10, depth 50": {"depth": "50", "width": "32", "activation": "relu", "init": "normal", "sigma_w": "10",
                             "batch_size": "32", "steps": "20"},  # overflows in the forward pass at step 0
}


@pytest.mark.parametrize("name", list(EXPLODING))
def test_an_exploding_run_says_where_and_keeps_what_it_recorded(sessions, name):
    at = explore(sessions, EXPLODING[name])
    at.button(key="explore__btn_run").click().run()
    run = the_run(at)
    wait_until(lambda: run.status.ended)
    at.run()
    assert not at.exception
    snap = run.snapshot()
    assert snap.status == "diverged" and snap.divergence is not None
    dv = snap.divergence
    # the page says in which layer and at which step
    page = texts([*at.error, *at.warning])
    assert f"at step {dv.step}" in page
    assert (f"layer {dv.layer}" in page) if dv.layer is not None else ("loss" in page)
    assert "Diverged" in at.get("progress")[0].proto.text
    # the charts still render what was recorded
    figs = charts(at)
    assert {"explore__fig_variance", "explore__fig_heat_forward", "explore__fig_heat_backward",
            "explore__fig_loss"} <= set(figs)
    heat = figs["explore__fig_heat_forward"]["data"][0]
    assert heat["z"], "the heatmap has cells"
    assert {"CSV", "JSON"} <= {str(b.proto.label) for b in at.get("download_button")}
    # the files the download buttons hand out keep inf/nan
    files = export_files(snap)
    csv = files["csv"][1]().decode()
    doc = json.loads(files["json"][1]())
    assert "inf" in csv or "nan" in csv
    cells = {v for row in doc["layers"] for v in row.values() if isinstance(v, str)}
    assert cells & {"inf", "-inf", "nan"}
    assert doc["status"] == "diverged" and doc["divergence"]["step"] == dv.step
    assert not np.isfinite(snap.stats).all()
    # and the JSON opens again as the same run
    reopened = open_run_file(files["json"][1](), files["json"][0])
    assert isinstance(reopened, SavedRun) and layers_equal(reopened.record, snap)
    assert reopened.record.divergence == dv


def test_the_wall_clock_cap_stops_a_long_run_with_a_sentence(sessions, server_env):
    server_env(GFL_MAX_RUN_SECONDS="0.5")
    assert server_limits().max_run_seconds == 0.5
    at = explore(sessions, {"depth": "3", "width": "16", "batch_size": "16", "steps": "5000", "record_every": "100",
                            "eval_every": "0"})
    at.button(key="explore__btn_run").click().run()
    run = the_run(at)
    wait_until(lambda: run.status.ended, 30)
    at.run()
    assert not at.exception
    assert run.status == "stopped" and run.snapshot().steps_taken < 5000
    assert "this server caps a run at 0.5 seconds" in texts(at.warning)
    assert "Stopped" in at.get("progress")[0].proto.text
    assert len(charts(at)) >= 4 and {"CSV", "JSON"} <= {str(b.proto.label) for b in at.get("download_button")}


# -- many users ------------------------------------------------------------------------------------------

SMALL = {"depth": "3", "width": "16", "batch_size": "16", "steps": "20", "eval_every": "0"}


def test_a_queued_run_shows_its_place_then_both_finish(sessions, server_env):
    server_env(GFL_MAX_CONCURRENT_RUNS="1")
    assert server_limits().max_concurrent_runs == 1
    first = explore(sessions, SMALL)
    second = explore(sessions, {**SMALL, "seed": "1"})
    # The first session takes the only place and holds it, paused at initialization.
    first.button(key="explore__btn_step").click().run()
    run1 = the_run(first)
    assert run1.snapshot().status == "paused"
    # The second session's run waits for it, and the page says so.
    second.button(key="explore__btn_run").click().run()
    run2 = the_run(second)
    assert run2.slots is run1.slots, "two sessions share the server's slots (st.cache_resource)"
    assert run2.status == "queued" and run2.snapshot().queue_position == 1
    assert not second.exception
    assert "number 1 in the queue" in texts(second.info)
    assert run1.slots.active == 1 and run1.slots.waiting == 1
    # The first resumes and finishes; then the second gets the place and finishes too.
    first.button(key="explore__btn_pause").click().run()  # labelled Resume
    assert run1.join(timeout=60) and run1.status == "finished"
    assert run2.join(timeout=60) and run2.status == "finished"
    first.run()
    second.run()
    for at in (first, second):
        assert not at.exception
        assert "Finished" in at.get("progress")[0].proto.text and "20 / 20 steps taken" in at.get("progress")[0].proto.text
    assert run1.slots.active == 0 and run1.slots.waiting == 0

"""The Home and Explore pages, driven headlessly with Streamlit's AppTest.

No browser: AppTest runs the page scripts in this process. Runs are kept tiny
(a few layers, a few steps) and every run a test starts is stopped at the end.
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np

import pytest

import _charts
from streamlit.testing.v1 import AppTest

from core.schema import RunConfig
from core.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = str(ROOT / "pages" / "1_Explore.py")
TIMEOUT = 60  # the first run imports torch
TINY = {"depth": "3", "width": "16", "steps": "6", "batch_size": "16", "eval_every": "3"}


def explore(**query) -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def the_run(at: AppTest):
    return at.session_state["explore__run"] if "explore__run" in at.session_state else None


def wait_until_done(at: AppTest, seconds: float = 60) -> None:
    run = the_run(at)
    end = time.monotonic() + seconds
    while not run.status.ended and time.monotonic() < end:
        time.sleep(0.1)
    at.run()


@pytest.fixture(autouse=True)
def stop_runs():
    started: list[AppTest] = []
    yield started
    for at in started:
        run = the_run(at)
        if run is not None:
            run.stop()
            run.join(timeout=10)


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly specs by title (st.plotly_chart and live charts alike)."""
    out = {}
    for spec in _charts.charts(at).values():
        out[spec["layout"]["title"]["text"]] = spec
    return out


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


# -- Home ---------------------------------------------------------------------------------------------

def test_every_scenario_can_run_on_this_server():
    """Every Home card opens settings that this server's default limits accept."""
    from core.limits import Limits
    limits = Limits.from_env({})
    refused = {f"{key} ({'AB'[i]})": limits.violation(cfg)[1]
               for key, sc in SCENARIOS.items() for i, cfg in enumerate((sc.config, sc.compare))
               if cfg is not None and limits.violation(cfg) is not None}
    assert not refused, refused


def test_home_renders_every_scenario():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    shown = texts(at.markdown)
    for sc in SCENARIOS.values():
        assert sc.title in shown
    assert "Gradient Flow Lab" in texts(at.title)


def test_home_links_every_shipped_sweep():
    from urllib.parse import parse_qs

    from core.sweep import SweepSpec
    from core.sweep.scenarios import SWEEP_SCENARIOS

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    links = [p.proto for p in at.get("page_link") if p.proto.label == "Open the sweep"]
    assert len(links) == len(SWEEP_SCENARIOS)
    for sw, link in zip(SWEEP_SCENARIOS.values(), links):
        assert sw.title in texts(at.markdown)
        query = parse_qs(link.query_string)
        assert link.page == "Sweep"
        assert query["axis"] == sw.spec.axis_texts()  # both axes, in order: the same sweep reopens
        assert SweepSpec.parse(query["axis"], sw.spec.base).cells() == sw.spec.cells()


# -- Explore: settings from the URL ----------------------------------------------------------------------

def test_explore_renders_with_defaults():
    at = explore()
    assert not at.exception
    d = RunConfig()
    assert at.slider(key="explore_depth").value == d.depth
    assert at.selectbox(key="explore_activation").value == d.activation
    assert at.selectbox(key="explore_init").value == d.init
    assert not at.warning
    assert "Explore?" in texts(at.code) and "seed=0" in texts(at.code)


def test_query_params_set_the_widgets():
    at = explore(depth="7", width="48", activation="relu", init="kaiming_normal", batchnorm="true", lr="0.2",
                 seed="5", dataset="gaussian", input_dim="12", optimizer="adam", sigma_w="1.5", steps="42",
                 record_every="2", eval_every="0", bias="false", batch_size="64")
    assert not at.exception
    assert at.slider(key="explore_depth").value == 7
    assert at.number_input(key="explore_width").value == 48
    assert at.selectbox(key="explore_activation").value == "relu"
    assert at.selectbox(key="explore_init").value == "kaiming_normal"
    assert at.selectbox(key="explore_dataset").value == "gaussian"
    assert at.selectbox(key="explore_optimizer").value == "adam"
    assert at.toggle(key="explore_batchnorm").value is True
    assert at.toggle(key="explore_bias").value is False
    values = {k: at.number_input(key=f"explore_{k}").value
              for k in ("lr", "seed", "input_dim", "sigma_w", "steps", "record_every", "eval_every", "batch_size")}
    assert values == {"lr": 0.2, "seed": 5, "input_dim": 12, "sigma_w": 1.5, "steps": 42, "record_every": 2,
                      "eval_every": 0, "batch_size": 64}
    assert not at.warning
    link = texts(at.code)
    for part in ("depth=7", "activation=relu", "init=kaiming_normal", "batchnorm=true", "seed=5", "optimizer=adam"):
        assert part in link


def test_widths_in_the_url_fill_the_widths_box():
    at = explore(widths="32,16,8", activation="tanh")
    assert not at.exception
    assert at.text_input(key="explore_widths_text").value == "32,16,8"
    assert at.slider(key="explore_depth").disabled
    assert "widths=32%2C16%2C8" in texts(at.code)


@pytest.mark.parametrize("param,value", [("depth", "abc"), ("activation", "swishy"), ("lr", "-1"),
                                         ("batchnorm", "maybe"), ("init", "")])
def test_invalid_query_value_warns_naming_the_parameter(param, value):
    at = explore(**{param: value, "seed": "3"})
    assert not at.exception
    warning = texts(at.warning)
    assert param in warning and "default" in warning
    assert at.number_input(key="explore_seed").value == 3, "the valid parameters still apply"


def test_unknown_query_parameter_is_named():
    at = explore(depht="9")
    assert "depht" in texts(at.warning)


# -- Explore: runs -------------------------------------------------------------------------------------------

def test_a_short_run_completes_and_plots_every_layer(stop_runs):
    at = explore(**TINY, activation="relu", init="kaiming_normal")
    stop_runs.append(at)
    at.button(key="explore__btn_run").click().run()
    assert not at.exception
    assert the_run(at) is not None
    wait_until_done(at)
    assert not at.exception
    assert the_run(at).status == "finished"
    figs = charts(at)
    assert len(figs) == 8, list(figs)
    var = next(spec for title, spec in figs.items() if title.startswith("Variance by layer"))
    lines = [t for t in var["data"] if t.get("mode") == "lines+markers"]
    assert len(lines) == 3
    for t in lines:  # one point per layer (x and y are base64 typed arrays, or lists once patched)
        x, y = (np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]) if isinstance(v, dict) else np.array(v)
                for v in (t["x"], t["y"]))
        assert list(x) == [1, 2, 3] and len(y) == 3
    assert "Finished" in at.get("progress")[0].proto.text and "6 / 6 steps taken" in at.get("progress")[0].proto.text
    # the verdict comes before the charts; the downloads are offered
    kinds = [type(e).__name__ for e in at.main]
    verdict = next(i for i, k in enumerate(kinds) if k in ("Success", "Warning", "Error"))
    assert verdict < kinds.index("UnknownElement")  # plotly charts are UnknownElements
    labels = [str(b.proto.label) for b in at.get("download_button")]
    assert {"CSV", "PARQUET", "JSON"} <= set(labels)


def test_changing_a_widget_mid_run_keeps_the_run(stop_runs):
    at = explore(depth="3", width="16", steps="5000", batch_size="16", record_every="50", eval_every="0")
    stop_runs.append(at)
    at.button(key="explore__btn_run").click().run()
    run = the_run(at)
    assert run is not None and run.status in ("queued", "running")
    at.slider(key="explore_depth").set_value(5).run()
    assert not at.exception
    assert the_run(at) is run and run.status in ("queued", "running"), "the run goes on"
    assert "differ from this run" in texts(at.info) and "Depth 3 → 5" in texts(at.info)
    at.button(key="explore__btn_pause").click().run()
    assert run.status == "paused"
    at.button(key="explore__btn_pause").click().run()  # now labelled Resume
    assert run.status in ("running", "finished")
    at.button(key="explore__btn_stop").click().run()
    assert run.status == "stopped"
    assert not at.exception


def test_step_starts_paused_and_takes_one_step(stop_runs):
    at = explore(**TINY)
    stop_runs.append(at)
    at.button(key="explore__btn_step").click().run()
    run = the_run(at)
    snap = run.snapshot()
    assert snap.status == "paused" and snap.steps_taken == 1 and len(snap.steps) == 1
    assert not at.exception
    at.button(key="explore__btn_step").click().run()
    assert the_run(at) is run and run.snapshot().steps_taken == 2


def test_a_link_over_the_server_limit_is_clamped_with_a_note(stop_runs):
    at = explore(depth="150", width="8", steps="10000000")  # valid configs, over the default server limits
    stop_runs.append(at)
    assert not at.exception
    assert at.slider(key="explore_depth").value == 100 and at.slider(key="explore_depth").max == 100
    assert at.number_input(key="explore_steps").value == 5000 and at.number_input(key="explore_steps").max == 5000
    notes = texts(at.warning)
    assert "depth 150 is over this server's limit of 100; using 100." in notes
    assert "steps 10,000,000 is over this server's limit of 5,000; using 5,000." in notes
    assert at.query_params["depth"] == "100" and at.query_params["steps"] == "5000"  # the URL carries the limit


def test_over_the_work_limit_is_refused_with_a_sentence(stop_runs):
    # each setting within its limit, but parameters × batch over GFL_MAX_WORK: no one setting to clamp
    at = explore(depth="100", width="1024", batch_size="1024", steps="5")
    stop_runs.append(at)
    at.button(key="explore__btn_run").click().run()
    assert not at.exception
    assert the_run(at) is None
    assert "limit" in texts(at.error) and "GFL_MAX_WORK" in texts(at.error)


# -- share links ------------------------------------------------------------------------------------------

def test_share_links_round_trip():
    from urllib.parse import parse_qsl, urlsplit

    from ui.share import compare_from_query, compare_query, compare_url, config_from_query, explore_url

    for sc in SCENARIOS.values():
        url = explore_url(sc.config, base="http://example.org:8501")
        parts = urlsplit(url)
        assert parts.path == "/Explore" and "seed=" in parts.query
        cfg, notes = config_from_query(dict(parse_qsl(parts.query)))
        assert cfg == sc.config and not notes
        if sc.compare is not None:
            query = compare_query(sc.config, sc.compare)
            assert all(k.startswith("b_") for k in query if k not in sc.config.to_query())
            a, b, notes = compare_from_query(query)
            assert (a, b, notes) == (sc.config, sc.compare, [])
            assert urlsplit(compare_url(sc.config, sc.compare, base="http://h")).path == "/Compare"
    a, b, notes = compare_from_query({"depth": "4", "b_depth": "x", "b_activation": "relu"})
    assert a.depth == 4 and b.depth == 4 and b.activation == "relu"
    assert any("b_depth" in n for n in notes)

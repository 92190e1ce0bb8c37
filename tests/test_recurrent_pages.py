"""The pages with a recurrent run: Explore draws it by time step, Compare runs A = rnn beside B = lstm,
Learn's first question has its gradient-through-time chart (AppTest, no browser)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60
RNN = dict(arch="lstm", dataset="recall", depth="1", width="16", seq_len="6", steps="4", batch_size="16")


def _titles(at) -> list[str]:
    import json

    out = []
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        title = spec.get("layout", {}).get("title", {})
        out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return out


def _wait(at, key: str, seconds: float = 90) -> None:
    run = at.session_state[key]
    end = time.monotonic() + seconds
    while not run.status.ended and time.monotonic() < end:
        time.sleep(0.1)
    at.run()


def test_explore_draws_a_recurrent_run_by_time_step():
    at = AppTest.from_file(str(ROOT / "pages" / "1_Explore.py"), default_timeout=TIMEOUT)
    for k, v in RNN.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    at.button(key="explore__btn_run").click().run()
    try:
        _wait(at, "explore__run")
        assert not at.exception
        run = at.session_state["explore__run"]
        assert run.status == "finished" and run.snapshot().config.arch == "lstm"
        titles = _titles(at)
        assert any(t.startswith("Variance by time step") for t in titles), titles
        assert any("by time step and step" in t for t in titles), titles
        assert not any(t.startswith("Variance by layer") for t in titles), titles
    finally:
        at.session_state["explore__run"].stop()


def test_compare_runs_rnn_beside_lstm_by_time_step():
    import json

    at = AppTest.from_file(str(ROOT / "pages" / "2_Compare.py"), default_timeout=TIMEOUT)
    at.query_params.update({**RNN, "arch": "rnn", "b_arch": "lstm"})
    at.run()
    assert not at.exception
    at.button(key="compare__run").click().run()
    try:
        for key in ("compare_a__run", "compare_b__run"):
            assert at.session_state[key].join(timeout=90), f"{key} did not finish"
        at.run()
        assert not at.exception
        a, b = (at.session_state[k].snapshot() for k in ("compare_a__run", "compare_b__run"))
        assert (a.config.arch, b.config.arch) == ("rnn", "lstm")
        figs = {el.proto.id.rsplit("-", 1)[-1]: json.loads(el.proto.spec) for el in at.get("plotly_chart")}
        var = figs["compare__fig_variance"]
        names = [t["name"] for t in var["data"]]
        assert any(n.startswith("A: Var(∂L/∂h_t)") for n in names) and any(n.startswith("B: Var(∂L/∂h_t)") for n in names)
        za = figs["compare__fig_heat_time_A"]["data"][0]
        zb = figs["compare__fig_heat_time_B"]["data"][0]
        assert (za["zmin"], za["zmax"]) == (zb["zmin"], zb["zmax"])
    finally:
        for key in ("compare_a__run", "compare_b__run"):
            if key in at.session_state:
                at.session_state[key].stop()


def test_explore_shows_the_rnn_theory_before_a_run_and_says_why_an_lstm_has_none():
    for arch, expect in (("rnn", "What theory predicts: the gradient through time"), ("lstm", None)):
        at = AppTest.from_file(str(ROOT / "pages" / "1_Explore.py"), default_timeout=TIMEOUT)
        for k, v in {**RNN, "arch": arch, "seq_len": "20", "width": "64"}.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception
        titles = _titles(at)
        if expect:
            assert any(t.startswith(expect) for t in titles), titles
        else:
            assert any("no closed-form" in c.value for c in at.caption), [c.value for c in at.caption]


def _plotly_array(v):
    """A Plotly array as JSON sends it: a list, or {"dtype", "bdata" (base64), "shape"}."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v, dtype=float)


def test_compare_across_architectures_each_table_equals_train_of_its_config():
    """A = rnn, B = lstm, tiny: run to the end; each side's table (what its downloads hold) equals
    core.run.engine.train of that side's config, value for value, and the heatmap drawn for each side
    shows that run's Var(∂L/∂h_t)."""
    import json
    import math

    import numpy as np
    import pandas as pd

    from core.run.engine import train

    tiny = dict(dataset="recall", depth="1", width="8", seq_len="5", steps="3", batch_size="8")
    at = AppTest.from_file(str(ROOT / "pages" / "2_Compare.py"), default_timeout=TIMEOUT)
    at.query_params.update({**tiny, **{f"b_{k}": v for k, v in tiny.items()}, "arch": "rnn", "b_arch": "lstm"})
    at.run()
    assert not at.exception
    at.button(key="compare__run").click().run()
    try:
        for key in ("compare_a__run", "compare_b__run"):
            assert at.session_state[key].join(timeout=90), f"{key} did not finish"
        at.run()
        assert not at.exception
        figs = {el.proto.id.rsplit("-", 1)[-1]: json.loads(el.proto.spec) for el in at.get("plotly_chart")}
        for side, key, arch in (("A", "compare_a__run", "rnn"), ("B", "compare_b__run", "lstm")):
            snap = at.session_state[key].snapshot()
            cfg = snap.config
            assert (cfg.arch, cfg.depth, cfg.width, cfg.seq_len, cfg.steps) == (arch, 1, 8, 5, 3)
            assert str(snap.status) == "finished"
            oracle = train(cfg)
            pd.testing.assert_frame_equal(snap.layers, oracle.layers)
            last = oracle.layers[oracle.layers["step"] == 3]
            assert list(last["time"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
            # the page's heatmap for this side: t = 1 at the last recorded step, as log10
            z = _plotly_array(figs[f"compare__fig_heat_time_{side}"]["data"][0]["z"]).reshape(5, -1)
            want = math.log10(float(last["grad_act_var"].iloc[0]))
            assert float(z[0, -1]) == pytest.approx(want, abs=1e-5)
            assert np.isfinite(snap.layers["grad_act_var"]).all()
    finally:
        for key in ("compare_a__run", "compare_b__run"):
            if key in at.session_state:
                at.session_state[key].stop()

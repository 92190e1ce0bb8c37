"""The Sweep page through AppTest: a sweep link opens from the results store at once, with its charts."""
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.schema import RunConfig
from core.sweep import ResultStore, SweepSpec
from core.sweep.cells import run_cell

PAGE = "../pages/5_Sweep.py"
TINY = RunConfig(depth=2, width=8, steps=4, batch_size=16, record_every=2, eval_every=2, init="normal",
                 activation="tanh")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GFL_STORE_DIR", str(tmp_path))
    st.cache_resource.clear()  # the page's store and limits are read once per server
    yield ResultStore(tmp_path)
    st.cache_resource.clear()


def _fill(store: ResultStore, spec: SweepSpec) -> None:
    for cfg in spec.cells():
        store.put(cfg, *run_cell(cfg))


def _open(spec: SweepSpec, metric: str = "final_test_accuracy") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    for k, v in spec.base.to_query().items():
        at.query_params[k] = v
    at.query_params["axis"] = spec.axis_texts()
    at.query_params["metric"] = metric
    return at.run()


def test_depth_by_sigma_w_opens_from_the_store(store):
    spec = SweepSpec.parse(["depth=1,2", "sigma_w=0.8,1.6"], TINY)
    _fill(store, spec)
    at = _open(spec)
    assert not at.exception
    assert not at.error
    assert len(at.get("plotly_chart")) == 1
    assert at.get("progress")[0].value == 100
    assert any("nothing was trained again" in c.value for c in at.caption)
    assert any("6 ξ_c" in c.value for c in at.caption)
    link = next(c.value for c in at.code if "/Sweep?" in c.value)
    assert "axis=depth%3D1%2C2" in link and "axis=sigma_w%3D0.8%2C1.6" in link


def test_init_axis_draws_lines_and_variance_by_initializer(store):
    spec = SweepSpec.parse(["init=xavier_normal,kaiming_normal"], TINY.replace(activation="relu"))
    _fill(store, spec)
    at = _open(spec, "grad_ratio_init")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2  # the metric by init, and variance by depth per init


def test_a_partly_stored_sweep_says_what_is_missing(store):
    spec = SweepSpec.parse(["sigma_w=0.8,1.6"], TINY)
    store.put(spec.cells()[0], *run_cell(spec.cells()[0]))
    at = _open(spec)
    assert not at.exception
    assert any("1 of 2 cells are already in the results store" in c.value for c in at.caption)


def test_bad_axis_in_the_link_is_one_sentence(store):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["axis"] = ["depth=0,3"]
    at.run()
    assert not at.exception
    assert any("Invalid depth 0" in e.value for e in at.error)


def test_run_over_the_sweep_limit_says_which_limit(store, monkeypatch):
    monkeypatch.setenv("GFL_MAX_SWEEP_WORK", "1000")
    st.cache_resource.clear()
    spec = SweepSpec.parse(["sigma_w=0.8,1.6"], TINY)
    at = _open(spec)
    at.button(key="sweep__btn_run").click().run()
    assert not at.exception
    assert any("GFL_MAX_SWEEP_WORK" in e.value for e in at.error)


def test_run_fills_the_store_and_the_chart(store):
    import time

    spec = SweepSpec.parse(["sigma_w=0.8,1.6"], TINY)
    at = _open(spec)
    assert any("0 of 2 cells are already in the results store" in c.value for c in at.caption)
    at.button(key="sweep__btn_run").click().run()
    assert not at.exception and not at.error
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        at.run()
        if at.get("progress") and at.get("progress")[0].value == 100:
            break
        time.sleep(1.0)
    assert not at.exception
    assert at.get("progress")[0].value == 100
    assert len(store.get_many(spec.cells())) == 2  # saved as they finished
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("download_button")) == 3


@pytest.mark.parametrize("env, backend, address", [
    ({}, "local", None),
    ({"GFL_SWEEP_BACKEND": "ray"}, "ray", None),
    ({"GFL_SWEEP_BACKEND": " Ray ", "RAY_ADDRESS": "10.0.0.1:6379"}, "ray", "10.0.0.1:6379"),
    ({"GFL_SWEEP_BACKEND": "ray", "RAY_ADDRESS": "a:1", "GFL_RAY_ADDRESS": "b:2"}, "ray", "b:2"),
    ({"RAY_ADDRESS": "a:1"}, "local", None),  # an address alone does not move the page off the pool
])
def test_the_server_chooses_the_sweep_engine(env, backend, address):
    from core.sweep.backends import ServerEngine

    engine = ServerEngine.from_env(env)
    assert (engine.backend, engine.address) == (backend, address)


def test_an_unknown_engine_is_one_sentence():
    from core.sweep.backends import BackendError, ServerEngine

    with pytest.raises(BackendError, match=r"^Invalid GFL_SWEEP_BACKEND 'spark': must be one of local, ray\.$"):
        ServerEngine.from_env({"GFL_SWEEP_BACKEND": "spark"})


def test_the_page_says_where_cells_run_and_an_unreachable_cluster_is_one_sentence(store, monkeypatch):
    import time

    monkeypatch.setenv("GFL_SWEEP_BACKEND", "ray")
    monkeypatch.setenv("GFL_RAY_ADDRESS", "127.0.0.1:1")
    spec = SweepSpec.parse(["sigma_w=0.8,1.6"], TINY)
    at = _open(spec)
    assert any("Cells run on the Ray cluster at 127.0.0.1:1" in c.value for c in at.caption)
    at.button(key="sweep__btn_run").click().run()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("Cannot reach the Ray cluster" in e.value for e in at.error):
        time.sleep(0.5)
        at.run()
    assert not at.exception
    assert any("Cannot reach the Ray cluster at '127.0.0.1:1'" in e.value for e in at.error)
    assert store.get_many(spec.cells()) == {}


def test_the_page_defaults_to_the_process_pool(store, monkeypatch):
    monkeypatch.delenv("GFL_SWEEP_BACKEND", raising=False)
    at = _open(SweepSpec.parse(["sigma_w=0.8,1.6"], TINY))
    assert any("Cells run on this server's process pool" in c.value for c in at.caption)

"""AppTest of the Compare, Theory and Learn pages: they render without an
exception, with and without query parameters; the URL sets their widgets; an
invalid value shows a warning naming the parameter; Compare trains a tiny
pair and draws one point per layer per setting; Theory shows its figures;
Learn answers every question."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

import _charts
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
COMPARE = str(ROOT / "pages" / "2_Compare.py")
THEORY = str(ROOT / "pages" / "3_Theory.py")
LEARN = str(ROOT / "pages" / "4_Learn.py")
TIMEOUT = 90  # the first run imports torch and warms the statistics kernels


def open_page(path: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """Figures on the page by their key, st.plotly_chart and live charts alike (tests/_charts.py)."""
    return _charts.charts(at)


def values(array) -> np.ndarray:
    """A trace's x/y/z as numbers (plotly sends numpy arrays as base64 typed arrays)."""
    if isinstance(array, dict) and "bdata" in array:
        a = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = array.get("shape")
        if shape is None:
            return a
        return a.reshape([int(n) for n in (shape if isinstance(shape, list) else str(shape).split(","))])
    return np.asarray(array, dtype=np.float64)


def warnings_text(at: AppTest) -> str:
    return "\n".join(w.value for w in at.warning)


# -- Compare ----------------------------------------------------------------------------------------

TINY = {"dataset": "moons", "width": "16", "depth": "3", "steps": "4", "batch_size": "32", "eval_every": "2"}


def test_compare_default_renders_with_b_a_copy_of_a():
    at = open_page(COMPARE)
    assert at.selectbox(key="compare_a_init").value == at.selectbox(key="compare_b_init").value == "xavier_normal"
    assert any("identical" in i.value for i in at.info)
    assert at.button(key="compare__run")


def test_compare_query_sets_a_and_b_widgets():
    at = open_page(COMPARE, {**TINY, "activation": "relu", "b_init": "kaiming_normal", "b_batchnorm": "true"})
    assert at.slider(key="compare_a_depth").value == 3
    assert at.slider(key="compare_b_depth").value == 3            # B starts as a copy of A
    assert at.selectbox(key="compare_a_activation").value == "relu"
    assert at.selectbox(key="compare_b_activation").value == "relu"
    assert at.selectbox(key="compare_a_init").value == "xavier_normal"
    assert at.selectbox(key="compare_b_init").value == "kaiming_normal"
    assert at.toggle(key="compare_a_batchnorm").value is False
    assert at.toggle(key="compare_b_batchnorm").value is True
    diff = at.table[0].value
    # as people read it: the fields' and the registry's labels (RunConfig.diff), not the URL's names
    assert dict(zip(diff["setting"], zip(diff["A"], diff["B"]))) == {
        "Initializer": ("Xavier/Glorot normal", "He/Kaiming normal"), "BatchNorm": ("off", "on")}
    assert "b_init=kaiming_normal" in "\n".join(c.value for c in at.code)   # the share link


@pytest.mark.parametrize("query,names", [({"activation": "sigmoidal"}, ["activation"]), ({"b_depth": "x"}, ["b_depth"]),
                                         ({"b_init": "nope"}, ["Setting B", "init", "nope"]),
                                         ({"depth": "-3"}, ["depth"])])
def test_compare_invalid_value_warns_naming_the_parameter(query, names):
    at = open_page(COMPARE, query)
    text = warnings_text(at)
    assert all(n in text for n in names), text


def test_compare_b_follows_a_unless_b_was_changed():
    at = open_page(COMPARE, {**TINY, "b_init": "kaiming_normal"})
    at.slider(key="compare_a_depth").set_value(5).run()
    assert at.slider(key="compare_b_depth").value == 5             # followed A
    at.selectbox(key="compare_a_init").set_value("orthogonal").run()
    assert at.selectbox(key="compare_b_init").value == "kaiming_normal"  # B's own choice kept
    at.button(key="compare__copy").click().run()
    assert at.selectbox(key="compare_b_init").value == "orthogonal"
    assert not at.exception


def test_compare_runs_a_tiny_pair_and_plots_every_layer_of_each():
    at = open_page(COMPARE, {**TINY, "b_depth": "5", "b_activation": "relu", "b_init": "kaiming_normal"})
    at.button(key="compare__run").click().run()
    assert not at.exception
    for key in ("compare_a__run", "compare_b__run"):
        run = at.session_state[key]
        assert run.join(timeout=60), f"{key} did not finish"
    at.run()
    assert not at.exception
    figs = charts(at)
    var = figs["compare__fig_variance"]
    per_run = {"A": 3, "B": 5}
    seen = set()
    for trace in var["data"]:
        label = trace["name"].split(":", 1)[0]
        if label in per_run:
            seen.add(label)
            assert list(values(trace["x"])) == list(range(1, per_run[label] + 1)), trace["name"]
            assert values(trace["y"]).size == per_run[label]
    assert seen == {"A", "B"}
    for column in ("preact_var", "grad_preact_var"):
        for label, layers in per_run.items():
            heat = figs[f"compare__fig_heat_{column}_{label}"]["data"][0]
            z = values(heat["z"])
            z = z.T if heat.get("transpose") else z  # a live heatmap keeps records as rows (core.figures.live)
            assert z.shape[0] == layers and values(heat["y"]).size == layers
        # the same colour limits in A and B
        za = figs[f"compare__fig_heat_{column}_A"]["data"][0]
        zb = figs[f"compare__fig_heat_{column}_B"]["data"][0]
        assert (za["zmin"], za["zmax"]) == (zb["zmin"], zb["zmax"])
    assert "compare__fig_loss" in figs
    # each run's verdict is on the page
    verdicts = [e.value for e in (*at.success, *at.warning, *at.error)]
    assert sum("Healthy" in v or "Health check" in v for v in verdicts) == 2


# -- Theory -----------------------------------------------------------------------------------------

def test_theory_default_shows_every_figure():
    at = open_page(THEORY)
    assert set(charts(at)) == {"theory__fig_profile", "theory__fig_map", "theory__fig_phase", "theory__fig_jacobian"}
    labels = [m.label for m in at.metric]
    assert any("χ₁" in l for l in labels) and any("q*" in l for l in labels) and sum("ξ" in l for l in labels) == 2


def test_theory_query_sets_widgets_and_relu_he_is_critical():
    at = open_page(THEORY, {"activation": "relu", "init": "kaiming_normal", "depth": "12", "width": "64"})
    assert at.selectbox(key="theory_activation").value == "relu"
    assert at.selectbox(key="theory_init").value == "kaiming_normal"
    assert at.slider(key="theory_depth").value == 12
    assert at.number_input(key="theory_width").value == 64
    metrics = {m.label: m.value for m in at.metric}
    chi = next(v for k, v in metrics.items() if "χ₁" in k)
    assert float(chi) == pytest.approx(1.0)
    assert any("critical" in v for v in metrics.values())
    prof = charts(at)["theory__fig_profile"]["data"]
    theory = [t for t in prof if t["name"].startswith("theory")]
    measured = [t for t in prof if t["name"].startswith("measured")]
    assert len(theory) == 2 and len(measured) == 2
    for t in theory + measured:
        assert values(t["x"]).size == 12
    # the Explore link carries the settings
    links = [m.value for m in at.markdown if "Explore?" in m.value] + [str(el.proto) for el in at.get("page_link")]
    assert any("activation=relu" in l and "depth=12" in l for l in links)


def test_theory_invalid_value_warns_naming_it():
    at = open_page(THEORY, {"init": "bogus", "sigma_w": "abc"})
    text = warnings_text(at)
    assert "init" in text and "sigma_w" in text
    assert at.selectbox(key="theory_init").value == "xavier_normal"


def test_theory_says_when_it_does_not_apply():
    at = open_page(THEORY, {"batchnorm": "true"})
    assert "BatchNorm" in warnings_text(at)
    assert "theory__fig_jacobian" not in charts(at)
    at = open_page(THEORY, {"init": "lsuv"})
    assert "LSUV" in warnings_text(at)


def test_theory_clamps_a_link_over_the_server_limits():
    at = open_page(THEORY, {"depth": "500"})
    assert "depth 500 is over this server's limit of 100; using 100" in warnings_text(at)
    assert at.slider(key="theory_depth").value == 100


def test_theory_of_another_architecture_shows_its_own_theory_then_the_mlp_of_the_same_settings():
    from core import theory as T
    from core.theory.architectures import layer_profile
    from core.schema import RunConfig

    q = {"arch": "resmlp", "residual_scale": "sqrt_depth", "activation": "relu", "init": "kaiming_normal",
         "depth": "6", "width": "32"}
    at = open_page(THEORY, q)
    cfg = RunConfig.from_query(q)[0]
    assert any("Residual MLP" in h.value for h in at.subheader)
    figs = charts(at)
    own = figs["theory__fig_theory_preview"]["data"][0]                       # the residual stream's recursion
    np.testing.assert_allclose(values(own["y"]), layer_profile(cfg)["q"].to_numpy(), rtol=1e-6)
    # ReLU with He on the plain MLP of these settings: χ₁ = σ_w² E[φ'²] = 2 · 1/2 = 1, critical
    chi = next(m.value for m in at.metric if "χ₁" in m.label)
    assert float(chi) == pytest.approx(1.0)
    measured = [t for t in figs["theory__fig_profile"]["data"] if t["name"].startswith("measured")]
    want = T.measured_profile(cfg.for_arch("mlp"))                        # the MLP measured, not the resmlp
    np.testing.assert_allclose(values(measured[0]["y"]), want["q"].to_numpy(), rtol=1e-6)
    assert "plain MLP" in "\n".join(i.value for i in at.info)
    assert at.query_params["arch"] == "resmlp"                              # the link's network stays in the URL
    links = [m.value for m in at.markdown if "Explore?" in m.value] + [str(el.proto) for el in at.get("page_link")]
    assert any("arch=resmlp" in l and "residual_scale=sqrt_depth" in l for l in links)

    at = open_page(THEORY, {"arch": "lstm", "seq_len": "12", "depth": "2", "width": "16"})
    assert any("LSTM" in h.value for h in at.subheader)
    assert "theory__fig_profile" in charts(at)                               # the MLP sections still draw


# -- Learn ------------------------------------------------------------------------------------------

def test_learn_answers_every_question():
    at = open_page(LEARN)
    heads = [s.value for s in at.subheader]
    assert len(heads) == 7
    for topic in ("vanishing gradient", "Xavier/Glorot", "saturate", "exploding gradients", "initialization matter",
                  "BatchNorm", "He initialization in PyTorch and in TensorFlow/Keras"):
        assert any(topic in h for h in heads), topic
    assert len(charts(at)) >= 6
    assert len(at.get("latex")) >= 7
    code = "\n".join(c.value for c in at.code)
    assert 'nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")' in code
    assert "HeNormal()" in code and "he_normal" in code
    links = [m.value for m in at.markdown] + [str(el.proto) for el in at.get("page_link")]
    assert sum("Explore" in l for l in links) >= 3 and any("Compare" in l and "b_" in l for l in links)


def test_learn_numbers_in_the_text_come_from_the_charts():
    at = open_page(LEARN)
    text = "\n".join(m.value for m in at.markdown)
    assert "10⁻²⁴" in text or "10⁻²³" in text or "10⁻²⁵" in text  # sigmoid's gradient at layer 1, measured

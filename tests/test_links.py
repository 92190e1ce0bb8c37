"""Links as the pages live with them (AppTest, no browser): the URL follows every setting, a link reopened in a
new session restores the same experiment, aliases are read and the name itself is carried on, a scenario link
starts its run and tells what to watch for (`autorun=false` waits), and a verdict's suggestion is a button that
puts its change into the sidebar."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.schema import RunConfig
from core.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = str(ROOT / "pages" / "1_Explore.py")
COMPARE = str(ROOT / "pages" / "2_Compare.py")
HOME = str(ROOT / "app.py")
TIMEOUT = 90
TINY = {"depth": "3", "width": "16", "steps": "6", "batch_size": "16", "eval_every": "3", "dataset": "moons"}


def open_page(path: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def runs_of(at: AppTest) -> list:
    return [at.session_state[k] for k in ("explore__run", "compare_a__run", "compare_b__run")
            if k in at.session_state and at.session_state[k] is not None]


@pytest.fixture
def pages():
    opened: list[AppTest] = []
    yield opened
    for at in opened:
        for run in runs_of(at):
            run.stop()
            run.join(timeout=10)


def url_config(at: AppTest) -> RunConfig:
    cfg, notes = RunConfig.from_query({k: v for k, v in at.query_params.items() if k not in ("scenario", "autorun")})
    assert not notes, notes
    return cfg


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_the_url_follows_every_widget_change_and_reopens_the_same_experiment(pages):
    at = open_page(EXPLORE, TINY)
    pages.append(at)
    assert url_config(at) == RunConfig.from_query(TINY)[0]
    at.slider(key="explore_depth").set_value(5).run()
    at.selectbox(key="explore_activation").set_value("relu").run()
    at.number_input(key="explore_seed").set_value(7).run()
    at.toggle(key="explore_batchnorm").set_value(True).run()
    assert not at.exception
    want = RunConfig.from_query(TINY)[0].replace(depth=5, activation="relu", seed=7, batchnorm=True)
    assert set(want.to_query()) <= set(at.query_params)          # every setting, the seed included
    assert url_config(at) == want
    again = open_page(EXPLORE, dict(at.query_params))             # the copied URL, in a new session
    pages.append(again)
    assert again.slider(key="explore_depth").value == 5
    assert again.selectbox(key="explore_activation").value == "relu"
    assert again.number_input(key="explore_seed").value == 7
    assert again.toggle(key="explore_batchnorm").value is True
    assert not again.warning and url_config(again) == want


def test_a_rerun_that_still_carries_the_old_url_keeps_the_changed_setting(pages):
    # A fragment's timer may ask for a rerun before the browser has applied the URL the page just wrote:
    # that request carries the old query, and it must not reset the widget to the old link's value.
    at = open_page(EXPLORE, {**TINY, "seed": "3"})
    pages.append(at)
    old = dict(at.query_params)
    at.number_input(key="explore_seed").set_value(4).run()
    assert at.query_params["seed"] == "4"
    at.query_params.clear()
    at.query_params.update(old)                                   # the stale request
    at.run()
    assert not at.exception
    assert at.number_input(key="explore_seed").value == 4 and at.query_params["seed"] == "4"
    at.run()                                                      # the browser has caught up
    at.query_params.clear()
    at.query_params.update({**old, "seed": "9"})                  # a link the page never wrote is still read
    at.run()
    assert at.number_input(key="explore_seed").value == 9


def test_an_alias_in_a_link_is_shown_and_carried_on_as_the_name(pages):
    at = open_page(EXPLORE, {**TINY, "activation": "swish", "init": "he_normal"})
    pages.append(at)
    assert at.selectbox(key="explore_activation").value == "silu"
    assert at.selectbox(key="explore_init").value == "kaiming_normal"
    assert (at.query_params["activation"], at.query_params["init"]) == ("silu", "kaiming_normal")
    assert not at.warning


def test_an_over_limit_value_in_the_widgets_is_brought_to_the_limit(pages):
    at = open_page(EXPLORE, TINY)
    pages.append(at)
    assert at.number_input(key="explore_steps").max == 5000    # the Steps box cannot take 10,000,000
    assert at.number_input(key="explore_width").max == 1024 and at.slider(key="explore_depth").max == 100
    at.text_input(key="explore_widths_text").set_value("2000,8").run()
    assert not at.exception
    assert "width 2,000 is over this server's limit of 1,024" in texts(at.sidebar.warning)
    assert at.query_params["widths"] == "1024,8"


def test_a_scenario_link_runs_on_open_and_shows_what_to_watch_for(pages):
    sc = SCENARIOS["exploding"]
    at = open_page(EXPLORE, {"scenario": sc.key, "steps": "20"})
    pages.append(at)
    run = at.session_state["explore__run"]
    assert run is not None and run.cfg == sc.config.replace(steps=20)   # the link's own settings over the scenario's
    shown = texts(at.markdown)
    assert sc.title in shown and sc.watch_for in shown
    assert at.query_params["scenario"] == sc.key and at.query_params["steps"] == "20"
    at.run()                                                             # a rerun does not start it again
    assert at.session_state["explore__run"] is run


def test_autorun_false_opens_the_scenario_without_running_it(pages):
    sc = SCENARIOS["selu_lecun"]
    at = open_page(EXPLORE, {"scenario": sc.key, "autorun": "false"})
    pages.append(at)
    assert at.session_state["explore__run"] is None
    assert sc.watch_for in texts(at.markdown)
    assert at.selectbox(key="explore_activation").value == sc.config.activation
    assert at.query_params["autorun"] == "false"
    at.slider(key="explore_depth").set_value(4).run()                   # no longer the scenario: its story goes
    assert sc.watch_for not in texts(at.markdown) and "scenario" not in at.query_params


def test_a_bad_scenario_or_autorun_is_named(pages):
    at = open_page(EXPLORE, {"scenario": "nope", "autorun": "maybe"})
    pages.append(at)
    notes = "\n".join(w.value for w in at.warning)
    assert "'nope'" in notes and "scenario" in notes
    assert at.session_state["explore__run"] is None


def test_the_verdicts_suggestion_is_a_button_that_applies_it(pages):
    at = open_page(EXPLORE, {**TINY, "activation": "sigmoid", "depth": "6", "steps": "2", "eval_every": "1"})
    pages.append(at)
    at.button(key="explore__btn_run").click().run()
    run = at.session_state["explore__run"]
    end = time.monotonic() + 60
    while not run.status.ended and time.monotonic() < end:
        time.sleep(0.1)
    at.run()
    buttons = [b for b in at.button if b.key and b.key.startswith("explore__suggest_")]
    assert buttons, "no suggestion button"
    first = buttons[0]
    assert first.label == "Switch to Tanh"
    first.click().run()
    assert not at.exception
    assert at.selectbox(key="explore_activation").value == "tanh"
    assert at.slider(key="explore_depth").value == 6                   # only the suggested setting changed
    assert at.query_params["activation"] == "tanh"
    assert "Press **Run**" in texts(at.info) or "Press Run" in texts(at.info)


def test_compare_follows_a_and_b_and_a_scenario_runs_both(pages):
    sc = SCENARIOS["relu_xavier_vs_he"]
    at = open_page(COMPARE, {"scenario": sc.key, "steps": "5"})
    pages.append(at)
    a, b = at.session_state["compare_a__run"], at.session_state["compare_b__run"]
    assert a is not None and b is not None
    assert a.cfg.init == sc.config.init and b.cfg.init == sc.compare.init and a.cfg.steps == b.cfg.steps == 5
    assert sc.watch_for in texts(at.markdown)
    at.selectbox(key="compare_b_activation").set_value("tanh").run()
    assert at.query_params["b_activation"] == "tanh" and "scenario" not in at.query_params


def test_home_cards_link_to_their_scenario():
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    assert not at.exception
    links = [el.proto for el in at.get("page_link")] if at.get("page_link") else []
    hrefs = " ".join(str(getattr(p, "page", "")) + str(getattr(p, "query_string", "")) for p in links)
    shown = texts(at.markdown) + hrefs
    for sc in SCENARIOS.values():
        assert f"scenario={sc.key}" in shown, sc.key


def test_theory_follows_its_settings_in_the_url():
    theory = str(ROOT / "pages" / "3_Theory.py")
    at = open_page(theory, {"activation": "relu", "depth": "500"})
    assert "depth 500 is over this server's limit of 100; using 100." in "\n".join(w.value for w in at.warning)
    assert at.query_params["depth"] == "100"
    at.selectbox(key="theory_init").set_value("kaiming_normal").run()
    assert not at.exception
    assert at.query_params["init"] == "kaiming_normal" and at.query_params["activation"] == "relu"

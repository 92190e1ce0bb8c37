"""Live charts and the step scrubber in a real browser (Debian's Chromium, a fresh server).

* a chart is extended in place during a run: every chart element is the same DOM node across
  refreshes (a JS property set on it survives), no chart element is added, and the loss line and
  the heatmap gain points while the run trains;
* a chart off-screen is left alone while the run trains, and catches up once scrolled into view;
* the scrubber redraws every by-layer chart at the chosen step: titles and data equal the record of
  that step in the same run trained in this process (same seed → same numbers); Play steps to the end;
* Compare draws A and B at the same step, with their step-0 ghosts and theory lines;
* screenshots of Explore during and after a run and of Compare, at 1400 × 900 and 390 × 844.
"""
from __future__ import annotations

import numpy as np
import pytest

from browser_util import (ROOT, AppServer, charts, chromium_available, full_page_screenshot, launch_chromium, press,
                          run_status, wait_for_app, wait_until)
from core.measure.probes import COL
from core.schema import RunConfig

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
TALL = {"width": 1400, "height": 6000}
LONG = dict(depth=6, width=256, batch_size=256, activation="tanh", init="xavier_normal", steps=5000, seed=5,
            dataset="moons", record_every=40)  # 126 records: the heatmap keeps one column per record (no new grid)
# while watched; ~1 minute in-process on a 2-core machine, so it is still training after the page has drawn
# all five charts (at width 32 a fast machine finished its 5,000 steps first)
SHORT = dict(depth=5, width=16, activation="relu", init="kaiming_normal", steps=30, seed=7, dataset="moons")
PAIR = dict(depth=6, width=16, activation="tanh", init="xavier_normal", steps=30, seed=2, dataset="moons",
            b_init="normal", b_sigma_w="2.5")

# Every chart element on the page, tagged once with a JS property: a remounted chart is a new, untagged node.
# Explore's live charts: variance by layer, both heatmaps, loss, saturation, both distributions and the update
# ratio (the MLP draws no other chart during a run).
LIVE = 8
JS_TAG = """() => { let k = 0; for (const e of document.querySelectorAll('.js-plotly-plot')) {
  if (e.__gflTag === undefined) e.__gflTag = 't' + (window.__gflNext = (window.__gflNext || 0) + 1); k++; } return k; }"""
JS_NODES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(e => {
  const lay = e._fullLayout || {}; const t = lay.title ? (lay.title.text || '') : '';
  const d = e.data || []; return {tag: e.__gflTag || null, title: t, live: e.classList.contains('gfl-live'),
  points: d.map(tr => (tr.x && tr.x.length) || 0)}; })"""


@pytest.fixture(scope="module")
def server():
    if not chromium_available():
        pytest.skip("Debian's chromium is not installed")
    with AppServer() as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def new_page(browser, viewport=DESKTOP):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page


def cfg_of(query: dict) -> RunConfig:
    cfg, notes = RunConfig.from_query({k: str(v) for k, v in query.items() if not k.startswith("b_")})
    assert not notes, notes
    return cfg


def chart(page, prefix: str) -> dict:
    found = sorted((c for c in charts(page) if c["title"].startswith(prefix)), key=lambda c: c["stale"])  # live first
    assert found, f"no chart titled {prefix!r}: {[c['title'] for c in charts(page)]}"
    return found[0]


def by_name(c: dict, name: str) -> np.ndarray:
    t = next(t for t in c["traces"] if t["name"] == name)
    return np.array([np.nan if v is None else v for v in t["y"]], dtype=np.float64)


def scrub_to(page, key: str, keys: list[str]) -> None:
    """Move the step slider `key` with the keyboard (Home / End / arrows) and let the page redraw."""
    thumb = page.locator(f".st-key-{key} input[type='range']").first
    thumb.focus()
    for k in keys:
        thumb.press(k)
    page.wait_for_timeout(300)


def test_charts_are_extended_in_place_during_a_run(server, browser):
    # tall enough for every chart to be on screen: a live chart off-screen waits (the test below)
    context, page = new_page(browser, TALL)
    try:
        page.goto(server.url("Explore", **LONG))
        wait_for_app(page)
        press(page, "explore__btn_run", timeout=60_000)
        wait_until(lambda: any(c["title"].startswith("Loss and accuracy") and c["points"] and c["points"][0] >= 3
                               for c in page.evaluate(JS_NODES)), 60, "the loss chart with a few points")
        wait_until(lambda: len([c for c in page.evaluate(JS_NODES) if c["live"]]) == LIVE, 30, "all the live charts")
        page.wait_for_timeout(500)
        n0 = page.evaluate(JS_TAG)
        before = {c["tag"]: c for c in page.evaluate(JS_NODES)}
        s0 = run_status(page)
        page.wait_for_timeout(3000)
        after = page.evaluate(JS_NODES)
        s1 = run_status(page)
        full_page_screenshot(page, ARTIFACTS / "live-explore-during-1400.png")
        stop = page.locator(".st-key-explore__btn_stop button:visible").first
        try:
            stop.click(timeout=3000)
        except Exception:
            pass  # the run ends anyway once nobody polls it (ui.session's heartbeat)
    finally:
        context.close()
    assert s0["word"] == s1["word"] == "Training", (s0, s1)
    assert s1["step"] > s0["step"], "the run went on while the page watched"
    live_before = [c for c in before.values() if c["live"]]
    live_after = [c for c in after if c["live"]]
    assert n0 >= len(live_before) == len(live_after) == LIVE, \
        f"live chart elements came or went: {len(live_before)} → {len(live_after)}"
    assert all(c["tag"] is not None and c["tag"] in before for c in live_after), \
        f"a live chart was remounted (new untagged node): {[c['title'] for c in live_after if c['tag'] not in before]}"
    grown = {c["title"].split(" ")[0]: (before[c["tag"]]["points"][0], c["points"][0]) for c in live_after
             if c["title"].startswith(("Loss", "Forward"))}
    assert grown and all(b > a for a, b in grown.values()), f"the traces did not grow: {grown}"
    var = next(c for c in live_after if c["title"].startswith("Variance by layer"))
    assert var["title"] != before[var["tag"]]["title"], "the variance chart did not move on to a new step"


# The live loss chart's number of points (null before it is drawn); with `true`, scroll it into view first.
JS_LOSS_POINTS = """(scroll) => { for (const e of document.querySelectorAll('.gfl-live.js-plotly-plot')) {
  const t = (e._fullLayout && e._fullLayout.title && e._fullLayout.title.text) || '';
  if (!t.startsWith('Loss and accuracy')) continue;
  if (scroll) e.scrollIntoView({block: 'center'});
  return (e.data[0].x || []).length; } return null; }"""


def test_an_off_screen_chart_waits_and_catches_up_when_scrolled_into_view(server, browser):
    """While a run trains, a live chart below the fold is drawn once and then left alone (the browser's
    main thread goes to the charts on screen); scrolled into view, it shows the records it missed."""
    context, page = new_page(browser, {"width": 1400, "height": 700})
    try:
        page.goto(server.url("Explore", **LONG))
        wait_for_app(page)
        press(page, "explore__btn_run", timeout=60_000)
        wait_until(lambda: page.evaluate(JS_LOSS_POINTS, False), 60, "the loss chart's first figure")
        page.wait_for_timeout(500)
        held = page.evaluate(JS_LOSS_POINTS, False)
        title0 = chart(page, "Variance by layer")["title"]
        page.wait_for_timeout(3000)
        still = page.evaluate(JS_LOSS_POINTS, False)
        title1 = chart(page, "Variance by layer")["title"]
        s1 = run_status(page)
        assert page.evaluate(JS_LOSS_POINTS, True) is not None
        caught = wait_until(lambda: (n := page.evaluate(JS_LOSS_POINTS, False)) > still and n, 10,
                            "the loss chart to catch up once on screen")
        s2 = run_status(page)
        try:
            page.locator(".st-key-explore__btn_stop button").first.click(timeout=3000)
        except Exception:
            pass
    finally:
        context.close()
    assert s1["word"] == s2["word"] == "Training", (s1, s2)
    assert title1 != title0, "the variance chart on screen kept moving"
    assert still == held, f"the off-screen loss chart was redrawn ({held} → {still} points)"
    # the records since then: the run records every 40 steps and took these steps meanwhile (loss evaluations
    # come with records; at least one new one)
    assert caught > held, (held, caught)


def test_the_scrubber_redraws_every_by_layer_chart_at_that_step(server, browser):
    from core.run.engine import train
    want = train(cfg_of(SHORT))  # the same run, same seed: the oracle for the numbers at each step
    context, page = new_page(browser)
    try:
        page.goto(server.url("Explore", **SHORT))
        wait_for_app(page)
        press(page, "explore__btn_run", timeout=60_000)
        wait_until(lambda: run_status(page)["word"] == "Finished", 90, "the run to finish")
        page.locator(".st-key-explore__scrub_step input[type='range']").first.wait_for()
        wait_until(lambda: chart(page, "Variance by layer")["title"].endswith(f"at step {int(want.steps[-1, 0])}"),
                   20, "the last step on screen")
        for keys, record in ((["Home"], 0), (["End", "ArrowLeft", "ArrowLeft", "ArrowLeft"], len(want.steps) - 4)):
            scrub_to(page, "explore__scrub_step", keys)
            step = int(want.steps[record, 0])
            wait_until(lambda: chart(page, "Variance by layer")["title"] == f"Variance by layer at step {step}", 20,
                       f"the variance chart at step {step}")
            wait_until(lambda: chart(page, "Saturation")["title"].endswith(f"at step {step}"), 20,
                       f"the saturation chart at step {step}")
            var, sat = chart(page, "Variance by layer"), chart(page, "Saturation")
            for name, col in (("Var(h), pre-activation", "preact_var"), ("Var(∂L/∂h)", "grad_preact_var")):
                np.testing.assert_allclose(by_name(var, name), want.stats[record, :, COL[col]], rtol=2e-3,
                                           err_msg=f"{name} at step {step}")
            np.testing.assert_allclose(by_name(sat, "saturated entries"), 100 * want.stats[record, :, COL["saturation"]],
                                       rtol=2e-3, atol=1e-6)
            if record != 0:
                assert any(t["name"] == "at step 0 (faint)" for t in var["traces"]), "the step-0 ghost is drawn"
        full_page_screenshot(page, ARTIFACTS / "live-explore-after-1400.png")
        # Play from step 0 runs to the end on its own
        scrub_to(page, "explore__scrub_step", ["Home"])
        press(page, "explore__play")
        last = int(want.steps[-1, 0])
        wait_until(lambda: chart(page, "Variance by layer")["title"] == f"Variance by layer at step {last}", 60,
                   "play-back to reach the last step")
    finally:
        context.close()


def test_compare_shows_a_and_b_at_the_same_step_with_ghosts_and_theory(server, browser):
    context, page = new_page(browser)
    try:
        page.goto(server.url("Compare", **PAIR))
        wait_for_app(page)
        press(page, "compare__run", timeout=60_000)
        page.locator(".st-key-compare__scrub_step input[type='range']").first.wait_for(timeout=120_000)
        scrub_to(page, "compare__scrub_step", ["Home"] + ["ArrowRight"] * 5)
        wait_until(lambda: chart(page, "Variance by layer")["title"] == "Variance by layer at step 5", 20,
                   "A and B at step 5")
        names = [t["name"] for t in chart(page, "Variance by layer")["traces"]]
        full_page_screenshot(page, ARTIFACTS / "live-compare-1400.png")
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(800)
        full_page_screenshot(page, ARTIFACTS / "live-compare-390.png")
    finally:
        context.close()
    assert "A: Var(h), pre-activation (step 5)" in names and "B: Var(h), pre-activation (step 5)" in names, names
    assert {"A at step 0 (faint)", "B at step 0 (faint)", "A: theory", "B: theory"} <= set(names), names


def test_phone_screenshots_of_explore(server, browser):
    context, page = new_page(browser, PHONE)
    try:
        page.goto(server.url("Explore", **dict(LONG, record_every=10)))
        wait_for_app(page)
        press(page, "explore__btn_run", timeout=60_000)
        wait_until(lambda: len([c for c in page.evaluate(JS_NODES) if c["live"]]) == LIVE, 60, "the live charts")
        page.wait_for_timeout(1500)
        during = run_status(page)["word"]
        full_page_screenshot(page, ARTIFACTS / "live-explore-during-390.png")
        press(page, "explore__btn_stop")  # 5,000 steps: still training when the screenshot is taken
        wait_until(lambda: run_status(page)["word"] in ("Finished", "Stopped"), 60, "the run to end")
        page.locator(".st-key-explore__scrub_step input[type='range']").first.wait_for()
        page.wait_for_timeout(800)
        full_page_screenshot(page, ARTIFACTS / "live-explore-after-390.png")
    finally:
        context.close()
    assert during == "Training", f"the 'during' screenshot shows a run that is {during}"

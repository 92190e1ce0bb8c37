"""Explore on a phone (390 × 844) in Debian's Chromium: every chart readable, the mode bar out of the way.

A short experiment on a 2-D dataset (so the decision boundary is drawn too) runs to its end; then, from the
DOM of every Plotly chart on the page, the bounding boxes of the texts a reader must read (the title, axis
titles, tick labels, annotations: subplot titles and notes) must not overlap (tests/overlap_js.py), and each
chart's mode bar must be hidden until the pointer is over that chart. A screenshot of the page lands in
test-artifacts/.

Run it under the machine's lock: `flock /tmp/heavy.lock .venv/bin/python -m pytest tests/test_browser_phone.py`.
"""
from __future__ import annotations

import os

import pytest

from browser_util import (PLOT, ROOT, AppServer, charts, chromium_available, full_page_screenshot, launch_chromium,
                          press, run_status, wait_for_app, wait_until)
from overlap_js import MODEBAR_JS, OVERLAPS_JS

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
MS = 1000
QUERY = dict(depth=6, width=16, activation="tanh", init="xavier_normal", dataset="spirals", steps=40, seed=2)
MIN_CHARTS = {"Theory": 4, "Learn": 6}  # profile, map, phase diagram, Jacobian; one per question (but code)
OVERLAP_TOLERANCE_PX = 1  # boxes touching by a pixel (anti-aliasing) are not an overlap


@pytest.fixture(scope="module")
def browser():
    if not chromium_available():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing")
        pytest.skip("/usr/bin/chromium is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server():
    with AppServer() as s:
        yield s


def test_explore_on_a_phone_has_no_overlapping_text_and_the_mode_bar_waits_for_hover(browser, server):
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    try:
        page.goto(server.url("Explore", **QUERY))
        wait_for_app(page)
        press(page, "explore__btn_run")
        wait_until(lambda: run_status(page)["word"] in ("Finished", "Stopped", "Diverged", "Failed"), 120,
                   "the run to end")
        assert run_status(page)["word"] == "Finished"
        wait_for_app(page)
        page.wait_for_selector(PLOT, timeout=30 * MS)
        titles = wait_until(lambda: (t := [c["title"] for c in charts(page) if not c["stale"]])
                            and any(s.startswith("What the network predicts") for s in t) and t,
                            30, "the decision boundary beside the loss")
        assert any(t.startswith("Variance by layer") for t in titles) and any(t.startswith("Loss") for t in titles)
        page.wait_for_timeout(500)  # the last charts' layout
        full_page_screenshot(page, ROOT / "test-artifacts" / "explore_phone.png")

        # Plotly lays a chart out again at its real width: scroll each into view once, then measure all
        for el in page.query_selector_all(PLOT):
            el.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        overlaps = page.evaluate(OVERLAPS_JS, OVERLAP_TOLERANCE_PX)
        assert not overlaps, "overlapping text on a phone:\n" + "\n".join(
            f"  {o['chart'][:60]!r}: {o['a']!r} × {o['b']!r} ({o['w']}×{o['h']} px)" for o in overlaps[:20])

        # the mode bar: present on every chart, hidden until the pointer is over it
        page.mouse.move(2, 2)
        page.wait_for_timeout(300)
        bars = page.evaluate(MODEBAR_JS)
        assert bars and all(b == "hidden" for b in bars), f"mode bars shown without hover: {bars}"
        first = page.query_selector_all(PLOT)[0]
        first.scroll_into_view_if_needed()
        first.hover()
        page.wait_for_timeout(300)
        assert page.evaluate(MODEBAR_JS)[0] == "shown", "the hovered chart's mode bar did not appear"
    finally:
        ctx.close()


@pytest.mark.parametrize("page_name", ["Theory", "Learn"])
def test_theory_and_learn_on_a_phone_have_no_overlapping_text(browser, server, page_name):
    """The pages that draw without a run: every chart readable at 390 px too."""
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    try:
        page.goto(server.url(page_name))
        wait_for_app(page)
        page.wait_for_selector(PLOT, timeout=60 * MS)
        for el in page.query_selector_all(PLOT):
            el.scroll_into_view_if_needed()
            page.wait_for_timeout(150)
        drawn = wait_until(lambda: page.evaluate(
            "() => document.querySelectorAll('.js-plotly-plot .main-svg .xtick').length && "
            "Array.from(document.querySelectorAll('.js-plotly-plot')).filter(p => p.querySelector('.main-svg')).length"),
            30, f"{page_name}'s charts to be drawn")
        assert drawn >= MIN_CHARTS[page_name], f"{page_name} drew {drawn} charts"
        full_page_screenshot(page, ROOT / "test-artifacts" / f"{page_name.lower()}_phone.png")
        overlaps = page.evaluate(OVERLAPS_JS, OVERLAP_TOLERANCE_PX)
        assert not overlaps, f"overlapping text on {page_name} on a phone:\n" + "\n".join(
            f"  {o['chart'][:60]!r}: {o['a']!r} × {o['b']!r} ({o['w']}×{o['h']} px)" for o in overlaps[:20])
    finally:
        ctx.close()

"""Links in a real browser (Debian's Chromium, a fresh server): the address bar follows the settings and a
copied URL reopens the same experiment in a new browser context; a link over the server's limits is brought
down to them with a note; a scenario link runs on open with its story, and `autorun=false` waits.
Screenshots of Home and Explore at 1400 × 900 and 390 × 844 go to test-artifacts/url/."""
from __future__ import annotations

import os
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from browser_util import (ROOT, TERMINAL_WORDS, AppServer, button, chromium_available, full_page_screenshot,
                          launch_chromium, press, run_status, wait_for_app, wait_until)
from core.registry import ACTIVATIONS
from core.scenarios import SCENARIOS
from core.schema import RunConfig

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts" / "url"
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
MS = 1000


@pytest.fixture(scope="module")
def server():
    if not chromium_available():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing; CI must run the browser tests.")
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    srv = AppServer()
    try:
        srv.start()
    except RuntimeError as e:
        srv.stop()
        pytest.fail(str(e))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def open_page(browser, url: str, viewport=DESKTOP):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(30 * MS)
    page.goto(url)
    wait_for_app(page)
    return context, page


def address(page) -> str:
    """The address bar now (`page.url` is only refreshed while Playwright handles events, not in a sleep loop)."""
    return page.evaluate("() => window.location.href")


def url_query(page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(address(page)).query))


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def depth_shown(page) -> str:
    return sidebar(page).locator('[data-testid="stSlider"]').filter(has_text="Depth").locator(
        '[data-testid="stSliderThumbValue"]').first.inner_text().strip()


def select_shown(page, label: str) -> str:
    return sidebar(page).locator(f'input[role="combobox"][aria-label="{label}"]').first.input_value().strip()


def number_shown(page, label: str) -> str:
    return sidebar(page).locator(f'input[aria-label="{label}"]').first.input_value().strip()


def choose(page, label: str, option: str, attempts: int = 3) -> None:
    """Pick `option` in the select box `label` (a combo box: its input opens the list). Once the script is
    idle; a rerun that redraws the sidebar closes an open list (seen on a busy machine), so the list is
    opened again if the option does not show."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        wait_for_app(page)
        sidebar(page).locator(f'input[role="combobox"][aria-label="{label}"]').first.click()
        item = page.get_by_role("option", name=option, exact=True).first
        try:
            item.wait_for(state="visible", timeout=10_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        item.click()
        return
    raise AssertionError(f"the {label!r} list did not show {option!r} in {attempts} tries")


def test_the_url_follows_a_slider_and_a_select_and_reopens_the_same_experiment(browser, server):
    start = dict(depth=4, width=16, steps=5, dataset="moons", seed=3)
    context, page = open_page(browser, server.url("Explore", **start))
    try:
        wait_until(lambda: url_query(page).get("seed") == "3" and "lr" in url_query(page), 20,
                   "the address bar to carry every setting")
        slider = sidebar(page).locator('[data-testid="stSlider"]').filter(has_text="Depth").first
        slider.locator('input[type="range"]').first.focus()  # the thumb's (visually hidden) range input
        page.keyboard.press("ArrowRight")
        wait_until(lambda: url_query(page).get("depth") == "5", 20, "depth=5 in the address bar")
        choose(page, "Activation φ", ACTIVATIONS["relu"].label)
        wait_until(lambda: url_query(page).get("activation") == "relu", 20, "activation=relu in the address bar")
        query = url_query(page)
        want = RunConfig.from_query({k: str(v) for k, v in start.items()})[0].replace(depth=5, activation="relu")
        got, notes = RunConfig.from_query(query)
        assert not notes and got == want and set(want.to_query()) <= set(query)
        copied = address(page)
    finally:
        context.close()
    context, page = open_page(browser, copied)  # a fresh browser context: nothing but the URL is shared
    try:
        wait_until(lambda: depth_shown(page) == "5", 20, "the reopened page's depth slider at 5")
        assert select_shown(page, "Activation φ") == ACTIVATIONS["relu"].label
        assert number_shown(page, "Seed") == "3" and number_shown(page, "Steps") == "5"
        assert RunConfig.from_query(url_query(page))[0] == want
    finally:
        context.close()


def test_a_link_over_the_limit_is_clamped_with_a_note(browser, server):
    context, page = open_page(browser, server.url("Explore", depth=500, width=16, steps=5, dataset="moons"))
    try:
        note = page.locator('[data-testid="stMain"] [data-testid="stAlert"]').filter(has_text="over this server")
        note.first.wait_for(state="visible", timeout=20 * MS)
        assert "depth 500 is over this server's limit of 100; using 100." in note.first.inner_text()
        assert depth_shown(page) == "100"
        wait_until(lambda: url_query(page).get("depth") == "100", 20, "depth=100 in the address bar")
    finally:
        context.close()


def story_box(page, sc):
    return page.locator(f'.st-key-story_{sc.key}')


def test_a_scenario_link_runs_on_open_with_its_story_and_autorun_false_waits(browser, server):
    sc = SCENARIOS["exploding"]
    context, page = open_page(browser, server.url("Explore", scenario=sc.key, steps=40))
    try:
        status = wait_until(lambda: (s := run_status(page))["word"] in TERMINAL_WORDS and s, 90,
                            "the scenario's run to end without a click")
        assert status["word"] in ("Diverged", "Finished"), status
        story = story_box(page, sc)
        story.wait_for(state="visible", timeout=10 * MS)
        assert "What to watch for" in story.inner_text() and sc.title in story.inner_text()
        assert url_query(page).get("scenario") == sc.key
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        full_page_screenshot(page, ARTIFACTS / "explore_scenario_desktop.png")
    finally:
        context.close()

    quiet = SCENARIOS["selu_lecun"]
    context, page = open_page(browser, server.url("Explore", scenario=quiet.key, autorun="false"))
    try:
        story_box(page, quiet).wait_for(state="visible", timeout=10 * MS)
        page.wait_for_timeout(2000)  # time enough for a run to show its status line, were one started
        assert run_status(page)["bar"] is None
        assert button(page, "explore__btn_run").is_enabled()
        assert url_query(page).get("autorun") == "false"
    finally:
        context.close()


# Streamlit's own status widget while a script or fragment runs: (is it in the page, is it visible).
JS_STREAMLIT_STOP = """() => {
  const busy = Array.from(document.querySelectorAll('[data-testid="stStatusWidget"]')).filter(w =>
      w.querySelector('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'));
  return [busy.length > 0, busy.some(w => w.getClientRects().length > 0)];
}"""


def test_one_stop_during_a_run(browser, server):
    """While a run trains, the page's own Stop is the only one: Streamlit's Running…/Stop widget stays hidden."""
    context, page = open_page(browser, server.url("Explore", depth=8, width=32, steps=5000, dataset="moons"))
    try:
        press(page, "explore__btn_run")
        wait_until(lambda: run_status(page)["word"] == "Training", 60,
                   f"the run to start (status: {run_status(page)})")
        seen = False
        end = time.monotonic() + 6
        while time.monotonic() < end and run_status(page)["word"] == "Training":
            present, visible = page.evaluate(JS_STREAMLIT_STOP)
            seen |= present
            assert not visible, "Streamlit's own Running…/Stop widget is visible beside the page's Stop"
            page.wait_for_timeout(50)
        assert button(page, "explore__btn_stop").is_enabled()
        button(page, "explore__btn_stop").click()
        wait_until(lambda: run_status(page)["word"] in TERMINAL_WORDS, 30, "the run to stop")
        print(f"Streamlit's status widget was {'in the page (hidden)' if seen else 'never in the page'} during the run")
        # It shows only while a script run lasts long enough, so also draw one as Streamlit does: the page hides it.
        probe = page.evaluate("""() => {
          const w = document.createElement('div'); w.dataset.testid = 'stStatusWidget';
          const icon = document.createElement('img'); icon.dataset.testid = 'stStatusWidgetRunningIcon';
          const stop = document.createElement('button'); stop.textContent = 'Stop';
          w.append(icon, stop); document.body.append(w);
          const shown = w.getClientRects().length > 0; w.remove(); return shown;
        }""")
        assert probe is False, "a running status widget would be visible: the one-Stop style is not applied"
    finally:
        context.close()


@pytest.mark.parametrize("viewport,name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_screenshots_of_home_and_explore(browser, server, viewport, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page = open_page(browser, server.url(), viewport)
    try:
        full_page_screenshot(page, ARTIFACTS / f"home_{name}.png")
    finally:
        context.close()
    sc = SCENARIOS["sigmoid_vanishing"]
    context, page = open_page(browser, server.url("Explore", scenario=sc.key, steps=30), viewport)
    try:
        wait_until(lambda: run_status(page)["word"] in TERMINAL_WORDS, 90, "the scenario's run to end")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / f"explore_{name}_top.png"))
        full_page_screenshot(page, ARTIFACTS / f"explore_{name}.png")
    finally:
        context.close()

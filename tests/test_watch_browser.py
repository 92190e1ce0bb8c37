"""Explore → Follow a run in Debian's Chromium: a training script in another
process writes a live store; the page lists it and its charts grow as it trains."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser_util import AppServer, charts, chromium_available, launch_chromium, wait_until

ROOT = Path(__file__).resolve().parent.parent
STATUS = re.compile(r"training now · step ([\d,]+) · ([\d,]+) records × (\d+) layers")


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_follow_a_run_draws_a_script_training_in_another_process(tmp_path):
    if not chromium_available():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    writer = subprocess.Popen([sys.executable, str(ROOT / "examples" / "watch_my_model.py"), "--steps", "3000",
                               "--delay", "0.05", "--runs-dir", str(tmp_path), "--name", "mine"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (tmp_path / "mine.sqlite").exists(), 120, "the script's live store")
        with AppServer(env={"GFL_RUNS_DIR": str(tmp_path)}) as server, sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(60_000)
            page.goto(server.url("Explore"))
            page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot', timeout=120_000)
            page.locator("button", has_text="Follow a run").first.click()

            def status():
                for text in page.locator('[data-testid="stAlert"]').all_inner_texts():
                    m = STATUS.search(text)
                    if m:
                        return int(m.group(2).replace(",", "")), int(m.group(3))
                return None

            first, layers = wait_until(status, 90, "the followed run's status line")
            assert layers == 10
            later = wait_until(lambda: (s := status()) and s[0] > first and s, 60, "new records drawn live")[0]
            assert later > first
            variance = wait_until(lambda: [c for c in charts(page) if c["title"].startswith("Variance by layer")
                                           and not c["stale"]], 60, "the variance chart")[0]
            lines = [t for t in variance["traces"] if t["mode"] == "lines+markers"]
            assert {t["name"] for t in lines} == {"Var(output)", "Var(∂L/∂output)"}
            assert all(len(t["y"]) == 10 for t in lines)
            browser.close()
    finally:
        writer.kill()
        writer.wait()
        writer.stderr.close()

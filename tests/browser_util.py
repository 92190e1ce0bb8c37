"""Helpers for driving the dashboard in Debian's Chromium through Playwright.

Used by tests/test_browser.py and bench/bench_ui.py:

* `AppServer`: a fresh `streamlit run app.py` on a free port, in its own
  process group, health-checked with a bounded wait, killed as a group;
* `launch_chromium()`: headless Chromium from /usr/bin/chromium (never
  `playwright install`);
* small page helpers that read what the app shows: the run's status line,
  the Plotly charts' data, the download buttons.

No sleeps longer than a polling interval; every wait has a deadline and says
what it was waiting for when it runs out.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A drawn Plotly chart: st.plotly_chart's, or a live chart's (ui/livechart.py, the .gfl-live node itself)
PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot, .gfl-live.js-plotly-plot'
TERMINAL_WORDS = ("Finished", "Stopped", "Diverged", "Failed")


# -- the server ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (our own local server)
        return r.status, r.read()


class AppServer:
    """`streamlit run app.py` on a free port, started fresh, stopped as a process group.

        with AppServer() as server:
            page.goto(server.url("Explore", depth=6))
    """

    def __init__(self, env: dict[str, str] | None = None, startup_timeout: float = 60.0, cpus: set[int] | None = None):
        self.port = free_port()
        self.cpus = cpus  # the CPUs the server (and the worker processes it starts) may run on; None: all
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="gfl-streamlit-", suffix=".log", delete=False)

    def start(self) -> "AppServer":
        env = dict(os.environ)
        env.update(self.env or {})
        env.setdefault("PYTHONUNBUFFERED", "1")
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        cpus = self.cpus
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode} before answering "
                                   f"/_stcore/health:\n{self.log_tail()}")
            try:
                status, body = http_get(self.base + "/_stcore/health", timeout=2.0)
                if status == 200 and body.strip() == b"ok":
                    return
                last = f"HTTP {status} {body[:80]!r}"
            except OSError as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.2)
        raise RuntimeError(f"streamlit on port {self.port} did not answer 'ok' on /_stcore/health within "
                           f"{self.startup_timeout:.0f} s (last: {last}):\n{self.log_tail()}")

    def url(self, page: str = "", **query: Any) -> str:
        path = f"{self.base}/{page}" if page else self.base + "/"
        return f"{path}?{urlencode({k: str(v) for k, v in query.items()})}" if query else path

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)  # failures quote its tail (log_tail) before this

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the browser ---------------------------------------------------------------------------------------

def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy (returned) or fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


# -- what the page shows -------------------------------------------------------------------------------

# core.run.record.status_text: "**Word** · N records, last at step S · T / M steps taken · x s"; step = T (taken)
_STATUS_RE = re.compile(r"(Training|Paused|Finished|Stopped|Diverged|Failed|Starting)\W.*?([\d,]+) / ([\d,]+) steps taken")

JS_STATUS = """() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const bar = main.querySelector('[data-testid="stProgress"]');
  let queue = null;
  for (const el of main.querySelectorAll('[data-testid="stAlert"], [data-testid="stAlertContainer"]')) {
    if (el.innerText.includes('in the queue')) { queue = el.innerText; break; }
  }
  return {bar: bar ? bar.innerText : null, queue: queue};
}"""

# Every Plotly chart on the page: its title, whether it is a stale copy being
# replaced, and per trace name, type and the x / y values (typed arrays turned
# into plain lists; nulls kept as null).
JS_CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
  const toList = v => v == null ? null : Array.from(v, a => (a == null || (typeof a === 'number' && isNaN(a))) ? null : a);
  const lay = el._fullLayout || el.layout || {};
  const title = lay.title ? (typeof lay.title === 'string' ? lay.title : lay.title.text) : null;
  const data = el._fullData || el.data || [];
  return {title: title || '', stale: !!el.closest('[data-stale="true"]'), traces: data.map(t => ({
    name: t.name || '', type: t.type || '', mode: t.mode || '',
    x: (t.x !== undefined && t.x !== null && typeof t.x === 'object') ? toList(t.x) : null,
    y: (t.y !== undefined && t.y !== null && typeof t.y === 'object') ? toList(t.y) : null,
  }))};
})"""


def run_status(page) -> dict:
    """{'word': 'Training', 'step': 12, 'total': 400, 'queue': None | 'Waiting ... number 1 ...'}."""
    raw = page.evaluate(JS_STATUS)
    out = {"word": None, "step": None, "total": None, "queue": raw["queue"], "bar": raw["bar"]}
    if raw["bar"]:
        m = _STATUS_RE.search(raw["bar"])
        if m:
            out.update(word=m.group(1), step=int(m.group(2).replace(",", "")), total=int(m.group(3).replace(",", "")))
    return out


def charts(page) -> list[dict]:
    return page.evaluate(JS_CHARTS)


def variance_chart(page) -> dict | None:
    """The Explore 'Variance by layer at step N' chart, or None; the live
    element rather than a stale copy Streamlit keeps while it redraws."""
    found = [c for c in charts(page) if c["title"].startswith("Variance by layer")]
    found.sort(key=lambda c: c["stale"])
    return found[0] if found else None


def button(page, key: str):
    """The visible button of the Streamlit widget with `key` (Streamlit puts
    `st-key-<key>` on the element's container), e.g. 'explore__btn_run'."""
    return page.locator(f".st-key-{key} button:visible").first


def press(page, key: str, timeout: float = 15_000) -> None:
    """Click the button of widget `key` once it is visible and enabled."""
    b = button(page, key)
    b.wait_for(state="visible", timeout=timeout)
    b.click(timeout=timeout)


def wait_for_app(page, timeout: float = 60_000) -> None:
    """The page has been drawn and Streamlit is not running the script."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]')""",
        timeout=timeout)


def full_page_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its main container, not the document: grow
    the viewport to the content's height for one screenshot, then restore it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(document.body.scrollHeight,
        ...Array.from(document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebarContent"], section'))
            .map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), 12_000))})
    try:
        page.wait_for_timeout(400)  # let Plotly re-lay out at the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)

"""UI latency and payload, measured in headless Chromium against a fresh server.

    python bench/bench_ui.py [--repeats 5] [--seconds 10] [--env KEY=VALUE ...]

`--split-cpus` runs the server (and the worker processes it trains in) on CPU 0 and Chromium on the
others, as when the page is watched from another machine (a hosted demo's visitors): the in-process
reference run is then timed on CPU 0 too. Without it everything shares every core.

`--env` passes settings to the server, e.g. `--env STREAMLIT_RUNNER_POST_SCRIPT_GC=false`
to see what Streamlit's full garbage collection after every (fragment) rerun costs.

Starts its own `streamlit run app.py` on a free port, warms it with one run,
then measures, on the Explore page:

(a) seconds from clicking Run to the first 'Variance by layer' chart drawn,
    median over `--repeats` fresh sessions (small network), clocked in the page
    with performance.now() between the click and the chart's first traces;
(b) chart refreshes per second during a run: how often the variance chart
    shows a new step, over `--seconds` of a longer run (a 10 ms poll in the
    page reads the title, "at step N", of the live, non-stale chart element);
(c) bytes per refresh for a 50-layer, 500-record run: every websocket frame
    the browser receives (Streamlit ForwardMsgs, uncompressed payload sizes),
    decoded to find the variance chart's frames and the fragment reruns.

Targets (issue 11): ≤ 0.5 s to the first chart (warm), ≥ 4 refreshes/s, the page's 10 ms timer
≥ 50 times a second, 0 chart remounts during a run, ≤ 30 KB per refresh (50 layers), a watched run
≤ 1.2× its in-process time. Prints figures next to their targets, with the CPU model; never asserts.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser_util import (AppServer, button, chromium_available, launch_chromium, press,  # noqa: E402
                          run_status, wait_for_app, wait_until)
from _machine import cpu_model  # noqa: E402 (bench/ is the script's directory)

SMALL = dict(depth=6, width=32, activation="relu", init="kaiming_normal", steps=100, seed=1, dataset="moons")
LONG = dict(depth=20, width=128, activation="tanh", init="xavier_normal", steps=5000, seed=2)   # digits
BIG = dict(depth=50, width=128, activation="relu", init="kaiming_normal", steps=499, seed=3)     # 500 records

# Installed before any page script: clocks the Run click and watches the variance chart.
INSTRUMENT = """
(() => {
  const g = window.__gfl = {click: null, first: null, seen: [], lastTitle: null, lastEl: null, mounts: 0, ticks: 0};
  document.addEventListener('click', e => {
    if (e.target.closest && e.target.closest('.st-key-explore__btn_run')) {
      g.click = performance.now(); g.first = null; g.seen = []; g.lastTitle = null;
    }
  }, true);
  setInterval(() => {
    g.ticks++;
    let el = null, title = '';
    for (const e of document.querySelectorAll('.js-plotly-plot')) {
      if (e.closest('[data-stale="true"]')) continue;             // the copy being replaced
      const lay = e._fullLayout;
      const t = lay && lay.title ? (lay.title.text || '') : '';
      if (t.startsWith('Variance by layer') && e.querySelector('.scatterlayer .trace')) { el = e; title = t; }
    }
    if (!el) return;
    const now = performance.now();
    if (g.click !== null && g.first === null) g.first = now;
    if (el !== g.lastEl) { g.mounts++; g.lastEl = el; }             // Streamlit mounted a new chart element
    if (title !== g.lastTitle) { g.seen.push([now, title]); g.lastTitle = title; }   // a new step on screen
  }, 10);
})();
"""




def fmt_target(value: float, target: float, better: str, unit: str = "") -> str:
    ok = value <= target if better == "low" else value >= target
    sign = "≤" if better == "low" else "≥"
    return f"target {sign} {target:g}{unit}  {'OK' if ok else 'MISS'}"


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page


def open_explore(page, server, query) -> None:
    page.goto(server.url("Explore", **query))
    wait_for_app(page)
    button(page, "explore__btn_run").wait_for(state="visible")
    # the script has run to the end: the share box is its last element
    page.locator('[data-testid="stMain"] [data-testid="stCode"]').filter(has_text="/Explore?").first.wait_for()


def wait_end(page, timeout: float) -> dict:
    return wait_until(lambda: (s := run_status(page))["word"] in ("Finished", "Stopped", "Diverged", "Failed") and s,
                      timeout, "the run to end", interval=0.2)


def warm(browser, server) -> float:
    context, page = new_page(browser)
    try:
        open_explore(page, server, SMALL)
        t = time.perf_counter()
        press(page, "explore__btn_run")
        wait_end(page, 120)
        return time.perf_counter() - t
    finally:
        context.close()


def time_to_first_chart(browser, server, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        context, page = new_page(browser)
        try:
            open_explore(page, server, dict(SMALL, seed=SMALL["seed"] + i))
            page.wait_for_timeout(300)  # let the page settle (fonts, the theory preview chart)
            press(page, "explore__btn_run")
            wait_until(lambda: page.evaluate("() => window.__gfl.first !== null"), 30, "the first variance chart")
            t = page.evaluate("() => (window.__gfl.first - window.__gfl.click) / 1000")
            out.append(t)
            print(f"    session {i + 1}: {t:.2f} s")
            wait_end(page, 60)  # never leave a run going into the next measurement
        finally:
            context.close()
    return out


def refresh_rate(browser, server, seconds: float) -> dict:
    context, page = new_page(browser)
    try:
        open_explore(page, server, LONG)
        press(page, "explore__btn_run")
        wait_until(lambda: page.evaluate("() => window.__gfl.first !== null"), 30, "the first variance chart")
        page.wait_for_timeout(1000)  # past the start-up
        probe = "() => [performance.now(), window.__gfl.mounts, window.__gfl.ticks]"
        page.evaluate("() => { window.__gflCost = {}; }")  # static/livechart.js: drawing time per kind of chart
        start = page.evaluate(probe)
        s0 = run_status(page)
        page.wait_for_timeout(int(seconds * 1000))
        end = page.evaluate(probe)
        s1 = run_status(page)
        seen = page.evaluate("() => window.__gfl.seen")
        cost = page.evaluate("() => window.__gflCost || {}")
        press(page, "explore__btn_stop")
        wait_end(page, 30)
    finally:
        context.close()
    window = [e for e in seen if start[0] <= e[0] <= end[0]]
    elapsed = (end[0] - start[0]) / 1000
    times = [e[0] for e in window]
    gaps = [(b - a) / 1000 for a, b in zip(times, times[1:])]
    return {
        "elapsed": elapsed,
        "new_steps": len(window),
        "mounts": end[1] - start[1],
        "ticks_per_s": (end[2] - start[2]) / elapsed,
        "gap_median": statistics.median(gaps) if gaps else float("nan"),
        "gap_max": max(gaps) if gaps else float("nan"),
        "train_steps": (s1["step"] or 0) - (s0["step"] or 0),
        "cost": {k: v for k, v in cost.items() if k not in ("other", "pending")},
    }


def payload(browser, server) -> dict:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    frames: list[tuple[float, bytes]] = []
    context, page = new_page(browser)

    def on_ws(ws):
        ws.on("framereceived", lambda data: frames.append(
            (time.perf_counter(), data if isinstance(data, bytes) else data.encode())))
    page.on("websocket", on_ws)
    try:
        open_explore(page, server, BIG)
        frames.clear()
        t0 = time.perf_counter()
        press(page, "explore__btn_run")
        status = wait_end(page, 240)
        run_seconds = time.perf_counter() - t0
        page.wait_for_timeout(1500)  # the final full-page redraw
    finally:
        context.close()

    chart_frames, refreshes, other_bytes = [], [], 0
    current = 0
    for _, raw in frames:
        try:
            msg = ForwardMsg.FromString(raw)
        except Exception:
            other_bytes += len(raw)
            continue
        current += len(raw)
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            which = el.WhichOneof("type")
            spec = el.plotly_chart.spec if which == "plotly_chart" else (
                (el.bidi_component.json or el.bidi_component.mixed.json) if which == "bidi_component" else "")
            m = re.search(r"Variance by layer at step (\d+)", spec)
            if m:  # a st.plotly_chart's figure, or a live chart's patch (its title)
                chart_frames.append((int(m.group(1)), len(raw), len(spec)))
        if kind == "script_finished":
            refreshes.append(current)
            current = 0
    total = sum(len(r) for _, r in frames)
    late = [b for step, b, _ in chart_frames if step >= 200]  # heatmaps at their 200-column cap
    return {
        "status": status["bar"], "run_seconds": run_seconds, "frames": len(frames), "total": total,
        "variance_frames": len(chart_frames),
        "variance_median": statistics.median([b for _, b, _ in chart_frames]) if chart_frames else float("nan"),
        "variance_late_median": statistics.median(late) if late else float("nan"),
        "reruns": len(refreshes),
        "per_rerun_median": statistics.median(refreshes) if refreshes else float("nan"),
        "per_rerun_max": max(refreshes) if refreshes else float("nan"),
        "per_refresh": total / len(chart_frames) if chart_frames else float("nan"),
        "unparsed": other_bytes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment variable for the server (repeatable)")
    ap.add_argument("--no-baseline", action="store_true", help="skip timing the 50-layer run in-process first")
    ap.add_argument("--split-cpus", action="store_true",
                    help="server and its workers on CPU 0, Chromium on the other CPUs (the page watched from elsewhere)")
    args = ap.parse_args()
    all_cpus = os.sched_getaffinity(0)
    server_cpus = browser_cpus = None
    if args.split_cpus:
        if len(all_cpus) < 2:
            print("--split-cpus needs at least 2 CPUs; this process may use 1.")
            return
        server_cpus = {min(all_cpus)}
        browser_cpus = all_cpus - server_cpus
        os.sched_setaffinity(0, server_cpus)  # the in-process reference on the server's CPU
    env = dict(kv.split("=", 1) for kv in args.env)
    if not chromium_available():
        print("Debian's chromium is not at /usr/bin/chromium: nothing measured (`make browser` as root installs it).")
        return
    from playwright.sync_api import sync_playwright

    t_start = time.perf_counter()
    baseline = None
    if not args.no_baseline:  # before the server starts: the same run with no page watching
        from core.schema import RunConfig
        from core.run.engine import train
        cfg, _ = RunConfig.from_query({k: str(v) for k, v in BIG.items()})
        t = time.perf_counter()
        train(cfg)
        baseline = time.perf_counter() - t
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores)")
    if args.split_cpus:
        os.sched_setaffinity(0, browser_cpus)  # Playwright's driver and Chromium start from this process
        print(f"server and its workers on CPU {sorted(server_cpus)}, Chromium on CPU {sorted(browser_cpus)}")
    with AppServer(env=env, cpus=server_cpus) as server, sync_playwright() as p:
        browser = launch_chromium(p)
        print(f"fresh server on port {server.port}{' with ' + ' '.join(args.env) if args.env else ''}; "
              f"Chromium {browser.version}, headless")
        if baseline is not None:
            print(f"reference: the {BIG['depth']}-layer run of (c) takes {baseline:.1f} s in-process with no page watching")
        print()
        try:
            print(f"warm-up run (small network, {SMALL['steps']} steps): {warm(browser, server):.1f} s\n")
        except Exception as e:
            print(f"warm-up failed: {type(e).__name__}: {e}\n")

        print(f"(a) Run → first variance chart, {SMALL['depth']}×{SMALL['width']} {SMALL['activation']}, warm server:")
        try:
            times = time_to_first_chart(browser, server, args.repeats)
            med = statistics.median(times)
            print(f"  median {med:.2f} s (min {min(times):.2f}, max {max(times):.2f})   {fmt_target(med, 0.5, 'low', ' s')}\n")
        except Exception as e:
            print(f"  failed: {type(e).__name__}: {e}\n")

        print(f"(b) chart refreshes during a run ({LONG['depth']}×{LONG['width']} {LONG['activation']}, digits), "
              f"over {args.seconds:g} s:")
        try:
            r = refresh_rate(browser, server, args.seconds)
            rate = r["new_steps"] / r["elapsed"]
            print(f"  {r['new_steps']} new steps shown in {r['elapsed']:.1f} s = {rate:.2f} refreshes/s   "
                  f"{fmt_target(rate, 4, 'high', '/s')}")
            print(f"  gap between new steps: median {r['gap_median']:.2f} s, max {r['gap_max']:.2f} s; "
                  f"chart element mounted afresh {r['mounts']}× (target 0)")
            print(f"  page's 10 ms timer ran {r['ticks_per_s']:.0f}×/s (100 when the browser's main thread is free; "
                  f"{fmt_target(r['ticks_per_s'], 50, 'high', '/s')}); "
                  f"training advanced {r['train_steps']} steps ({r['train_steps'] / r['elapsed']:.1f} steps/s)")
            print("  the browser's main thread drawing live charts, by kind: " + ", ".join(
                f"{k} {v['ms'] / r['elapsed'] / 10:.0f}% ({v['n'] / r['elapsed']:.1f}/s × {v['ms'] / max(v['n'], 1):.0f} ms)"
                for k, v in sorted(r["cost"].items(), key=lambda kv: -kv[1]["ms"])) + "\n")
        except Exception as e:
            print(f"  failed: {type(e).__name__}: {e}\n")

        print(f"(c) websocket payload, {BIG['depth']}-layer × {BIG['width']} run of {BIG['steps'] + 1} records "
              f"(uncompressed frame bytes):")
        try:
            c = payload(browser, server)
            kb = 1024
            print(f"  run: {c['status']} in {c['run_seconds']:.1f} s; {c['frames']} frames, {c['total'] / kb:,.0f} KB "
                  f"in all, {c['reruns']} script/fragment runs, {c['variance_frames']} variance-chart frames")
            print(f"  variance-chart frame: median {c['variance_median'] / kb:,.1f} KB "
                  f"(from step 200 on: {c['variance_late_median'] / kb:,.1f} KB)")
            print(f"  per rerun (frames up to each script_finished): median {c['per_rerun_median'] / kb:,.1f} KB, "
                  f"max {c['per_rerun_max'] / kb:,.1f} KB")
            print(f"  total per refresh (all bytes / variance-chart refreshes): {c['per_refresh'] / kb:,.1f} KB   "
                  f"{fmt_target(c['per_refresh'] / kb, 30, 'low', ' KB')}")
            if baseline:
                print(f"  the run itself took {c['run_seconds']:.1f} s in the app vs {baseline:.1f} s in-process "
                      f"({c['run_seconds'] / baseline:.2f}× while the page watches it; "
                      f"{fmt_target(c['run_seconds'] / baseline, 1.2, 'low', '×')})")
            if c["unparsed"]:
                print(f"  ({c['unparsed']:,} bytes in frames that are not ForwardMsgs)")
        except Exception as e:
            print(f"  failed: {type(e).__name__}: {e}")
        browser.close()
    print(f"\n(total {time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()

"""Render the "Trainable depth is about 6 ξ_c" sweep to docs/sweep_6xi.png, and say how well its trained
region follows 6 ξ_c. Runs (or reads from the results store) the shipped scenario:

    python docs/render_reference_sweep.py [--store DIR] [--workers N]

The PNG is a screenshot of the Plotly figure in headless Chromium (Debian's, as the browser tests use).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.figures.sweep import XI_MULTIPLE, fig_sweep_heatmap, xi_c_curve  # noqa: E402
from core.sweep import ResultStore, run_sweep  # noqa: E402
from core.sweep.scenarios import SWEEP_SCENARIOS  # noqa: E402


def agreement(table) -> tuple[int, int]:
    """Cells where "trained" equals "shallower than 6 ξ_c", and all cells."""
    predicted = table["depth"] < XI_MULTIPLE * table["depth_scale_c"]
    return int((predicted == table["trained"]).sum()), len(table)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "docs" / "sweep_6xi.png"))
    ns = ap.parse_args()
    scenario = SWEEP_SCENARIOS["trainable_depth_6xi"]
    spec = scenario.spec
    result = run_sweep(spec, store=ResultStore(ns.store), workers=ns.workers)
    table = result.table
    sw = spec.axes[1].values
    import numpy as np

    fig = fig_sweep_heatmap(table, spec.fields, "final_test_accuracy",
                            xi_c=xi_c_curve(spec.base, np.linspace(min(sw), max(sw), 160)), height=520)
    fig.update_layout(width=820, title=dict(text=f"{scenario.title}: tanh, σ_b² = 0.05, digits, "
                                                 f"{spec.base.steps} SGD steps, width {spec.base.width}"))
    ok, n = agreement(table)
    print(f"trained == (depth < 6 ξ_c) in {ok} of {n} cells ({ok / n:.0%}); {result.computed} cells trained now, "
          f"{n - result.computed} from the store")
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fig.html"
        fig.write_html(html, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 840, "height": 540})
            page.goto(html.as_uri())
            page.wait_for_selector(".js-plotly-plot .heatmaplayer, .js-plotly-plot .hm")
            page.locator(".js-plotly-plot").first.screenshot(path=ns.out)
            browser.close()
    print(f"→ {ns.out}")


if __name__ == "__main__":
    main()

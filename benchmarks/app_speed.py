"""How fast the clinician's app is with the default model, as a clinician meets it in a browser.

    .venv/bin/python benchmarks/app_speed.py [--model default] [--repeats 3] [--clicks 3] [--out results]

Starts ``rdrft app`` on a free local port and, in Debian's headless Chromium through Playwright,
measures per repeat: the seconds from the server's start to a usable page (the HPO search box
shown, the first script run finished and drawn); then, in a new session, the seconds to the ranked
genes of a deep link (three Marfan-syndrome terms present, scoliosis excluded); then, once that
page has settled, the seconds from a click on "Rank genes" (the browser's click event) to the
ranking the click started drawn (its run finished, the page idle and painted): the median of
``--clicks`` clicks. Each run records the machine's load (1-minute average), since the cores may be
shared. Prints the numbers, writes ``OUT/app_speed.json`` and a screenshot ``OUT/app_screenshot.png``
(used by the README). Targets (issue 19): page usable within 3 s of the server start, a ranking
redrawn within 0.3 s of a click.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

try:  # the app and dev extras (Streamlit, Playwright); speed.py runs without them and says so
    from playwright import sync_api

    from app.serving import (CHROMIUM, CHROMIUM_ARGS, ScriptRuns, ServerError, free_port, start_server, stop_server,
                             wait_until_idle)
    MISSING = None
except ImportError as err:
    MISSING = err.name

REPO = Path(__file__).resolve().parent.parent
TARGETS_S = {"page_ready_s": 3, "ranking_after_click_s": 0.3}
DEEP_LINK = "?present=HP:0001166,HP:0001519,HP:0001083&excluded=HP:0002650"
# the browser's clock at the next click, and at the frame painted after the page's last change
CLICK_TIMER = ("() => document.addEventListener('click', () => { window.rdrftClickAt = performance.now(); }, "
               "{capture: true, once: true})")
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now()))))"
SETTLE_S = 1  # after the deep link's page: its charts and table finish drawing, as before any real click
CLICKS = 3  # clicks on Rank genes per server start


def measure_once(model: str, browser, clicks: int, screenshot: Path | None) -> dict:
    port = free_port()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    server = start_server(model, port, timeout=60)
    try:
        answering = time.perf_counter() - started
        page = browser.new_page(viewport={"width": 1400, "height": 2600})
        runs = ScriptRuns(page)
        page.goto(f"http://localhost:{port}/")
        page.get_by_label("Search HPO terms by label, synonym or id").wait_for(timeout=60_000)
        runs.wait_for(page, 1, 60_000)
        page.evaluate(PAINTED)
        ready = time.perf_counter() - started
        opened, before = time.perf_counter(), runs.finished
        page.goto(f"http://localhost:{port}/{DEEP_LINK}")
        page.get_by_text("Ranked genes", exact=True).wait_for(timeout=60_000)
        runs.wait_for(page, before + 1, 60_000)
        page.evaluate(PAINTED)
        deep_link = time.perf_counter() - opened
        redraws = []
        for _ in range(clicks):
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(SETTLE_S * 1000)
            page.evaluate(CLICK_TIMER)
            before = runs.finished
            page.get_by_role("button", name="Rank genes").click()
            runs.wait_for(page, before + 1, 60_000)
            redraws.append((page.evaluate(PAINTED) - page.evaluate("() => window.rdrftClickAt")) / 1000)
        wait_until_idle(page)
        if screenshot:
            page.screenshot(path=str(screenshot))
        page.close()
        return {"page_ready_s": round(ready, 2), "server_answering_s": round(answering, 2),
                "deep_link_ranked_s": round(deep_link, 2), "ranking_after_click_s": round(statistics.median(redraws), 3),
                "clicks_s": [round(r, 3) for r in redraws], "load_1min": [round(load_before, 2),
                                                                           round(os.getloadavg()[0], 2)]}
    finally:
        stop_server(server)


class AppNotMeasured(Exception):
    """Why the app could not be measured here (no Chromium, or the server did not start)."""


def measure_app(model: str, repeats: int, clicks: int, out: Path) -> dict:
    """``repeats`` starts of the app, each measured by :func:`measure_once`, and their medians;
    writes ``out/app_speed.json`` and the first start's screenshot ``out/app_screenshot.png``.
    Raises :class:`AppNotMeasured` saying why when it cannot measure."""
    if MISSING:
        raise AppNotMeasured(f"{MISSING} is not installed: `make install` (or pip install -e '.[app,dev]') installs it")
    if not Path(CHROMIUM).is_file():
        raise AppNotMeasured(f"Debian's Chromium is not at {CHROMIUM}; as root, `make browser` installs it")
    out.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            runs = [measure_once(model, browser, clicks, out / "app_screenshot.png" if i == 0 else None)
                    for i in range(repeats)]
        except ServerError as err:
            raise AppNotMeasured(str(err)) from err
        finally:
            browser.close()
    summary = {key: statistics.median(run[key] for run in runs)
               for key in ("page_ready_s", "server_answering_s", "deep_link_ranked_s", "ranking_after_click_s")}
    report = {"model": model, "date": time.strftime("%Y-%m-%d"), "deep_link": DEEP_LINK, "runs": runs,
              "median": summary, "targets_s": TARGETS_S}
    (out / "app_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def summary_lines(report: dict) -> list[str]:
    """The medians against their targets, and the machine's load over the runs."""
    lines = []
    for key, value in report["median"].items():
        target = (f" (target {TARGETS_S[key]} s: {'met' if value <= TARGETS_S[key] else 'missed'})"
                  if key in TARGETS_S else "")
        lines.append(f"{key:<24} median {value:.2f} s over {len(report['runs'])} runs{target}")
    runs = report["runs"]
    lines.append(f"load (1-minute average) {min(min(run['load_1min']) for run in runs):.1f}-"
                 f"{max(max(run['load_1min']) for run in runs):.1f} on {os.cpu_count()} cores")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, likelihood, phenomizer or a model directory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=CLICKS, help=f"clicks on Rank genes per repeat (default {CLICKS})")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    try:
        report = measure_app(args.model, args.repeats, args.clicks, Path(args.out))
    except AppNotMeasured as err:
        print(f"app_speed.py: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the clinician's app is with the default model, as a clinician meets it in a browser.

    .venv/bin/python benchmarks/app_speed.py [--model default] [--repeats 3] [--out results]

Starts ``rdrft app`` on a free local port and, in Debian's headless Chromium through Playwright,
measures per repeat: the seconds from the server's start to a usable page (the HPO search box
shown, the script idle); then, in a new session, the seconds to the ranked genes of a deep link
(three Marfan-syndrome terms present, scoliosis excluded); then the seconds from a click on
"Rank genes" to the redrawn page. Prints the numbers, writes
``OUT/app_speed.json`` and a screenshot ``OUT/app_screenshot.png`` (used by the README).
Targets (issue 7): page ready within 5 s of the server start, a ranking within 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from playwright import sync_api

from app.serving import CHROMIUM, CHROMIUM_ARGS, ServerError, free_port, start_server, stop_server, wait_until_idle

REPO = Path(__file__).resolve().parent.parent
TARGETS_S = {"page_ready_s": 5, "ranking_after_click_s": 1}
DEEP_LINK = "?present=HP:0001166,HP:0001519,HP:0001083&excluded=HP:0002650"


def measure_once(model: str, browser, screenshot: Path | None) -> dict:
    port = free_port()
    started = time.perf_counter()
    server = start_server(model, port, timeout=60)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 2600})
        page.goto(f"http://localhost:{port}/")
        page.get_by_label("Search HPO terms by label, synonym or id").wait_for(timeout=60_000)
        wait_until_idle(page, 60_000)
        ready = time.perf_counter() - started
        opened = time.perf_counter()
        page.goto(f"http://localhost:{port}/{DEEP_LINK}")
        page.get_by_text("Ranked genes", exact=True).wait_for(timeout=60_000)
        wait_until_idle(page, 60_000)
        deep_link = time.perf_counter() - opened
        clicked = time.perf_counter()
        page.get_by_role("button", name="Rank genes").click()
        wait_until_idle(page, 60_000)
        ranking = time.perf_counter() - clicked
        if screenshot:
            page.screenshot(path=str(screenshot))
        page.close()
        return {"page_ready_s": round(ready, 2), "deep_link_ranked_s": round(deep_link, 2),
                "ranking_after_click_s": round(ranking, 3)}
    finally:
        stop_server(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, likelihood, phenomizer or a model directory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"app_speed.py: Debian's Chromium is not at {CHROMIUM}; as root, `make browser` installs it", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            runs = [measure_once(args.model, browser, out / "app_screenshot.png" if i == 0 else None)
                    for i in range(args.repeats)]
        except ServerError as err:
            print(f"app_speed.py: {err}", file=sys.stderr)
            return 1
        finally:
            browser.close()
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    report = {"model": args.model, "date": time.strftime("%Y-%m-%d"), "deep_link": DEEP_LINK, "runs": runs,
              "median": summary, "targets_s": TARGETS_S}
    (out / "app_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    for key, value in summary.items():
        target = f" (target {TARGETS_S[key]} s)" if key in TARGETS_S else ""
        print(f"{key:<24} median {value:.2f} s over {len(runs)} runs{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

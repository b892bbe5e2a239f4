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
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright import sync_api

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TARGETS_S = {"page_ready_s": 5, "ranking_after_click_s": 1}
DEEP_LINK = "?present=HP:0001166,HP:0001519,HP:0001083&excluded=HP:0002650"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_idle(page) -> None:
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=60_000)


def measure_once(model: str, browser, screenshot: Path | None) -> dict:
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "rare_disease_rft", "app", "--model", model, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - started > 60:
                    raise SystemExit(f"rdrft app --model {model} did not start (exit code {server.poll()})")
                time.sleep(0.05)
        page = browser.new_page(viewport={"width": 1400, "height": 2600})
        page.goto(f"http://localhost:{port}/")
        page.get_by_label("Search HPO terms by label, synonym or id").wait_for(timeout=60_000)
        wait_until_idle(page)
        ready = time.perf_counter() - started
        opened = time.perf_counter()
        page.goto(f"http://localhost:{port}/{DEEP_LINK}")
        page.get_by_text("Ranked genes", exact=True).wait_for(timeout=60_000)
        wait_until_idle(page)
        deep_link = time.perf_counter() - opened
        clicked = time.perf_counter()
        page.get_by_role("button", name="Rank genes").click()
        wait_until_idle(page)
        ranking = time.perf_counter() - clicked
        if screenshot:
            page.screenshot(path=str(screenshot))
        page.close()
        return {"page_ready_s": round(ready, 2), "deep_link_ranked_s": round(deep_link, 2),
                "ranking_after_click_s": round(ranking, 3)}
    finally:
        server.terminate()
        server.wait(timeout=20)


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
        runs = [measure_once(args.model, browser, out / "app_screenshot.png" if i == 0 else None)
                for i in range(args.repeats)]
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

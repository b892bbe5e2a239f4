"""The app as a clinician meets it: `rdrft app` serving on a free local port, Debian's Chromium
driven headless by Playwright. Enters terms by search, ranks, checks the genes, opens an evidence
panel and the top-k curve (both drawn once opened) and saves a screenshot. Skipped, with the
reason, where Chromium or Playwright is missing."""

import csv
import time
from pathlib import Path

import pytest

from app.serving import CHROMIUM, CHROMIUM_ARGS, ServerError, free_port, start_server, stop_server, wait_until_idle
from rare_disease_rft.explain import rank_and_explain
from rare_disease_rft.rankers import Case
from rare_disease_rft.rankers.knowledge import LikelihoodRanker

# The targets are 3 s from server start to a usable page and 0.3 s from click to ranking (issue 19,
# measured by benchmarks/app_speed.py); the bounds here are looser because other work shares the
# 2 cores, and the measured times are printed.
PAGE_READY_LIMIT_S = 20
RANKING_LIMIT_S = 5
# Search text -> the suggestion it must offer first (label, synonym and id searches).
SEARCHES = {
    "arachnodactyly": "Arachnodactyly (HP:0001166)",
    "marfanoid habitus": "Disproportionate tall stature (HP:0001519) — “Marfanoid habitus”",
    "HP:0001083": "Ectopia lentis (HP:0001083)",
}
MARFAN = ["HP:0001166", "HP:0001519", "HP:0001083"]

if not Path(CHROMIUM).is_file():
    pytest.skip(f"BROWSER TEST SKIPPED: Debian's Chromium is not installed at {CHROMIUM}. As root, `make browser` "
                "(apt-get install -y chromium chromium-driver) installs it.", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="BROWSER TEST SKIPPED: playwright is not installed; "
                               "`make install` installs it with the dev extra")


@pytest.fixture
def server():
    """`rdrft app` with the likelihood ranker; yields its URL and the time it was started."""
    started = time.perf_counter()
    try:
        port = free_port()
        process = start_server("likelihood", port, timeout=30)
    except ServerError as err:
        pytest.fail(str(err))
    try:
        yield f"http://localhost:{port}", started
    finally:
        stop_server(process)


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 2600})
        browser.close()


# the browser starts first (fixtures start in this order): its start is no part of the page's
def test_a_clinician_enters_terms_and_gets_ranked_genes(page, server, hpo, tmp_path):
    url, started = server
    page.goto(url)
    search_box = page.get_by_label("Search HPO terms by label, synonym or id")
    search_box.wait_for(timeout=30_000)
    wait_until_idle(page)
    page_ready = time.perf_counter() - started

    for query, suggestion in SEARCHES.items():
        search_box.fill(query)
        page.get_by_text(suggestion, exact=True).wait_for(timeout=10_000)
        wait_until_idle(page)
        page.get_by_role("button", name="Add as present").click()
        term_id = suggestion.split("(")[1].split(")")[0]
        page.get_by_text(f"({term_id}) · from search").wait_for(timeout=10_000)
    clicked = time.perf_counter()
    page.get_by_role("button", name="Rank genes").click()
    expected = rank_and_explain(LikelihoodRanker(hpo), Case.from_ids(hpo, MARFAN), top=5, hpo=hpo).genes
    page.get_by_text(f"1. {expected[0].gene}", exact=True).wait_for(timeout=30_000)
    ranking_shown = time.perf_counter() - clicked
    wait_until_idle(page)

    for entry in expected:  # the evidence panels' titles, in rank order
        sync_api.expect(page.get_by_text(f"{entry.rank}. {entry.gene}", exact=True)).to_be_visible()
    # the first panel is open; a closed one draws its evidence once opened (a rerun of the ranking)
    panel = page.locator('[data-testid="stExpander"]').filter(has_text=f"2. {expected[1].gene}")
    sync_api.expect(panel.get_by_text("Patient's terms the gene explains")).to_have_count(0)
    panel.get_by_text(f"2. {expected[1].gene}", exact=True).click()
    panel.get_by_text("Patient's terms the gene explains").wait_for(timeout=10_000)
    wait_until_idle(page)
    sidebar = page.get_by_test_id("stSidebar")  # the model's top-k curve, drawn once its panel is opened
    sync_api.expect(sidebar.get_by_test_id("stVegaLiteChart")).to_have_count(0)
    sidebar.get_by_text("Top-k curve: cases with the causal gene in the top k", exact=True).click()
    sidebar.get_by_test_id("stVegaLiteChart").wait_for(timeout=10_000)
    wait_until_idle(page)
    # the table draws on a canvas; its accessible copy is in the DOM
    assert all(entry.gene in page.content() for entry in expected)
    sync_api.expect(page.get_by_text("Research use only: not a diagnostic device.")).to_be_visible()
    with page.expect_download() as download:  # written when asked for
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
    assert [row["gene"] for row in rows[:5]] == [entry.gene for entry in expected]
    screenshot = tmp_path / "app_screenshot.png"
    page.screenshot(path=str(screenshot))
    print(f"\npage ready {page_ready:.1f} s after server start; ranking shown {ranking_shown:.2f} s after the click;"
          f" screenshot {screenshot}")
    assert page_ready < PAGE_READY_LIMIT_S
    assert ranking_shown < RANKING_LIMIT_S

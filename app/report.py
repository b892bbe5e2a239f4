"""The ranking as the page and its downloads show it, and what is known about the model.

Everything here formats what ``rank_and_explain`` (a ``PatientRanking``) and the model directory
already hold; no ranking or evidence is computed. The downloads are the library's writers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rare_disease_rft.genes import gene_names
from rare_disease_rft.hpo import HPO
from rare_disease_rft.messages import one_line
from rare_disease_rft.registry import model_config
from rare_disease_rft.resources import REPO_ROOT
from rare_disease_rft.results import TABLE_COLUMNS, PatientRanking, RankedGene, json_text, table_rows, table_text

if TYPE_CHECKING:  # pandas loads with the first ranking's table, not with the page (0.3-0.7 s)
    import pandas as pd

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{}/"
HGNC_URL = "https://www.genenames.org/data/gene-symbol-report/#!/hgnc_id/{}"
OMIM_URL = "https://www.omim.org/entry/{}"
ORPHA_URL = "https://www.orpha.net/en/disease/detail/{}"
# Where `benchmarks/knowledge_rankers.py` writes the test-split numbers of the built-in rankers.
BENCHMARK_FILE = REPO_ROOT / "results" / "benchmark.json"
METRICS = ("n", "top1", "top5", "top10", "mrr", "found")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~$-])")
# The page's Markdown (remark-gfm) also links bare addresses and e-mails, and it finds them in the
# text after escapes are read (mdast-util-gfm-autolink-literal), so no escape stops it: an invisible
# word joiner inside "://", after "www" and after "@" does.
_AUTOLINK = re.compile(r"(?<=https:)(?=//)|(?<=http:)(?=//)|(?<=\bwww)(?=\.)|(?<=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"
_NUMBER = re.compile(r"[0-9]+")
_MATCH_WORDING = {
    "exact": "annotated with this term",
    "more specific annotation": "annotated with a more specific term",
    "broader annotation": "annotated with a broader term",
    "related": "annotated with a related term",
}
# the same matches for a gene HPO does not annotate, against what its published cases report
_CASE_MATCH_WORDING = {
    "exact": "reported in its cases",
    "more specific annotation": "its cases report a more specific term",
    "broader annotation": "its cases report a broader term",
    "related": "its cases report a related term",
}


def markdown_escape(text: str) -> str:
    """User or data text shown as it is, not read as Markdown: no emphasis, no link, no image a
    browser would fetch, and no bare address or e-mail turned into a link."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, text))


def literal(text: str) -> str:
    """A message quoting what came from a URL, a file or a model directory, as the page shows it:
    never read as Markdown, on one line, of a readable length (``messages.one_line``)."""
    return markdown_escape(one_line(text))


def table(result: PatientRanking) -> pd.DataFrame:
    """One row per ranked gene: the page's table and chart (the CSV download's rows)."""
    import pandas as pd

    frame = pd.DataFrame(table_rows(result), columns=list(TABLE_COLUMNS)).drop(columns="id")
    # columns that say nothing for this ranking: no probabilities, no candidate genes, no tie
    empty = [c for c in ("probability", "variants", "note") if frame[c].isna().all() or (frame[c] == "").all()]
    if (frame["genes with this score"] == 1).all():
        empty.append("genes with this score")
    return frame.drop(columns=empty)


def csv_bytes(result: PatientRanking) -> bytes:
    return table_text([result], delimiter=",").encode()


def json_bytes(result: PatientRanking) -> bytes:
    """The full ranking with its evidence and the case it was made for: the one JSON shape."""
    return json_text(result).encode()


def explanation_markdown(entry: RankedGene, hpo: HPO) -> str:
    """A gene's evidence: matched, contradicting and unexplained terms, similar cases, gene links."""
    explanation = entry.explanation
    blocks: list[str] = []
    from_cases = explanation.get("annotations_from") == "published cases"
    gene = markdown_escape(entry.gene)  # a symbol from an indexed task file may be anything
    if from_cases:
        blocks.append(f"*{gene} has no HPO annotation in release {hpo.version}; its published cases "
                      "in the model's case index stand in: the terms below are matched against what they report.*")
    elif not explanation["gene_annotated"]:
        blocks.append(f"*{gene} has no HPO annotation in release {hpo.version}; "
                      "the model ranked it from other evidence (such as published cases).*")
    frequency, wording = ("share of its published cases", _CASE_MATCH_WORDING) if from_cases else (
        "annotation frequency", _MATCH_WORDING)

    def section(heading: str, items: list[str]) -> None:
        if items:
            blocks.append("\n".join([f"**{heading}**", *(f"- {item}" for item in items)]))

    section("Diseases of the gene whose annotations match", [
        f"{markdown_escape(d['name'])} ({_disease_link(d['id'])})"
        + (f", {markdown_escape(', '.join(d['inheritance']).lower())}" if d["inheritance"] else "")
        + f": explains {d['matched_terms']} of the matched terms"
        for d in explanation.get("diseases", [])])
    section("Patient's terms the gene explains", [
        f"{markdown_escape(m['label'])} ({m['id']}): {wording.get(m['match'], m['match'])}"
        + ("" if m["match"] == "exact" else f" ({markdown_escape(m['via']['label'])}, {m['via']['id']})")
        + f"; {frequency} {m['frequency']:.0%}"
        for m in explanation["matched"]])
    section("Excluded in the patient, but usual with the gene", [
        f"{markdown_escape(c['label'])} ({c['id']}): {frequency} {c['frequency']:.0%}"
        for c in explanation["contradicting"]])
    section("Patient's terms the gene's annotations do not explain", [
        f"{markdown_escape(u['label'])} ({u['id']})" for u in explanation["unexplained"]])
    section("Most similar published cases of the gene", [
        f"{_publication_link(str(c['pmid']))}, case {markdown_escape(str(c['case_id']))}: "
        f"similarity {c['similarity']:.2f}"
        for c in explanation["similar_cases"]])
    blocks.append(gene_links_markdown(entry.gene))
    return "\n\n".join(blocks)


def _disease_link(disease_id: str) -> str:
    """An OMIM or Orphanet id as a link to its page (other ids as text)."""
    prefix, _, number = disease_id.partition(":")
    url = {"OMIM": OMIM_URL, "ORPHA": ORPHA_URL}.get(prefix)
    return f"[{markdown_escape(disease_id)}]({url.format(number)})" if url and _NUMBER.fullmatch(number) \
        else markdown_escape(disease_id)


def _publication_link(pmid: str) -> str:
    """A PMID as a link to PubMed; anything else (a lab's own task file may hold anything) as text."""
    number = pmid.removeprefix("PMID:")
    return f"[{markdown_escape(pmid)}]({PUBMED_URL.format(number)})" if _NUMBER.fullmatch(number) \
        else markdown_escape(pmid)


def gene_links_markdown(symbol: str) -> str:
    gene = gene_names().get(symbol)
    if gene is None:
        return f"*{markdown_escape(symbol)} is not an approved HGNC symbol; no gene pages to link.*"
    links = [f"[HGNC: {gene.hgnc_id}]({HGNC_URL.format(gene.hgnc_id)})"]
    if gene.omim_id:
        links.append(f"[OMIM: {gene.omim_id}]({OMIM_URL.format(gene.omim_id)})")
    return f"**{markdown_escape(gene.symbol)}**, {markdown_escape(gene.name)}: " + " · ".join(links)


# ------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class ModelFacts:
    name: str
    kind: str
    versions: dict[str, str]
    benchmark: dict | None  # METRICS of the model where they were measured
    benchmark_source: str | None  # which cases those numbers are from
    topk_curve: list[float] | None  # share of those cases with the causal gene in the top k, k = 1, 2, ...
    card: str | None  # MODEL_CARD.md


def model_facts(model: str, model_dir: Path | None, hpo: HPO) -> ModelFacts:
    """Name, versions and measured accuracy of a built-in ranker (from the project's benchmark
    results, when they hold it) or of a model directory (from its config.json and model card).
    Read from files only, so the page can show them while the model itself still loads."""
    versions = {"HPO release (knowledge base)": hpo.version}
    if model_dir is None:
        metrics, source = _built_in_benchmark(model)
        return ModelFacts(model, "knowledge", versions, _summary(metrics), source, _curve(metrics), None)
    config = model_config(model_dir)
    data = config.get("versions", {}).get("data", {})
    code = config.get("versions", {}).get("code", {})
    if config.get("kind") == "llm":
        versions["base language model"] = config.get("model", {}).get("id", "unknown")
    versions["HPO release at training"] = data.get("hpo_release", "unknown")
    versions["phenopacket-store commit"] = data.get("phenopacket_store_commit", "not the bundled data")
    versions["code"] = f"rare-disease-rft {code.get('package', '?')}, commit {code.get('git_commit') or 'unknown'}"
    versions["trained"] = config.get("created", "unknown")
    card = model_dir / "MODEL_CARD.md"
    validation_file = model_dir / "validation_metrics.json"
    validation = json.loads(validation_file.read_text()) if validation_file.is_file() else {}
    return ModelFacts(config.get("name") or model_dir.name, config.get("kind", "?"), versions,
                      _summary(config.get("validation_metrics")),
                      "validation split: publications never seen in training", _curve(validation),
                      card.read_text() if card.is_file() else None)


def _built_in_benchmark(name: str) -> tuple[dict | None, str | None]:
    if not BENCHMARK_FILE.is_file():
        return None, None
    benchmark = json.loads(BENCHMARK_FILE.read_text())
    return (benchmark.get("models", {}).get(name),
            f"{benchmark.get('tasks')} (held-out publications), {BENCHMARK_FILE.relative_to(REPO_ROOT)}")


def _summary(metrics: dict | None) -> dict | None:
    return {k: metrics.get(k) for k in METRICS} if metrics else None


def _curve(metrics: dict | None) -> list[float] | None:
    return (metrics or {}).get("topk_curve") or None

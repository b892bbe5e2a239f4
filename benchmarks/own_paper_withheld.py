"""The knowledge-based rankers as released and with each case's own paper withheld.

    .venv/bin/python benchmarks/own_paper_withheld.py [--split test] [--out results]

HPO's annotations were curated from case reports, the very papers of phenopacket-store: a case
whose paper HPO cites is ranked with an annotation written from that case. This ranks every case
of the split twice with ``phenomizer`` and ``likelihood``: with the release as it is, and with
every annotation whose only reference is the case's own paper withheld (``Case.withheld_publication``
= its PMID), the honest estimate for a new patient. Prints top-1/top-10 over all cases and over
those whose paper HPO's annotations cite and do not cite; writes ``OUT/own_paper_withheld.json``
(SPEC metrics per ranker and mode).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from itertools import groupby
from pathlib import Path

from knowledge_rankers import REPO, rdrft
from rare_disease_rft.evaluate import metrics, rank_cases
from rare_disease_rft.hpo import load_hpo
from rare_disease_rft.rankers import Case, Ranker, Ranking
from rare_disease_rft.rankers.knowledge import LikelihoodRanker, PhenomizerRanker
from rare_disease_rft.resources import DEFAULT_DATA_DIR
from rare_disease_rft.tasks import read_tasks

SUBSETS = (("all", None), ("paper cited by HPO", "paper_cited_by_hpo_annotations"),
           ("paper not cited", "paper_not_cited_by_hpo_annotations"))


class PublicationWithheld(Ranker):
    """A ranker whose every case withholds one publication's knowledge."""

    def __init__(self, ranker: Ranker, publication: str | None):
        self.ranker, self.publication, self.name = ranker, publication, ranker.name

    def rank(self, case: Case) -> Ranking:
        return self.ranker.rank(dataclasses.replace(case, withheld_publication=self.publication))


def own_paper_withheld(ranker: Ranker, tasks):
    """Per-case results with each task's own paper withheld, in the order of ``tasks``."""
    order = sorted(range(len(tasks)), key=lambda i: tasks[i].pmid or "")
    results = {}
    for pmid, group in groupby(order, key=lambda i: tasks[i].pmid or ""):
        group = list(group)
        for i, result in zip(group, rank_cases(PublicationWithheld(ranker, pmid or None), [tasks[i] for i in group])[0]):
            results[i] = result
    return [results[i] for i in range(len(tasks))]


def _cell(summary: dict) -> str:
    return f"{summary['top1']:.3f} / {summary['top10']:.3f} (n={summary['n']})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="test", choices=["validation", "test"])
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    split_file = DEFAULT_DATA_DIR / f"{args.split}.jsonl"
    if not split_file.is_file() and rdrft(["prepare", "phenopackets", "--out", str(DEFAULT_DATA_DIR)]) != 0:
        return 1
    tasks = read_tasks(split_file)
    hpo = load_hpo()
    report: dict = {"hpo_release": hpo.version, "split": args.split, "models": {}}
    print(f"{args.split}: {len(tasks)} cases, HPO {hpo.version}")
    print(f"{'ranker':<12} {'knowledge':<20}" + "".join(f" {label + ' top-1/top-10':>32}" for label, _ in SUBSETS))
    for ranker in (PhenomizerRanker(hpo), LikelihoodRanker(hpo)):
        for mode in ("as released", "own paper withheld"):
            results = rank_cases(ranker, tasks)[0] if mode == "as released" else own_paper_withheld(ranker, tasks)
            m = metrics(ranker.name, tasks, results, cited_pmids=hpo.cited_pmids)
            report["models"][f"{ranker.name}, {mode}"] = m
            cells = [m if key is None else m["subsets"][key] for _, key in SUBSETS]
            print(f"{ranker.name:<12} {mode:<20}" + "".join(f" {_cell(c):>32}" for c in cells), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"own_paper_withheld_{args.split}.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

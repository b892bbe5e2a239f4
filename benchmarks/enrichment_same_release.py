"""Hypergeometric gene enrichment on *our* HPO release: is hpo3's lead the method or its newer data?

    .venv/bin/python benchmarks/enrichment_same_release.py [--out results]

hpo3's gene enrichment (release 2025-11-24) beats our knowledge rankers on the test split. This
scores every gene by the same statistic over our bundled release (2025-01-16), twice: our own
implementation (-log10 of the hypergeometric tail of the patient's terms among the gene's direct
annotations, the default ranker's ``enrichment`` feature, ties alphabetical), and hpo3's own
enrichment given our release files instead of its built-in release. It ranks the validation and
test splits and writes ``OUT/enrichment_same_release.json`` (metrics per split, docs/SPEC.md format; hpo3's
under ``hpo3_on_this_release``, or why it could not run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from knowledge_rankers import REPO, Hpo3Enrichment, evaluate_with_progress
from rare_disease_rft.hpo import HPO, load_hpo, release_folder
from rare_disease_rft.hpo_release import (ANNOTATIONS, GENE_PHENOTYPES, ONTOLOGY, gene_phenotypes, release_files,
                                          write_gene_phenotypes)
from rare_disease_rft.rankers import Case, Ranker, Ranking
from rare_disease_rft.rankers.features import GeneEnrichment
from rare_disease_rft.rankers.knowledge import gene_order
from rare_disease_rft.resources import DEFAULT_DATA_DIR, open_text
from rare_disease_rft.tasks import read_tasks


class Enrichment(Ranker):
    name = "enrichment (our HPO release)"

    def __init__(self, hpo: HPO):
        self.hpo = hpo
        self.enrichment = GeneEnrichment(hpo)
        self.order = gene_order(hpo)

    def rank(self, case: Case) -> Ranking:
        return self.order.ranking(self.enrichment.scores(list(case.present)))

    def describe(self) -> dict:
        return {"name": self.name, "kind": "knowledge", "hpo_version": self.hpo.version}


def hpo3_on_our_release() -> Hpo3Enrichment:
    """hpo3's enrichment built from the release files :func:`load_hpo` reads (hpo3 reads them
    uncompressed, and once: the temporary copy can go afterwards; it needs HPO's gene table,
    built here when the release has none)."""
    files = release_files(release_folder())
    with tempfile.TemporaryDirectory() as folder:
        for name, path in ((ONTOLOGY, files.ontology), (ANNOTATIONS, files.annotations)):
            with open_text(path) as src:
                (Path(folder) / name).write_text(src.read(), encoding="utf-8")
        write_gene_phenotypes(gene_phenotypes(files), Path(folder) / GENE_PHENOTYPES)
        peer = Hpo3Enrichment(folder)
    peer.name = "hpo3-enrichment (our HPO release)"
    return peer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    hpo = load_hpo()
    report: dict = {"hpo_release": hpo.version}
    sections = [(report, Enrichment(hpo))]  # (where its metrics go, ranker)
    try:
        peer = hpo3_on_our_release()
    except ImportError as err:
        report["hpo3_on_this_release"] = {"error": f"hpo3 is not installed: {err}"}
    else:
        sections.append((report.setdefault("hpo3_on_this_release", {}), peer))
    for split in ("validation", "test"):
        tasks = read_tasks(DEFAULT_DATA_DIR / f"{split}.jsonl")
        for where, ranker in sections:
            where[split] = m = evaluate_with_progress(ranker, tasks, hpo)[0]
            print(f"{ranker.name:<36} {split:<10} n={m['n']} top1 {m['top1']:.3f} top5 {m['top5']:.3f} "
                  f"top10 {m['top10']:.3f} found {m['found']:.3f} p50 {m['latency_ms']['p50']:.1f} ms")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "enrichment_same_release.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

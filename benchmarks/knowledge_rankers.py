"""Every built-in ranker on the held-out test split, with hpo3 (a Rust HPO library) as a peer.

    .venv/bin/python benchmarks/knowledge_rankers.py [--limit N] [--skip-peers] [--out results]

Prepares the bundled phenopackets first if the test split is missing. Writes
``OUT/benchmark.json`` (the docs/SPEC.md benchmark format, as ``rdrft benchmark``), ``OUT/benchmark_topk.png``
and ``OUT/benchmark_run.json`` (date, data versions, stage timings); prints the table, the
versions and how long each stage took. Everything runs on one core, so latencies compare.

The peers, wrapped in our ``Ranker`` interface so that ``evaluate`` treats them like ours:
``hpo3-setsim`` (set similarity: graphic IC, funSimAvg) and ``hpo3-enrichment`` (hypergeometric
gene enrichment), both over every gene hpo3 knows, with its own HPO release. Set similarity
takes about a second per case on one core (about 25 minutes over the test split).
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy, torch or hpo3's thread pool (rayon) start.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rare_disease_rft.cli import main as rdrft  # noqa: E402
from rare_disease_rft.evaluate import (  # noqa: E402
    CaseResult, benchmark_report, format_differences, format_table, metrics, plot_topk, rank_cases, rank_clinic_like,
    write_json,
)
from rare_disease_rft.genes import gene_names  # noqa: E402
from rare_disease_rft.hpo import HPO, load_hpo  # noqa: E402
from rare_disease_rft.rankers import Case, Ranker, Ranking  # noqa: E402
from rare_disease_rft.registry import BUILT_IN, load_ranker  # noqa: E402
from rare_disease_rft.rankers.base import order_by_score  # noqa: E402
from rare_disease_rft.resources import BUNDLED_PHENOPACKETS_COMMIT, DEFAULT_DATA_DIR  # noqa: E402
from rare_disease_rft.tasks import Task, read_tasks  # noqa: E402

PROGRESS_EVERY = 100  # cases between progress lines (hpo3 set similarity runs for minutes)


@functools.lru_cache(maxsize=1)
def hpo3_ontology(folder: str | None = None):
    """hpo3's ontology: its own HPO release and annotations, or the release files (``hp.obo``,
    ``genes_to_phenotype.txt``, ``phenotype.hpoa``, uncompressed) in ``folder``. hpo3 holds one
    ontology per process, so a process uses one release for every hpo3 peer."""
    from pyhpo import Ontology

    if folder:
        Ontology(folder, True)  # True: read the text release files, not hpo3's binary
    else:
        Ontology()
    return Ontology


class Hpo3Peer(Ranker):
    """An hpo3 method over every gene hpo3 knows; subclasses score hpo3's genes for a query set.

    hpo3 symbols are mapped to approved HGNC symbols (two hpo3 genes of one symbol keep the
    better score); ties are broken alphabetically, as in our rankers.
    """

    def __init__(self, hpo_folder: str | None = None):
        self.ontology = hpo3_ontology(hpo_folder)
        names = gene_names()
        self.hpo3_genes = list(self.ontology.genes)
        self.row = {gene.id: i for i, gene in enumerate(self.hpo3_genes)}
        # np.unique sorts, so a symbol's index is also its alphabetical rank
        self.symbols, self.symbol_of_row = np.unique([names.normalise(g.name) for g in self.hpo3_genes],
                                                     return_inverse=True)

    def query(self, case: Case):
        from pyhpo import HPOSet

        known = []
        for term in case.present:
            try:
                self.ontology.get_hpo_object(term)
                known.append(term)
            except RuntimeError:  # newer or retired in hpo3's release: hpo3 cannot use it
                continue
        return HPOSet.from_queries(known).replace_obsolete()

    def gene_scores(self, query) -> np.ndarray:
        raise NotImplementedError

    def rank(self, case: Case) -> Ranking:
        query = self.query(case)
        per_gene = self.gene_scores(query) if len(query) else np.zeros(len(self.hpo3_genes))
        scores = np.full(len(self.symbols), -np.inf)
        np.maximum.at(scores, self.symbol_of_row, per_gene)
        order = order_by_score(scores, np.arange(len(self.symbols)))
        return Ranking(self.symbols[order].tolist(), scores[order])

    def describe(self) -> dict:
        return {"name": self.name, "kind": "peer", "library": "hpo3", "hpo_version": self.ontology.version()}


class Hpo3SetSimilarity(Hpo3Peer):
    """Similarity of the patient's terms to each gene's terms: graphic IC (gene), funSimAvg."""

    name = "hpo3-setsim"

    def __init__(self):
        super().__init__()
        self.gene_sets = [gene.hpo_set() for gene in self.hpo3_genes]

    def gene_scores(self, query) -> np.ndarray:
        return np.asarray(query.similarity_scores(self.gene_sets, kind="gene", method="graphic",
                                                  combine="funSimAvg"), dtype=float)


class Hpo3Enrichment(Hpo3Peer):
    """Hypergeometric enrichment of each gene's annotations in the patient's terms: -log10 p."""

    name = "hpo3-enrichment"

    def __init__(self, hpo_folder: str | None = None):
        from pyhpo import stats

        super().__init__(hpo_folder)
        self.model = stats.EnrichmentModel("gene")

    def gene_scores(self, query) -> np.ndarray:
        scores = np.zeros(len(self.hpo3_genes))  # a gene sharing no term: p = 1
        for hit in self.model.enrichment("hypergeom", query):
            scores[self.row[hit["item"].id]] = -np.log10(max(hit["enrichment"], np.finfo(float).tiny))
        return scores


def evaluate_with_progress(ranker: Ranker, tasks: list[Task], hpo: HPO,
                           reference: frozenset[str] | None = None) -> tuple[dict, list[CaseResult]]:
    """``evaluate``, in chunks, with a progress line on stderr per chunk, and the clinic-like subset;
    ``reference``: the training genes that split every model's seen/unseen subsets alike."""
    results = []
    for start in range(0, len(tasks), PROGRESS_EVERY):
        results += rank_cases(ranker, tasks[start : start + PROGRESS_EVERY])[0]
        print(f"  {ranker.name}: {len(results)}/{len(tasks)} cases", file=sys.stderr, flush=True)
    results = rank_clinic_like(ranker, tasks, results, hpo)
    print(f"  {ranker.name}: clinic-like subset ranked", file=sys.stderr, flush=True)
    return metrics(ranker.name, tasks, results, ranker.training_genes, hpo.cited_pmids, reference_genes=reference,
                   annotated_genes=frozenset(hpo.gene_symbols)), results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N test cases")
    parser.add_argument("--skip-peers", action="store_true", help="our rankers only (hpo3 takes ~25 min)")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR", help="output folder (default results/)")
    args = parser.parse_args(argv)
    stages: dict[str, float] = {}
    started = time.perf_counter()

    test_file = DEFAULT_DATA_DIR / "test.jsonl"
    if test_file.is_file():
        stages["prepare (already prepared)"] = 0.0
    else:
        if rdrft(["prepare", "phenopackets", "--out", str(DEFAULT_DATA_DIR)]) != 0:
            return 1
        stages["prepare"] = time.perf_counter() - started

    began = time.perf_counter()
    tasks = read_tasks(test_file, limit=args.limit)
    hpo = load_hpo()
    rankers: list[Ranker] = [load_ranker(name) for name in BUILT_IN]
    stages["load (tasks, HPO, our rankers)"] = time.perf_counter() - began
    hpo3_version = None
    if not args.skip_peers:
        began = time.perf_counter()
        peers = [Hpo3SetSimilarity(), Hpo3Enrichment()]
        hpo3_version = peers[0].ontology.version()
        rankers += peers
        stages["load (hpo3)"] = time.perf_counter() - began

    models = {}
    for ranker in rankers:
        began = time.perf_counter()
        models[ranker.name], _ = evaluate_with_progress(ranker, tasks, hpo)
        stages[f"rank {ranker.name}"] = time.perf_counter() - began

    extra = {"hpo3_hpo_release": hpo3_version}
    write_report(Path(args.out), "benchmark", test_file, tasks, models, rankers, hpo, stages, started, extra)
    return 0


def write_report(out: Path, stem: str, test_file: Path, tasks: list[Task], models: dict, rankers: list[Ranker],
                 hpo, stages: dict[str, float], started: float, extra_versions: dict | None = None,
                 paired: dict | None = None) -> None:
    """``OUT/<stem>.json`` (docs/SPEC.md benchmark format, with ``paired_differences`` when given),
    ``<stem>_topk.png``, ``<stem>_run.json`` (date, data versions, stage timings), and the table
    on stdout."""
    write_json(out / f"{stem}.json", benchmark_report(os.path.relpath(test_file, REPO), models, paired))
    plot_topk(models, out / f"{stem}_topk.png",
              title=f"Top-k accuracy, phenopacket-store test split ({len(tasks)} cases)")
    versions = {
        "date": datetime.date.today().isoformat(),
        "hpo_release": hpo.version,
        **(extra_versions or {}),
        "phenopacket_store_commit": BUNDLED_PHENOPACKETS_COMMIT,
        "cases": len(tasks),
        "threads": 1,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    write_json(out / f"{stem}_run.json", {**versions, "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
                                          "models": {r.name: r.describe() for r in rankers}})
    print(f"{os.path.relpath(test_file, REPO)}: {len(tasks)} cases")
    print(format_table(models))
    if paired:
        print(format_differences(paired))
    print("\n" + ", ".join(f"{k}: {v}" for k, v in versions.items() if v is not None))
    print("stage timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()) +
          f"; total {time.perf_counter() - started:.1f} s")
    print(f"wrote {out / f'{stem}.json'}, {out / f'{stem}_topk.png'}, {out / f'{stem}_run.json'}")


if __name__ == "__main__":
    raise SystemExit(main())

"""Variants of the default recipe for clinic patients, compared on validation (never the test split).

    .venv/bin/python benchmarks/clinic_sweep.py [--retrain] [--only NAME] [--out results]

Trains ``configs/default.yaml`` with each variant's overrides and seeds below into
``artifacts/clinic-sweep/<name>[-seed-N]`` (if missing, or with ``--retrain``), reads the validation
metrics training measured (``validation_metrics.json``, before the case index adds the validation
cases) and writes ``OUT/clinic_sweep.json``: per variant and seed the whole split's top-1/5/10, MRR
and unseen-gene top-1, and top-1/top-10 of the clinic-like subset (cases of papers HPO's annotations
do not cite, as clinic patients, own paper withheld) and of its cases whose gene has no training
case; with each variant's mean, minimum and maximum over its seeds; and the same numbers of the
knowledge rankers (``phenomizer``, ``likelihood``), their unseen genes those without a training case.
With ``--only``, the variants named replace theirs in ``OUT/clinic_sweep.json`` and the rest of it stays.
A variant is kept when it is better on the clinic-like subset without losing the whole split.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from policy_sweep import CONFIG, REPO, train_if_missing, validation_row
from seed_spread import print_seeds, summary

from rare_disease_rft.evaluate import evaluate
from rare_disease_rft.hpo import load_hpo
from rare_disease_rft.registry import BUILT_IN, load_ranker
from rare_disease_rft.resources import DEFAULT_DATA_DIR
from rare_disease_rft.tasks import read_tasks

SIMULATION = "training.clinic_simulation"
PRIOR = "model.cooccurrence_prior"
#: the recipe before issue 16's co-occurrence credit (what every variant below it was measured against)
NO_COOCCURRENCE = "model.ignored_features=[cooccurrence, cooccurrence_rank, case_cooccurrence]"
#: name: (overrides, seeds); one seed first, three for what looks like a win
VARIANTS: dict[str, tuple[list[str], tuple[int, ...]]] = {
    # the default since issue 16: each training case also presented once as a simulated clinic patient,
    # and credit for findings that go with a gene's (rankers/cooccurrence.py, shrunk by 20 pseudo-papers)
    "default": ([], (0, 1, 2)),
    "no co-occurrence credit (the recipe before)": ([NO_COOCCURRENCE], (0, 1, 2)),
    "co-occurrence credit shrunk by 1 pseudo-paper": ([f"{PRIOR}=1.0"], (0, 1, 2)),
    "co-occurrence credit by annotations only, shrunk by 1 pseudo-paper": (
        ["model.ignored_features=[case_cooccurrence]", f"{PRIOR}=1.0"], (0,)),
    "co-occurrence credit with case findings only, shrunk by 1 pseudo-paper": (
        ["model.ignored_features=[cooccurrence, cooccurrence_rank]", f"{PRIOR}=1.0"], (0,)),
    # measured before the co-occurrence credit, against the recipe before
    "no simulated clinic patients": ([NO_COOCCURRENCE, f"{SIMULATION}.copies=0"], (0, 1, 2)),
    "simulated clinic patients instead of the cases": ([NO_COOCCURRENCE, f"{SIMULATION}.replace_cases=true"], (0,)),
    "two simulated clinic presentations": ([NO_COOCCURRENCE, f"{SIMULATION}.copies=2"], (0,)),
    "no simulation, own paper's knowledge withheld in training": ([NO_COOCCURRENCE, f"{SIMULATION}.copies=0",
                                                                   "training.withhold_own_paper=true"], (0,)),
    "stronger simulation (dropout 0.5, imprecision 0.4, 2 unrelated findings)": (
        [NO_COOCCURRENCE, f"{SIMULATION}.dropout=0.5", f"{SIMULATION}.imprecision=0.4", f"{SIMULATION}.noise_terms=2"],
        (0, 1, 2)),
}
COLUMNS = ("top1", "top10", "unseen_gene_top1", "clinic_like_top1", "clinic_like_top10",
           "clinic_like_gene_unseen_top1", "clinic_like_gene_unseen_top10")
HEADERS = ("top1", "top10", "unseen top1", "clinic top1", "clinic top10", "clinic unseen top1", "clinic unseen top10")


def model_folder(name: str, seed: int) -> Path:
    stem = name.split(" (")[0].replace(" ", "-").replace(",", "").replace("'", "")
    return REPO / "artifacts" / "clinic-sweep" / (stem if seed == 0 else f"{stem}-seed-{seed}")


def knowledge_rows() -> dict[str, dict]:
    """The knowledge rankers on validation, in the columns of the variants (their unseen genes: no
    training case, as for a trained variant before its index takes in the validation cases)."""
    hpo = load_hpo()
    train, validation = (read_tasks(DEFAULT_DATA_DIR / f"{split}.jsonl") for split in ("train", "validation"))
    training_genes = frozenset(t.answer.gene for t in train)
    rows = {}
    for name in BUILT_IN:
        m, _ = evaluate(load_ranker(name), validation, name=name, cited_pmids=hpo.cited_pmids,
                        training_genes=training_genes, hpo=hpo)
        subsets = m["subsets"]
        rows[name] = {"seeds": {"(no training)": {
            **{k: m[k] for k in ("n", "top1", "top5", "top10", "mrr")},
            "unseen_gene_top1": subsets["answer_gene_not_in_training"]["top1"],
            **{f"{subset}_{k}": subsets[subset][k] for subset in ("clinic_like", "clinic_like_gene_unseen")
               for k in ("n", "top1", "top10")}}}, "summary": {}}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true", help="train every variant again")
    parser.add_argument("--only", metavar="NAME", action="append", help="only this variant (repeatable)")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    unknown = set(args.only or ()) - set(VARIANTS)
    if unknown:
        print(f"clinic_sweep: no variant {sorted(unknown)[0]!r}; variants: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    report = {"split": "data/phenopacket-store/validation.jsonl", "config": str(CONFIG.relative_to(REPO)),
              "variants": {}}
    for name, (overrides, seeds) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        rows = {}
        for seed in seeds:
            folder = model_folder(name, seed)
            with_seed = overrides + ([f"training.seed={seed}"] if seed else [])
            if not train_if_missing(CONFIG, folder, with_seed, args.retrain):
                return 1
            rows[f"seed {seed}"] = validation_row(folder, with_seed)
        report["variants"][name] = {"overrides": overrides, "seeds": rows, "summary": summary(rows)}
    out = Path(args.out)
    record = out / "clinic_sweep.json"
    if not args.only:
        report["knowledge_rankers"] = knowledge_rows()
    elif record.is_file():  # a partial run updates its variants in the full record, in VARIANTS' order
        kept = json.loads(record.read_text())
        measured = {**kept["variants"], **report["variants"]}
        kept["variants"] = {name: measured[name] for name in VARIANTS if name in measured}
        report = kept
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(report, indent=2) + "\n")
    print_seeds({**report["variants"], **report.get("knowledge_rankers", {})}, COLUMNS, name_width=64, headers=HEADERS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How far apart equally good trainings land: the default recipe and its listwise ablation, seeds 0-4.

    .venv/bin/python benchmarks/seed_spread.py [--retrain] [--limit N] [--out results]

Seed 0 of each is the model ``benchmarks/default_model.py`` reports (``artifacts/default-model``,
``artifacts/listwise-policy``); seeds 1-4 are trained into ``artifacts/seed-spread/`` if missing
(about 90 s each on 2 cores once the feature cache exists). Every model is ranked on the held-out
test split. Nothing is chosen here: the default stays seed 0 whatever these numbers say; they tell
how much of a difference between two single trainings (GRPO against listwise, a change against
the last model) is the seed's. Writes ``OUT/seed_spread.json``: per objective and seed the
validation metrics training measured and the test top-1, top-10, MRR and top-1/top-10 on cases
whose gene has no case in the index, with each objective's mean, minimum and maximum.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from knowledge_rankers import REPO, evaluate_with_progress
from policy_sweep import train_if_missing
from rare_disease_rft.hpo import load_hpo
from rare_disease_rft.registry import load_ranker
from rare_disease_rft.resources import DEFAULT_DATA_DIR, DEFAULT_MODEL_DIR
from rare_disease_rft.tasks import read_tasks

SEEDS = range(5)
OBJECTIVES = {  # name: (recipe, the seed-0 model of default_model.py)
    "rft-policy": ("configs/default.yaml", DEFAULT_MODEL_DIR),
    "listwise-policy": ("configs/policy-listwise.yaml", REPO / "artifacts" / "listwise-policy"),
}
KEPT = ("top1", "top10", "mrr")


def model_folder(objective: str, seed: int) -> Path:
    return OBJECTIVES[objective][1] if seed == 0 else REPO / "artifacts" / "seed-spread" / f"{objective}-seed-{seed}"


def summary(rows: dict[str, dict]) -> dict:
    """Mean, minimum and maximum over the seeds of every number in the rows."""
    numbers = [k for k, v in next(iter(rows.values())).items() if isinstance(v, float)]
    values = {k: [r[k] for r in rows.values()] for k in numbers}
    return {k: {"mean": round(sum(v) / len(v), 4), "min": min(v), "max": max(v)} for k, v in values.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true", help="train seeds 1-4 again even if present")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N test cases")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    test_file = DEFAULT_DATA_DIR / "test.jsonl"
    for objective, (config, _) in OBJECTIVES.items():
        for seed in SEEDS:  # seed 0 is default_model.py's model: --retrain leaves it to that script
            if not train_if_missing(REPO / config, model_folder(objective, seed), [f"training.seed={seed}"],
                                    retrain=args.retrain and seed > 0):
                return 1

    tasks = read_tasks(test_file, limit=args.limit)
    hpo = load_hpo()
    report: dict = {"tasks": str(test_file.relative_to(REPO)), "objectives": {}}
    for objective in OBJECTIVES:
        rows = {}
        for seed in SEEDS:
            folder = model_folder(objective, seed)
            ranker = load_ranker(str(folder))
            ranker.name = f"{objective} seed {seed}"
            test, _ = evaluate_with_progress(ranker, tasks, hpo)
            validation = json.loads((folder / "validation_metrics.json").read_text())
            unseen = test["subsets"]["answer_gene_not_in_training"]
            rows[f"seed {seed}"] = {
                "model": str(folder.relative_to(REPO)),
                **{f"validation_{k}": round(validation[k], 4) for k in KEPT},
                **{f"test_{k}": round(test[k], 4) for k in KEPT},
                # None when no task has such a gene (--limit)
                **{f"test_unseen_gene_{k}": None if unseen[k] is None else round(unseen[k], 4) for k in ("top1", "top10")},
            }
        report["objectives"][objective] = {"config": OBJECTIVES[objective][0], "seeds": rows, "summary": summary(rows)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seed_spread.json").write_text(json.dumps(report, indent=2) + "\n")
    print_seeds(report["objectives"], ("validation_top1", "validation_top10", "test_top1", "test_top10",
                                       "test_unseen_gene_top1"))
    return 0


def print_seeds(blocks: dict[str, dict], columns: tuple[str, ...], name_width: int = 26,
                headers: tuple[str, ...] | None = None) -> None:
    """One row per recipe and seed (``blocks``: recipe -> {"seeds": {seed: row}, "summary": ...}), then
    each recipe's mean (lowest-highest seed) when it has more than one seed; ``-`` where a row has no value.
    ``headers`` name the columns (default: their keys)."""
    print(f"{'model':<{name_width}}" + "".join(f"{c:>22}" for c in headers or columns))
    for name, block in blocks.items():
        for seed, row in block["seeds"].items():
            print(f"{(name + ' ' + seed)[:name_width]:<{name_width}}" + "".join(
                f"{row[c]:>22.3f}" if row.get(c) is not None else f"{'-':>22}" for c in columns))
        s = block["summary"]
        if len(block["seeds"]) > 1:
            print(f"{(name + ' mean (min-max)')[:name_width]:<{name_width}}" + "".join(
                f"{s[c]['mean']:>10.3f} ({s[c]['min']:.3f}-{s[c]['max']:.3f})" if c in s else f"{'-':>22}"
                for c in columns))


if __name__ == "__main__":
    sys.exit(main())

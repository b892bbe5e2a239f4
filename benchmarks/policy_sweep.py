"""Variants of the default ranker's recipe, compared on the validation split (never the test split).

    .venv/bin/python benchmarks/policy_sweep.py [--retrain] [--out results]

Trains ``configs/default.yaml`` with each set of overrides below into ``artifacts/policy-sweep/<name>``
(if missing, or with ``--retrain``; about 70 s each on 2 cores once the feature cache exists),
reads the validation metrics training measured for each (``validation_metrics.json``, taken before
the case index adds the validation cases) and writes ``OUT/policy_sweep.json``: per variant its
overrides and validation top-1, top-5, top-10, MRR and top-1 on cases whose gene has no training case.
The README's list of variants that did not beat the default comes from this file; how far apart
two trainings of the same recipe land (seeds 0-4) from ``benchmarks/seed_spread.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from rare_disease_rft.cli import main as rdrft
from rare_disease_rft.resources import DEFAULT_DATA_DIR

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "default.yaml"
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "hidden width 128": ["model.hidden=128"],
    "3 layers": ["model.layers=3"],
    "group size 32": ["training.group_size=32"],
    "learning rate 1e-3": ["training.learning_rate=0.001"],
    "more credit for ranks 2-10": ["training.reward_params={schedule: [[1, 1.0], [3, 0.6], [5, 0.45], [10, 0.3], [20, 0.1]]}"],
    "no separate knowledge-head loss": ["training.knowledge_head_weight=0"],
    "unseen-gene weight 6": ["training.unseen_gene_weight=6.0"],
    "1,200 steps": ["training.steps=1200"],
}


def train_if_missing(config: Path, folder: Path, overrides: list[str], retrain: bool = False) -> bool:
    """Trains ``config`` with ``overrides`` into ``folder`` unless a model is there already (or
    ``retrain``); False if the training failed."""
    if retrain and folder.exists():
        shutil.rmtree(folder)
    if (folder / "config.json").is_file():
        return True
    sets = [arg for override in overrides for arg in ("--set", override)]
    return rdrft(["train", "--config", str(config), "--out", str(folder), *sets]) == 0


def validation_row(folder: Path, overrides: list[str]) -> dict:
    """A trained variant's overrides, kept step and the validation metrics training measured (before
    the kept model's case index took in the validation cases): top-1/5/10, MRR, unseen-gene top-1,
    and top-1/top-10 of the clinic-like subset and of its cases whose gene has no training case."""
    m = json.loads((folder / "validation_metrics.json").read_text())
    clinic = {f"{subset}_{k}": m["subsets"][subset][k] for subset in ("clinic_like", "clinic_like_gene_unseen")
              if subset in m["subsets"] for k in ("n", "top1", "top10")}
    return {"overrides": overrides,
            "kept_step": json.loads((folder / "config.json").read_text()).get("training_summary", {}).get("best_step"),
            **{k: m[k] for k in ("n", "top1", "top5", "top10", "mrr")},
            "unseen_gene_top1": m["subsets"]["answer_gene_not_in_training"]["top1"], **clinic}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true", help="train every variant again")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    validation = DEFAULT_DATA_DIR / "validation.jsonl"
    rows = {}
    for name, overrides in VARIANTS.items():
        folder = REPO / "artifacts" / "policy-sweep" / name.replace(" ", "-").replace(",", "")
        if not train_if_missing(CONFIG, folder, overrides, args.retrain):
            return 1
        rows[name] = validation_row(folder, overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy_sweep.json").write_text(json.dumps({"split": str(validation.relative_to(REPO)),
                                                       "config": str(CONFIG.relative_to(REPO)),
                                                       "variants": rows}, indent=2) + "\n")
    print(f"{'variant':<34} {'top1':>6} {'top5':>6} {'top10':>6} {'mrr':>6} {'unseen top1':>11}")
    for name, r in rows.items():
        print(f"{name:<34} {r['top1']:6.3f} {r['top5']:6.3f} {r['top10']:6.3f} {r['mrr']:6.3f} "
              f"{r['unseen_gene_top1']:11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

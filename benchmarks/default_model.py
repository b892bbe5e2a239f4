"""The default RL-trained ranker against its ablation and the knowledge-based rankers.

    .venv/bin/python benchmarks/default_model.py [--retrain] [--skip-peers] [--limit N] [--out results]

Trains, if their directories are missing (or with ``--retrain``), the default model
(``configs/default.yaml`` -> ``artifacts/default-model``) and the supervised listwise ablation
(``configs/policy-listwise.yaml`` -> ``artifacts/listwise-policy``), timing each; then ranks the
held-out test split with both, the built-in knowledge rankers and (unless ``--skip-peers``)
hpo3's gene enrichment, on one core. Writes ``OUT/default_model.json`` (docs/SPEC.md benchmark format,
plus the default model's paired differences to each other ranker),
``OUT/default_model_topk.png`` and ``OUT/default_model_run.json`` (versions, stage timings).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from knowledge_rankers import REPO, Hpo3Enrichment, evaluate_with_progress, write_report  # noqa: E402
from rare_disease_rft.cli import main as rdrft  # noqa: E402
from rare_disease_rft.evaluate import paired_differences  # noqa: E402
from rare_disease_rft.hpo import load_hpo  # noqa: E402
from rare_disease_rft.registry import BUILT_IN, load_ranker  # noqa: E402
from rare_disease_rft.resources import DEFAULT_DATA_DIR, DEFAULT_MODEL_DIR  # noqa: E402
from rare_disease_rft.tasks import read_tasks  # noqa: E402

TRAINED = (("configs/default.yaml", DEFAULT_MODEL_DIR), ("configs/policy-listwise.yaml", REPO / "artifacts" / "listwise-policy"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true", help="train both models again even if present")
    parser.add_argument("--skip-peers", action="store_true", help="without hpo3's gene enrichment")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N test cases")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    stages: dict[str, float] = {}
    test_file = DEFAULT_DATA_DIR / "test.jsonl"
    if not test_file.is_file():
        if rdrft(["prepare", "phenopackets", "--out", str(DEFAULT_DATA_DIR)]) != 0:
            return 1
        stages["prepare"] = time.perf_counter() - started
    for config, folder in TRAINED:
        if args.retrain and folder.exists():
            shutil.rmtree(folder)
        if not (folder / "config.json").is_file():
            began = time.perf_counter()
            # training itself uses the default threads: the budget (<= 10 min) is for 2 cores
            torch.set_num_threads(os.cpu_count() or 1)
            if rdrft(["train", "--config", str(REPO / config), "--out", str(folder)]) != 0:
                return 1
            torch.set_num_threads(1)
            stages[f"train {folder.name}"] = time.perf_counter() - began

    began = time.perf_counter()
    tasks = read_tasks(test_file, limit=args.limit)
    hpo = load_hpo()
    rankers = [load_ranker(str(folder)) for _, folder in TRAINED] + [load_ranker(n) for n in BUILT_IN]
    if not args.skip_peers:
        rankers.append(Hpo3Enrichment())
    stages["load"] = time.perf_counter() - began
    reference = frozenset().union(*(r.training_genes for r in rankers))
    models, results = {}, {}
    for ranker in rankers:
        began = time.perf_counter()
        models[ranker.name], results[ranker.name] = evaluate_with_progress(ranker, tasks, hpo, reference)
        stages[f"rank {ranker.name}"] = time.perf_counter() - began
    write_report(Path(args.out), "default_model", test_file, tasks, models, rankers, hpo, stages, started,
                 paired=paired_differences(results, tasks, reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The LLM RFT recipe on CPU: what GRPO changed for SmolLM2-135M-Instruct re-ranking a shortlist.

    .venv/bin/python benchmarks/llm_rft.py [--retrain] [--config configs/grpo-smollm2-cpu.yaml] [--out results]

Trains the recipe into ``artifacts/<recipe name>`` if that directory is missing (or with
``--retrain``), timing it with all cores; the recipe itself measures the shortlist's own order,
the base model, the SFT warm-up and the GRPO-trained model on the same validation cases. Copies
what the README reports into ``OUT/<recipe name>/``: ``before_after.json``, ``MODEL_CARD.md``,
``training_log.csv`` (TRL's log of every step) and ``training_curves.csv/png``;
``before_after.json`` holds the run's wall time (``seconds``) and its GRPO part (``grpo_seconds``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from rare_disease_rft.cli import main as rdrft
from rare_disease_rft.registry import load_config

REPO = Path(__file__).resolve().parent.parent
REPORTED = ("before_after.json", "MODEL_CARD.md", "training_log.csv", "training_curves.csv", "training_curves.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "grpo-smollm2-cpu.yaml"))
    parser.add_argument("--retrain", action="store_true", help="train again even if the model directory exists")
    parser.add_argument("--out", default=str(REPO / "results"), metavar="DIR")
    args = parser.parse_args(argv)
    name = load_config(args.config).name
    model_dir = REPO / "artifacts" / name
    if args.retrain and model_dir.exists():
        shutil.rmtree(model_dir)
    if not (model_dir / "config.json").is_file():
        if rdrft(["train", "--config", args.config, "--out", str(model_dir)]) != 0:
            return 1
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    for file in REPORTED:
        shutil.copy2(model_dir / file, out / file)
    before_after = json.loads((out / "before_after.json").read_text())
    for row in ("shortlist_order", "before", "sft", "after"):
        m = before_after.get(row)
        if m:
            print(f"{m['model']:<24} n={m['n']} format_ok {m['format_ok']:.3f} top1 {m['top1']:.3f} "
                  f"top5 {m['top5']:.3f} top10 {m['top10']:.3f}")
    print(f"trained in {before_after['seconds']:.0f} s ({before_after['grpo_seconds']:.0f} s of GRPO)")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Markdown tables for the README from the benchmark results (so the README can't drift from them).

    .venv/bin/python benchmarks/tables.py [--results results]

Reads ``default_model.json`` / ``benchmark.json`` (docs/SPEC.md benchmark format) with their ``*_run.json``
and prints one table per file: top-1/5/10 with 95% intervals, MRR, found, latency, and the
seen/unseen-gene subsets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rare_disease_rft.evaluate import percent

REPO = Path(__file__).resolve().parent.parent



def _ci(interval) -> str:
    return "" if not interval else f" ({100 * interval[0]:.0f}-{100 * interval[1]:.0f})"


def table(results: dict, run: dict | None) -> str:
    lines = []
    if run:
        lines.append(f"{run['cases']} test cases; run {run['date']}; HPO {run['hpo_release']}; phenopacket-store "
                     f"`{run['phenopacket_store_commit'][:8]}`; one thread on {run['machine']}.")
        lines.append("")
    lines += ["| model | top-1 % (95% CI) | top-5 % | top-10 % (95% CI) | MRR | found % | p50 ms | p95 ms | "
              "top-1 % gene seen / unseen in training |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, m in results["models"].items():
        subsets = m.get("subsets_reference") or m["subsets"]
        seen, unseen = subsets["answer_gene_in_training"], subsets["answer_gene_not_in_training"]
        lines.append(
            f"| {name} | {percent(m['top1'], '')}{_ci(m.get('ci95', {}).get('top1'))} | {percent(m['top5'], '')} | "
            f"{percent(m['top10'], '')}{_ci(m.get('ci95', {}).get('top10'))} | {m['mrr']:.3f} | {percent(m['found'], '')} | "
            f"{m['latency_ms']['p50']:.1f} | {m['latency_ms']['p95']:.1f} | "
            f"{percent(seen['top1'], '')} (n={seen['n']}) / {percent(unseen['top1'], '')} (n={unseen['n']}) |")
    if run and run.get("stage_seconds"):
        lines.append("")
        lines.append("Stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in run["stage_seconds"].items()) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(REPO / "results"))
    args = parser.parse_args(argv)
    folder = Path(args.results)
    for stem in ("default_model", "benchmark"):
        path = folder / f"{stem}.json"
        if not path.is_file():
            continue
        run_path = folder / f"{stem}_run.json"
        run = json.loads(run_path.read_text()) if run_path.is_file() else None
        print(f"### `{path.relative_to(folder.parent) if folder.parent in path.parents else path}`\n")
        print(table(json.loads(path.read_text()), run))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

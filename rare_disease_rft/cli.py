"""``rdrft``: the command line. Thin: it parses arguments and calls the library.

Every command exits 0 on success; on bad input it prints one specific line to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .resources import BUNDLED_PHENOPACKETS


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _cmd_prepare_phenopackets(args: argparse.Namespace) -> None:
    from data_prep.phenopackets import prepare_phenopackets

    sources = args.sources or [str(BUNDLED_PHENOPACKETS)]
    for source in sources:
        if not Path(source).exists():
            raise UsageError(f"source {source} does not exist (give a phenopacket .json, a folder or an archive)")
    report = prepare_phenopackets(sources, args.out, split=not args.no_split, seed=args.seed)
    _print_prepare_report(report)


def _print_prepare_report(report: dict) -> None:
    print(f"{report['tasks']} tasks from {report['files_read']} files in {report['seconds']} s "
          f"-> {Path(report['files']['tasks']).parent}")
    for name, counts in report["splits"].items():
        extra = counts.get("cases_whose_gene_has_no_training_case")
        print(f"  {name:<10} {counts['cases']:>6} cases {counts['publications']:>5} papers "
              f"{counts['genes']:>5} genes" + (f"  ({extra} cases with a gene unseen in train)" if extra else ""))
    if report["skipped_count"]:
        print(f"  skipped {report['skipped_count']}: " +
              "; ".join(f"{n} {reason}" for reason, n in report["skipped_by_reason"].items()))
    dropped = report.get("terms_unknown_to_hpo_release_dropped") or {}
    if dropped:
        print(f"  {sum(dropped.values())} uses of {len(dropped)} terms newer than HPO {report['hpo_version']} "
              "were dropped (listed in report.json)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdrft",
        description="Rank the causal gene of a rare-disease patient from HPO phenotypes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prepare = sub.add_parser("prepare", help="turn case reports into symptom-to-gene tasks")
    prepare_sub = prepare.add_subparsers(dest="kind", required=True, metavar="KIND")
    pp = prepare_sub.add_parser(
        "phenopackets",
        help="GA4GH phenopackets (files, folders, .tar.xz/.tar.gz/.zip archives) -> tasks",
        description="Converts phenopackets to tasks.jsonl and, unless --no-split, train/validation/test "
        "files split by publication; report.json lists counts and every skipped file with its reason. "
        "With no SOURCE, the bundled phenopacket-store archive is used.",
    )
    pp.add_argument("sources", nargs="*", metavar="SOURCE", help="phenopacket .json, folder or archive")
    pp.add_argument("--out", required=True, metavar="DIR", help="output folder")
    pp.add_argument("--no-split", action="store_true", help="write tasks.jsonl only")
    pp.add_argument("--seed", type=int, default=13, help="seed of the publication split (default 13)")
    pp.set_defaults(func=_cmd_prepare_phenopackets)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (UsageError, FileNotFoundError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"rdrft {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rdrft {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())

"""``rdrft``: the command line. Thin: it parses arguments and calls the library.

Every command exits 0 on success; on bad input it prints one specific line to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .messages import one_line
from .resources import BUNDLED_PHENOPACKETS


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


# what reading a folder of inputs takes: the outputs must not overwrite such a file
TEXT_SUFFIX, PHENOPACKET_SUFFIX = ".txt", ".json"
TRUST_REMOTE_CODE_HELP = ("let a model directory's base model run the Python code it ships (only for a model "
                          "whose source you trust; without it such a model is refused)")


def _cmd_prepare_phenopackets(args: argparse.Namespace) -> None:
    from data_prep.phenopackets import prepare_phenopackets

    sources = args.sources or [str(BUNDLED_PHENOPACKETS)]
    for source in sources:
        if not Path(source).exists():
            raise UsageError(f"source {source} does not exist (give a phenopacket .json, a folder or an archive)")
    _check_task_set_out(args, sources, PHENOPACKET_SUFFIX)
    report = prepare_phenopackets(sources, args.out, split=not args.no_split, seed=args.seed)
    _print_prepare_report(report)


def _check_output(option: str, path: str | Path, inputs=(), read_suffixes: tuple[str, ...] | None = None,
                  folder: bool = False) -> None:
    """Before any work: the output can be written and overwrites no input (``resources.check_output``)."""
    from .resources import OutputError, check_output

    try:
        check_output(path, inputs, read_suffixes, folder)
    except OutputError as err:
        raise UsageError(f"{option} {err}") from None


def _check_task_set_out(args: argparse.Namespace, inputs: list[str], read_suffix: str) -> None:
    """``prepare``'s --out: a folder whose files overwrite no input, nor (--no-split) an earlier split."""
    from data_prep.prepare import check_out_folder, task_set_files

    _check_output("--out", args.out, folder=True)
    for path in task_set_files(args.out, split=not args.no_split):
        _check_output("--out", path, inputs, (read_suffix,))
    check_out_folder(args.out, split=not args.no_split)


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
        print(f"  {sum(dropped.values())} uses of {len(dropped)} terms HPO {report['hpo_version']} does not know "
              "(newer than the release, or obsolete without a replacement) were dropped (listed in report.json)")
    invalid = report.get("invalid_ids_dropped") or {}
    if invalid:
        print(f"  {sum(invalid.values())} uses of {len(invalid)} ids that are not HPO ids (e.g. "
              f"'{one_line(next(iter(invalid)), 60)}') were dropped (listed in report.json)")


def _split_ids(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")


def _load_model(model: str, threads: int | None, trust_remote_code: bool = False):
    from .registry import ModelError, load_ranker

    _check_threads(threads)
    try:
        return load_ranker(model, threads=threads or 1, trust_remote_code=trust_remote_code)
    except (FileNotFoundError, ModelError) as err:
        raise UsageError(str(err)) from None


def _candidates(args: argparse.Namespace):
    """The candidate genes of ``--genes`` and ``--vcf`` (both: the VCF's genes on the list), or None."""
    from .inputs.candidates import CandidateError, read_gene_list, read_vcf

    try:
        listed = read_gene_list(args.genes) if args.genes else None
        called = read_vcf(args.vcf) if args.vcf else None
    except CandidateError as err:
        raise UsageError(str(err)) from None
    if listed is None or called is None:
        return listed or called
    on_list = set(listed.symbols())
    called.genes = [c for c in called.genes if c.gene in on_list]
    called.notes.append(f"{len(called.genes)} genes of {args.vcf} are on the list {args.genes}; only they are ranked")
    if not called.genes:
        raise UsageError(f"no gene of {args.vcf} is on the list {args.genes}; nothing to rank")
    return called


def _print_ranking(result) -> None:
    has_p = any(g.probability is not None for g in result.genes)
    ties = any(g.tied > 1 for g in result.genes)  # the genes that share a score, counted beside it
    print(f"{'rank':>4}  {'gene':<12} {'score':>9}" + (f" {'prob':>6}" if has_p else "")
          + (f" {'tied':>5}" if ties else "") + "  matched terms")
    for g in result.genes:
        matched = ", ".join(m["label"] for m in g.explanation["matched"][:4]) or g.explanation.get("not_ranked", "")
        prob = f" {g.probability:>6.3f}" if has_p and g.probability is not None else " " * 7 if has_p else ""
        score = f"{g.score:>9.3f}" if g.score is not None else f"{'-':>9}"
        tied = (f" {g.tied:>5}" if g.tied > 1 else " " * 6) if ties else ""
        print(f"{g.rank:>4}  {one_line(g.gene, 40):<12} {score}{prob}{tied}  {matched}")
    if result.text:
        print("\nmodel's reasoning:\n" + result.text)


def _cmd_rank(args: argparse.Namespace) -> None:
    from .explain import rank_and_explain
    from .hpo import HPOError, load_hpo
    from .rankers import Case
    from .results import json_text, output_format, write_rankings
    from .tasks import age_problem

    given = [name for name, value in (("--present", args.present), ("--phenopackets", args.phenopackets),
                                      ("--tasks", args.tasks)) if value]
    if len(given) != 1:
        raise UsageError("give the patient as exactly one of --present, --phenopackets or --tasks"
                         + (f" (got {' and '.join(given)})" if given else ""))
    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    problem = age_problem(args.age)
    if problem:
        raise UsageError(f"--age {problem}; give the patient's age in years")
    if args.out and not _is_folder_output(args.out):
        output_format(args.out)  # an unknown suffix is refused before any work
    if args.out:
        _check_rank_out(args)
    candidates = _candidates(args)
    ranker = _load_model(_served_model(args.model), args.threads, args.trust_remote_code)
    hpo = load_hpo()
    if not args.present:
        _rank_batch(args, ranker, hpo, candidates)
        return
    notes: list[str] = []
    try:
        case = Case.from_ids(hpo, _split_ids(args.present), _split_ids(args.excluded),
                             sex=args.sex, age_years=args.age, notes=notes)
    except HPOError as err:
        raise UsageError(str(err)) from None
    result = rank_and_explain(ranker, case, top=args.top, hpo=hpo, notes=notes, candidates=candidates)
    for note in result.notes:  # on stderr in both modes, so --json output stays one JSON document
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        write_rankings([result], args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        print(json_text(result), end="")
    elif not args.out:
        _print_ranking(result)


def _check_rank_out(args: argparse.Namespace) -> None:
    """``rank --out``: writable, not an input; a folder of per-patient files (named by the patients'
    ids, as phenopackets often are) neither inside an input folder nor holding an input."""
    inputs = [*(args.phenopackets or []), *([args.tasks] if args.tasks else [])]
    folder = _is_folder_output(args.out)
    _check_output("--out", args.out, inputs, (PHENOPACKET_SUFFIX,), folder=folder)
    out = Path(args.out).resolve()
    for given in inputs if folder else ():
        source = Path(given).resolve()
        if out.is_relative_to(source) or source.is_relative_to(out):
            raise UsageError(f"--out {args.out} and the input {given} overlap: a patient's file could overwrite a "
                             "phenopacket; write the rankings to a folder of their own (nothing was written)")


def _is_folder_output(out: str) -> bool:
    """``--out`` names a folder of per-patient files: it ends with a slash or is an existing folder."""
    return out.endswith(("/", "\\")) or Path(out).is_dir()


def _rank_batch(args: argparse.Namespace, ranker, hpo, candidates) -> None:
    from .batch import BatchReport, rank_tasks, tasks_from_file, tasks_from_phenopackets
    from .results import jsonl_text, write_patient_files, write_rankings
    from .tasks import TaskError

    if args.excluded or args.sex or args.age is not None:
        raise UsageError("--excluded, --sex and --age describe one patient given with --present; a batch's "
                         "patients bring their own")
    report = BatchReport()
    if args.phenopackets:
        for source in args.phenopackets:
            if not Path(source).exists():
                raise UsageError(f"source {source} does not exist (give phenopacket .json files, folders or archives)")
        tasks = tasks_from_phenopackets(args.phenopackets, hpo, report)
    else:
        try:
            tasks = tasks_from_file(args.tasks)
        except TaskError as err:
            raise UsageError(str(err)) from None
    # worker processes on one thread each; an LLM batches its own generation
    workers = 1 if ranker.describe().get("kind") == "llm" else None
    results = list(rank_tasks(ranker, tasks, hpo, args.top, report, candidates, _progress_bar(), workers))
    for skipped in report.skipped:  # unreadable files, then patients without a usable term
        print(f"rdrft rank: skipped {skipped['patient']}: {skipped['reason']}", file=sys.stderr)
    if not tasks:
        raise UsageError("no patient to rank" + (f"; {report.summary()}" if report.skipped else ""))
    if args.out and _is_folder_output(args.out):
        write_patient_files(results, Path(args.out))
    elif args.out:
        write_rankings(results, args.out)
    elif args.json:
        print(jsonl_text(results), end="")
    else:
        for result in results:
            tie = f" ({result.tied_at_top} genes share the top score)" if result.tied_at_top > 1 else ""
            print(f"{result.id}: " + ", ".join(g.gene for g in result.genes[:5]) + tie)
    print(f"rdrft rank: {report.summary()}" + (f" -> {args.out}" if args.out else ""), file=sys.stderr)


def _progress_bar():
    """Progress on stderr for people watching a long batch (a terminal only: logs stay clean)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        filled = int(30 * done / total)
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} patients", end="" if done < total else "\n",
              file=sys.stderr, flush=True)

    return show


def _read_task_file(path: str, limit: int | None):
    from .tasks import TaskError, read_tasks

    try:
        tasks = read_tasks(path, limit=limit)
    except TaskError as err:
        raise UsageError(str(err)) from None
    missing = [t.id for t in tasks if t.answer is None]
    if missing:
        raise UsageError(f"{path}: task {missing[0]} has no answer gene; this command needs answers "
                         f"({len(missing)} such tasks)")
    if not tasks:
        raise UsageError(f"{path} holds no tasks")
    return tasks


def _evaluate_models(args: argparse.Namespace, names: list[str]) -> tuple[dict[str, dict], dict | None]:
    """Metrics of each model on ``--tasks`` and, with two or more models, the first model's paired
    differences to the others."""
    from .evaluate import current_terms, evaluate, format_differences, format_table, paired_differences
    from .hpo import load_hpo
    from .registry import DEFAULT, is_built_in

    tasks = _read_task_file(args.tasks, args.limit)
    hpo = load_hpo()
    terms = current_terms(tasks, hpo)  # obsolete ids mapped, unusable ones left out: said, never a silent miss
    for line in terms.lines(len(tasks), hpo.version):
        print(f"note: {args.tasks}: {line}", file=sys.stderr)
    rankers = [(name, _load_model(name, args.threads, args.trust_remote_code)) for name in names]
    # seen/unseen-gene subsets of every model also by the trained models' genes, to compare alike
    reference = frozenset().union(*(r.training_genes for _, r in rankers))
    annotated = frozenset(hpo.gene_symbols)
    models, results = {}, {}
    for name, ranker in rankers:
        label = name if is_built_in(name) or name == DEFAULT else ranker.name
        if label in models:  # two model directories may carry one ranker name; keep both
            label = name
        known = sum(t.id in ranker.indexed_cases for t in tasks)
        if known:
            print(f"warning: {known} of the {len(tasks)} tasks are case reports {label} holds with their answers "
                  "(its case index); its metrics on them are optimistic", file=sys.stderr)
        models[label], results[label] = evaluate(ranker, tasks, name=label, batch_size=args.batch_size,
                                                 cited_pmids=hpo.cited_pmids, reference_genes=reference or None,
                                                 annotated_genes=annotated, hpo=hpo,
                                                 withhold_own_paper=args.withhold_own_paper)
        if known:  # in the JSON too, for whoever reads only that
            models[label]["tasks_in_case_index"] = known
        if terms.mapped or terms.left_out:
            models[label]["task_terms"] = terms.to_json()
        print(f"  {label}: {len(tasks)} cases ranked", file=sys.stderr)
    withheld = "; each ranked without the knowledge its own paper alone gave HPO" if args.withhold_own_paper else ""
    print(f"{args.tasks}: {len(tasks)} cases{withheld}")
    print(format_table(models))
    if len(models) < 2:
        return models, None
    paired = paired_differences(results, tasks, reference)
    print(format_differences(paired))
    return models, paired


def _refuse_repeated_models(names: list[str]) -> None:
    """A model named twice (or one directory by two paths) would be ranked twice and compared with itself."""
    from .registry import is_built_in, model_folder

    seen: dict[str, str] = {}
    for name in names:
        key = name if is_built_in(name) else str(model_folder(name).resolve())
        if key in seen:
            same = "twice" if seen[key] == name else f"as {seen[key]} and {name}"
            raise UsageError(f"--models names one model {same}; name each model once")
        seen[key] = name


def _check_evaluation(args: argparse.Namespace, names: list[str], outputs: dict[str, str | None]) -> None:
    """What evaluate and benchmark check before any work: the numbers given and every output."""
    from .registry import is_built_in, model_folder

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    _check_threads(args.threads)
    # the task file and every file of a model directory are inputs
    inputs = [args.tasks, *(model_folder(name) for name in names if not is_built_in(name))]
    for option, path in outputs.items():
        if path:
            _check_output(option, path, inputs)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import write_json

    _check_evaluation(args, [args.model], {"--json": args.json})
    metrics, _ = _evaluate_models(args, [args.model])
    if args.json:
        write_json(args.json, next(iter(metrics.values())))


def _cmd_benchmark(args: argparse.Namespace) -> None:
    from .evaluate import benchmark_report, plot_formats, plot_topk, write_json

    names = _split_ids(args.models)
    if not names:
        raise UsageError("--models is empty; name at least one model, e.g. phenomizer,likelihood")
    _refuse_repeated_models(names)
    _check_evaluation(args, names, {"--json": args.json, "--plot": args.plot})
    if args.plot:
        suffix = Path(args.plot).suffix.lstrip(".").lower()
        if suffix not in plot_formats():
            raise UsageError(f"--plot {args.plot}: end the name with a picture format matplotlib writes "
                             f"(.png, .pdf, .svg, ...), not '{suffix or '(none)'}'")
        if args.json and Path(args.json).resolve() == Path(args.plot).resolve():
            raise UsageError(f"--json and --plot name one file, {args.json}; give each its own")
    models, paired = _evaluate_models(args, names)
    if args.json:
        write_json(args.json, benchmark_report(str(args.tasks), models, paired))
    if args.plot:
        plot_topk(models, args.plot, title=f"Top-k accuracy on {Path(args.tasks).name}")


def _check_inputs(inputs: list[str]) -> None:
    for given in inputs:
        if not Path(given).exists():
            raise UsageError(f"input {given} does not exist (give a .txt file, a folder of them, or a PubMed XML/MEDLINE file)")


def _cmd_concepts(args: argparse.Namespace) -> None:
    from .inputs.texts import write_concepts

    _check_inputs(args.inputs)
    _check_output("--jsonl", args.jsonl, args.inputs, (TEXT_SUFFIX,))
    written, errors = write_concepts(args.inputs, args.jsonl, case_report=args.case_report)
    for error in errors:
        print(f"rdrft concepts: {error}", file=sys.stderr)
    if not written:
        raise UsageError(f"no readable document in {', '.join(args.inputs)}")
    print(f"{written} documents -> {args.jsonl}" + (f" ({len(errors)} could not be read)" if errors else ""))


def _cmd_prepare_texts(args: argparse.Namespace) -> None:
    from data_prep.texts import prepare_texts

    _check_inputs(args.inputs)
    _check_task_set_out(args, [*args.inputs, args.answers], TEXT_SUFFIX)
    report = prepare_texts(args.inputs, args.answers, args.out, split=not args.no_split, seed=args.seed)
    for skipped in report["skipped"]:
        print(f"rdrft prepare: skipped {skipped['file']}" + (f" [{skipped['document']}]" if skipped["document"] else "")
              + f": {skipped['reason']}", file=sys.stderr)
    print(f"{report['tasks']} tasks from {report['documents_read']} documents in {report['seconds']} s "
          f"-> {Path(report['files']['tasks']).parent} (skipped {report['skipped_count']}, listed in report.json)")


def _add_task_set_options(parser: argparse.ArgumentParser) -> None:
    """Options every `prepare` kind shares: where the task set goes and how it is split."""
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--no-split", action="store_true", help="write tasks.jsonl only")
    parser.add_argument("--seed", type=int, default=13, help="seed of the publication split (default 13)")


def _cmd_train(args: argparse.Namespace) -> None:
    from data_prep.phenopackets import prepare_missing

    from .config import ConfigError
    from .registry import load_config, train

    try:
        config = load_config(args.config, args.set)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError("--max-steps must be at least 1")
    prepare_missing(config.data)
    train(config, Path(args.out or Path("artifacts") / config.name), max_steps=args.max_steps)


def _cmd_index(args: argparse.Namespace) -> None:
    from .rankers.case_index import check_index_out
    from .registry import model_folder

    model = model_folder(args.model)
    if not (model / "config.json").is_file():
        raise UsageError(f"--model {args.model}: no model directory with a config.json at {model} "
                         "(give a directory written by `rdrft train`, or default)")
    check_index_out(Path(args.out))
    _check_output("--out", args.out, folder=True)
    added, total = _index_cases(model, Path(args.tasks), Path(args.out))
    print(f"wrote {args.out}: the case index of {args.model} with {added} more cases ({total:,} in all)")


def _index_cases(model: Path, tasks_path: Path, out: Path) -> tuple[int, int]:
    """Writes ``out``: the policy model ``model`` with the solved cases of ``tasks_path`` added to its
    case index; returns how many were added and how many it holds."""
    from .genes import gene_names
    from .hpo import HPOError, load_hpo
    from .rankers import Case
    from .rankers.case_index import add_indexed_cases

    hpo = load_hpo()
    tasks = _read_task_file(str(tasks_path), None)
    names = gene_names()
    notes: list[str] = []
    for task in tasks:  # a lab's own file: map obsolete ids and gene aliases as everywhere else
        try:
            case = Case.from_ids(hpo, task.present, task.excluded, notes=notes)
        except HPOError as err:
            raise UsageError(f"{tasks_path}: task {task.id}: {err}") from None
        task.present, task.excluded = list(case.present), list(case.excluded)
        task.answer.gene = names.normalise(task.answer.gene)
    for note in dict.fromkeys(notes):
        print(f"note: {note}", file=sys.stderr)
    return len(tasks), add_indexed_cases(model, out, hpo, tasks, tasks_path)


def _served_model(model: str) -> str:
    """What `rdrft rank` and the app serve for MODEL: for ``default``, the default model with the test
    split's cases in its case index too (``resources.SERVED_MODEL_DIR``), added once after each
    training; the benchmark and evaluate keep the held-out model. Any other MODEL is itself."""
    import shutil
    import tempfile

    from .registry import DEFAULT, is_trained, model_config, model_folder
    from .resources import DEFAULT_DATA_DIR, SERVED_MODEL_DIR, fingerprint

    test_split = DEFAULT_DATA_DIR / "test.jsonl"
    if model != DEFAULT or not is_trained(DEFAULT) or not test_split.is_file():
        return model
    held_out = model_folder(DEFAULT)
    if (SERVED_MODEL_DIR / "config.json").is_file():
        added = model_config(SERVED_MODEL_DIR).get("added_cases") or [{}]
        newer = (SERVED_MODEL_DIR / "config.json").stat().st_mtime >= (held_out / "config.json").stat().st_mtime
        if newer and added[-1].get("sha256") == fingerprint([test_split]):
            return str(SERVED_MODEL_DIR)
    print(f"note: adding the test split's cases ({test_split}) to the default model's case index, once after "
          f"each training, into {SERVED_MODEL_DIR}", file=sys.stderr, flush=True)
    # built beside its place and moved in whole, so a stopped run never leaves half a model there
    SERVED_MODEL_DIR.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=SERVED_MODEL_DIR.parent)) / "model"
    try:
        _index_cases(held_out, test_split, building)
        shutil.rmtree(SERVED_MODEL_DIR, ignore_errors=True)
        building.rename(SERVED_MODEL_DIR)
    finally:
        shutil.rmtree(building.parent, ignore_errors=True)
    return str(SERVED_MODEL_DIR)


def _cmd_knowledge_update(args: argparse.Namespace) -> int:
    from .hpo import load_hpo
    from .hpo_update import format_changes, update_release

    update = update_release(args.source, args.into, current=load_hpo(), force=args.force, allow_older=args.allow_older)
    for problem in update.checked.problems:
        print(f"rdrft knowledge update: {problem}", file=sys.stderr)
    if update.folder is None:
        print(f"rdrft knowledge update: {len(update.checked.errors)} errors; nothing was written", file=sys.stderr)
        return 2
    print(f"wrote HPO release {update.checked.version} to {update.folder}")
    print(format_changes(update.changes))
    print(f"use it with --hpo {update.folder} (or RDRFT_HPO_DIR={update.folder}); models trained on another "
          "release need retraining on it (rdrft train --config configs/default.yaml --hpo DIR)")
    return 0


def _cmd_app(args: argparse.Namespace) -> None:
    from .registry import DEFAULT, ModelError, check_model, is_built_in, is_trained, model_folder

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    model = args.model
    if not is_built_in(model) and Path(model).resolve() == model_folder(DEFAULT).resolve():
        model = DEFAULT  # until `make run` has trained it, the app ranks with likelihood and says so
    model = _served_model(model)
    if model != DEFAULT or is_trained(DEFAULT):
        try:
            check_model(model, trust_remote_code=args.trust_remote_code)
        except ModelError as err:
            raise UsageError(f"--model {model}: {err}") from None
    try:
        from app.server import serve
    except ModuleNotFoundError as err:  # Streamlit comes with the app extra
        raise UsageError(f"{err}: the app needs the app extra (pip install -e '.[app]')") from None
    print(f"rdrft app: model {model}, serving on http://localhost:{args.port}", file=sys.stderr, flush=True)
    serve(model, args.port, args.trust_remote_code)  # in this process: stopping it by its id stops the server


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (an unknown choice, a value that is no number) go through the same
    shortening as every other message: they quote the argument."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    _add_task_set_options(pp)
    pp.set_defaults(func=_cmd_prepare_phenopackets)

    pt = prepare_sub.add_parser(
        "texts",
        help="free-text case reports (.txt, folders of them, PubMed XML/MEDLINE) -> tasks",
        description="Finds present and excluded HPO terms in each document, read as a case report, and takes "
        "its gene from --answers; writes tasks.jsonl, the split files unless --no-split, and report.json "
        "listing every document skipped (unreadable, no answer, no present phenotype) with the reason.",
    )
    pt.add_argument("inputs", nargs="+", metavar="INPUT", help=".txt file, folder of them, PubMed XML or MEDLINE file")
    pt.add_argument("--answers", required=True, metavar="FILE", help="CSV/TSV: document id (file stem or PMID), gene symbol")
    _add_task_set_options(pt)
    pt.set_defaults(func=_cmd_prepare_texts)

    concepts = sub.add_parser(
        "concepts", help="find HPO terms in texts",
        description="Writes one JSON line per document: its id (file stem or PMID) and the HPO concepts found, "
        "with character offsets into the text and whether the text negates them.",
    )
    concepts.add_argument("inputs", nargs="+", metavar="INPUT", help=".txt file, folder of them, PubMed XML or MEDLINE file")
    concepts.add_argument("--jsonl", required=True, metavar="OUT", help="output JSON Lines file")
    concepts.add_argument("--case-report", action="store_true",
                          help="keep only mentions about the patient (drops introduction, discussion, relatives)")
    concepts.set_defaults(func=_cmd_concepts)

    train = sub.add_parser(
        "train", help="train the model a config names (the default ranker, or an LLM with GRPO)",
        description="Trains the model a YAML recipe names and writes a model directory (weights in safetensors, "
        "resolved config, data and code versions, curves, validation metrics, MODEL_CARD.md). Task files the "
        "config names that do not exist yet are prepared from the bundled case reports first. A run killed "
        "part-way resumes from its last checkpoint when started again with the same --out.")
    train.add_argument("--config", required=True, metavar="FILE", help="YAML recipe, e.g. configs/default.yaml")
    train.add_argument("--out", metavar="DIR", help="model directory (default: artifacts/<config name>)")
    train.add_argument("--max-steps", type=int, metavar="N", help="cap on optimisation steps (smoke runs)")
    train.add_argument("--set", action="append", default=[], metavar="key=value",
                       help="override a setting, e.g. --set training.steps=200 (repeatable)")
    train.set_defaults(func=_cmd_train)

    model_help = "a model directory from `rdrft train`, a built-in ranker (phenomizer, likelihood) or default"
    rank = sub.add_parser(
        "rank", help="rank genes for one patient, or for many (phenopackets, a task file)",
        description="Ranks genes for a patient's HPO terms (--present), or for every patient of phenopackets "
        "(files, folders, archives; no PMID or diagnosis needed) or of a task file. Obsolete ids are mapped "
        "(noted on stderr). --genes/--vcf restrict the ranking to candidate genes from sequencing; a candidate "
        "the knowledge base does not know is listed last with the reason. --out writes .json (one patient), "
        ".jsonl, .tsv or .csv, or per-patient JSON files into a folder (a name ending in /).")
    rank.add_argument("--model", default="default", help=model_help + " (default: default)")
    rank.add_argument("--present", metavar="HP:...,HP:...", help="observed phenotypes of one patient")
    rank.add_argument("--phenopackets", nargs="+", metavar="SOURCE",
                      help="phenopacket .json files, folders or .tar.xz/.tar.gz/.zip archives: one ranking per patient")
    rank.add_argument("--tasks", metavar="FILE", help="a task JSONL file (answers optional): one ranking per task")
    rank.add_argument("--genes", metavar="LIST|FILE",
                      help="candidate genes: comma-separated symbols, or a file with one symbol a line (or a gene column)")
    rank.add_argument("--vcf", metavar="FILE", help="candidate genes from a VEP (CSQ) or snpEff (ANN) annotated VCF")
    rank.add_argument("--out", metavar="FILE|DIR/", help="write the rankings: .json, .jsonl, .tsv, .csv, or a folder")
    rank.add_argument("--excluded", metavar="HP:...,HP:...", help="phenotypes explicitly absent")
    rank.add_argument("--sex", choices=["FEMALE", "MALE", "OTHER_SEX", "UNKNOWN_SEX"])
    rank.add_argument("--age", type=float, metavar="YEARS")
    rank.add_argument("--top", type=int, default=10, metavar="N", help="how many genes (default 10)")
    rank.add_argument("--json", action="store_true", help="print JSON with explanations")
    rank.add_argument("--threads", type=int, metavar="N", help="threads of the numerical libraries (default 1)")
    rank.add_argument("--trust-remote-code", action="store_true", help=TRUST_REMOTE_CODE_HELP)
    rank.set_defaults(func=_cmd_rank)

    for command, helptext in (("evaluate", "metrics of one model on a task file"),
                              ("benchmark", "several models side by side on a task file, each timed per case")):
        p = sub.add_parser(command, help=helptext, description=helptext + "; prints a table and writes the metrics JSON.")
        if command == "evaluate":
            p.add_argument("--model", required=True, help=model_help)
            p.add_argument("--json", metavar="OUT", help="write the metrics JSON here")
        else:
            p.add_argument("--models", required=True, metavar="MODEL,MODEL,...", help=model_help + ", comma-separated")
            p.add_argument("--json", metavar="OUT", help='write {"tasks": ..., "models": {...}} here')
            p.add_argument("--plot", metavar="OUT.png", help="top-k accuracy curves, k = 1..50")
        p.add_argument("--tasks", required=True, metavar="FILE", help="task JSONL with answers")
        p.add_argument("--limit", type=int, metavar="N", help="only the first N tasks")
        p.add_argument("--batch-size", type=int, default=1, metavar="N", help="cases per call (LLM models)")
        p.add_argument("--withhold-own-paper", action="store_true",
                       help="rank each case without the HPO annotations (and indexed cases) whose only source is "
                       "its own paper: the honest estimate for a patient no paper describes")
        p.add_argument("--threads", type=int, metavar="N", help="threads of the numerical libraries (default 1)")
        p.add_argument("--trust-remote-code", action="store_true", help=TRUST_REMOTE_CODE_HELP)
        p.set_defaults(func=_cmd_evaluate if command == "evaluate" else _cmd_benchmark)

    index = sub.add_parser(
        "index", help="add solved cases to a trained model's case index (no retraining)",
        description="Copies a trained policy model to --out with the cases of --tasks (task JSONL with answers, "
        "e.g. from `rdrft prepare`) added to its case index. The network is not retrained: the genes of the "
        "added cases count as known, and the cases are compared with new patients and cited as similar cases.")
    index.add_argument("--model", default="default", help="a policy model directory from `rdrft train`, or default")
    index.add_argument("--tasks", required=True, metavar="FILE", help="task JSONL with answers: the cases to add")
    index.add_argument("--out", required=True, metavar="DIR", help="the new model directory (must not exist yet)")
    index.set_defaults(func=_cmd_index)

    app = sub.add_parser("app", help="serve the clinician's Streamlit app",
                         description="Serves the Streamlit app on http://localhost:PORT (this machine only). "
                         "Without a trained default model it ranks with the likelihood ranker and says so.")
    app.add_argument("--model", default="default", help=model_help + " (default: default)")
    app.add_argument("--port", type=int, default=8501, metavar="N", help="port (default 8501)")
    app.add_argument("--trust-remote-code", action="store_true", help=TRUST_REMOTE_CODE_HELP)
    app.set_defaults(func=_cmd_app)

    knowledge = sub.add_parser("knowledge", help="the HPO knowledge base: update it from new release files")
    knowledge_sub = knowledge.add_subparsers(dest="action", required=True, metavar="ACTION")
    update = knowledge_sub.add_parser(
        "update", help="check new HPO release files and write them as a release folder",
        description="Checks the HPO release files in SOURCE_DIR (hp.obo, phenotype.hpoa, genes_to_disease.txt or "
        "genes_to_phenotype.txt; plain, .xz or .gz): empty or cut-off files, column counts, disease counts against "
        "phenotype.hpoa's header, terms hp.obo does not know, genes HGNC does not know, a release older than the "
        "current one. Prints one line per problem; on an error writes nothing and exits 2. Otherwise writes the "
        "files xz-compressed with a README (provenance, checksums, license) to --into, through a temporary folder "
        "and a rename, and prints what changed against the current release (--hpo, RDRFT_HPO_DIR or the bundled "
        "one): terms, genes, diseases, annotations. The default release is not changed: use the folder with --hpo.")
    update.add_argument("source", metavar="SOURCE_DIR", help="folder with the new release files")
    update.add_argument("--into", metavar="DIR",
                        help="release folder to write (default: ~/.local/share/rare-disease-rft/hpo/VERSION)")
    update.add_argument("--force", action="store_true", help="replace DIR if it exists (a bundled release included)")
    update.add_argument("--allow-older", action="store_true", help="accept a release older than the current one")
    update.set_defaults(func=_cmd_knowledge_update)
    _add_hpo_option(parser)
    return parser


def _add_hpo_option(parser: argparse.ArgumentParser) -> None:
    """``--hpo DIR`` on every command (each reads the knowledge base: term ids, annotations)."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        parser.add_argument("--hpo", metavar="DIR", help="HPO release folder (default: RDRFT_HPO_DIR, else the "
                            "bundled release): hp.obo, phenotype.hpoa and genes_to_phenotype.txt or genes_to_disease.txt")
    for action in subcommands:
        for command in dict.fromkeys(action.choices.values()):
            _add_hpo_option(command)


def _reason(err: Exception) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, OSError) and err.filename and err.strerror:  # e.g. a file that cannot be read
        return f"{err.filename}: {err.strerror}"
    return str(err)


#: numpy submodules for building Fortran extensions and for tests, which nothing here runs
NUMPY_TOOLS = ("numpy.f2py", "numpy.testing")


def _defer_numpy_tools() -> None:
    """Makes :data:`NUMPY_TOOLS` lazy modules (``importlib.util.LazyLoader``), unless imported already.

    Importing ``scipy.sparse`` (scipy 1.14 on, with numpy 2) clones numpy's namespace for scipy's
    array-API layer, and so imports every submodule numpy otherwise loads on first use; these two
    cost 0.07 s of CPU, a tenth of ``rdrft rank``. A lazy module's code runs on the first use of
    one of its attributes instead, as it would have at its import.
    """
    import importlib.util

    import numpy

    for name in NUMPY_TOOLS:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        # bound to the package, as an import binds a submodule (numpy's own lazy lookup re-imports)
        setattr(numpy, name.rpartition(".")[2], module)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _defer_numpy_tools()
    try:
        if args.hpo:
            from .hpo import use_release

            use_release(args.hpo)
        result = args.func(args)
    except (UsageError, OSError, ValueError, KeyError) as err:
        # the one place errors are printed: one line, however long or strange the input it quotes
        print(f"rdrft {args.command}: error: {one_line(_reason(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rdrft {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())

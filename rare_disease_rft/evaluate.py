"""Metrics (docs/SPEC.md, "Metrics JSON"), bootstrap intervals, the benchmark table and the top-k plot.

The metrics are the graders' own functions applied to each case's rank; a rank is taken from
the model's output order only, so score ties can never favour the answer.

Given the knowledge base, every evaluation also ranks the clinic-like subset: the cases whose
paper HPO's annotations do not cite, presented as clinic patients are (``clinic.as_clinic_patient``)
and ranked with their own paper's knowledge withheld (``Case.withheld_publication``). It is the
nearest the splits come to a patient no paper describes; models are chosen on validation's.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .clinic import as_clinic_patient
from .genes import gene_names
from .graders import metric_scores, rank_of
from .hpo import HPO
from .rankers.base import Case, Ranker, Ranking
from .resources import atomic_write, atomic_write_bytes
from .tasks import Task

TOPK_CURVE = 50
ABSENT = np.inf


@dataclass
class CaseResult:
    task_id: str
    answer: str
    rank: float  # 1-based; inf when the answer is absent
    seconds: float
    format_ok: bool
    error: str | None = None
    top_probability: float | None = None  # the probability the ranker gave its first gene, if any
    #: the rank of the case as a clinic patient, its own paper withheld (rank_clinic_like); None outside
    #: the clinic-like subset
    clinic_rank: float | None = None


#: why a task is not ranked at all: :func:`current_terms` left it no present term
NO_USABLE_TERM = "no present HPO term the release knows"


@dataclass
class TaskTerms:
    """What reading a task file's ids as current terms did (:func:`current_terms`)."""

    mapped: Counter = field(default_factory=Counter)  # "given -> current" -> uses
    left_out: Counter = field(default_factory=Counter)  # id -> uses: not an HPO id, or unknown to the release
    #: tasks left with no present term: never ranked, they count as misses
    unusable: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"mapped": dict(self.mapped.most_common()), "left_out": dict(self.left_out.most_common()),
                "tasks_without_usable_terms": len(self.unusable)}

    def lines(self, tasks: int, release: str) -> list[str]:
        """What to tell the user, a line each."""
        out = []
        if self.mapped:
            out.append(f"obsolete or alternative ids mapped to the current term ({_uses(self.mapped)}): "
                       + _first(self.mapped))
        if self.left_out:
            out.append(f"ids HPO {release} cannot use, left out ({_uses(self.left_out)}): " + _first(self.left_out))
        if self.unusable:
            out.append(f"{len(self.unusable)} of the {tasks} tasks have {NO_USABLE_TERM} (e.g. {self.unusable[0]}): "
                       "they are not ranked and count as misses")
        return out


def _uses(counts: Counter) -> str:
    return f"{len(counts)} ids, {sum(counts.values())} uses"


def _first(counts: Counter, shown: int = 5) -> str:
    return ", ".join(list(counts)[:shown]) + (", ..." if len(counts) > shown else "")


def current_terms(tasks: Sequence[Task], hpo: HPO) -> TaskTerms:
    """Maps every task's obsolete and alternative ids to the current term, in place, as ``prepare``
    does; ids the release cannot use are left out, and a term then both present and excluded is
    present. What was done is counted, so that a score is never silently a miss."""
    report = TaskTerms()
    for task in tasks:
        present, excluded = hpo.resolve_all(task.present), hpo.resolve_all(task.excluded)
        for resolved in (present, excluded):
            report.mapped.update(f"{given} -> {current}" for given, current in resolved.replaced.items())
            report.left_out.update(list(resolved.unknown))
        task.present = present.ids
        task.excluded = [t for t in excluded.ids if t not in present.ids]
        if not task.present:
            report.unusable.append(task.id)
    return report


def rank_cases(ranker: Ranker, tasks: Sequence[Task], batch_size: int = 1,
               withhold_own_paper: bool = False) -> tuple[list[CaseResult], list[Ranking | None]]:
    """Ranks every task (with ``withhold_own_paper``, without its paper's knowledge); a case the
    ranker fails on, or one with no present term (:func:`current_terms`), counts as absent (never dropped)."""
    results: list[CaseResult] = []
    rankings: list[Ranking | None] = []
    for start in range(0, len(tasks), batch_size):
        batch = tasks[start : start + batch_size]
        rankable = [t for t in batch if t.present]
        cases = [Case.from_task(t, withhold_own_paper) for t in rankable]
        began = time.perf_counter()
        try:
            outs: list[Ranking | None] = list(ranker.rank_many(cases) if len(cases) > 1 else map(ranker.rank, cases))
            if len(outs) != len(rankable):  # zip would silently drop the unanswered cases
                raise RuntimeError(f"{len(outs)} rankings for a batch of {len(rankable)} cases")
            error = None
        except Exception as err:  # a crash on one case must not drop it from the denominator
            outs, error = [None] * len(rankable), f"{type(err).__name__}: {err}"
        seconds = (time.perf_counter() - began) / len(batch)
        in_order = iter(outs)
        for task in batch:
            out = next(in_order) if task.present else None
            position = rank_of(out.genes, task.answer.gene) if out is not None else None
            shown = out is not None and out.probabilities is not None and len(out.probabilities)
            results.append(CaseResult(task.id, task.answer.gene, float(position) if position else ABSENT,
                                      seconds, bool(out is not None and out.format_ok),
                                      error if task.present else NO_USABLE_TERM,
                                      float(out.probabilities[0]) if shown else None))
            rankings.append(out)
    return results, rankings


def clinic_like_tasks(tasks: Sequence[Task], hpo: HPO) -> tuple[list[int], list[Task]]:
    """The clinic-like subset: the positions in ``tasks`` of the cases whose paper HPO's annotations
    do not cite (``hpo.cited_pmids``; a case without a PMID counts as uncited), and those cases as
    clinic patients (present terms only, at most the 9 most specific, no sex or age)."""
    positions = [i for i, t in enumerate(tasks) if t.pmid not in hpo.cited_pmids]
    return positions, [as_clinic_patient(tasks[i], hpo) for i in positions]


def rank_clinic_like(ranker: Ranker, tasks: Sequence[Task], results: Sequence[CaseResult], hpo: HPO,
                     batch_size: int = 1, withhold_own_paper: bool = True) -> list[CaseResult]:
    """``results`` (of ``tasks``) with ``clinic_rank`` set on the clinic-like subset: a second pass
    that ranks those cases as clinic patients, each with its own paper withheld (unless
    ``withhold_own_paper`` is False: the knowledge as released, to measure what withholding costs)."""
    positions, clinic = clinic_like_tasks(tasks, hpo)
    ranked, _ = rank_cases(ranker, clinic, batch_size=batch_size, withhold_own_paper=withhold_own_paper)
    out = list(results)
    for i, result in zip(positions, ranked):
        out[i] = replace(out[i], clinic_rank=result.rank)
    return out


def percent(value: float | None, unit: str = "%") -> str:
    """A share as a percentage with one decimal (``-`` when there is none), for tables and model cards."""
    return "-" if value is None else f"{100 * value:.1f}{unit}"


def _summary(ranks: np.ndarray) -> dict:
    """``n``, every registered rank score's metric (graders.RANK_SCORES) and ``found``."""
    n = len(ranks)
    as_int = [None if np.isinf(r) else int(r) for r in ranks]
    summary: dict = {"n": n}
    for metric, score in metric_scores().items():
        summary[metric] = float(np.mean([score(r) for r in as_int])) if n else None
    summary["found"] = float(np.mean([r is not None for r in as_int])) if n else None
    return summary


def _bootstrap(values: np.ndarray, groups: Sequence[str], n_boot: int, seed: int) -> list[float]:
    """95% interval of the mean of per-case ``values``, resampling publications (cases of a paper
    are correlated)."""
    if len(values) == 0:
        return [float("nan"), float("nan")]
    labels, group_index = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.bincount(group_index, weights=values, minlength=len(labels))
    sizes = np.bincount(group_index, minlength=len(labels)).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(labels), size=(n_boot, len(labels)))
    stats = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    low, high = np.percentile(stats, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def _summary_with_interval(ranks: np.ndarray, groups: Sequence[str], n_boot: int) -> dict:
    """:func:`_summary` with the 95% intervals of top-1 and top-10 (as the whole split's ``ci95``;
    null bounds for an empty subset, as its other values)."""
    if not len(ranks):
        return {**_summary(ranks), "ci95": {"top1": [None, None], "top10": [None, None]}}
    return {**_summary(ranks), "ci95": {"top1": bootstrap_interval(ranks, groups, 1, n_boot),
                                        "top10": bootstrap_interval(ranks, groups, 10, n_boot)}}


def _clinic_like(results: Sequence[CaseResult], tasks: Sequence[Task],
                 split_by) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The clinic-like cases (positions), their clinic ranks and their publications; and, per
    case, whether its answer gene is not among ``split_by``."""
    where = np.array([i for i, r in enumerate(results) if r.clinic_rank is not None], dtype=np.int64)
    ranks = np.array([results[i].clinic_rank for i in where], dtype=float)
    unseen = ~_answer_among([tasks[i] for i in where], split_by)
    return ranks, unseen, [tasks[i].pmid or tasks[i].id for i in where]


def bootstrap_interval(ranks: np.ndarray, groups: Sequence[str], k: int, n_boot: int = 1000,
                       seed: int = 0) -> list[float]:
    """95% interval of top-k accuracy, resampling publications."""
    return _bootstrap((ranks <= k).astype(float), groups, n_boot, seed)


def paired_differences(results: dict[str, Sequence[CaseResult]], tasks: Sequence[Task], seen_genes,
                       n_boot: int = 1000) -> dict:
    """The first model against each other one on the same cases: its top-1 and top-10 minus the
    other's, with 95% intervals that resample publications for both models at once (far narrower
    than comparing two separate intervals), on all cases and on those whose answer gene is not
    among ``seen_genes`` (no case in the trained models' index); and, when both were ranked on the
    clinic-like subset, on it and on its cases of such genes."""
    names = list(results)
    pmids = np.array([t.pmid or t.id for t in tasks])
    unseen = ~_answer_among(tasks, seen_genes)
    ranks = {name: np.array([r.rank for r in rs], dtype=float) for name, rs in results.items()}
    clinic_ranks = {name: np.array([np.nan if r.clinic_rank is None else r.clinic_rank for r in rs], dtype=float)
                    for name, rs in results.items()}

    def compare(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> dict:
        out = {"n": int(where.sum())}
        for k in (1, 10):
            diff = (a[where] <= k).astype(float) - (b[where] <= k).astype(float)
            out[f"top{k}"] = {"difference": round(float(diff.mean()), 4) if len(diff) else None,
                              "ci95": _bootstrap(diff, pmids[where], n_boot, seed=0)}
        return out

    def against(other: str) -> dict:
        parts = {"all": compare(ranks[names[0]], ranks[other], np.ones(len(tasks), dtype=bool)),
                 "answer_gene_not_in_training": compare(ranks[names[0]], ranks[other], unseen)}
        a, b = clinic_ranks[names[0]], clinic_ranks[other]
        clinic = ~np.isnan(a) & ~np.isnan(b)
        if clinic.any():
            parts["clinic_like"] = compare(a, b, clinic)
            parts["clinic_like_gene_unseen"] = compare(a, b, clinic & unseen)
        return parts

    return {"reference": names[0], "against": {other: against(other) for other in names[1:]}}


def format_differences(paired: dict) -> str:
    """One line per compared model, in points: the reference's top-1 / top-10 minus the other's."""
    def points(entry: dict) -> str:
        d, (low, high) = entry["difference"], entry["ci95"]
        return "n/a" if d is None else f"{100 * d:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})"

    lines = [f"{paired['reference']} minus each model, points (95% paired interval over publications):"]
    for other, parts in paired["against"].items():
        unseen = parts["answer_gene_not_in_training"]
        lines.append(f"  vs {other}: top-1 {points(parts['all']['top1'])}, top-10 {points(parts['all']['top10'])}; "
                     f"gene without cases (n={unseen['n']}) top-1 {points(unseen['top1'])}, top-10 {points(unseen['top10'])}")
        if "clinic_like" in parts:
            clinic, clinic_unseen = parts["clinic_like"], parts["clinic_like_gene_unseen"]
            lines.append(f"    clinic-like (n={clinic['n']}): top-1 {points(clinic['top1'])}, top-10 "
                         f"{points(clinic['top10'])}; gene without cases (n={clinic_unseen['n']}) top-1 "
                         f"{points(clinic_unseen['top1'])}, top-10 {points(clinic_unseen['top10'])}")
    return "\n".join(lines)


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the case-weighted gap between the mean probability and the
    accuracy within equal-width probability bins."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum((which == b).mean() * abs(confidence[which == b].mean() - correct[which == b].mean())
                     for b in range(bins) if (which == b).any()))


def _answer_among(tasks: Sequence[Task], genes) -> np.ndarray:
    """Per task, whether its answer gene is one of ``genes``."""
    names = gene_names()  # a training answer and a test answer may name one gene differently
    normalised = {names.normalise(g) for g in genes}
    return np.array([names.normalise(t.answer.gene) in normalised for t in tasks], dtype=bool)


def _seen_subsets(ranks: np.ndarray, tasks: Sequence[Task], training_genes) -> dict:
    seen = _answer_among(tasks, training_genes)
    return {"answer_gene_in_training": _summary(ranks[seen]), "answer_gene_not_in_training": _summary(ranks[~seen])}


def _gene_kinds(ranks: np.ndarray, tasks: Sequence[Task], training_genes, annotated_genes) -> dict:
    """Subsets by what is known of the answer gene: training cases, HPO annotations, both, neither."""
    seen, known = _answer_among(tasks, training_genes), _answer_among(tasks, annotated_genes)
    return {"in_training_and_hpo": _summary(ranks[seen & known]), "in_training_not_hpo": _summary(ranks[seen & ~known]),
            "in_hpo_not_training": _summary(ranks[~seen & known]), "in_neither": _summary(ranks[~seen & ~known])}


def metrics(name: str, tasks: Sequence[Task], results: Sequence[CaseResult],
            training_genes: frozenset[str] | set[str] = frozenset(), cited_pmids: frozenset[str] = frozenset(),
            n_boot: int = 1000, reference_genes: frozenset[str] | None = None,
            annotated_genes: frozenset[str] | None = None) -> dict:
    """The metrics JSON (docs/SPEC.md) for one model, plus intervals, the top-k curve and extra subsets.

    ``annotated_genes`` (the genes HPO annotates) adds ``by_answer_gene``: the cases split by
    whether their gene has training cases (of ``reference_genes`` when given) and HPO annotations.
    Results with clinic ranks (:func:`rank_clinic_like`) add ``subsets.clinic_like`` and
    ``subsets.clinic_like_gene_unseen`` (its cases whose gene has no training case, of
    ``reference_genes`` when given), each with its own ``ci95``.
    """
    ranks = np.array([r.rank for r in results], dtype=float)
    seconds = np.array([r.seconds for r in results])
    pmids = [t.pmid or t.id for t in tasks]
    out = {"model": name, **_summary(ranks)}
    out["format_ok"] = float(np.mean([r.format_ok for r in results])) if results else None
    out["latency_ms"] = {
        "p50": round(float(np.percentile(seconds, 50)) * 1000, 3) if len(seconds) else None,
        "p95": round(float(np.percentile(seconds, 95)) * 1000, 3) if len(seconds) else None,
    }
    out["subsets"] = _seen_subsets(ranks, tasks, training_genes)
    if reference_genes is not None:
        # the trained models' training genes, so that every model in a benchmark is split alike
        out["subsets_reference"] = _seen_subsets(ranks, tasks, reference_genes)
    if cited_pmids:
        cited = np.array([t.pmid in cited_pmids for t in tasks], dtype=bool)
        out["subsets"]["paper_cited_by_hpo_annotations"] = _summary(ranks[cited])
        out["subsets"]["paper_not_cited_by_hpo_annotations"] = _summary(ranks[~cited])
    split_by = training_genes if reference_genes is None else reference_genes
    if any(r.clinic_rank is not None for r in results):
        clinic_ranks, unseen, groups = _clinic_like(results, tasks, split_by)
        out["subsets"]["clinic_like"] = _summary_with_interval(clinic_ranks, groups, n_boot)
        out["subsets"]["clinic_like_gene_unseen"] = _summary_with_interval(
            clinic_ranks[unseen], [g for g, u in zip(groups, unseen) if u], n_boot)
    if annotated_genes is not None:
        out["by_answer_gene"] = _gene_kinds(ranks, tasks, split_by, annotated_genes)
    out["ci95"] = {
        "top1": bootstrap_interval(ranks, pmids, 1, n_boot),
        "top10": bootstrap_interval(ranks, pmids, 10, n_boot),
    }
    out["topk_curve"] = [float(np.mean(ranks <= k)) if len(ranks) else None for k in range(1, TOPK_CURVE + 1)]
    if results and all(r.top_probability is not None for r in results):
        # rankers with probabilities: is the first gene's probability its chance of being the answer?
        out["top1_calibration_error"] = round(calibration_error([r.top_probability for r in results], ranks == 1), 4)
    out["errors"] = sum(r.error is not None for r in results)
    if out["errors"]:
        out["first_error"] = next(r.error for r in results if r.error)
    return out


def evaluate(ranker: Ranker, tasks: Sequence[Task], name: str | None = None, batch_size: int = 1,
             cited_pmids: frozenset[str] = frozenset(), training_genes: frozenset[str] | None = None,
             reference_genes: frozenset[str] | None = None, annotated_genes: frozenset[str] | None = None,
             hpo: HPO | None = None, withhold_own_paper: bool = False) -> tuple[dict, list[CaseResult]]:
    """Ranks the tasks and returns ``(metrics, per-case results)``; given the knowledge base ``hpo``,
    ranks the clinic-like subset too (:func:`rank_clinic_like`). With ``withhold_own_paper`` every
    case is ranked without its own paper's knowledge (the clinic-like subset always is), and the
    metrics say so (``own_paper_withheld``)."""
    results, _ = rank_cases(ranker, tasks, batch_size=batch_size, withhold_own_paper=withhold_own_paper)
    if hpo is not None:
        results = rank_clinic_like(ranker, tasks, results, hpo, batch_size)
    genes = ranker.training_genes if training_genes is None else training_genes
    out = metrics(name or ranker.name, tasks, results, genes, cited_pmids, reference_genes=reference_genes,
                  annotated_genes=annotated_genes)
    if withhold_own_paper:
        out["own_paper_withheld"] = True
    return out, results


def accuracy_by_gene(results: Sequence[CaseResult], ks: Sequence[int] = (1, 10)) -> list[dict]:
    """Per answer gene: its cases, the share ranked within each k and the MRR; most cases first."""
    by_gene: dict[str, list[float]] = {}
    for result in results:
        by_gene.setdefault(result.answer, []).append(result.rank)
    rows = []
    for gene, ranks in by_gene.items():
        ranks_array = np.array(ranks)
        rows.append({"gene": gene, "n": len(ranks),
                     **{f"top{k}": float(np.mean(ranks_array <= k)) for k in ks},
                     "mrr": float(np.mean(1.0 / ranks_array))})
    return sorted(rows, key=lambda row: (-row["n"], row["gene"]))


# ------------------------------------------------------------------ reporting
def _fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(bounds: Sequence[float | None]) -> str:
    """A 95% interval as ``low-high`` with two decimals; ``-`` without one."""
    low, high = bounds
    return "-" if low is None or high is None else f"{low:.2f}-{high:.2f}"


def format_table(models: dict[str, dict]) -> str:
    """A fixed-width table: one row per model, the metrics of docs/SPEC.md, intervals and latency."""
    header = (f"{'model':<22} {'n':>5} {'top1':>6} {'95% CI':>13} {'top5':>6} {'top10':>6} {'95% CI':>13} "
              f"{'mrr':>6} {'found':>6} {'fmt':>5} {'p50 ms':>8} {'p95 ms':>8} {'unseen top1':>11}")
    lines = [header, "-" * len(header)]
    for name, m in models.items():
        ci1, ci10 = m.get("ci95", {}).get("top1", [None, None]), m.get("ci95", {}).get("top10", [None, None])
        unseen = m.get("subsets_reference", m["subsets"])["answer_gene_not_in_training"]
        lines.append(
            f"{name[:22]:<22} {m['n']:>5} {_fmt(m['top1']):>6} {_interval(ci1):>13} "
            f"{_fmt(m['top5']):>6} {_fmt(m['top10']):>6} {_interval(ci10):>13} "
            f"{_fmt(m['mrr']):>6} {_fmt(m['found']):>6} {_fmt(m['format_ok'], 2):>5} "
            f"{_fmt(m['latency_ms']['p50'], 2):>8} {_fmt(m['latency_ms']['p95'], 2):>8} "
            f"{_fmt(unseen['top1']) + ' (' + str(unseen['n']) + ')':>11}"
        )
    clinic = {name: m["subsets"]["clinic_like"] for name, m in models.items() if "clinic_like" in m["subsets"]}
    if clinic:
        lines += ["", "clinic-like subset: papers HPO's annotations do not cite; present terms only, at most the "
                  "9 most specific, no sex or age; own paper withheld"]
        head = (f"{'model':<22} {'n':>5} {'top1':>6} {'95% CI':>13} {'top5':>6} {'top10':>6} {'95% CI':>13} "
                f"{'mrr':>6} {'found':>6} {'gene unseen: n':>14} {'top1':>6} {'top10':>6}")
        lines += [head, "-" * len(head)]
        for name, c in clinic.items():
            unseen = models[name]["subsets"]["clinic_like_gene_unseen"]
            lines.append(f"{name[:22]:<22} {c['n']:>5} {_fmt(c['top1']):>6} {_interval(c['ci95']['top1']):>13} "
                         f"{_fmt(c['top5']):>6} {_fmt(c['top10']):>6} {_interval(c['ci95']['top10']):>13} "
                         f"{_fmt(c['mrr']):>6} {_fmt(c['found']):>6} {unseen['n']:>14} {_fmt(unseen['top1']):>6} "
                         f"{_fmt(unseen['top10']):>6}")
    for name, m in models.items():  # a miss that is a failure, not a ranking, is said where the scores are
        if m.get("errors"):
            lines.append(f"{name}: {m['errors']} of the {m['n']} cases were not ranked and count as misses "
                         f"(first: {m['first_error']})")
    return "\n".join(lines)


def plot_topk(models: dict[str, dict], out: str | Path, title: str = "Top-k accuracy") -> None:
    """One curve per model: share of cases with the answer in the first k genes, k = 1..50."""
    # a Figure without pyplot: switching the process-wide backend would stop a notebook's inline plots
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.subplots()
    ks = np.arange(1, TOPK_CURVE + 1)
    for name, m in models.items():
        ax.plot(ks, m["topk_curve"], label=f"{name} (top1 {m['top1']:.2f})")
    ax.set_xlabel("k")
    ax.set_ylabel("share of cases with the causal gene in the top k")
    ax.set_ylim(0, 1)
    ax.set_xlim(1, TOPK_CURVE)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fmt = Path(out).suffix.lstrip(".").lower() or "png"
    atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt))


def benchmark_report(tasks: str, models: dict[str, dict], paired: dict | None = None) -> dict:
    """The benchmark JSON (docs/SPEC.md): the task file and each model's metrics, plus the first model's
    paired differences to the others when there are any."""
    return {"tasks": tasks, "models": models, **({"paired_differences": paired} if paired else {})}


def write_json(path: str | Path, data: dict) -> None:
    """Writes the metrics or benchmark JSON through a temporary file (a failure leaves an earlier file)."""
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def plot_formats() -> dict[str, str]:
    """File suffixes ``plot_topk`` can write (``png``, ``pdf``, ``svg``, ...) -> what they are."""
    from matplotlib.figure import Figure

    return Figure().canvas.get_supported_filetypes()

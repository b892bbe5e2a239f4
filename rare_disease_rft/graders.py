"""Graders: small pure functions that score a ranked gene list against the answer gene.

They are the rewards of every RL run and the metrics of every benchmark (the same functions).
A score of the answer's rank is registered once, in :data:`RANK_SCORES`; the TRL rewards
(:func:`get_grader`), the default ranker's reward table and the metrics JSON all derive from it.
Rewards of the generated text itself (``format``) are kept apart, in :data:`TEXT_REWARDS`, and
refused where there is no text. Each grader has the signature TRL's ``GRPOTrainer`` expects of a
reward function::

    grader(completions, answer, **kwargs) -> list[float]

where each completion is a ranked list of symbols, a generated text, or a chat completion
(``[{"role": "assistant", "content": "..."}]``), and ``answer`` is the dataset's answer column
(a gene symbol, or ``{"gene": ...}``). Graders are registered by name in :data:`GRADERS`;
configs name them, :func:`get_grader` binds their parameters.

A rank is the 1-based position of the answer in the output order, ``None`` when absent.
Symbols compare case-insensitively after mapping aliases and previous symbols to HGNC.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .genes import gene_names

# Partial credit by rank, as (worst rank, credit) steps: full credit for the right gene first,
# less further down, none beyond the last step or when absent.
DEFAULT_SCHEDULE: tuple[tuple[int, float], ...] = ((1, 1.0), (2, 0.5), (3, 0.35), (5, 0.25), (10, 0.1), (20, 0.05))

ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_JSON_LIST = re.compile(r"\[[^\[\]]*\]", re.DOTALL)
# an item may be set in markdown emphasis or code ("1. **FBN1**"), as chat models write it
_NUMBERED = re.compile(r"^\s*(?:\d+[.):]|[-*•])\s*[*_`]*([A-Za-z0-9][A-Za-z0-9\-\.]*)", re.MULTILINE)
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-\.]{0,19}$")
# quotes, emphasis and sentence punctuation around a symbol ("**FBN1**", "FBN1.")
_DECORATION = "`'\"*_.,;:"


@dataclass
class ParsedRanking:
    genes: list[str] = field(default_factory=list)
    format_ok: bool = False
    format: str = "none"  # "answer_tag", "json", "numbered", "comma", "list" or "none"


def _symbols(items: Iterable[Any], known: set[str] | None) -> list[str]:
    """Approved symbols in order; duplicates and unknown symbols dropped."""
    names = gene_names()
    out: list[str] = []
    for item in items:
        text = str(item).strip().strip(_DECORATION).strip()
        if not _SYMBOL.match(text):
            continue
        symbol = names.normalise(text)
        if known is not None and symbol not in known:
            continue
        if known is None and names.approved(text) is None:
            continue
        if symbol not in out:
            out.append(symbol)
    return out


def parse_ranking(text: str, known: set[str] | None = None) -> ParsedRanking:
    """Turns generated text into a ranked gene list.

    Accepted, in this order: ``<answer>[...]</answer>`` (the documented LLM format), the last
    JSON list in the text, a numbered or bulleted list, or comma-separated symbols (or one symbol) on
    the last non-empty line. ``known`` restricts symbols (e.g. to the shortlist); otherwise any approved
    HGNC symbol counts. ``format_ok`` says whether one of these formats held at least one gene.
    """
    text = text or ""
    tagged = ANSWER_TAG.search(text)
    if tagged:
        inner = tagged.group(1)
        parsed = _parse_plain(inner, known)
        if parsed.genes:
            # any list inside the tag parsed; "answer_tag" is kept for the documented JSON form
            return ParsedRanking(parsed.genes, True, "answer_tag" if parsed.format == "json" else parsed.format)
    return _parse_plain(text, known)


def _parse_plain(text: str, known: set[str] | None) -> ParsedRanking:
    for candidate in reversed(_JSON_LIST.findall(text)):
        try:
            items = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        genes = _symbols(items if isinstance(items, list) else [], known)
        if genes:
            return ParsedRanking(genes, True, "json")
    numbered = _NUMBERED.findall(text)
    if numbered:
        genes = _symbols(numbered, known)
        if genes:
            return ParsedRanking(genes, True, "numbered")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # a single symbol on the last line is a comma-separated list of one (a top-1 answer)
    if lines and ("," in lines[-1] or _SYMBOL.match(lines[-1].strip().strip(_DECORATION))):
        genes = _symbols(lines[-1].split(","), known)
        if genes:
            return ParsedRanking(genes, True, "comma")
    return ParsedRanking()


def as_ranking(completion: Any, known: set[str] | None = None) -> ParsedRanking:
    """A completion of any supported shape -> ranked genes."""
    if isinstance(completion, ParsedRanking):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[0], dict):
        completion = completion[-1].get("content", "")  # chat format: the assistant turn
    if isinstance(completion, str):
        return parse_ranking(completion, known)
    # a ranker's own output: already symbols, kept in order, duplicates dropped
    names = gene_names()
    return ParsedRanking(list(dict.fromkeys(names.normalise(str(g)) for g in completion or [])), True, "list")


def answer_symbol(answer: Any) -> str:
    if isinstance(answer, dict):
        answer = answer.get("gene")
    return gene_names().normalise(str(answer))


def rank_of(ranking: Sequence[str], answer: Any) -> int | None:
    """1-based position of the answer gene in ``ranking``, None if absent.

    Both sides are mapped to approved symbols (docs/SPEC.md): an output of ``MLL2`` finds ``KMT2D``.
    """
    names = gene_names()
    target = answer_symbol(answer)
    for position, gene in enumerate(ranking, 1):
        if names.normalise(str(gene)) == target:
            return position
    return None


# ------------------------------------------------------------------ scores of one rank
def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


def credit(rank: int | None, schedule: Sequence[Sequence[float]] = DEFAULT_SCHEDULE) -> float:
    if rank is None:
        return 0.0
    for worst, value in schedule:
        if rank <= worst:
            return float(value)
    return 0.0


@dataclass(frozen=True)
class RankScore:
    """A score of the answer's rank (``None``: absent), registered once: it is an RL reward of every
    training method and, where it has a ``metric`` name, a column of the metrics JSON."""

    score: Callable[..., float]  # (rank, **params) -> float
    metric: str | None = None  # its key in the metrics JSON (docs/docs/SPEC.md), if reported there


#: every score of a rank; the metrics JSON reports those with a metric name, in this order
RANK_SCORES: dict[str, RankScore] = {
    "top1": RankScore(functools.partial(hit_at, k=1), "top1"),
    "top5": RankScore(functools.partial(hit_at, k=5), "top5"),
    "top10": RankScore(functools.partial(hit_at, k=10), "top10"),
    "top_k": RankScore(hit_at),
    "reciprocal_rank": RankScore(reciprocal, "mrr"),
    "partial_credit": RankScore(credit, "partial_credit"),
}


def rank_score(name: str, **params) -> Callable[[int | None], float]:
    """The registered score of a rank with its parameters bound: ``rank_score("top_k", k=3)(2) == 1.0``."""
    if name in TEXT_REWARDS:
        raise KeyError(f"grader '{name}' scores the text of an answer, not the rank of the gene; it means "
                       f"nothing for a ranker that writes no text (rank graders: {', '.join(RANK_SCORES)})")
    if name not in RANK_SCORES:
        raise KeyError(f"unknown grader '{name}'; choose one of {', '.join(GRADERS)}")
    return functools.partial(RANK_SCORES[name].score, **params)


def metric_scores() -> dict[str, Callable[[int | None], float]]:
    """metric name -> score of a rank, for every registered score the metrics JSON reports."""
    return {s.metric: s.score for s in RANK_SCORES.values() if s.metric}


# ------------------------------------------------------------------ graders (TRL reward shape)
def _ranks(completions: Sequence[Any], answer: Sequence[Any], kwargs: dict) -> list[int | None]:
    known = kwargs.get("candidates")
    out = []
    for i, completion in enumerate(completions):
        allowed = set(known[i]) if known is not None else None
        out.append(rank_of(as_ranking(completion, allowed).genes, answer[i]))
    return out


def format_reward(completions, answer=None, **kwargs) -> list[float]:
    """1.0 for ``<answer>[JSON list]</answer>``, 0.5 for another parseable list, 0 otherwise."""
    known = kwargs.get("candidates")
    scores = []
    for i, completion in enumerate(completions):
        parsed = as_ranking(completion, set(known[i]) if known is not None else None)
        scores.append(1.0 if parsed.format == "answer_tag" and parsed.format_ok else 0.5 if parsed.genes else 0.0)
    return scores


#: rewards of generated text itself, not of the answer's rank: only generative models have them
TEXT_REWARDS: dict[str, Callable[..., list[float]]] = {"format": format_reward}


def get_grader(name: str, **params) -> Callable[..., list[float]]:
    """A registered grader in TRL's reward shape, parameters bound, named so trainers can log it."""
    if name in TEXT_REWARDS:
        base = TEXT_REWARDS[name]

        def grader(completions, answer=None, **kwargs):
            return base(completions, answer, **{**params, **kwargs})
    else:
        score = rank_score(name, **params)

        def grader(completions, answer=None, **kwargs):
            return [score(r) for r in _ranks(completions, answer, kwargs)]

    grader.__name__ = name
    return grader


#: every grader by name, in TRL's reward shape (rank scores, then text rewards)
GRADERS: dict[str, Callable[..., list[float]]] = {name: get_grader(name) for name in (*RANK_SCORES, *TEXT_REWARDS)}

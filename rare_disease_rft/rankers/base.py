"""The one interface every ranker shares: ``rank(case) -> Ranking``.

Knowledge-based rankers, the RL-trained policy and LLMs all implement it, so the benchmark, the
app and the LLM shortlist treat them alike (scikit-learn's lesson).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..hpo import HPO, PHENOTYPIC_ABNORMALITY, HPOError
from ..tasks import Task

if TYPE_CHECKING:
    import scipy.sparse as sp


@dataclass(frozen=True)
class Case:
    """What a ranker may see of a patient: current HPO ids, sex and age. Never the answer."""

    present: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    sex: str | None = None
    age_years: float | None = None
    #: the publication whose curated knowledge the ranker must not use (evaluating how a ranker does
    #: for new patients: a case report's own paper informed HPO's annotations); never shown to a model
    withheld_publication: str | None = None

    @classmethod
    def from_task(cls, task: Task, withhold_own_paper: bool = False) -> "Case":
        """The task's patient; with ``withhold_own_paper``, ranked without the knowledge its paper gave."""
        return cls(tuple(task.present), tuple(task.excluded), task.sex, task.age_years,
                   task.pmid if withhold_own_paper else None)

    @classmethod
    def from_ids(cls, hpo: HPO, present: Sequence[str], excluded: Sequence[str] = (), sex=None, age_years=None,
                 notes: list[str] | None = None) -> "Case":
        """A user's patient, by the rule of :func:`read_terms` (what it did is added to ``notes``).

        Raises :class:`HPOError` naming every id that cannot be used, when nothing is present, or
        when no present term is a phenotype (a ranking would carry no information).
        """
        terms = read_terms(hpo, present, excluded)
        if terms.unknown:
            raise HPOError("; ".join(terms.unknown.values()))
        if not terms.present:
            raise HPOError("no present phenotype given; a ranking needs at least one present HPO term")
        if not any(hpo.is_a(t, PHENOTYPIC_ABNORMALITY) for t in terms.present):
            named = ", ".join(f"{t} ({hpo.name(t)})" for t in terms.present)
            raise HPOError(f"no present term is a phenotypic abnormality ({named}: outside {PHENOTYPIC_ABNORMALITY}); "
                           "a ranking on them would carry no information: add at least one present phenotype")
        if notes is not None:
            notes.extend(terms.notes)
        return cls(tuple(terms.present), tuple(terms.excluded), sex, age_years)


@dataclass
class PatientTerms:
    """A patient's terms as :func:`read_terms` reads them: current ids, what was done, what cannot be used."""

    present: list[str]
    excluded: list[str]
    notes: list[str] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # id as given -> why it cannot be used


def both_ways_note(hpo: HPO, term: str) -> str:
    """The note on a term given both present and excluded (it is present): one wording everywhere."""
    return f"{term} ({hpo.name(term)}) was given both present and excluded; it is used as present"


def read_terms(hpo: HPO, present: Sequence[str], excluded: Sequence[str] = ()) -> PatientTerms:
    """The one rule by which a patient's given terms are read, wherever they are given (the command
    line, a batch, the app):

    - obsolete and alternative ids are mapped to the current term, noted; an id the release cannot
      use is named in ``unknown``;
    - a term given both present and excluded is present, noted (a finding seen once was seen);
    - an excluded term of which a present term is a kind (its ancestor: "no abnormality of the
      nervous system" beside "seizure") contradicts the input: the present term stands, noted;
    - a term outside the phenotype branch (a mode of inheritance, the root) is kept, noted: no
      gene's phenotype annotations use it.
    """
    res_present, res_excluded = hpo.resolve_all(list(present)), hpo.resolve_all(list(excluded))
    notes = res_present.notes + res_excluded.notes
    both = [t for t in res_excluded.ids if t in res_present.ids]
    notes += [both_ways_note(hpo, t) for t in both]
    kept = []
    for term in res_excluded.ids:
        if term in both:
            continue
        below = [p for p in res_present.ids if p != term and hpo.is_a(p, term)]
        if below:
            notes.append(f"{term} ({hpo.name(term)}) was given as excluded, but {below[0]} ({hpo.name(below[0])}) is "
                         f"present and is a kind of it: the input contradicts itself, so {term} is not used as excluded")
        else:
            kept.append(term)
    notes += [f"{t} ({hpo.name(t)}) is not a phenotypic abnormality (outside {PHENOTYPIC_ABNORMALITY}); "
              "it is kept, but no gene's phenotype annotations use it"
              for t in res_present.ids + kept if not hpo.is_a(t, PHENOTYPIC_ABNORMALITY)]
    return PatientTerms(res_present.ids, kept, notes, {**res_present.unknown, **res_excluded.unknown})


@dataclass
class Ranking:
    """Genes best first, with scores (higher is better) and, where the ranker has them,
    calibrated probabilities, generated text and whether that text parsed."""

    genes: list[str]
    scores: np.ndarray
    probabilities: np.ndarray | None = None
    text: str | None = None
    format_ok: bool = True
    extra: dict = field(default_factory=dict)

    def top(self, n: int) -> "Ranking":
        return Ranking(
            self.genes[:n], self.scores[:n],
            None if self.probabilities is None else self.probabilities[:n],
            self.text, self.format_ok, self.extra,
        )


class Ranker:
    """Base class: subclasses set ``name`` and implement :meth:`rank`.

    Every hook a caller uses is declared here with a neutral default, so callers never ask which
    kind of ranker they hold; a ranker that wraps another (an LLM over its shortlist ranker)
    delegates them.
    """

    name: str = "ranker"
    #: answer genes of the tasks the ranker was trained on (empty for knowledge-based rankers)
    training_genes: frozenset[str] = frozenset()
    #: ids of the case reports the ranker holds with their answers (a trained ranker's case index)
    indexed_cases: frozenset[str] = frozenset()

    def rank(self, case: Case) -> Ranking:
        raise NotImplementedError

    def rank_many(self, cases: Sequence[Case]) -> list[Ranking]:
        """Batched ranking; generative rankers override it to batch generation."""
        return [self.rank(case) for case in cases]

    def similar_cases(self, case: Case, gene: str, k: int = 3) -> list[dict]:
        """The published cases of ``gene`` the ranker holds that are most like the patient (with PMIDs)."""
        return []

    def case_annotations(self, gene: str) -> "tuple[sp.csr_matrix, sp.csr_matrix] | None":
        """For a gene HPO does not annotate, what its published cases report, as annotations (closure
        and direct rows, 1 x terms, with frequencies); None when the ranker knows no such cases."""
        return None

    def describe(self) -> dict:
        """Versions and provenance, for the app's 'about' panel and model cards."""
        return {"name": self.name}


#: values of one row from which order_by_score sorts keys rather than lexsorts
KEYS_FROM = 1000


def order_by_score(scores: np.ndarray, tie_order: np.ndarray) -> np.ndarray:
    """Indices best first; ties broken by ``tie_order`` (e.g. alphabetical rank), never by the answer
    (for 2-D ``scores``, each row's).

    The order of ``np.lexsort((tie_order, -scores))``. For float32 scores (every ranker's) it is
    one sort of int64 keys instead (see :func:`_order_keys`): 1.6 times faster on one row of
    5,000 genes, eight on seven rows; below KEYS_FROM values of one row lexsort is faster (a
    shortlist of 263: 12 against 38 µs).
    """
    tie_order = np.asarray(tie_order)
    if scores.dtype != np.float32 or not scores.shape[-1] or (scores.ndim == 1 and len(scores) < KEYS_FROM):
        if scores.ndim > 1:
            return np.stack([order_by_score(row, tie_order) for row in scores])
        return np.lexsort((tie_order, -scores))
    by_tie = _tie_permutation(tie_order)
    return by_tie[np.sort(_order_keys(scores, by_tie), axis=-1) & 0xFFFFFFFF]


def best_by_score(scores: np.ndarray, k: int, preference: np.ndarray) -> np.ndarray:
    """The indices of the best ``k`` of float32 ``scores`` (of each row's, for 2-D ``scores``: a row
    each), in no particular order; among tied values the one earlier in ``preference`` (every index
    once, e.g. an order by another score) is taken first.

    The same set on every machine: numpy's selection (``argpartition``) picks among values tied at
    the k-th by an algorithm that differs with the processor's instruction set (AVX-512 or not), and
    thousands of genes can tie there (a score of 0 for every gene without cases). With the
    preference in the keys no two keys tie, and selecting them is faster too: 0.23 ms for five rows
    of 5,267 genes, against 0.41 for argpartition, slow among the ties."""
    keys = _order_keys(scores, preference)
    if k < keys.shape[-1]:
        keys = np.partition(keys, k - 1, axis=-1)[..., :k]
    return preference[keys & 0xFFFFFFFF]


def _order_keys(scores: np.ndarray, by_tie: np.ndarray) -> np.ndarray:
    """float32 ``scores`` as int64 keys whose ascending order is ``order_by_score``'s: the scores are
    taken in tie order (``by_tie``: positions by tie value), and a key is a score's bits, made to
    order as the negated floats do, above its position there (so no two keys of a row are equal).
    Worked in place: on five rows of 5,000 genes each temporary cost as much as the work."""
    descending = np.take(scores, by_tie, axis=-1)
    np.negative(descending, out=descending)
    descending += np.float32(0.0)  # -0.0 + 0.0 is 0.0: lexsort ties the zeros
    nan = np.isnan(descending)
    if nan.any():
        descending[nan] = np.float32(np.nan)  # a positive NaN: lexsort puts NaN last
    bits = descending.view(np.int32)
    bits ^= (bits >> 31) & 0x7FFFFFFF  # negative floats' other bits reversed: the float order as integers
    keys = bits.astype(np.int64)
    keys <<= 32
    keys |= np.arange(len(by_tie), dtype=np.int64)
    return keys


def _tie_permutation(tie_order: np.ndarray) -> np.ndarray:
    """The positions of ``tie_order`` by its values, equal values by position (a stable argsort);
    for a permutation of 0 .. n - 1 (alphabetical ranks of all genes) its inverse, without a sort."""
    n = len(tie_order)
    if n and tie_order.dtype.kind in "iu" and tie_order.min() == 0 and tie_order.max() == n - 1:
        inverse = np.full(n, -1, dtype=np.int64)
        inverse[tie_order] = np.arange(n)
        if inverse.min() >= 0:  # every value once
            return inverse
    return np.argsort(tie_order, kind="stable")

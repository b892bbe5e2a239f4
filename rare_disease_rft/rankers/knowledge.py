"""Knowledge-based rankers that need no training: they score every annotated disease at once
and give each gene the score of its best-matching disease, as Phenomizer and LIRICAL do.

Both rest on :class:`TermMatcher`: for each patient term ``q`` and every row (a disease, or a
gene) at once, the best match over the ancestors ``c`` of ``q`` (``q`` included) that the row is
annotated with (directly or through a descendant): the IC of the most informative common ancestor
(Resnik) of ``q`` and the row's closest annotation, or a likelihood ratio. A term's column against
every row does not depend on the patient, so it is computed once and kept (bounded).

A case may name a publication whose curated knowledge must not be used
(``Case.withheld_publication``: evaluating a case report as if it were a new patient). Every row
is scored as released, then the few rows whose annotations that publication was the only source
of are scored again on their annotations without it (:meth:`TermMatcher.rescored_without`).

Scoring diseases rather than genes matters: a gene's annotations are the union of its diseases'
(LMNA has more than ten), and on the validation split the disease-level scores ranked the causal
gene first 4-5 points more often than the same scores over gene annotations.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..hpo import HPO, UNKNOWN_FREQUENCY, WITHHELD_CACHE_SIZE, AnnotationRows, load_hpo
from .base import Case, Ranker, Ranking, order_by_score


#: what each matcher may keep of the per-term columns it computed (least recently used dropped
#: first): 48 MiB holds about 1,400 columns against the 8,861 diseases, the terms of roughly the
#: last 500 patients (a term recurs: 90% of the test split's terms are among the 1,000 last seen)
COLUMN_CACHE_BYTES = 48 * 2**20


class ColumnCache:
    """Columns (one value per row) by key, least recently used dropped first once they take more
    than ``max_bytes``. Thread-safe: the app's sessions share one ranker."""

    def __init__(self, max_bytes: int = COLUMN_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._columns: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            column = self._columns.get(key)
            if column is not None:
                self._columns.move_to_end(key)
            return column

    def put(self, key: tuple, column: np.ndarray) -> None:
        column.flags.writeable = False  # shared by every later caller
        with self._lock:
            if key in self._columns:
                return
            self._columns[key] = column
            self.bytes += column.nbytes
            while self.bytes > self.max_bytes and self._columns:
                self.bytes -= self._columns.popitem(last=False)[1].nbytes

    def __len__(self) -> int:
        return len(self._columns)


def dense_columns(matrix: sp.csc_matrix, columns: np.ndarray) -> np.ndarray:
    """``matrix[:, columns].toarray()`` (Fortran order, as scipy gives it) read straight from the
    CSC arrays, without scipy's fancy-indexing overhead. The order matters to whoever sums along
    rows: it decides the rounding."""
    out = np.zeros((matrix.shape[0], len(columns)), dtype=matrix.dtype, order="F")
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for j, c in enumerate(columns):
        out[indices[indptr[c] : indptr[c + 1]], j] = data[indptr[c] : indptr[c + 1]]
    return out


class TermMatcher:
    """Patient terms against every row's annotations (rows x terms, sparse, column-sliced).

    Each patient term's columns (its best match, likelihood ratio and frequency against every
    row) do not depend on the patient: they are computed once and kept in a bounded
    :class:`ColumnCache`, and a patient's matrix is its terms' columns side by side. The terms
    not kept yet are computed together, as their ancestors overlap.

    ``withheld_rows`` (a publication -> the rows that change without it, or None) lets scores
    leave a publication's knowledge out (:meth:`rescored_without`).
    """

    def __init__(self, hpo: HPO, closure: sp.csr_matrix, direct: sp.csr_matrix, background: np.ndarray | None = None,
                 cache_bytes: int = COLUMN_CACHE_BYTES,
                 withheld_rows: Callable[[str], AnnotationRows | None] | None = None):
        self.hpo = hpo
        self.withheld_rows = withheld_rows
        self._without = functools.lru_cache(maxsize=WITHHELD_CACHE_SIZE)(self._rows_without)
        self.closure = closure.tocsc()  # column slices are what every query takes
        self.closure.sum_duplicates()  # dense_columns reads one entry per (row, column)
        direct = direct.copy()
        direct.data = np.maximum(np.nan_to_num(direct.data, nan=UNKNOWN_FREQUENCY), 1e-6)
        self.direct = direct.tocsc()
        self.direct.sum_duplicates()
        self.n_rows = closure.shape[0]
        # frequency-weighted background: how often a patient with a random row's condition shows t
        # (or another matcher's, so that scores of the two sets of rows compare)
        if background is None:
            n = max(self.n_rows, 1)
            background = np.maximum(np.asarray(self.closure.sum(axis=0)).ravel() / n, 1.0 / n).astype(np.float32)
        self.background = background
        self.columns = ColumnCache(cache_bytes)

    def _rows_without(self, publication: str) -> tuple[np.ndarray, TermMatcher] | None:
        rows = self.withheld_rows(publication) if self.withheld_rows else None
        if rows is None:
            return None
        # the same background: one paper's rows barely move it (see hpo.WithheldKnowledge)
        return rows.rows, TermMatcher(self.hpo, rows.closure, rows.direct, background=self.background)

    def rescored_without(self, publication: str | None, score: Callable[[TermMatcher], np.ndarray]) -> np.ndarray:
        """``score(self)`` (one value, or a row of values, per row), with the rows whose annotations
        ``publication`` was the only source of scored again without them; the score of a row must
        depend on that row alone. Only ``score(self)`` when no publication is withheld."""
        out = score(self)
        changed = self._without(publication) if publication else None
        if changed is not None:
            rows, matcher = changed
            out[rows] = score(matcher)
        return out

    def _matrix(self, term_ids: list[str], key: tuple, compute: Callable[[list[int]], list[np.ndarray]],
                order: str = "C") -> np.ndarray:
        """rows x terms, each term's column from the cache or, for the terms it lacks, from
        ``compute(their indices)``. The memory order is each method's since before the cache: it
        decides how sums along rows round."""
        terms = [self.hpo.index[t] for t in term_ids]
        found = {q: self.columns.get((*key, q)) for q in terms}
        missing = [q for q, column in found.items() if column is None]
        if missing:
            for q, column in zip(missing, compute(missing)):
                found[q] = column
                self.columns.put((*key, q), column)
        out = np.empty((self.n_rows, len(terms)), dtype=np.float32, order=order)
        for j, q in enumerate(terms):
            out[:, j] = found[q]
        return out

    def _ancestor_blocks(self, terms: list[int], matrices: list[sp.csc_matrix]):
        """The ancestors of each term, their union, and each matrix's dense rows x union block."""
        lists = [self.hpo.ancestor_indices(q) for q in terms]
        union = np.unique(np.concatenate(lists))
        return lists, union, [dense_columns(m, union) for m in matrices]

    def best_match(self, term_ids: list[str]) -> np.ndarray:
        """rows x len(term_ids): for each term q, the highest IC of an ancestor c of q (q included)
        that the row is annotated with (directly or through a descendant): Resnik similarity of q
        and the row's closest annotation."""
        return self._matrix(term_ids, ("best_match",), self._best_match_columns)

    def _best_match_columns(self, terms: list[int]) -> list[np.ndarray]:
        lists, union, (block,) = self._ancestor_blocks(terms, [self.closure])
        block = (block > 0) * self.hpo.information_content[union].astype(np.float32)
        return [block[:, np.searchsorted(union, anc)].max(axis=1) for anc in lists]

    def likelihood_ratio(self, term_ids: list[str], near_miss: float, noise: float) -> np.ndarray:
        """rows x terms: P(q | row) / P(q | background) for present terms ``q``.

        The row explains q exactly (annotated with q or a descendant, frequency f): f / B(q).
        It is annotated with an ancestor a of q: the patient's term is a refinement, f_a / B(a).
        It only shares an ancestor c (a near miss): ``near_miss`` * f_c / B(c).
        Never below ``noise`` / B(q): any term may be reported by chance.
        """
        return self._matrix(term_ids, ("likelihood_ratio", near_miss, noise),
                            functools.partial(self._likelihood_ratio_columns, near_miss=near_miss, noise=noise))

    def _likelihood_ratio_columns(self, terms: list[int], near_miss: float, noise: float) -> list[np.ndarray]:
        lists, union, (closure, direct) = self._ancestor_blocks(terms, [self.closure, self.direct])
        inverse = 1.0 / self.background[union]
        closure *= inverse
        direct *= inverse
        columns = []
        for q, anc in zip(terms, lists):
            cols = np.searchsorted(union, anc)
            own = np.searchsorted(union, q)
            columns.append(np.maximum.reduce([
                closure[:, own],
                direct[:, cols].max(axis=1),
                near_miss * closure[:, cols].max(axis=1),
                np.full(self.n_rows, noise * inverse[own], dtype=np.float32),
            ]))
        return columns

    def frequency(self, term_ids: list[str]) -> np.ndarray:
        """rows x terms: the propagated annotation frequency of each term (0 if unannotated)."""
        return self._matrix(term_ids, ("frequency",), self._frequency_columns, order="F")

    def _frequency_columns(self, terms: list[int]) -> list[np.ndarray]:
        return list(dense_columns(self.closure, terms).T)


class GeneOrder:
    """Every annotated gene, its diseases, and the one tie rule of every ranker (alphabetical)."""

    def __init__(self, hpo: HPO):
        self.genes = np.array(hpo.gene_symbols, dtype=object)
        self.alphabetical = np.argsort(np.argsort(self.genes.astype(str)))
        pairs = hpo.gene_diseases.tocsr()
        pairs.sort_indices()
        #: each gene's diseases, gene after gene; genes without a disease have none
        self._pair_disease = pairs.indices
        self._genes_with_diseases = np.flatnonzero(np.diff(pairs.indptr))
        self._first_pair = pairs.indptr[self._genes_with_diseases]

    def best_of_diseases(self, disease_scores: np.ndarray) -> np.ndarray:
        """Each gene's score: that of its best-scoring disease (-inf for a gene without one)."""
        out = np.full(len(self.genes), -np.inf, dtype=np.float32)
        # a maximum over each gene's run of pairs: ten times faster than np.maximum.at
        out[self._genes_with_diseases] = np.maximum.reduceat(disease_scores[self._pair_disease], self._first_pair)
        return out

    def ranking(self, scores: np.ndarray) -> Ranking:
        order = order_by_score(scores, self.alphabetical)
        return Ranking(genes=list(self.genes[order]), scores=scores[order])


@functools.lru_cache(maxsize=4)
def gene_matcher(hpo: HPO) -> TermMatcher:
    """Terms against gene annotations, one per knowledge base and process."""
    return TermMatcher(hpo, hpo.gene_closure, hpo.gene_terms, withheld_rows=hpo.genes_without)


@functools.lru_cache(maxsize=4)
def disease_matcher(hpo: HPO) -> TermMatcher:
    """Terms against disease annotations, one per knowledge base and process."""
    return TermMatcher(hpo, hpo.disease_closure, hpo.disease_terms, withheld_rows=hpo.diseases_without)


@functools.lru_cache(maxsize=4)
def gene_order(hpo: HPO) -> GeneOrder:
    return GeneOrder(hpo)


class PhenomizerRanker(Ranker):
    """Semantic similarity: the mean over patient terms of the IC of the best match (Resnik)
    among a disease's annotations, as in Phenomizer (Köhler et al. 2009), one-sided; a gene
    scores as its best disease."""

    name = "phenomizer"

    def __init__(self, hpo: HPO | None = None):
        hpo = hpo or load_hpo()
        self.hpo = hpo
        self.diseases = disease_matcher(hpo)
        self.order = gene_order(hpo)

    def disease_scores(self, case: Case) -> np.ndarray:
        return self.diseases.rescored_without(case.withheld_publication,
                                              lambda m: m.best_match(list(case.present)).mean(axis=1))

    def scores(self, case: Case) -> np.ndarray:
        return self.order.best_of_diseases(self.disease_scores(case))

    def rank(self, case: Case) -> Ranking:
        return self.order.ranking(self.scores(case))

    def describe(self) -> dict:
        return {"name": self.name, "kind": "knowledge", "hpo_version": self.hpo.version}


@dataclass(frozen=True)
class LikelihoodSettings:
    """Defaults chosen on the validation split (README, benchmark section)."""

    #: weight of a near miss (the disease has a sibling or cousin of the patient's term)
    near_miss: float = 0.1
    #: chance that a patient shows a term the gene does not explain
    noise: float = 0.001
    #: weight of excluded terms against a gene relative to present terms; in case reports,
    #: excluded features are often those typical of the very disease studied (so kept low:
    #: at weight 1 validation top-1 fell from 0.41 to 0.29)
    excluded_weight: float = 0.1
    #: cap on a disease's frequency for an excluded term: no annotation makes a feature certain
    max_frequency: float = 0.95


class LikelihoodRanker(Ranker):
    """Likelihood ratios in the spirit of LIRICAL (Robinson et al. 2020), per disease; a gene
    scores as its best disease.

    Present terms add ``log LR`` from :meth:`TermMatcher.likelihood_ratio`. An excluded term
    adds ``log (1 - F[d,q]) / (1 - B[q])``: a feature the disease usually shows counts against it.
    """

    name = "likelihood"

    def __init__(self, hpo: HPO | None = None, settings: LikelihoodSettings = LikelihoodSettings()):
        hpo = hpo or load_hpo()
        self.hpo = hpo
        self.matcher = disease_matcher(hpo)
        self.order = gene_order(hpo)
        self.settings = settings

    def present_log_lr(self, case: Case, matcher: TermMatcher | None = None) -> np.ndarray:
        """diseases (without the case's withheld publication), or the rows of another ``matcher``,
        x present terms."""
        if matcher is None:
            return self.matcher.rescored_without(case.withheld_publication, lambda m: self.present_log_lr(case, m))
        s = self.settings
        return np.log(matcher.likelihood_ratio(list(case.present), s.near_miss, s.noise))

    def excluded_log_lr(self, case: Case, matcher: TermMatcher | None = None) -> np.ndarray:
        """diseases (without the case's withheld publication), or the rows of another ``matcher``,
        x excluded terms."""
        if matcher is None:
            return self.matcher.rescored_without(case.withheld_publication, lambda m: self.excluded_log_lr(case, m))
        cap = self.settings.max_frequency
        freq = np.minimum(matcher.frequency(list(case.excluded)), cap)
        background = np.minimum(matcher.background[self.hpo.term_indices(list(case.excluded))], cap)
        return np.log1p(-freq) - np.log1p(-background)

    def disease_scores(self, case: Case) -> np.ndarray:
        score = self.present_log_lr(case).sum(axis=1)
        if case.excluded:
            score += self.settings.excluded_weight * self.excluded_log_lr(case).sum(axis=1)
        return score

    def scores(self, case: Case) -> np.ndarray:
        return self.order.best_of_diseases(self.disease_scores(case))

    def rank(self, case: Case) -> Ranking:
        return self.order.ranking(self.scores(case))

    def describe(self) -> dict:
        return {"name": self.name, "kind": "knowledge", "hpo_version": self.hpo.version,
                "settings": self.settings.__dict__}

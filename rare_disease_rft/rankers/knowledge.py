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
from typing import Callable, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from ..hpo import HPO, UNKNOWN_FREQUENCY, WITHHELD_CACHE_SIZE, AnnotationRows, load_hpo
from .base import Case, Ranker, Ranking, order_by_score


#: what each matcher may keep of the per-term columns it computed, least recently used dropped
#: first. Against the 8,861 diseases the columns of all 2,305 terms of the test split's 1,373
#: patients take about 80 MiB (kept compact: see ColumnCache).
COLUMN_CACHE_BYTES = 96 * 2**20
#: rows from which a column is kept compact (see ColumnCache)
COMPACT_FROM = 1024
#: columns up to which dense_columns and features.product_by_columns take them one by one (beyond,
#: all entries at once)
FEW_COLUMNS = 6
#: runs below which RunMaxima takes the maximum of one column's runs by one reduceat
REDUCEAT_RUNS = 2000
#: rows up to which row_sums stacks the columns and lets numpy sum them (genes known only from
#: cases, the rows a withheld paper changes)
SHORT_ROWS = 256


class ColumnCache:
    """float32 columns (one value per row) by key, least recently used dropped first once they
    take more than ``max_bytes``. A column of at least COMPACT_FROM rows most of which hold its
    smallest or its largest value (likelihood ratios at the noise floor, frequencies at 0) is kept
    as that value and the rows that differ, bit for bit. Thread-safe: the app's sessions share one ranker."""

    def __init__(self, max_bytes: int = COLUMN_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        #: key -> (the column, or a CompactColumn, its bytes)
        self._columns: OrderedDict[tuple, tuple[np.ndarray | CompactColumn, int]] = OrderedDict()
        self._length = 0  # of every column: its matcher's rows
        self._lock = threading.Lock()

    def get(self, key: tuple) -> np.ndarray | None:
        """The column ``key`` (read-only), None if it is not kept."""
        return self.get_many([key])[0]

    def get_many(self, keys: list[tuple], compact: bool = False) -> list:
        """The columns of ``keys`` (None for those not kept): a patient asks for a few dozen at once,
        and the compact ones are filled in as rows of one block (two numpy calls fewer each; every
        column of a cache has one length, its matcher's rows). With ``compact``, those are given as
        they are kept, a :class:`CompactColumn` each (:func:`row_sums` adds them without filling them in)."""
        with self._lock:
            kept, move = self._columns.get, self._columns.move_to_end
            out = []
            for key in keys:
                entry = kept(key)
                if entry is None:
                    out.append(None)
                else:
                    move(key)
                    out.append(entry[0])
        if compact:
            return out
        filled = [i for i, column in enumerate(out) if isinstance(column, CompactColumn)]
        if filled:
            block = np.empty((len(filled), self._length), dtype=np.float32)
            block[:] = np.array([out[i].common for i in filled], dtype=np.float32)[:, None]
            for row, i in zip(block, filled):
                row[out[i].rows] = out[i].values
                out[i] = row
        return out

    def put(self, key: tuple, column: np.ndarray) -> None:
        column = np.array(column, dtype=np.float32)  # a copy: the caller's block is not kept alive
        column.flags.writeable = False  # shared by every later caller
        bits = column.view(np.uint32)
        differ = min((bits != np.asarray(v, np.float32).view(np.uint32) for v in (column.min(), column.max())),
                     key=np.count_nonzero) if len(column) else bits != 0
        rows = np.flatnonzero(differ).astype(np.uint16 if len(column) <= 2**16 else np.int32)
        # short columns (a few genes known only from cases) are kept whole: filling one in costs more than it saves
        if len(column) >= COMPACT_FROM and rows.nbytes + 4 * len(rows) < column.nbytes:
            entry = (CompactColumn(column[np.argmin(differ)], rows, column[rows]), rows.nbytes + 4 * len(rows))
        else:
            entry = (column, column.nbytes)
        with self._lock:
            if key in self._columns:
                return
            self._length = len(column)
            self._columns[key] = entry
            self.bytes += entry[1]
            while self.bytes > self.max_bytes and self._columns:
                self.bytes -= self._columns.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._columns)


def dense_columns(matrix: sp.csc_matrix, columns: np.ndarray) -> np.ndarray:
    """``matrix[:, columns].toarray()`` (Fortran order, as scipy gives it) read straight from the
    CSC arrays, without scipy's fancy-indexing overhead. The order matters to whoever sums along
    rows: it decides the rounding."""
    out = np.zeros((matrix.shape[0], len(columns)), dtype=matrix.dtype, order="F")
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    if len(columns) <= FEW_COLUMNS:  # a slice each: fewer numpy calls than the gather below
        for j, c in enumerate(columns):
            out[indices[indptr[c] : indptr[c + 1]], j] = data[indptr[c] : indptr[c + 1]]
        return out
    columns = np.asarray(columns, dtype=np.int64)
    starts = indptr[columns]
    lengths = indptr[columns + 1] - starts
    positions, _ = span_positions(starts, lengths)
    # every column's entries at once, into the flat columns (out.T is out's memory, C-order)
    out.T.reshape(-1)[np.repeat(np.arange(len(columns)) * matrix.shape[0], lengths) + indices[positions]] = data[positions]
    return out


class CompactColumn(NamedTuple):
    """A kept column as :class:`ColumnCache` keeps it: ``common`` in every row but ``rows``, which hold ``values``."""

    common: np.float32
    rows: np.ndarray
    values: np.ndarray

    def dense(self, n_rows: int) -> np.ndarray:
        out = np.full(n_rows, self.common, dtype=np.float32)
        out[self.rows] = self.values
        return out


def _add_column(total: np.ndarray, column: np.ndarray | CompactColumn) -> None:
    """``total += column`` in place, bit for bit as with the column filled in: a compact column's
    common value is added to every row and its other rows are then set to their own sums (a
    column filled in first was written and read again in full: half of a ranking's memory traffic)."""
    if isinstance(column, CompactColumn):
        rows = column.rows.astype(np.intp)
        own = total[rows] + column.values
        np.add(total, column.common, out=total)
        total[rows] = own
    else:
        np.add(total, column, out=total)


def row_sums(columns: list[np.ndarray | CompactColumn], n_rows: int) -> np.ndarray:
    """``np.stack(columns, axis=1).sum(axis=1)`` bit for bit (float32), without the matrix (columns
    dense or compact: :class:`CompactColumn`).

    numpy adds to 0.0 each row of a C-order matrix summed pairwise (``pairwise_sum`` in numpy's
    ``loops_utils.h.src``: below 8 values one after another, up to 128 in eight interleaved partial
    sums, beyond that in halves); done here for all rows at once, column by column, it is seven
    times faster on 8,861 rows of 10 terms. For a few rows (SHORT_ROWS) numpy's sum of the stacked
    columns is faster still: three calls instead of one a column. A test holds it to numpy's result.
    """
    n = len(columns)
    if n >= 8 and n_rows <= SHORT_ROWS:  # numpy's own sum: for a few rows one matrix costs less than a pass a column
        return np.ascontiguousarray(np.array([column.dense(n_rows) if isinstance(column, CompactColumn) else column
                                              for column in columns], dtype=np.float32).T).sum(axis=1)
    if n < 8:
        out = np.zeros(n_rows, dtype=np.float32)
        for column in columns:
            _add_column(out, column)
        return out
    if n <= 128:
        partial = [column.dense(n_rows) if isinstance(column, CompactColumn) else np.array(column, dtype=np.float32)
                   for column in columns[:8]]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                _add_column(partial[j], columns[i + j])
            i += 8
        out = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]))
        for column in columns[i:]:
            _add_column(out, column)
    else:
        half = n // 2 - (n // 2) % 8
        out = row_sums(columns[:half], n_rows) + row_sums(columns[half:], n_rows)
    return np.add(out, np.float32(0.0), out=out)  # a sum of -0.0 only is 0.0, as numpy has it


class TermMatcher:
    """Patient terms against every row's annotations (rows x terms, sparse, column-sliced).

    Each patient term's columns (its best match and likelihood ratios against every row) do not
    depend on the patient: they are computed once and kept in a bounded
    :class:`ColumnCache`, and a patient's scores are sums over their terms' columns. The terms
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
        self._direct_rows = direct
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

    def rescored_without(self, publication: str | None, score: Callable[[TermMatcher, np.ndarray | None], np.ndarray],
                         rows: np.ndarray | None = None) -> np.ndarray:
        """``score(self, rows)``: one value, or a row of values, per row (or per row of ``rows``,
        indices), with the rows whose annotations ``publication`` was the only source of scored
        again without them, as ``score(matcher of those rows, their indices there)`` (None: all of
        them); the score of a row must depend on that row alone. Only ``score(self, rows)`` when no
        publication is withheld."""
        out = score(self, rows)
        changed = self._without(publication) if publication else None
        if changed is not None:
            changed_rows, matcher = changed  # sorted
            if rows is None:
                out[changed_rows] = score(matcher, None)
            else:
                hit = np.flatnonzero(np.isin(rows, changed_rows))
                if len(hit):
                    out[hit] = score(matcher, np.searchsorted(changed_rows, rows[hit]))
        return out

    @functools.cached_property
    def direct(self) -> sp.csc_matrix:
        """The direct annotations by column, unstated frequencies filled: built when first asked
        (likelihood ratios need them; the gene matcher, for annotated shares only, never does)."""
        direct = self._direct_rows.copy()
        direct.data = np.maximum(np.nan_to_num(direct.data, nan=UNKNOWN_FREQUENCY), 1e-6)
        direct = direct.tocsc()
        direct.sum_duplicates()
        return direct

    def _columns(self, term_ids: list[str], key: tuple, compute: Callable[[list[int]], list[np.ndarray]],
                 compact: bool = False) -> list:
        """Each term's column, from the cache or, for the terms it lacks, ``compute(their indices)``
        (``compact``: kept ones as they are kept, for :func:`row_sums`)."""
        terms = [self.hpo.index[t] for t in term_ids]
        unique = list(dict.fromkeys(terms))
        found = dict(zip(unique, self.columns.get_many([(*key, q) for q in unique], compact)))
        missing = [q for q, column in found.items() if column is None]
        if missing:
            for q, column in zip(missing, compute(missing)):
                found[q] = column
                self.columns.put((*key, q), column)
        return [found[q] for q in terms]

    def _matrix(self, columns: list[np.ndarray]) -> np.ndarray:
        """rows x terms in Fortran order, as scipy's column slices were: sums along its rows
        round as they did before the cache."""
        out = np.empty((len(columns[0]) if columns else self.n_rows, len(columns)), dtype=np.float32, order="F")
        for j, column in enumerate(columns):
            out[:, j] = column
        return out

    def _ancestor_blocks(self, terms: list[int], matrices: list[sp.csc_matrix]):
        """The ancestors of each term, their union, and each matrix's dense rows x union block."""
        lists = [self.hpo.ancestor_indices(q) for q in terms]
        union = np.unique(np.concatenate(lists))
        return lists, union, [dense_columns(m, union) for m in matrices]

    def mean_best_match(self, term_ids: list[str]) -> np.ndarray:
        """Per row, the mean over the terms q of the highest IC of an ancestor c of q (q included)
        that the row is annotated with (directly or through a descendant): the Resnik similarity
        of q and the row's closest annotation, averaged (Phenomizer's one-sided score)."""
        if not term_ids:
            return np.full(self.n_rows, np.nan, dtype=np.float32)  # as numpy's mean of nothing
        columns = self._columns(term_ids, ("best_match",), self._best_match_columns, compact=True)
        return row_sums(columns, self.n_rows) / np.float32(len(term_ids))

    def _best_match_columns(self, terms: list[int]) -> list[np.ndarray]:
        lists, union, (block,) = self._ancestor_blocks(terms, [self.closure])
        block = (block > 0) * self.hpo.information_content[union].astype(np.float32)
        return [block[:, np.searchsorted(union, anc)].max(axis=1) for anc in lists]

    def log_likelihood_ratio(self, term_ids: list[str], near_miss: float, noise: float) -> np.ndarray:
        """Per row, the sum over present terms ``q`` of log P(q | row) / P(q | background).

        The row explains q exactly (annotated with q or a descendant, frequency f): f / B(q).
        It is annotated with an ancestor a of q: the patient's term is a refinement, f_a / B(a).
        It only shares an ancestor c (a near miss): ``near_miss`` * f_c / B(c).
        Never below ``noise`` / B(q): any term may be reported by chance.
        """
        columns = self._columns(term_ids, ("log_likelihood_ratio", near_miss, noise),
                                functools.partial(self._log_likelihood_ratio_columns, near_miss=near_miss, noise=noise),
                                compact=True)
        return row_sums(columns, self.n_rows)

    def _log_likelihood_ratio_columns(self, terms: list[int], near_miss: float, noise: float) -> list[np.ndarray]:
        lists, union, (closure, direct) = self._ancestor_blocks(terms, [self.closure, self.direct])
        inverse = 1.0 / self.background[union]
        closure *= inverse
        direct *= inverse
        columns = []
        for q, anc in zip(terms, lists):
            cols = np.searchsorted(union, anc)
            own = np.searchsorted(union, q)
            columns.append(np.log(np.maximum.reduce([
                closure[:, own],
                direct[:, cols].max(axis=1),
                near_miss * closure[:, cols].max(axis=1),
                np.full(self.n_rows, noise * inverse[own], dtype=np.float32),
            ])))
        return columns

    def log_excluded_ratio(self, term_ids: list[str], max_frequency: float, rows: np.ndarray | None = None) -> np.ndarray:
        """Per row (or per row of ``rows``), the sum over excluded terms ``q`` of log (1 - F[q]) /
        (1 - B[q]), frequencies capped at ``max_frequency``: a feature the row usually shows counts
        against it."""
        columns = self._columns(term_ids, ("log_excluded_ratio", max_frequency),
                                functools.partial(self._log_excluded_ratio_columns, cap=max_frequency))
        if rows is None or self.n_rows == 1:
            every = self._matrix(columns).sum(axis=1)
            return every if rows is None else every[rows]
        # numpy sums a Fortran-order matrix's rows column after column, as for all rows, unless it
        # has one row (then it is C-order too, and summed pairwise): a second row keeps the order
        # (a matcher of one row, a withheld paper's, summed its one row pairwise: above)
        some = np.append(rows, rows[:1]) if len(rows) == 1 else rows
        return self._matrix([column[some] for column in columns]).sum(axis=1)[: len(rows)]

    def _log_excluded_ratio_columns(self, terms: list[int], cap: float) -> list[np.ndarray]:
        frequency = np.minimum(dense_columns(self.closure, terms), cap)
        return list((np.log1p(-frequency) - np.log1p(-np.minimum(self.background[terms], cap))).T)

    def annotated_share(self, term_ids: list[str], rows: np.ndarray | None = None) -> np.ndarray:
        """Per row (or per row of ``rows``), the share of the terms the row is annotated with (the
        term or a descendant, at a frequency above 0): counted from the closure's columns, no column
        made dense (the same float64 shares as the mean of a rows x terms matrix of booleans)."""
        counts = self._positive.counts(self.hpo.term_indices(term_ids))
        return (counts if rows is None else counts[rows]) / len(term_ids)

    @functools.cached_property
    def _positive(self) -> PositiveEntries:
        return PositiveEntries(self.closure)


def span_positions(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions ``starts[i] .. starts[i] + lengths[i] - 1`` of every span, laid end to end,
    and where each span begins among them (a gather of many slices of a sparse matrix's arrays)."""
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum())), firsts


class PositiveEntries:
    """Where a CSC matrix holds positive entries, by column: per row, in how many of some columns it
    holds one, counted from those columns' slices alone, gathered at once (nothing made dense)."""

    def __init__(self, matrix: sp.csc_matrix):
        positive = matrix.copy()
        positive.data = (positive.data > 0).astype(np.int8)
        positive.eliminate_zeros()
        self.indptr, self.indices, self.n_rows = positive.indptr, positive.indices, matrix.shape[0]

    def counts(self, columns: Sequence[int]) -> np.ndarray:
        indptr, indices = self.indptr, self.indices
        # a patient's few dozen columns: their slices joined cost less than a gather of their positions
        rows = [indices[indptr[c] : indptr[c + 1]] for c in np.asarray(columns, dtype=np.int64).tolist()]
        return np.bincount(np.concatenate(rows) if rows else indices[:0], minlength=self.n_rows)


class RunMaxima:
    """The maximum of each run of ``members``' values (run i: ``members[starts[i] : starts[i] +
    counts[i]]``), ``fill`` for an empty run: the best disease of each gene, the best case of each
    indexed gene. Values are one per member, or members x columns (a column each, e.g. patients).

    Runs are grouped by length (1, 2, 3-4, 5-8, ...): per group, a block of its runs' members
    (shorter runs padded with their last member, which leaves a maximum as it is) and one gather
    and one vectorised maximum along the block's axis, where numpy's maximum along short rows took
    ten times as long. Blocks are length x runs, or runs x length when the runs are fewer (numpy
    reduces the contiguous axis fastest). For one column and fewer than REDUCEAT_RUNS runs, one
    reduceat over the members laid end to end is faster still: its cost is per run, the blocks'
    per group (540 genes' cases: 38 against 70 µs; 5,255 genes' diseases: 143 against 38)."""

    def __init__(self, starts: np.ndarray, counts: np.ndarray, members: np.ndarray):
        self.n_runs = len(counts)
        self._filled = np.flatnonzero(counts)
        #: the members laid end to end and where each run begins among them, for one reduceat (None: too many runs)
        self._laid_out = None
        if len(self._filled) < REDUCEAT_RUNS:
            positions, firsts = span_positions(starts[self._filled], counts[self._filled])
            self._laid_out = (members[positions].astype(np.intp), firsts)
        self._blocks = []
        width = 1
        while (counts > width // 2).any():
            runs = np.flatnonzero((counts > width // 2) & (counts <= width))
            if len(runs):
                taken = np.minimum(np.arange(width)[:, None], counts[runs] - 1)
                block = members[starts[runs] + taken].astype(np.intp)  # intp: no conversion per gather
                self._blocks.append((runs, block, 0) if width <= len(runs) else (runs, np.ascontiguousarray(block.T), 1))
            width *= 2

    def __call__(self, values: np.ndarray, fill: float, dtype: type = np.float32) -> np.ndarray:
        if values.ndim == 2 and values.shape[1] == 1:  # one column: a gather of 2-D blocks costs twice a 1-D one
            return self(values[:, 0], fill, dtype)[:, None]
        out = np.full((self.n_runs,) + values.shape[1:], fill, dtype=dtype)
        if values.ndim == 1 and self._laid_out is not None:
            members, firsts = self._laid_out
            if len(members):
                out[self._filled] = np.maximum.reduceat(values[members], firsts)
            return out
        for runs, block, axis in self._blocks:
            out[runs] = values[block].max(axis=axis)
        return out


class GeneOrder:
    """Every annotated gene, its diseases, and the one tie rule of every ranker (alphabetical)."""

    def __init__(self, hpo: HPO):
        self.genes = np.array(hpo.gene_symbols, dtype=object)
        self.alphabetical = np.argsort(np.argsort(self.genes.astype(str)))
        pairs = hpo.gene_diseases.tocsr()
        pairs.sort_indices()
        self._pairs = pairs
        counts = np.diff(pairs.indptr)
        self._best_disease = RunMaxima(pairs.indptr[:-1], counts, pairs.indices)  # a gene's diseases, for their best

    def best_of_some(self, genes: np.ndarray, disease_scores: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """:meth:`best_of_diseases` for ``genes`` only, asking ``disease_scores(diseases)`` for the
        scores of just their diseases."""
        starts, lengths = self._pairs.indptr[genes], np.diff(self._pairs.indptr)[genes]
        offsets, first = span_positions(starts, lengths)
        out = np.full(len(genes), -np.inf, dtype=np.float32)
        has = np.flatnonzero(lengths)
        if len(has):  # a disease of two genes is asked twice: each row's score is its own
            out[has] = np.maximum.reduceat(disease_scores(self._pairs.indices[offsets]), first[has])
        return out

    def best_of_diseases(self, disease_scores: np.ndarray) -> np.ndarray:
        """Each gene's score: that of its best-scoring disease (-inf for a gene without one); for
        ``disease_scores`` of diseases x patients, each patient's."""
        return self._best_disease(disease_scores, -np.inf)

    def ranking(self, scores: np.ndarray) -> Ranking:
        order = order_by_score(scores, self.alphabetical)
        return Ranking(genes=list(self.genes[order]), scores=scores[order])


@functools.lru_cache(maxsize=4)
def gene_matcher(hpo: HPO) -> TermMatcher:
    """Terms against gene annotations, one per knowledge base and process."""
    return TermMatcher(hpo, hpo.gene_closure_by_term, hpo.gene_terms, withheld_rows=hpo.genes_without)


@functools.lru_cache(maxsize=4)
def disease_matcher(hpo: HPO) -> TermMatcher:
    """Terms against disease annotations, one per knowledge base and process."""
    return TermMatcher(hpo, hpo.disease_closure_by_term, hpo.disease_terms, withheld_rows=hpo.diseases_without)


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
                                              lambda m, _: m.mean_best_match(list(case.present)))

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

    Present terms add ``log LR`` from :meth:`TermMatcher.log_likelihood_ratio`. An excluded term
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
        """Per disease (without the case's withheld publication), or row of another ``matcher``: the
        log LR summed over the present terms."""
        if matcher is None:
            return self.matcher.rescored_without(case.withheld_publication, lambda m, _: self.present_log_lr(case, m))
        s = self.settings
        return matcher.log_likelihood_ratio(list(case.present), s.near_miss, s.noise)

    def excluded_log_lr(self, case: Case, matcher: TermMatcher | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """Per disease (without the case's withheld publication), or row of another ``matcher``, or
        of ``rows`` only: the log ratio summed over the excluded terms."""
        if matcher is None:
            return self.matcher.rescored_without(case.withheld_publication,
                                                 lambda m, some: self.excluded_log_lr(case, m, some), rows)
        return matcher.log_excluded_ratio(list(case.excluded), self.settings.max_frequency, rows)

    def disease_scores(self, case: Case) -> np.ndarray:
        score = self.present_log_lr(case)
        if case.excluded:
            score += self.settings.excluded_weight * self.excluded_log_lr(case)
        return score

    def scores(self, case: Case) -> np.ndarray:
        return self.order.best_of_diseases(self.disease_scores(case))

    def rank(self, case: Case) -> Ranking:
        return self.order.ranking(self.scores(case))

    def describe(self) -> dict:
        return {"name": self.name, "kind": "knowledge", "hpo_version": self.hpo.version,
                "settings": self.settings.__dict__}

"""Which findings go together in the indexed case reports, and the credit it gives a gene.

HPO annotates a gene with the findings its diseases were described with; a clinic patient shows
some of them and others no annotation lists, but that patients with those annotated findings often
show too (intellectual disability goes with seizures, cleft palate with micrognathia). The training
cases teach how often: among the cases that report finding ``a``, the share that also report ``q``,
shrunk towards ``q``'s share of all cases (by :data:`COOCCURRENCE_PRIOR` pseudo-papers), over that
share, is the lift of ``q`` given ``a``. A gene's credit for a patient is, over the patient's findings, the
log lift of each by the best of the gene's findings (0 when none lifts it); a finding the gene is
annotated with (itself or more specifically) earns its full -log share.

Counts are by publication (each paper's cases share one unit of weight), so that a 400-case cohort
of one disease does not decide what goes with what. Terms are those of at least
:data:`MIN_PAPERS` papers' cases (the others stand for their most informative such ancestor): a
pair seen in one paper is one disease's picture, not a rule. Built from the case index, so a
case's own publication can be left out when the case is featurised, as the index leaves it out.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import scipy.sparse as sp

from ..hpo import HPO
from ..resources import cache_dir, read_arrays, write_arrays
from .case_index import CaseIndex
from .knowledge import span_positions

#: pseudo-papers that shrink the share of ``q`` among the cases reporting ``a`` towards its share overall
COOCCURRENCE_PRIOR = 20.0
#: papers whose cases a term must occur in to be a term of the model
MIN_PAPERS = 2
#: bump when what :func:`_built` stores changes (it is cached by it)
BUILD_VERSION = 1
#: bump when what :func:`_credit_table` stores changes (it is cached by it)
CREDIT_VERSION = 1
#: findings whose lifts are worked at a time when a credit table is built (terms x findings
#: float32: 16 MB for the bundled model)
CREDIT_CHUNK = 1024


class TermCooccurrence:
    """Paper-weighted co-occurrence of the terms (closed under ancestors) of the indexed cases."""

    def __init__(self, hpo: HPO, index: CaseIndex, prior: float = COOCCURRENCE_PRIOR, min_papers: int = MIN_PAPERS):
        self.prior = prior
        cases = index.present_terms.tocsr()
        papers, paper_of_case = np.unique(np.asarray(index.case_pmids, dtype=object), return_inverse=True)
        per_paper = np.bincount(paper_of_case, minlength=len(papers)).astype(np.float64)
        #: each case's weight: its paper's cases share one unit
        self.case_weight = 1.0 / per_paper[paper_of_case] if len(paper_of_case) else np.zeros(0)
        self.total = float(self.case_weight.sum())
        built = _built(hpo, cases, paper_of_case, self.case_weight, min_papers)
        #: what the model was built from (the key of its cache file, and of its credit tables')
        self.digest = str(built.pop("digest"))
        #: the model's terms (indices into the ontology), and each ontology term's column (-1: none)
        self.terms = built["terms"]
        self.column = np.full(len(hpo.ids), -1, dtype=np.int64)
        self.column[self.terms] = np.arange(len(self.terms))
        #: model terms x model terms: the weight of the cases that report both (a patient's rows are
        #: made dense when needed)
        self.pairs = sp.csr_matrix((built["pairs.data"], built["pairs.indices"], built["pairs.indptr"]),
                                   shape=(len(self.terms), len(self.terms)))
        #: per model term, the weight of the cases that report it
        self.alone = self.pairs.diagonal().astype(np.float64)
        #: per ontology term, the model term that stands for it: itself, or its most informative
        #: ancestor among the model's terms (ties: the first); -1 if none
        self.stands_for = built["stands_for"]
        #: cases x model terms, binary
        self.case_terms = cases[:, self.terms].tocsr()
        #: per row of the index's genes, binary: the model's terms some of the gene's cases report
        self.gene_terms = _binary(index.membership @ self.case_terms)

    def restrict(self, rows: sp.spmatrix) -> sp.csr_matrix:
        """``rows`` (anything x ontology terms) as binary rows over the model's terms."""
        return _binary(rows.tocsc()[:, self.terms])

    def findings(self, hpo: HPO, present: list[str]) -> np.ndarray:
        """A patient's findings as the model's terms (columns) that stand for them, each once."""
        found = np.unique(self.stands_for[hpo.term_indices([t for t in present if t in hpo.index])])
        return found[found >= 0]

    def log_lift(self, findings: np.ndarray, left_out: np.ndarray | None = None) -> np.ndarray:
        """``findings`` (model terms) x model terms ``a``: max(0, log lift of the finding given
        ``a``), its full -log share for ``a`` itself; the cases ``left_out`` (indices into the
        index) not counted. Each row depends on its finding alone."""
        pairs = self.pairs[findings].toarray().astype(np.float64)
        alone = self.alone.copy()
        total = self.total
        if left_out is not None and len(left_out):
            own = self.case_terms[left_out]
            weight = self.case_weight[left_out]
            pairs -= (own[:, findings].T.multiply(weight[None, :]) @ own).toarray()
            alone -= np.asarray(own.T @ weight).ravel()
            total -= float(weight.sum())
        # what is left out can leave a term in no case: its share is then the prior's floor
        share = np.maximum(alone[findings], 1e-9) / max(total, 1e-9)
        lift = (pairs + self.prior * share[:, None]) / ((np.maximum(alone, 0.0)[None, :] + self.prior) * share[:, None])
        out = np.maximum(np.log(lift), 0.0)
        out[np.arange(len(findings)), findings] = -np.log(np.minimum(share, 1.0))
        return out.astype(np.float32)

    def case_terms_of_genes(self, index: CaseIndex, genes: np.ndarray, left_out: np.ndarray) -> sp.csr_matrix:
        """Binary, per row of the index's ``genes``: the model's terms some of the gene's cases but
        those ``left_out`` report (:attr:`gene_terms` recomputed for a left-out publication's genes)."""
        kept = np.ones(len(index.case_ids), np.float32)
        kept[left_out] = 0.0
        return _binary(index.membership[genes] @ sp.diags(kept) @ self.case_terms)


def _built(hpo: HPO, cases: sp.csr_matrix, paper_of_case: np.ndarray, case_weight: np.ndarray,
           min_papers: int) -> dict[str, np.ndarray]:
    """The model's terms, pairs (CSR arrays) and the term each ontology term stands for: computed
    once per case index and release, then read from the cache (building takes about a second,
    most of `rdrft rank`'s start-up)."""
    key = _key(f"{BUILD_VERSION} {hpo.version} {min_papers} {cases.shape}", cases.indptr, cases.indices, paper_of_case)
    folder = cache_dir("cooccurrence") / key
    stored = read_arrays(folder)
    if stored is not None:
        return {"digest": key, **stored}
    n_terms = cases.shape[1]
    paper_term = np.unique(paper_of_case[np.repeat(np.arange(cases.shape[0]), np.diff(cases.indptr))].astype(np.int64)
                           * n_terms + cases.indices)
    terms = np.flatnonzero(np.bincount(paper_term % n_terms, minlength=n_terms) >= min_papers)
    case_terms = cases[:, terms].tocsr()
    pairs = (case_terms.T @ (sp.diags(case_weight) @ case_terms)).astype(np.float32).tocsr()
    ic = hpo.information_content
    ancestors = hpo.ancestor_matrix[:, terms].tocoo()
    score = (1.0 + ic[terms][ancestors.col]).astype(np.float32)
    best = np.lexsort((ancestors.col, -score, ancestors.row))
    first = best[np.r_[True, np.diff(ancestors.row[best]) != 0]] if len(best) else best
    stands_for = np.full(len(hpo.ids), -1, dtype=np.int64)
    stands_for[ancestors.row[first]] = ancestors.col[first]
    built = {"terms": terms, "pairs.data": pairs.data, "pairs.indices": pairs.indices, "pairs.indptr": pairs.indptr,
             "stands_for": stands_for}
    write_arrays(folder, built)
    return {"digest": key, **built}


def _key(text: str, *arrays: np.ndarray) -> str:
    """A cache key for ``text`` and ``arrays`` (their bytes and types): blake2b, a few milliseconds
    for a case index (sha256 took 15, a tenth of `rdrft rank`'s loading)."""
    digest = hashlib.blake2b(text.encode(), digest_size=10)
    for array in arrays:
        digest.update(f" {array.dtype.str} {array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _binary(m: sp.spmatrix) -> sp.csr_matrix:
    """1 where ``m`` is non-zero, by row."""
    out = (m != 0).astype(np.float32).tocsr()
    out.eliminate_zeros()
    return out


class CreditTable:
    """:func:`best_lift` of every row of ``rows`` for every term of the model, computed once per
    model and rows and then read: with nothing left out a finding's credit does not depend on the
    patient, so ranking reads a few values per finding instead of gathering every shortlisted
    gene's terms (about 6 ms a patient). Built on first use (about 3 s for the bundled model's
    3,867 terms against the 5,255 annotated genes), kept in the cache and read through a memory
    map: its 81 MB are the operating system's pages, shared by every process ranking with the model."""

    def __init__(self, model: TermCooccurrence, rows: sp.csr_matrix):
        self.model = model
        self.rows = rows
        self._table: np.ndarray | None = None
        self._lock = threading.Lock()  # the app's sessions share one ranker: one of them builds it

    @property
    def table(self) -> np.ndarray:
        """model terms x rows, float32, read-only."""
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = _credit_table(self.model, self.rows)
        return self._table

    def best(self, findings: np.ndarray, which: np.ndarray) -> np.ndarray:
        """``best_lift(model.log_lift(findings), rows, which)``, bit for bit (a maximum does not
        depend on the order its values are read in), C-contiguous as it is (sums over findings add alike)."""
        which = np.asarray(which, dtype=np.int64)
        out = np.zeros((len(findings), len(which)), np.float32)
        kept = np.flatnonzero(which >= 0)
        if len(findings) and len(kept):
            out[:, kept] = self.table[np.ix_(np.asarray(findings, dtype=np.int64), which[kept])]
        return out


def _credit_table(model: TermCooccurrence, rows: sp.csr_matrix) -> np.ndarray:
    """The table of a :class:`CreditTable`, from the cache or computed and written there: per chunk
    of findings, their lifts by term, and each row's maximum over its terms' (gathered rows of a
    terms x findings block)."""
    key = _key(f"{CREDIT_VERSION} {model.digest} {model.prior!r} {rows.shape}", rows.indptr, rows.indices)
    folder = cache_dir("cooccurrence") / f"credit-{key}"
    stored = read_arrays(folder)
    if stored is None:
        n_terms = len(model.terms)
        table = np.zeros((n_terms, rows.shape[0]), np.float32)
        filled = np.flatnonzero(np.diff(rows.indptr))
        for start in range(0, n_terms, CREDIT_CHUNK):
            end = min(start + CREDIT_CHUNK, n_terms)
            by_term = np.ascontiguousarray(model.log_lift(np.arange(start, end)).T)
            block = np.empty((len(filled), end - start), np.float32)
            for i, row in enumerate(filled.tolist()):
                np.max(by_term[rows.indices[rows.indptr[row] : rows.indptr[row + 1]]], axis=0, out=block[i])
            table[start:end, filled] = block.T
        write_arrays(folder, {"table": table})
        stored = read_arrays(folder)
    table = stored["table"]
    table.flags.writeable = False  # shared by every session of the ranker
    return table


def best_lift(log_lift: np.ndarray, rows: sp.csr_matrix, which: np.ndarray) -> np.ndarray:
    """The patient's findings (the rows of ``log_lift``) x ``which`` rows of ``rows`` (binary over
    the model's terms; -1: an empty row): the best log lift of the finding by one of the row's
    terms, 0 for an empty row. The rows' terms gathered at once: a few hundred rows take a millisecond."""
    which = np.asarray(which, dtype=np.int64)
    row = np.maximum(which, 0)
    starts = rows.indptr[row]
    lengths = np.where(which >= 0, rows.indptr[row + 1] - starts, 0)
    out = np.zeros((log_lift.shape[0], len(which)), np.float32)
    filled = np.flatnonzero(lengths)
    if len(filled) and len(log_lift):
        positions, firsts = span_positions(starts[filled], lengths[filled])
        out[:, filled] = np.maximum.reduceat(log_lift[:, rows.indices[positions]], firsts, axis=1)
    return out

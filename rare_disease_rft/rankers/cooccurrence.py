"""Which findings go together in the indexed case reports, and the credit it gives a gene.

HPO annotates a gene with the findings its diseases were described with; a clinic patient shows
some of them and others no annotation lists, but that patients with those annotated findings often
show too (intellectual disability goes with seizures, cleft palate with micrognathia). The training
cases teach how often: among the cases that report finding ``a``, the share that also report ``q``,
shrunk towards the share of all cases (:data:`COOCCURRENCE_PRIOR` pseudo-papers), against that share,
is the lift of ``q`` given ``a``. A gene's credit for a patient is, over the patient's findings, the
log lift of each by the best of the gene's findings (0 when none lifts it); a finding the gene is
annotated with (itself or more specifically) earns its full -log share.

Counts are by publication (each paper's cases share one unit of weight), so that a 400-case cohort
of one disease does not decide what goes with what. Terms are those of at least
:data:`MIN_PAPERS` papers' cases (the others stand for their most informative such ancestor): a
pair seen in one paper is one disease's picture, not a rule. Built from the case index, so a
case's own publication can be left out when the case is featurised, as the index leaves it out.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..hpo import HPO
from .case_index import CaseIndex
from .knowledge import ColumnCache

#: pseudo-papers that shrink the share of ``q`` among the cases reporting ``a`` towards its share overall
COOCCURRENCE_PRIOR = 1.0
#: papers whose cases a term must occur in to be a term of the model
MIN_PAPERS = 2
#: what each :class:`CreditColumns` may keep of the credit columns it computed (one per finding:
#: 21 KiB against the ~5,000 annotated genes), least recently used dropped first
CREDIT_CACHE_BYTES = 32 * 2**20


class TermCooccurrence:
    """Paper-weighted co-occurrence of the terms (closed under ancestors) of the indexed cases."""

    def __init__(self, hpo: HPO, index: CaseIndex, prior: float = COOCCURRENCE_PRIOR, min_papers: int = MIN_PAPERS):
        self.prior = prior
        cases = index.present_terms.tocsr()
        papers, paper_of_case = np.unique(np.asarray(index.case_pmids, dtype=object), return_inverse=True)
        per_paper = np.bincount(paper_of_case, minlength=len(papers)).astype(np.float64)
        #: each case's weight: its paper's cases share one unit
        self.case_weight = 1.0 / per_paper[paper_of_case] if len(paper_of_case) else np.zeros(0)
        in_papers = sp.csr_matrix((np.ones(len(paper_of_case), np.float32), (paper_of_case, np.arange(len(paper_of_case)))),
                                  shape=(len(papers), len(paper_of_case))) @ cases
        papers_per_term = np.asarray((in_papers > 0).sum(axis=0)).ravel()
        #: the model's terms (indices into the ontology), and each ontology term's column (-1: none)
        self.terms = np.flatnonzero(papers_per_term >= min_papers)
        self.column = np.full(len(hpo.ids), -1, dtype=np.int64)
        self.column[self.terms] = np.arange(len(self.terms))
        #: cases x model terms, binary
        self.case_terms = cases[:, self.terms].tocsr()
        weighted = sp.diags(self.case_weight) @ self.case_terms
        #: model terms x model terms: the weight of the cases that report both (dense: a few thousand terms)
        self.pairs = (self.case_terms.T @ weighted).toarray().astype(np.float32)
        self.total = float(self.case_weight.sum())
        #: per ontology term, the model term that stands for it: itself, or its most informative
        #: ancestor among the model's terms (ties by index); -1 if none
        ic = hpo.information_content
        ancestors = hpo.ancestor_matrix[:, self.terms].tocsr().astype(np.float32)
        ancestors.data = ancestors.data * (1.0 + ic[self.terms][ancestors.indices]).astype(np.float32)
        has = np.diff(ancestors.indptr) > 0
        self.stands_for = np.where(has, np.asarray(ancestors.argmax(axis=1)).ravel(), -1)
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
        pairs = self.pairs[findings].astype(np.float64)
        alone = np.diag(self.pairs).astype(np.float64).copy()
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


def _binary(m: sp.spmatrix) -> sp.csr_matrix:
    """1 where ``m`` is non-zero, by row."""
    out = (m != 0).astype(np.float32).tocsr()
    out.eliminate_zeros()
    return out


class CreditColumns:
    """:func:`best_lift` of every row of ``rows`` for one finding at a time, computed once and kept:
    with nothing left out, a finding's credit does not depend on the patient, and patients share
    most of their findings (ranking then reads a few columns instead of gathering every
    shortlisted gene's terms)."""

    def __init__(self, model: TermCooccurrence, rows: sp.csr_matrix, cache_bytes: int = CREDIT_CACHE_BYTES):
        self.model = model
        self.rows = rows
        self.columns = ColumnCache(cache_bytes)

    def best(self, findings: np.ndarray, which: np.ndarray) -> np.ndarray:
        """``best_lift(model.log_lift(findings), rows, which)``, bit for bit."""
        found = {int(f): self.columns.get((int(f),)) for f in findings}
        missing = np.array([f for f, column in found.items() if column is None], dtype=np.int64)
        if len(missing):
            computed = best_lift(self.model.log_lift(missing), self.rows, np.arange(self.rows.shape[0]))
            for f, column in zip(missing.tolist(), computed):
                found[f] = column
                self.columns.put((f,), column)
        table = np.zeros((len(findings), self.rows.shape[0] + 1), np.float32)  # the last column: an empty row
        for k, f in enumerate(findings.tolist()):
            table[k, :-1] = found[f]
        # C order, as best_lift's: the sums over findings then add in the same order
        return np.ascontiguousarray(table[:, np.where(np.asarray(which) >= 0, which, self.rows.shape[0])])


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
        sizes = lengths[filled]
        firsts = np.cumsum(sizes) - sizes
        positions = np.arange(int(sizes.sum())) + np.repeat(starts[filled] - firsts, sizes)
        out[:, filled] = np.maximum.reduceat(log_lift[:, rows.indices[positions]], firsts, axis=1)
    return out

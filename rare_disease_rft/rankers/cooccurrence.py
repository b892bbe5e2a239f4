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
from collections import Counter

import numpy as np
import scipy.sparse as sp

from ..hpo import HPO
from ..resources import atomic_write, cache_dir
from .case_index import CaseIndex
from .knowledge import ColumnCache

#: pseudo-papers that shrink the share of ``q`` among the cases reporting ``a`` towards its share overall
COOCCURRENCE_PRIOR = 20.0
#: papers whose cases a term must occur in to be a term of the model
MIN_PAPERS = 2
#: bump when what :func:`_built` stores changes (it is cached by it)
BUILD_VERSION = 1
#: what each :class:`CreditColumns` may keep of the credit columns it computed (one per finding:
#: 21 KiB against the ~5,000 annotated genes), least recently used dropped first. Room for every
#: term of the bundled model (3,867: 81 MiB): at 32 MiB the test split's 1,861 findings thrashed it
#: (ranking p95 33 ms)
CREDIT_CACHE_BYTES = 96 * 2**20
#: patients a finding is asked for before its column for every gene is computed and kept
ADMIT_AFTER = 3


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
    digest = hashlib.sha256(f"{BUILD_VERSION} {hpo.version} {min_papers} {cases.shape}".encode())
    for part in (cases.indptr.astype(np.int64), cases.indices.astype(np.int64), paper_of_case.astype(np.int64)):
        digest.update(part.tobytes())
    path = cache_dir("cooccurrence") / f"{digest.hexdigest()[:20]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
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
    atomic_write(path, lambda tmp: np.savez(tmp, **built))  # a reader sees the whole file or none
    return built


def _binary(m: sp.spmatrix) -> sp.csr_matrix:
    """1 where ``m`` is non-zero, by row."""
    out = (m != 0).astype(np.float32).tocsr()
    out.eliminate_zeros()
    return out


class CreditColumns:
    """:func:`best_lift` of every row of ``rows`` for one finding at a time, computed once and kept:
    with nothing left out, a finding's credit does not depend on the patient, and patients share
    most of their findings (ranking then reads a few columns instead of gathering every
    shortlisted gene's terms). A finding's column for every gene costs about 2.4 ms, against
    0.2 ms for a shortlist's rows alone: it is computed and kept only once the finding comes
    back (``ADMIT_AFTER`` patients), so rare findings never push the common ones out."""

    def __init__(self, model: TermCooccurrence, rows: sp.csr_matrix, cache_bytes: int = CREDIT_CACHE_BYTES):
        self.model = model
        self.rows = rows
        self.columns = ColumnCache(cache_bytes)
        #: finding -> patients it was asked for and not kept (bounded by the model's terms)
        self._asked: Counter = Counter()
        self._by_term = rows.tocsc()  # the rows holding each term, for whole columns

    def best(self, findings: np.ndarray, which: np.ndarray) -> np.ndarray:
        """``best_lift(model.log_lift(findings), rows, which)``, bit for bit (a maximum does not
        depend on the order its values are read in)."""
        which = np.asarray(which)
        keys = [(int(f),) for f in findings]
        found = dict(zip(keys, self.columns.get_many(keys)))
        missing = [key for key, column in found.items() if column is None]
        for key in missing:
            self._asked[key] += 1
        admitted = np.array([k for (k,) in missing if self._asked[(k,)] >= ADMIT_AFTER], dtype=np.int64)
        if len(admitted):
            for f, column in zip(admitted.tolist(), self._whole_columns(admitted)):
                found[(f,)] = column
                self.columns.put((f,), column)
                self._asked.pop((f,), None)  # app sessions share the ranker: two may admit it at once
        table = np.zeros((len(findings), len(which)), np.float32)
        rows = np.flatnonzero(which >= 0)
        rare = [k for k, key in enumerate(keys) if found[key] is None]
        if rare:
            table[rare] = best_lift(self.model.log_lift(np.asarray(findings)[rare]), self.rows, which)
        for k, key in enumerate(keys):
            if found[key] is not None:
                table[k, rows] = found[key][which[rows]]
        return table

    def _whole_columns(self, findings: np.ndarray) -> np.ndarray:
        """``best_lift`` of every row for each finding, from the terms it has a positive log lift
        with (a median 220 of 3,867): their rows' maxima taken term by term, five times fewer
        values read than gathering every row's terms, and the same maxima."""
        lift = self.model.log_lift(findings)
        out = np.zeros((len(findings), self.rows.shape[0]), np.float32)
        indptr, indices = self._by_term.indptr, self._by_term.indices
        for k in range(len(findings)):
            terms = np.flatnonzero(lift[k] > 0)
            sizes = indptr[terms + 1] - indptr[terms]
            positions = np.arange(int(sizes.sum())) + np.repeat(indptr[terms] - (np.cumsum(sizes) - sizes), sizes)
            np.maximum.at(out[k], indices[positions], np.repeat(lift[k, terms], sizes))
        return out


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

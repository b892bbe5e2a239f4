"""Per-gene evidence for one patient: the inputs of the trained policy.

Two kinds of evidence, for every candidate gene at once:

- knowledge (HPO annotations): semantic similarity, likelihood ratios of present and excluded
  terms, exact-match share, hypergeometric enrichment, annotation size;
- case reports (the training index): similarity to the gene's published cases, how many there
  are, and likelihood ratios from the terms those cases report present and absent;
- which findings go together in the case reports (``cooccurrence.py``): credit for a patient's
  finding that a gene's annotations lack but that goes with its annotated findings (and, for genes
  with cases, with what those cases report).

Genes with cases but no HPO annotation get their knowledge evidence from their cases instead:
the terms those cases report, with how often, stand in for the annotations (the case reports are
all that is known of such a gene). Their evidence is then on the annotated genes' scale, and the
knowledge head, which learns from thousands of annotated answers, ranks them too.

When features are computed for a training case, its own publication is left out of the index
(``exclude_pmid``), so training sees what a new paper looks like: genes whose only cases come
from that paper look unseen, exactly as they will at test time.

A shortlist keeps the best genes by each first-stage score; the policy reorders the shortlist
and the other genes follow in likelihood order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from ..hpo import HPO
from ..resources import atomic_write, cache_dir
from .base import Case, best_by_score, order_by_score
from .case_index import CaseIndex, TermVector
from .cooccurrence import COOCCURRENCE_PRIOR, CreditTable, TermCooccurrence, best_lift
from .knowledge import (FEW_COLUMNS, LikelihoodRanker, LikelihoodSettings, PhenomizerRanker, PositiveEntries,
                        RunMaxima, TermMatcher, dense_columns, gene_matcher)

#: bump when this module changes what it computes (training caches features by it)
FEATURE_VERSION = 8
FEATURES = (
    "phenomizer", "phenomizer_gap", "lr_present", "lr_present_gap", "lr_excluded", "exact_share",
    "enrichment", "annotated", "annotation_size",
    "case_max_sim", "case_max_sim_gap", "case_vote", "case_excluded_sim", "case_count", "paper_count",
    "has_cases", "profile_lr", "profile_lr_gap", "profile_excluded_lr", "profile_contradiction",
    "n_present", "n_excluded",
    # log rank within the shortlist: comparable across patients whatever the score scales
    "lr_present_rank", "phenomizer_rank", "enrichment_rank", "case_max_sim_rank", "profile_lr_rank",
    "profile_excluded_lr_rank",
    # findings that go with the gene's annotated findings (with its cases' findings too: case_)
    "cooccurrence", "cooccurrence_rank", "case_cooccurrence",
)
COLUMN = {name: i for i, name in enumerate(FEATURES)}
RANKED = ("lr_present", "phenomizer", "enrichment", "case_max_sim", "profile_lr", "profile_excluded_lr", "cooccurrence")
#: the shortlist: each of these scores' best genes; the policy reorders it
SOURCES = ("lr_present", "phenomizer", "case_max_sim", "profile_lr", "enrichment")
#: scores also given as the gap to the patient's best gene
GAPS = ("phenomizer", "lr_present", "case_max_sim", "profile_lr")
# how sharply the case vote prefers the closest cases (a kernel on cosine similarity)
VOTE_SHARPNESS = 10.0
# pseudo-counts that shrink a gene's case profile towards its HPO annotations and the background
PROFILE_PRIOR = 2.0
# enrichment scores a GeneEnrichment keeps (a float each, in tables by overlap and annotation size:
# 8 MiB; the tables of the test split's patients, of 38 numbers of terms, take 0.42 M entries)
KNOWN_ENRICHMENTS = 2**20


@dataclass
class CaseFeatures:
    candidates: np.ndarray  # universe indices of the shortlist
    values: np.ndarray  # len(candidates) x len(FEATURES), float32
    rest: np.ndarray  # universe indices of all other genes, best first by likelihood


@dataclass
class SharedEvidence:
    """What :meth:`FeatureExtractor.share_evidence` computed for one patient of a group."""

    #: the patient's similarity to every indexed case, by present and by excluded terms
    similarities: tuple[np.ndarray, np.ndarray]
    #: each indexed gene's best case by both (None: the patient leaves a publication out)
    best_cases: tuple[np.ndarray, np.ndarray] | None
    #: each annotated gene's best disease by phenomizer and by likelihood
    best_diseases: dict[str, np.ndarray]


class FeatureExtractor:
    def __init__(self, hpo: HPO, index: CaseIndex, shortlist_per_source: int = 100,
                 cooccurrence_prior: float = COOCCURRENCE_PRIOR):
        self.hpo = hpo
        self.index = index
        self.matcher = gene_matcher(hpo)
        # disease-level evidence, each gene taking its best disease (as the knowledge rankers do)
        self.phenomizer = PhenomizerRanker(hpo)
        self.likelihood = LikelihoodRanker(hpo, LikelihoodSettings(excluded_weight=1.0))
        self.shortlist_per_source = shortlist_per_source
        extra = [g for g in index.genes if g not in hpo.gene_index]
        #: every gene the policy can rank: HPO-annotated genes, then genes known only from cases
        self.universe = np.array(list(hpo.gene_symbols) + extra, dtype=object)
        self.universe_index = {g: i for i, g in enumerate(self.universe)}
        self.n_annotated = len(hpo.gene_symbols)
        self.alphabetical = np.argsort(np.argsort(self.universe.astype(str)))
        self.index_to_universe = np.array([self.universe_index[g] for g in index.genes], dtype=np.int64)
        self.by_publication = index.cases_of_publication()
        self.papers_per_gene = np.zeros(len(index.genes))
        for gene in {(int(g), p) for g, p in zip(index.case_gene, index.case_pmids)}:
            self.papers_per_gene[gene[0]] += 1
        n_cases = len(index.case_ids)
        self.enrichment = GeneEnrichment(hpo)
        # background of the case profiles: share of all training cases showing / excluding a term
        # column-sliced per patient, so kept by column
        self.present_counts = index.present_counts.tocsc()
        self.excluded_counts = index.excluded_counts.tocsc()
        self.case_background = np.asarray(index.present_counts.sum(axis=0)).ravel() / max(n_cases, 1)
        self.excluded_background = np.asarray(index.excluded_counts.sum(axis=0)).ravel() / max(n_cases, 1)
        #: genes with cases but no HPO annotation (rows of the index), and where they are in the universe
        self.case_only = np.array([i for i, g in enumerate(index.genes) if g not in hpo.gene_index], dtype=np.int64)
        self.case_only_universe = self.index_to_universe[self.case_only]
        # each case's most specific terms (none of their children reported): its direct annotations
        closed = index.present_terms
        leaves = closed - closed.multiply((closed @ hpo.parents.astype(np.float32)) > 0)
        leaves.eliminate_zeros()
        self.case_leaves = leaves.tocsr()
        self.case_only_cases = np.flatnonzero(np.isin(index.case_gene, self.case_only))
        # each gene's cases, for per-gene maxima
        runs = np.bincount(index.case_gene, minlength=len(index.genes))
        self._best_case = RunMaxima(np.cumsum(runs) - runs, runs, np.argsort(index.case_gene, kind="stable"))
        self._case_only_all = self._case_only_matcher(np.ones(n_cases, np.float32))
        self._case_counts = index.membership @ np.ones(n_cases, np.float32)
        self._case_only_row = {index.genes[i]: k for k, i in enumerate(self.case_only)}
        self.cooccurrence = TermCooccurrence(hpo, index, prior=cooccurrence_prior)
        #: each annotated gene's annotations (closure) over the co-occurrence model's terms
        self._annotation_terms = self.cooccurrence.restrict(hpo.gene_closure_by_term)
        # the credit of every gene for a finding, by its annotations and by its cases' findings
        self._credit_by_annotations = CreditTable(self.cooccurrence, self._annotation_terms)
        self._credit_by_cases = CreditTable(self.cooccurrence, self.cooccurrence.gene_terms)
        #: universe index -> row of the case index (-1: the gene has no case)
        self._index_row = np.full(len(self.universe), -1, dtype=np.int64)
        self._index_row[self.index_to_universe] = np.arange(len(index.genes))
        # by row, for the explanations (a row of the matchers' column-major matrices costs a scan)
        self._case_only_rows = (self._case_only_all[0].closure.tocsr(), self._case_only_all[0].direct.tocsr())
        #: the patient's similarity to every indexed case, by present and by excluded terms: the
        #: ranking and then its explanation (similar cases) ask for the same patient's
        self.similarities = functools.lru_cache(maxsize=64)(self._similarities)
        self._shared: dict[Case, SharedEvidence] = {}  # see share_evidence
        # by term, for the products with one patient's few terms (product_by_columns)
        self._present_by_term, self._excluded_by_term = index.present.tocsc(), index.excluded.tocsc()

    # ------------------------------------------------------------------ knowledge evidence
    def _knowledge(self, case: Case, shared: SharedEvidence | None = None) -> dict[str, np.ndarray]:
        """The knowledge evidence the shortlist is chosen by, for every annotated gene; each score
        leaves out what the case's withheld publication was the only source of."""
        best = shared.best_diseases if shared is not None else self._best_diseases([case])[0]
        return {**best, "enrichment": self.enrichment.scores(list(case.present), case.withheld_publication)}

    def _best_diseases(self, cases: Sequence[Case]) -> list[dict[str, np.ndarray]]:
        """Each annotated gene's phenomizer and likelihood score, that of its best disease, for each
        of ``cases``: the maxima of all of them in one pass (a maximum does not depend on its order)."""
        scores = {"phenomizer": [self.phenomizer.disease_scores(case) for case in cases],
                  "lr_present": [self.likelihood.present_log_lr(case) for case in cases]}
        order = self.likelihood.order
        best = {name: order.best_of_diseases(np.stack(columns, axis=1)) for name, columns in scores.items()}
        return [{name: genes[:, i] for name, genes in best.items()} for i in range(len(cases))]

    def _shortlisted_knowledge(self, case: Case, genes: np.ndarray) -> dict[str, np.ndarray]:
        """The rest of the knowledge evidence, for the shortlisted annotated ``genes`` only."""
        excluded = (self.likelihood.order.best_of_some(genes, lambda d: self.likelihood.excluded_log_lr(case, rows=d))
                    if case.excluded else np.zeros(len(genes)))
        present = list(case.present)
        # the share of the terms annotated (exact counts, so computed on any rows alike)
        exact = self.matcher.rescored_without(
            case.withheld_publication,
            lambda m, rows: m.annotated_share(present, rows), genes)
        return {"lr_excluded": excluded, "exact_share": exact}

    # ------------------------------------------------------------------ case-report evidence
    def _case_only_matcher(self, weight: np.ndarray) -> tuple[TermMatcher, "GeneEnrichment", np.ndarray]:
        """The genes known only from cases, their cases (those of ``weight`` 1) standing in for
        annotations: each term with the share of the gene's cases that report it. Returns the
        matcher and the enrichment over those annotations, and the genes' case counts."""
        members = self.index.membership[self.case_only] @ sp.diags(weight)
        counts = np.asarray(members.sum(axis=1)).ravel()
        share = sp.diags(1.0 / np.maximum(counts, 1.0)) @ members
        matcher = TermMatcher(self.hpo, (share @ self.index.present_terms).tocsr(), (share @ self.case_leaves).tocsr(),
                              background=self.likelihood.matcher.background)
        return matcher, GeneEnrichment(self.hpo, matcher.direct, self.enrichment.annotated_terms_total), counts

    def case_annotations(self, gene: str) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
        """What the published cases of a gene HPO does not annotate report, as annotations (closure
        and most specific terms, each with the share of its cases); None for any other gene."""
        row = self._case_only_row.get(gene)
        if row is None:
            return None
        closure, direct = self._case_only_rows
        return closure[row : row + 1], direct[row : row + 1]

    def _case_only_knowledge(self, case: Case, weight: np.ndarray, left_out: np.ndarray | None
                             ) -> tuple[np.ndarray, dict[str, np.ndarray], Callable[[], dict[str, np.ndarray]]]:
        """The knowledge evidence of the genes known only from cases (see :meth:`_case_only_matcher`).
        Returns the genes that have such cases (universe indices), their values of the scores the
        shortlist is chosen by, and a function giving their other values (asked only when one of
        them is shortlisted)."""
        left_out_here = left_out is not None and not weight[self.case_only_cases].all()
        matcher, enrichment, counts = self._case_only_matcher(weight) if left_out_here else self._case_only_all
        present = list(case.present)
        known = counts > 0  # a gene whose every case is left out stays a gene nothing is known of
        sources = {"phenomizer": matcher.mean_best_match(present),
                   "lr_present": self.likelihood.present_log_lr(case, matcher),
                   "enrichment": enrichment.scores(present)}

        def others() -> dict[str, np.ndarray]:
            values = {
                "lr_excluded": self.likelihood.excluded_log_lr(case, matcher) if case.excluded else np.zeros(len(counts)),
                "exact_share": matcher.annotated_share(present),
                # the count as an integer, as before: log1p of a float32 count differs in the last bit
                "annotation_size": np.log1p(matcher.direct.getnnz(axis=1)),
            }
            return {name: v[known] for name, v in values.items()}

        return self.case_only_universe[known], {name: v[known] for name, v in sources.items()}, others

    def _left_out(self, exclude_pmid: str | None) -> np.ndarray | None:
        """The index cases of the left-out publication (None: none of them is indexed)."""
        return self.by_publication.get(exclude_pmid) if exclude_pmid else None

    def _case_weights(self, exclude_pmid: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """1 per index case, 0 for the cases of the left-out publication (also returned)."""
        weight = np.ones(len(self.index.case_ids), np.float32)
        left_out = self._left_out(exclude_pmid)
        if left_out is not None:
            weight[left_out] = 0.0
        return weight, left_out

    def share_evidence(self, cases: Sequence[Case]) -> None:
        """What the features of many patients need that is faster computed for all of them at once,
        kept for their next :meth:`extract`; each patient's values are bit for bit those computed
        alone:

        - their similarities to every indexed case, by present and by excluded terms: one product
          each (scipy's CSR product adds every output along its row in the same order, whatever
          the number of vectors), one pass over the index instead of one each;
        - each indexed gene's best case by both, for the patients who leave no publication out, and
          each annotated gene's best disease by phenomizer and likelihood: each a maximum, taken for
          all of them at once."""
        self._shared = {}
        if not cases:
            return
        vectors = [self.index.case_vectors(self.hpo, case) for case in cases]
        n_terms = len(self.hpo.ids)
        present, excluded = (self.index.present @ np.stack([v[0].dense(n_terms) for v in vectors], axis=1),
                             self.index.excluded @ np.stack([v[1].dense(n_terms) for v in vectors], axis=1))
        whole = [i for i, case in enumerate(cases) if self._left_out(case.withheld_publication) is None]
        best_present, best_excluded = (self._best_case_of_gene(sims[:, whole], None) for sims in (present, excluded))
        best_cases = dict(zip(whole, zip(best_present.T, best_excluded.T)))
        for i, (case, best) in enumerate(zip(cases, self._best_diseases(cases))):
            similarities = (np.ascontiguousarray(present[:, i]), np.ascontiguousarray(excluded[:, i]))
            self._shared[case] = SharedEvidence(similarities, best_cases.get(i), best)

    def _similarities(self, case: Case) -> tuple[np.ndarray, np.ndarray]:
        shared = self._shared.get(case)
        if shared is None:
            pres_vec, excl_vec = self.index.case_vectors(self.hpo, case)
            sims, excl_sims = (product_by_columns(self._present_by_term, pres_vec),
                               product_by_columns(self._excluded_by_term, excl_vec))
        else:
            sims, excl_sims = shared.similarities
        sims.flags.writeable = excl_sims.flags.writeable = False  # kept for the next caller
        return sims, excl_sims

    def _cases(self, case: Case, weight: np.ndarray, left_out: np.ndarray | None,
               shared: SharedEvidence | None) -> dict[str, np.ndarray]:
        index = self.index
        sims, excl_sims = self.similarities(case)
        n_genes = len(index.genes)
        # with nothing left out, every case counts (the counts of all of them are kept)
        counts = self._case_counts if left_out is None else index.membership @ weight
        keep = None if left_out is None else weight > 0
        if left_out is None and shared is not None and shared.best_cases is not None:
            max_sim, max_excl = shared.best_cases
        else:
            max_sim, max_excl = (self._best_case_of_gene(values, keep) for values in (sims, excl_sims))
        closeness = np.exp(VOTE_SHARPNESS * (sims - 1.0))
        vote = index.membership @ (closeness if left_out is None else weight * closeness)
        papers = self.papers_per_gene.copy()
        if left_out is not None:
            papers[np.unique(index.case_gene[left_out])] -= 1

        present_idx = self.hpo.term_indices(list(case.present))
        excluded_idx = self.hpo.term_indices(list(case.excluded))
        pc = dense_columns(self.present_counts, present_idx)
        ec = dense_columns(self.excluded_counts, excluded_idx)
        pc_excl = dense_columns(self.present_counts, excluded_idx)
        if left_out is not None:
            own = sp.csr_matrix((np.ones(len(left_out), np.float32), (index.case_gene[left_out], np.arange(len(left_out)))),
                                shape=(n_genes, len(left_out)))
            pres_own = index.present_terms[left_out]
            excl_own = index.excluded_terms[left_out]
            pc -= (own @ pres_own[:, present_idx]).toarray()
            ec -= (own @ excl_own[:, excluded_idx]).toarray()
            pc_excl -= (own @ pres_own[:, excluded_idx]).toarray()
        # shrink each gene's case frequencies towards the background with PROFILE_PRIOR pseudo-cases
        bg = np.maximum(self.case_background[present_idx], 1e-4)
        p_present = (pc + PROFILE_PRIOR * bg) / (counts[:, None] + PROFILE_PRIOR)
        profile_lr = np.log(p_present / bg).sum(axis=1)
        ebg = np.maximum(self.excluded_background[excluded_idx], 1e-4)
        p_excl = (ec + PROFILE_PRIOR * ebg) / (counts[:, None] + PROFILE_PRIOR)
        profile_excluded_lr = np.log(p_excl / ebg).sum(axis=1)
        xbg = np.maximum(self.case_background[excluded_idx], 1e-4)
        p_shown = (pc_excl + PROFILE_PRIOR * xbg) / (counts[:, None] + PROFILE_PRIOR)
        contradiction = np.log1p(-np.minimum(p_shown, 0.95)).sum(axis=1) - np.log1p(-np.minimum(xbg, 0.95)).sum()
        return {"case_max_sim": max_sim, "case_vote": vote, "case_excluded_sim": max_excl,
                "case_count": np.log1p(counts), "paper_count": np.log1p(papers), "has_cases": (counts > 0) * 1.0,
                "profile_lr": profile_lr, "profile_excluded_lr": profile_excluded_lr,
                "profile_contradiction": contradiction}

    def _cooccurrence(self, case: Case, candidates: np.ndarray, left_out: np.ndarray | None) -> dict[str, np.ndarray]:
        """The co-occurrence credit of the shortlisted genes (see :mod:`.cooccurrence`): by their
        annotations, the genes known only from cases by those cases' findings (``cooccurrence``);
        genes with cases by annotations and case findings together (``case_cooccurrence``). With
        nothing left out, read from the credit tables; else from the shortlist's terms."""
        model = self.cooccurrence
        findings = model.findings(self.hpo, list(case.present))
        annotated = candidates < self.n_annotated
        by_annotation_row = np.where(annotated, candidates, -1)
        index_rows = self._index_row[candidates]
        changed = self.hpo.genes_without(case.withheld_publication) if case.withheld_publication else None
        # the patient's own lifts, when the credit tables (nothing left out) do not serve
        lift = model.log_lift(findings, left_out) if left_out is not None or changed is not None else None
        if left_out is None:
            by_annotations = self._credit_by_annotations.best(findings, by_annotation_row)
            by_cases = self._credit_by_cases.best(findings, index_rows)
        else:
            by_annotations = best_lift(lift, self._annotation_terms, by_annotation_row)
            by_cases = best_lift(lift, model.gene_terms, index_rows)
            # the left-out publication's genes lose its cases' findings
            here = np.flatnonzero(np.isin(index_rows, self.index.case_gene[left_out]))
            by_cases[:, here] = best_lift(lift, model.case_terms_of_genes(self.index, index_rows[here], left_out),
                                          np.arange(len(here)))
        if changed is not None:  # the annotations the withheld publication was the only source of leave
            here = np.flatnonzero(np.isin(candidates, changed.rows))
            rows = np.searchsorted(changed.rows, candidates[here])  # AnnotationRows keep their genes sorted
            by_annotations[:, here] = best_lift(lift, model.restrict(changed.closure), rows)
        has_cases = index_rows >= 0
        return {"cooccurrence": np.where(annotated, by_annotations, by_cases).sum(axis=0),
                "case_cooccurrence": np.where(has_cases, np.maximum(by_annotations, by_cases), 0.0).sum(axis=0)}

    def _best_case_of_gene(self, values: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
        """Per gene of the index: the highest of ``values`` over its kept cases (None: all), and at
        least 0; for ``values`` of cases x patients (nothing left out), per gene and patient."""
        kept = values if keep is None else np.where(keep, values, 0.0)
        return np.maximum(self._best_case(kept, 0.0, np.float64), 0.0)

    # ------------------------------------------------------------------ assembling
    def extract(self, case: Case, exclude_pmid: str | None = None) -> CaseFeatures:
        n = len(self.universe)
        shared = self._shared.get(case)
        knowledge = self._knowledge(case, shared)
        weight, left_out = self._case_weights(exclude_pmid)
        pseudo_genes, pseudo, more_pseudo = self._case_only_knowledge(case, weight, left_out)
        cases = self._cases(case, weight, left_out, shared)
        self._shared.pop(case, None)
        # the features the shortlist is chosen by, for every gene (float32, as all features are);
        # the others are gathered for the shortlisted genes only
        sources = np.zeros((len(SOURCES), n), dtype=np.float32)
        for j, name in enumerate(SOURCES):
            if name in knowledge:
                sources[j, : self.n_annotated] = knowledge[name]
            if name == "lr_present":
                # genes without HPO annotations: the likelihood of pure noise for every present term
                background = self.likelihood.matcher.background[self.hpo.term_indices(list(case.present))]
                sources[j, self.n_annotated :] = np.log(self.likelihood.settings.noise / background).sum()
            if name in pseudo:
                sources[j, pseudo_genes] = pseudo[name]
            if name in cases:
                sources[j, self.index_to_universe] = cases[name]
        # every gene by likelihood (ties alphabetical): the shortlist in that order, then the rest
        order = order_by_score(sources[SOURCES.index("lr_present")], self.alphabetical)
        # each source's best k, ties (thousands of genes score 0 by their cases) broken by that
        # order: a gene the patient's findings fit better goes first (on validation, by 2 cases of
        # 1,375 at top 1 over alphabetical order, with the network trained on numpy's choice)
        picked = best_by_score(sources, self.shortlist_per_source, order)
        shortlisted = np.zeros(n, bool)
        shortlisted[picked] = True
        in_shortlist = shortlisted[order]
        candidates, rest = order[in_shortlist], order[~in_shortlist]

        values = np.zeros((len(candidates), len(FEATURES)), dtype=np.float32)
        for j, name in enumerate(SOURCES):
            values[:, COLUMN[name]] = sources[j, candidates]
        # gaps to the case's best gene: scores of different patients are on different scales
        for name in GAPS:
            row = sources[SOURCES.index(name)]
            values[:, COLUMN[f"{name}_gap"]] = row[candidates] - row.max()
        values[:, COLUMN["n_present"]] = np.log1p(len(case.present))
        values[:, COLUMN["n_excluded"]] = np.log1p(len(case.excluded))
        annotated = np.flatnonzero(candidates < self.n_annotated)
        genes = candidates[annotated]
        values[annotated, COLUMN["annotated"]] = 1.0
        values[annotated, COLUMN["annotation_size"]] = np.log1p(
            self.enrichment.annotation_sizes(case.withheld_publication)[genes])
        for name, column in self._shortlisted_knowledge(case, genes).items():
            values[annotated, COLUMN[name]] = column
        position = np.full(n, -1, dtype=np.int64)
        position[pseudo_genes] = np.arange(len(pseudo_genes))
        at = np.flatnonzero(position[candidates] >= 0)
        if len(at):
            rows = position[candidates[at]]
            for name, column in more_pseudo().items():
                values[at, COLUMN[name]] = column[rows]
        rows = self._index_row[candidates]
        with_cases = np.flatnonzero(rows >= 0)
        for name, column in cases.items():
            if name not in SOURCES:
                values[with_cases, COLUMN[name]] = column[rows[with_cases]]
        for name, credit in self._cooccurrence(case, candidates, left_out).items():
            values[:, COLUMN[name]] = credit
        ranked = [COLUMN[name] for name in RANKED]
        orders = order_by_score(np.ascontiguousarray(values[:, ranked].T), self.alphabetical[candidates])
        ranks = np.empty(orders.shape, dtype=np.float32)
        np.put_along_axis(ranks, orders, np.arange(1, len(candidates) + 1, dtype=np.float32), axis=1)
        values[:, [COLUMN[f"{name}_rank"] for name in RANKED]] = np.log(ranks).T
        return CaseFeatures(candidates, values, rest)


def product_by_columns(matrix: sp.csc_matrix, vector: TermVector) -> np.ndarray:
    """``matrix @ vector.dense(...)`` (float32), from the vector's nonzero entries' columns alone,
    bit for bit as scipy's CSR product: each row's sum runs in column order, as the CSR product's
    does (the zeros it adds change nothing). Up to FEW_COLUMNS columns they are added one after
    another here; beyond, scipy's column-major product of those columns adds them so (its column
    selection costs about 0.1 ms). A patient's terms are a few dozen of the index's 20,000: half
    the time of np.add.at over the same entries."""
    terms, weights = vector
    if len(terms) > FEW_COLUMNS:
        return np.asarray(matrix[:, terms] @ weights, dtype=np.float32)
    out = np.zeros(matrix.shape[0], dtype=np.float32)
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for j, weight in zip(terms.tolist(), weights):  # a column's rows are distinct: one add each
        out[indices[indptr[j] : indptr[j + 1]]] += data[indptr[j] : indptr[j + 1]] * weight
    return out


class GeneEnrichment:
    """How enriched each annotated gene's direct annotations (or the rows of ``direct``) are in a
    patient's terms: -log10 of the hypergeometric tail, over the terms some gene is annotated with
    (or ``universe`` of them, another enrichment's, so that the scores compare)."""

    def __init__(self, hpo: HPO, direct: sp.spmatrix | None = None, universe: int | None = None):
        self.hpo = hpo
        #: publication -> the gene rows that change without it (HPO's own gene annotations only)
        self.withheld_rows = hpo.genes_without if direct is None else None
        direct = (hpo.gene_terms if direct is None else direct).copy()
        direct.data[:] = 1.0
        self._positive = PositiveEntries(direct.tocsc())  # every entry is 1: each counts
        #: direct annotations per row
        self.annotation_size = np.asarray(direct.sum(axis=1)).ravel()
        self.annotated_terms_total = (int((np.asarray(direct.sum(axis=0)).ravel() > 0).sum()) if universe is None
                                      else universe)
        #: scores already computed (see hypergeometric_enrichment): patients share most of them
        self._known: dict[int, np.ndarray] = {}

    def _rows_without(self, publication: str | None) -> tuple[np.ndarray, sp.csr_matrix] | None:
        """The rows whose annotations ``publication`` was the only source of, and those rows'
        direct annotations recomputed without it (each counted once)."""
        changed = self.withheld_rows(publication) if publication and self.withheld_rows else None
        if changed is None:
            return None
        ones = changed.direct.copy()
        ones.data[:] = 1.0
        return changed.rows, ones

    def annotation_sizes(self, withheld_publication: str | None = None) -> np.ndarray:
        """Direct annotations per row, without what ``withheld_publication`` was the only source of."""
        changed = self._rows_without(withheld_publication)
        if changed is None:
            return self.annotation_size
        sizes = self.annotation_size.copy()
        sizes[changed[0]] = changed[1].getnnz(axis=1)
        return sizes

    def scores(self, present: list[str], withheld_publication: str | None = None) -> np.ndarray:
        # each row's count of the patient's terms among its direct annotations (all 1 in ``direct``)
        columns = self.hpo.term_indices(present)
        overlap = self._positive.counts(columns)
        changed = self._rows_without(withheld_publication)
        if changed is not None:
            overlap[changed[0]] = np.asarray(changed[1][:, columns].sum(axis=1)).ravel()
        return hypergeometric_enrichment(overlap, self.annotation_sizes(withheld_publication),
                                         self.annotated_terms_total, len(present), self._known)


@functools.lru_cache(maxsize=8)
def _log_factorials(n: int) -> np.ndarray:
    """log k! for k = 0..n, looked up: gammaln on every query took half of the enrichment's time.

    scipy's gammaln, kept under the cache: importing scipy.special takes 0.15-0.3 s, a third of
    `rdrft rank` (and math.lgamma differs from it in the last bit for half of the values)."""
    import scipy

    path = cache_dir("log-factorials") / f"scipy-{scipy.__version__}-{n}.npy"
    if path.is_file():
        return np.load(path)
    from scipy.special import gammaln

    table = gammaln(np.arange(n + 1, dtype=np.float64) + 1)
    atomic_write(path, lambda tmp: np.save(tmp, table))  # a reader sees the whole table or none
    return table


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """scipy.special.logsumexp(a, axis=1) for a 2-D float64 array whose rows each hold a finite
    value, bit for bit (scipy 1.17's steps: the rest summed relative to the maximum, divided by how
    many times the maximum occurs, log1p), without importing scipy.special. A test holds it to scipy's."""
    top = a.max(axis=1, keepdims=True)
    at_top = a == top
    count = at_top.sum(axis=1, keepdims=True, dtype=a.dtype)
    rest = np.exp(np.where(at_top, -np.inf, a) - top).sum(axis=1, keepdims=True)
    rest = np.where(rest == 0, rest, rest / count)
    return (np.log1p(rest) + np.log(count) + top)[:, 0]


def hypergeometric_enrichment(overlap: np.ndarray, sizes: np.ndarray, universe: int, drawn: int,
                              known: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """-log10 P(X >= overlap) for X ~ Hypergeom(universe, size, drawn), per gene; 0 without overlap.

    Written out (log-sum-exp over the upper tail) because scipy.stats.hypergeom.logsf costs about
    0.25 s for 5,000 genes, and the tail here never has more than ``drawn`` terms. Genes of one
    (overlap, size) share their score, computed once; ``known`` keeps the scores across calls, per
    ``drawn`` a table by overlap and size (NaN: not computed yet), read in one lookup (at most
    KNOWN_ENRICHMENTS entries in all).
    """
    out = np.zeros(len(overlap), dtype=np.float64)
    hit = np.flatnonzero(overlap > 0)
    if not len(hit):
        return out
    k, size = overlap[hit].astype(np.int64), sizes[hit].astype(np.int64)
    if known is None:
        pair, gene_pair = np.unique((k << 32) | size, return_inverse=True)
        out[hit] = _enrichment(pair >> 32, pair & 0xFFFFFFFF, universe, drawn)[gene_pair]
        return out
    table = known.get(drawn)
    shape = (max(drawn, int(k.max())) + 1, int(size.max()) + 1)
    if table is None or table.shape[0] < shape[0] or table.shape[1] < shape[1]:
        shape = (shape[0], max(shape[1], 2 * table.shape[1] if table is not None else 0))  # grown in steps
        if sum(t.size for t in known.values()) + shape[0] * shape[1] > KNOWN_ENRICHMENTS:
            known.clear()
            table = None
        grown = np.full(shape, np.nan)
        if table is not None:
            grown[: table.shape[0], : table.shape[1]] = table
        known[drawn] = table = grown
    scores = table[k, size]
    new = np.flatnonzero(np.isnan(scores))
    if len(new):
        pair = np.unique((k[new] << 32) | size[new])
        table[pair >> 32, pair & 0xFFFFFFFF] = _enrichment(pair >> 32, pair & 0xFFFFFFFF, universe, drawn)
        scores[new] = table[k[new], size[new]]
    out[hit] = scores
    return out


def _enrichment(k: np.ndarray, size: np.ndarray, universe: int, drawn: int) -> np.ndarray:
    """The scores of :func:`hypergeometric_enrichment` for overlaps ``k`` of sets of ``size``. Each
    is one row's log-sum-exp, which does not depend on the other rows: any subset gives the same bits."""
    k, size = k[:, None], size[:, None]
    j = np.arange(drawn + 1, dtype=np.int64)[None, :]
    rows, cols = np.nonzero((j >= k) & (j <= size) & (drawn - j <= universe - size))
    s, t = size[rows, 0], j[0, cols]
    log_fact = _log_factorials(universe)

    def log_choose(n: np.ndarray, r: np.ndarray) -> np.ndarray:
        return log_fact[n] - log_fact[r] - log_fact[n - r]

    log_pmf = np.full((len(k), drawn + 1), -np.inf)
    log_pmf[rows, cols] = log_choose(s, t) + log_choose(universe - s, drawn - t) - log_choose(universe, drawn)
    log_tail = logsumexp_rows(log_pmf)
    return np.minimum(-log_tail / np.log(10), 50.0)

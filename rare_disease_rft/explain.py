"""Evidence for (case, gene): what a clinician needs to judge a ranked gene.

- matched: the patient's terms the gene's HPO annotations explain, and through which annotated
  term (exact, a more specific annotation, a broader one, or a close relative). A gene HPO does
  not annotate is matched against what its published cases report, where the ranker holds some
  (``annotations_from``);
- contradicting: excluded terms that the gene usually shows;
- unexplained: present terms the gene's annotations do not account for;
- similar cases: the case reports of the gene most similar to the patient, with PMIDs (rankers
  that hold a case index provide them).
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .hpo import HPO, load_hpo
from .inputs.candidates import Candidates, restrict_ranking
from .rankers.base import Case, Ranker, Ranking
from .results import PatientRanking, RankedGene

# A shared ancestor at least this informative counts as a match (IC in nats over genes: 2.0 is a
# term annotated to about 1 gene in 7, e.g. "Abnormal muscle tone" is below, "Hypotonia" above).
RELATED_MIN_IC = 2.0


#: (closure row, direct-annotation row) of a gene, each 1 x terms with frequencies; None if unknown
Annotations = Callable[[str], "tuple[sp.csr_matrix, sp.csr_matrix] | None"]


def explain_gene(hpo: HPO, case: Case, gene: str, case_annotations: Annotations | None = None) -> dict:
    """Matched, contradicting and unexplained terms of ``case`` for one gene: against its HPO
    annotations, or else against its published cases (``case_annotations``, from the ranker)."""
    g = hpo.gene_index.get(gene)
    if g is not None:
        closure, direct = _AnnotatedTerms(*_row(hpo.gene_closure, g)), _row(hpo.gene_terms, g)[0]
    else:
        rows = case_annotations(gene) if case_annotations else None
        if rows is None:
            return {
                "gene_annotated": False,
                "annotations_from": None,
                "matched": [],
                "contradicting": [],
                "unexplained": [{"id": t, "label": hpo.name(t)} for t in case.present],
            }
        closure, direct = _AnnotatedTerms(rows[0].indices, rows[0].data), np.asarray(rows[1].indices)
    direct = np.sort(direct)
    terms = _patient_terms(hpo, case)
    ic = hpo.information_content
    mica = terms.shared_ancestors(closure)
    mica_frequency = closure.frequency(mica)
    descendants = _descendants(hpo)
    matched, unexplained = [], []
    for j, (term, q, label) in enumerate(zip(case.present, terms.present, terms.present_labels)):
        c = int(mica[j])
        if c < 0 or (c != q and ic[c] < RELATED_MIN_IC and not (direct == c).any()):
            unexplained.append({"id": term, "label": label})
            continue
        # the annotated term that carries the match: under the shared ancestor, closest in IC
        below = descendants.indices[descendants.indptr[c] : descendants.indptr[c + 1]]
        under = below[direct[np.minimum(np.searchsorted(direct, below), len(direct) - 1)] == below] if len(direct) else below[:0]
        via = int(under[np.lexsort((under, np.abs(ic[under] - ic[q])))[0]]) if len(under) else c
        kind = ("exact" if via == q else "more specific annotation" if (hpo.ancestor_indices(via) == q).any()
                else "broader annotation" if (terms.ancestors_of(j) == via).any() else "related")
        matched.append({
            "id": term, "label": label, "match": kind,
            "via": {"id": hpo.ids[via], "label": hpo.names[via]},
            "shared_ancestor": {"id": hpo.ids[c], "label": hpo.names[c], "ic": round(float(ic[c]), 2)},
            "frequency": round(float(mica_frequency[j]), 3),
        })
    contradicting = []
    # 1e-6 stands for frequency 0, "Excluded" (HP:0040285): the gene lacks it
    for term, label, freq in zip(case.excluded, terms.excluded_labels, closure.frequency(terms.excluded).tolist()):
        if freq > 1e-6:
            contradicting.append({"id": term, "label": label, "frequency": round(freq, 3)})
    return {"gene_annotated": g is not None, "annotations_from": "hpo" if g is not None else "published cases",
            "matched": matched, "contradicting": contradicting, "unexplained": unexplained}


class _AnnotatedTerms:
    """A gene's annotated terms (closure) with their frequencies, looked up with arrays: a request
    asks thousands of times, which scalar lookups into a sparse matrix made slow."""

    def __init__(self, terms: np.ndarray, frequencies: np.ndarray):
        order = np.argsort(terms, kind="stable")
        self.terms, self.frequencies = np.asarray(terms)[order], np.asarray(frequencies)[order]

    def _find(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        where = np.minimum(np.searchsorted(self.terms, terms), max(len(self.terms) - 1, 0))
        found = self.terms[where] == terms if len(self.terms) else np.zeros(len(terms), bool)
        return where, found

    def has(self, terms: np.ndarray) -> np.ndarray:
        return self._find(terms)[1]

    def frequency(self, terms: np.ndarray) -> np.ndarray:
        """Each term's annotated frequency (float64), 0 where it is not annotated."""
        where, found = self._find(terms)
        return np.where(found, self.frequencies[where] if len(self.terms) else 0.0, 0.0).astype(np.float64)


class _PatientTerms:
    """A patient's terms as indices, with their ancestors flat: the same for every gene explained."""

    def __init__(self, hpo: HPO, case: Case):
        self.present = hpo.term_indices(list(case.present))
        self.excluded = hpo.term_indices(list(case.excluded))
        self.present_labels = [hpo.name(t) for t in case.present]
        self.excluded_labels = [hpo.name(t) for t in case.excluded]
        self.ancestors, self.term_of = _ancestors_of(hpo, self.present)
        self._bounds = np.searchsorted(self.term_of, np.arange(len(self.present) + 1))
        # among equally informative ancestors the most specific (most ancestors of its own), so an
        # annotated term is its own shared ancestor even when its parent has the same genes
        self._keys = (self.ancestors, -np.diff(hpo.ancestor_matrix.indptr)[self.ancestors],
                      -hpo.information_content[self.ancestors])

    def ancestors_of(self, j: int) -> np.ndarray:
        return self.ancestors[self._bounds[j] : self._bounds[j + 1]]

    def shared_ancestors(self, closure: _AnnotatedTerms) -> np.ndarray:
        """Per present term, its most informative ancestor the gene is annotated with (then the
        deepest, then the lowest index); -1 where there is none."""
        out = np.full(len(self.present), -1, dtype=np.int64)
        shared = np.flatnonzero(closure.has(self.ancestors))
        if len(shared):
            order = shared[np.lexsort(tuple(key[shared] for key in self._keys) + (self.term_of[shared],))]
            first = np.flatnonzero(np.diff(self.term_of[order], prepend=-1))
            out[self.term_of[order[first]]] = self.ancestors[order[first]]
        return out


@functools.lru_cache(maxsize=16)
def _patient_terms(hpo: HPO, case: Case) -> _PatientTerms:
    return _PatientTerms(hpo, case)


def _row(matrix: sp.csr_matrix, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Row ``i`` of a CSR matrix: its column indices and values (scipy's row indexing costs more)."""
    start, end = matrix.indptr[i], matrix.indptr[i + 1]
    return matrix.indices[start:end], matrix.data[start:end]


def _ancestors_of(hpo: HPO, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ancestors of each of ``terms`` (itself included), flat, and for each the position of
    the term it belongs to, read from the ancestor matrix's arrays in one go."""
    m = hpo.ancestor_matrix
    terms = np.asarray(terms, dtype=np.int64)
    starts, lengths = m.indptr[terms], m.indptr[terms + 1] - m.indptr[terms]
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    return m.indices[offsets], np.repeat(np.arange(len(terms)), lengths)


@functools.lru_cache(maxsize=4)
def _descendants(hpo: HPO) -> sp.csc_matrix:
    """Column t: t and every term under it (the ancestor matrix by column)."""
    descendants = hpo.ancestor_matrix.tocsc()
    descendants.sort_indices()
    return descendants


def matched_diseases(hpo: HPO, gene: str, matched: list[dict], limit: int = 3) -> list[dict]:
    """The gene's diseases whose annotations match the patient, best first: id (OMIM/ORPHA), name,
    modes of inheritance, and how many of the matched terms each disease's annotations explain."""
    g = hpo.gene_index.get(gene)
    if g is None or not matched:
        return []
    shared = [hpo.index[m["shared_ancestor"]["id"]] for m in matched]
    diseases, closure = hpo.gene_diseases, hpo.disease_closure
    found = []
    # the matrices' rows read from their arrays: a scipy row slice costs more than the test on it
    for d in diseases.indices[diseases.indptr[g]:diseases.indptr[g + 1]]:
        n = int(np.isin(shared, closure.indices[closure.indptr[d]:closure.indptr[d + 1]]).sum())
        if n:
            found.append((n, hpo.disease_ids[d], d))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [{"id": disease_id, "name": hpo.disease_names[d], "matched_terms": n,
             "inheritance": [hpo.name(t) for t in hpo.disease_inheritance[d]]}
            for n, disease_id, d in found[:limit]]


def rank_and_explain(ranker: Ranker, case: Case, top: int = 10, hpo: HPO | None = None,
                     notes: list[str] | None = None, candidates: Candidates | None = None) -> PatientRanking:
    """The ranking's first ``top`` genes, each with its score, probability and explanation;
    ``notes`` (what became of the input) are carried into the result. With ``candidates`` (a gene
    list or the genes of a VCF) only they are ranked, those the knowledge base lacks last."""
    return explain_ranking(ranker, case, ranker.rank(case), top, hpo or load_hpo(), notes, candidates)


def explain_ranking(ranker: Ranker, case: Case, ranking: Ranking, top: int, hpo: HPO,
                    notes: list[str] | None = None, candidates: Candidates | None = None) -> PatientRanking:
    """:func:`rank_and_explain` of a ranking already made (batches rank many cases at once)."""
    notes = list(notes or [])
    if candidates is not None:
        ranking = restrict_ranking(ranking, candidates)
        notes += candidates.notes
    unranked = ranking.extra.get("unranked", {})
    genes = []
    for position, gene in enumerate(ranking.genes[:top], 1):
        # a candidate the knowledge base lacks is explained like any unknown gene: nothing matches
        explanation = explain_gene(hpo, case, gene, ranker.case_annotations)
        explanation["diseases"] = matched_diseases(hpo, gene, explanation["matched"])
        explanation["similar_cases"] = ranker.similar_cases(case, gene)
        if gene in unranked:
            explanation["not_ranked"] = unranked[gene]
        candidate = candidates.get(gene) if candidates is not None else None
        if candidate is not None:
            explanation["variants"] = [v.to_json() for v in candidate.variants]
        score = float(ranking.scores[position - 1]) if len(ranking.scores) >= position else None
        probability = None if ranking.probabilities is None else float(ranking.probabilities[position - 1])
        genes.append(RankedGene(
            rank=position, gene=gene,
            score=None if score is None or math.isnan(score) else score,
            probability=None if probability is None or math.isnan(probability) else probability,
            explanation=explanation, tied=tie_size(ranking.scores, score),
        ))
    at_top = genes[0].tied if genes else 1
    if at_top > 1:
        notes.append(tie_note(at_top, len(ranking.genes)))
    return PatientRanking(
        model=ranker.name, present=list(case.present), excluded=list(case.excluded), genes=genes,
        notes=notes, text=ranking.text, format_ok=ranking.format_ok,
        versions={"model": ranker.name, "kind": ranker.describe().get("kind"), "hpo": hpo.version},
        sex=case.sex, age_years=case.age_years, tied_at_top=at_top,
    )


def tie_size(scores: np.ndarray, score: float | None) -> int:
    """How many genes of a ranking have ``score`` (1 if none is given)."""
    if score is None or math.isnan(score):
        return 1
    return max(1, int(np.isclose(np.asarray(scores, dtype=float), score, rtol=1e-9, atol=1e-12).sum()))


def tie_note(tied: int, ranked: int) -> str:
    """What a tie at the top means, for the notes of a ranking."""
    if tied >= ranked:
        return (f"all {ranked} genes have the same score: the ranking carries no information; their order is "
                "alphabetical. Add more specific phenotypes")
    return (f"{tied} genes share the top score: the phenotypes do not tell them apart, and their order "
            "(alphabetical) is not a ranking. More specific phenotypes, or candidate genes, narrow it")

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
    rows = (hpo.gene_closure[g], hpo.gene_terms[g]) if g is not None else case_annotations and case_annotations(gene)
    if rows is None:
        return {
            "gene_annotated": False,
            "annotations_from": None,
            "matched": [],
            "contradicting": [],
            "unexplained": [{"id": t, "label": hpo.name(t)} for t in case.present],
        }
    closure_row, direct_row = rows
    in_closure = dict(zip(closure_row.indices.tolist(), closure_row.data.tolist()))
    direct = direct_row.indices
    ic = hpo.information_content
    # among equally informative ancestors the most specific (most ancestors of its own), so an
    # annotated term is its own shared ancestor even when its parent has the same genes
    depth = np.diff(hpo.ancestor_matrix.indptr)
    matched, unexplained = [], []
    for term in case.present:
        q = hpo.index[term]
        anc = hpo.ancestor_indices(q)
        shared = [c for c in anc if c in in_closure]
        mica = max(shared, key=lambda c: (ic[c], depth[c], -c)) if shared else None
        if mica is None or (mica != q and ic[mica] < RELATED_MIN_IC and mica not in direct):
            unexplained.append({"id": term, "label": hpo.name(term)})
            continue
        # the annotated term that carries the match: under the shared ancestor, closest in IC
        under = [a for a in direct if hpo.ancestor_matrix[a, mica]]
        via = min(under, key=lambda a: (abs(ic[a] - ic[q]), a)) if under else mica
        kind = ("exact" if via == q else "more specific annotation" if hpo.ancestor_matrix[via, q]
                else "broader annotation" if hpo.ancestor_matrix[q, via] else "related")
        matched.append({
            "id": term, "label": hpo.name(term), "match": kind,
            "via": {"id": hpo.ids[via], "label": hpo.names[via]},
            "shared_ancestor": {"id": hpo.ids[mica], "label": hpo.names[mica], "ic": round(float(ic[mica]), 2)},
            "frequency": round(float(in_closure[mica]), 3),
        })
    contradicting = []
    for term in case.excluded:
        freq = in_closure.get(hpo.index[term], 0.0)
        if freq > 1e-6:  # 1e-6 stands for frequency 0, "Excluded" (HP:0040285): the gene lacks it
            contradicting.append({"id": term, "label": hpo.name(term), "frequency": round(float(freq), 3)})
    return {"gene_annotated": g is not None, "annotations_from": "hpo" if g is not None else "published cases",
            "matched": matched, "contradicting": contradicting, "unexplained": unexplained}


def matched_diseases(hpo: HPO, gene: str, matched: list[dict], limit: int = 3) -> list[dict]:
    """The gene's diseases whose annotations match the patient, best first: id (OMIM/ORPHA), name,
    modes of inheritance, and how many of the matched terms each disease's annotations explain."""
    g = hpo.gene_index.get(gene)
    if g is None or not matched:
        return []
    shared = [hpo.index[m["shared_ancestor"]["id"]] for m in matched]
    found = []
    for d in hpo.gene_diseases[g].indices:
        row = hpo.disease_closure[d]
        n = int(np.isin(shared, row.indices).sum())
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
        if gene in unranked:
            explanation = {"gene_annotated": False, "annotations_from": None, "matched": [], "contradicting": [],
                           "unexplained": [{"id": t, "label": hpo.name(t)} for t in case.present],
                           "similar_cases": [], "not_ranked": unranked[gene]}
        else:
            explanation = explain_gene(hpo, case, gene, ranker.case_annotations)
            explanation["diseases"] = matched_diseases(hpo, gene, explanation["matched"])
            explanation["similar_cases"] = ranker.similar_cases(case, gene)
        candidate = candidates.get(gene) if candidates is not None else None
        if candidate is not None:
            explanation["variants"] = [v.to_json() for v in candidate.variants]
        score = float(ranking.scores[position - 1]) if len(ranking.scores) >= position else None
        probability = None if ranking.probabilities is None else float(ranking.probabilities[position - 1])
        genes.append(RankedGene(
            rank=position, gene=gene,
            score=None if score is None or math.isnan(score) else score,
            probability=None if probability is None or math.isnan(probability) else probability,
            explanation=explanation,
        ))
    return PatientRanking(
        model=ranker.name, present=list(case.present), excluded=list(case.excluded), genes=genes,
        notes=notes, text=ranking.text, format_ok=ranking.format_ok,
        versions={"model": ranker.name, "kind": ranker.describe().get("kind"), "hpo": hpo.version},
        sex=case.sex, age_years=case.age_years,
    )

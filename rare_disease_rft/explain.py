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
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from .hpo import HPO, load_hpo
from .inputs.candidates import Candidates, restrict_ranking
from .rankers.base import Case, Ranker, Ranking
from .rankers.knowledge import span_positions
from .results import PatientRanking, RankedGene

# A shared ancestor at least this informative counts as a match (IC in nats over genes: 2.0 is a
# term annotated to about 1 gene in 7, e.g. "Abnormal muscle tone" is below, "Hypotonia" above).
RELATED_MIN_IC = 2.0


#: (closure row, direct-annotation row) of a gene, each 1 x terms with frequencies; None if unknown
Annotations = Callable[[str], "tuple[sp.csr_matrix, sp.csr_matrix] | None"]


def explain_gene(hpo: HPO, case: Case, gene: str, case_annotations: Annotations | None = None) -> dict:
    """Matched, contradicting and unexplained terms of ``case`` for one gene: against its HPO
    annotations, or else against its published cases (``case_annotations``, from the ranker)."""
    return explain_genes(hpo, case, [gene], case_annotations)[0]


def explain_genes(hpo: HPO, case: Case, genes: Sequence[str], case_annotations: Annotations | None = None) -> list[dict]:
    """:func:`explain_gene` of each of ``genes``, computed for all of them at once (see :func:`explain_many`)."""
    return explain_many(hpo, [(case, genes)], case_annotations)[0]


def explain_many(hpo: HPO, requests: Sequence[tuple[Case, Sequence[str]]],
                 case_annotations: Annotations | None = None) -> list[list[dict]]:
    """:func:`explain_genes` of many patients, each with their genes: each lookup is one array
    operation over every patient, gene and term (a ranking's top 10 asked for a thousand small
    ones, and a batch's patients each for a hundred)."""
    explanations: list[list[dict | None]] = [[None] * len(genes) for _, genes in requests]
    # (request, position in its genes, annotated by HPO, closure terms, their frequencies, direct terms)
    known = []
    direct_sorted = hpo.gene_terms.has_sorted_indices
    for r, (case, genes) in enumerate(requests):
        for i, gene in enumerate(genes):
            g = hpo.gene_index.get(gene)
            if g is not None:
                direct = _row(hpo.gene_terms, g)[0]
                known.append((r, i, True, *_row(hpo.gene_closure, g), direct if direct_sorted else np.sort(direct)))
                continue
            rows = case_annotations(gene) if case_annotations else None
            if rows is None:
                explanations[r][i] = {
                    "gene_annotated": False,
                    "annotations_from": None,
                    "matched": [],
                    "contradicting": [],
                    "unexplained": [{"id": t, "label": hpo.name(t)} for t in case.present],
                }
            else:
                known.append((r, i, False, rows[0].indices, rows[0].data, np.sort(rows[1].indices)))
    if not known:
        return explanations
    # each gene's terms keyed by its slot: slot * width + term, sorted, so one search finds them all
    width = len(hpo.ids)
    # HPO's rows are sorted (so are the keys); only rows from published cases need the check
    checked = not (hpo.gene_closure.has_sorted_indices and all(k[2] for k in known))
    closure = _Keyed(_slot_keys([k[3] for k in known], width), np.concatenate([k[4] for k in known]), checked)
    direct = _Keyed(_slot_keys([k[5] for k in known], width), check=False)  # each row sorted above
    patients = [_patient_terms(hpo, case) for case, _ in requests]
    slots = _Slots(patients, np.array([k[0] for k in known]))
    ic = hpo.information_content
    # per (slot, present term) pair, slot by slot and each in its patient's order
    present, pair_slot, term_of_pair, _ = slots.spread([p.present for p in patients])
    mica, mica_frequency = slots.shared_ancestors(closure, width)
    safe = np.maximum(mica, 0)
    is_direct = direct.find(pair_slot * width + safe)[1]
    unexplained = (mica < 0) | ((mica != present) & (ic[safe] < RELATED_MIN_IC) & ~is_direct)
    m = np.flatnonzero(~unexplained)  # the matches, gene by gene, in the patient's order
    slot_m, term_m, c_m, q_m = pair_slot[m], term_of_pair[m], mica[m], present[m]
    via = _closest_annotated(hpo, direct, width, slot_m, c_m, q_m)
    kinds = np.where(via == q_m, 0, np.where(_rows_hold(hpo.ancestor_matrix, via, q_m), 1,
                                             np.where(_rows_hold(hpo.ancestor_matrix, q_m, via), 2, 3)))
    excluded, x_slot, x_term, _ = slots.spread([p.excluded for p in patients])
    excluded_frequency = closure.values_at(x_slot * width + excluded)
    # 1e-6 stands for frequency 0, "Excluded" (HP:0040285): the gene lacks it
    x = np.flatnonzero(excluded_frequency > 1e-6)
    # the dicts, gene by gene: Python's part, kept to one pass over flat lists
    ids, names, rounded_ic = hpo.ids, hpo.names, _rounded_ic(hpo)
    terms_of_slot = [(requests[k[0]][0], patients[k[0]]) for k in known]
    matched: list[list[dict]] = [[] for _ in known]
    for k, j, kind, v, c, frequency in zip(slot_m.tolist(), term_m.tolist(), kinds.tolist(), via.tolist(),
                                           c_m.tolist(), mica_frequency[m].tolist()):
        case, terms = terms_of_slot[k]
        matched[k].append({
            "id": case.present[j], "label": terms.present_labels[j], "match": MATCH_KINDS[kind],
            "via": {"id": ids[v], "label": names[v]},
            "shared_ancestor": {"id": ids[c], "label": names[c], "ic": rounded_ic[c]},
            "frequency": round(frequency, 3),
        })
    unexplained_terms: list[list[dict]] = [[] for _ in known]
    u = np.flatnonzero(unexplained)
    for k, j in zip(pair_slot[u].tolist(), term_of_pair[u].tolist()):
        case, terms = terms_of_slot[k]
        unexplained_terms[k].append({"id": case.present[j], "label": terms.present_labels[j]})
    contradicting: list[list[dict]] = [[] for _ in known]
    for k, j, frequency in zip(x_slot[x].tolist(), x_term[x].tolist(), excluded_frequency[x].tolist()):
        case, terms = terms_of_slot[k]
        contradicting[k].append({"id": case.excluded[j], "label": terms.excluded_labels[j], "frequency": round(frequency, 3)})
    for k, (r, i, annotated, *_) in enumerate(known):
        explanations[r][i] = {
            "gene_annotated": annotated, "annotations_from": "hpo" if annotated else "published cases",
            "matched": matched[k], "contradicting": contradicting[k], "unexplained": unexplained_terms[k]}
    return explanations


#: how a matched term relates to the annotated term that carries the match (``via``)
MATCH_KINDS = ("exact", "more specific annotation", "broader annotation", "related")


class _Keyed:
    """Sorted integer keys (row * width + column of a matrix's entries), with a value each where
    given: many (row, column) lookups are one search."""

    def __init__(self, keys: np.ndarray, values: np.ndarray | None = None, check: bool = True):
        """``check=False``: the caller knows the keys are sorted."""
        if check and len(keys) > 1 and not (keys[1:] > keys[:-1]).all():  # CSR rows usually are sorted already
            order = np.argsort(keys, kind="stable")
            keys, values = keys[order], None if values is None else values[order]
        self.keys, self.values = keys, values

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each of ``keys`` is (clipped), and whether it is there."""
        if not len(self.keys):
            return np.zeros(np.shape(keys), np.int64), np.zeros(np.shape(keys), bool)
        where = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return where, self.keys[where] == keys

    def values_at(self, keys: np.ndarray) -> np.ndarray:
        """Each key's value (float64), 0 where it is absent."""
        where, found = self.find(keys)
        return np.where(found, self.values[where] if len(self.keys) else 0.0, 0.0).astype(np.float64)


def _slot_keys(rows: list[np.ndarray], width: int) -> np.ndarray:
    """The columns of each row as keys ``slot * width + column``, slot being the row's position."""
    lengths = [len(r) for r in rows]
    return np.concatenate(rows).astype(np.int64) + np.repeat(np.arange(len(rows), dtype=np.int64) * width, lengths)


def _rows_hold(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Whether row ``rows[i]`` of a CSR matrix has an entry in column ``columns[i]``, for every i,
    reading only those rows (a search of all the matrix's entries strays over megabytes)."""
    starts = matrix.indptr[rows]
    offsets, owner = _spans(starts, matrix.indptr[rows + 1] - starts)
    return np.bincount(owner[matrix.indices[offsets] == columns[owner]], minlength=len(rows)) > 0


@functools.lru_cache(maxsize=4)
def _rounded_ic(hpo: HPO) -> list[float]:
    """Each term's IC as an explanation shows it (two decimals)."""
    return [round(v, 2) for v in hpo.information_content.tolist()]


@functools.lru_cache(maxsize=4)
def _preference(hpo: HPO) -> tuple[np.ndarray, np.ndarray]:
    """Terms in the order a patient term's shared ancestor is chosen by: the most informative first,
    among equally informative ones the most specific (most ancestors of its own, so an annotated
    term is its own shared ancestor even when its parent has the same genes), then the lowest
    index. Returns the terms in that order and each term's place in it."""
    ic, indptr = hpo.information_content, hpo.ancestor_matrix.indptr
    order = np.lexsort((np.arange(len(ic)), -np.diff(indptr), -ic))
    place = np.empty_like(order)
    place[order] = np.arange(len(order))
    return order, place


@functools.lru_cache(maxsize=4)
def _inheritance_names(hpo: HPO) -> list[tuple[str, ...]]:
    """Each disease's modes of inheritance, by name."""
    return [tuple(hpo.name(t) for t in modes) for modes in hpo.disease_inheritance]


def warm(hpo: HPO) -> None:
    """Builds the lookups explanations use, once (before a batch forks its workers, which then share them)."""
    for build in (_descendants, _rounded_ic, _preference, _inheritance_names):
        build(hpo)


def _closest_annotated(hpo: HPO, direct: _Keyed, width: int, slots: np.ndarray, shared: np.ndarray,
                       present: np.ndarray) -> np.ndarray:
    """Per match (a gene's slot, the shared ancestor, the patient's term), the annotated term that
    carries it: among the gene's direct annotations under the shared ancestor, the one closest in
    IC to the patient's term (then the lowest index); the shared ancestor itself where none is."""
    via = shared.copy()
    descendants = _descendants(hpo)
    starts = descendants.indptr[shared]
    offsets, match = _spans(starts, descendants.indptr[shared + 1] - starts)
    below = descendants.indices[offsets]
    annotated = direct.find(slots[match] * width + below)[1]
    if annotated.any():
        below, match = below[annotated], match[annotated]
        ic = hpo.information_content
        best = np.lexsort((below, np.abs(ic[below] - ic[present[match]]), match))
        first = best[np.concatenate(([True], match[best][1:] != match[best][:-1]))]
        via[match[first]] = below[first]
    return via


@functools.lru_cache(maxsize=4)
def _descendants(hpo: HPO) -> sp.csc_matrix:
    """Column t: t and every term under it (the ancestor matrix by column)."""
    descendants = hpo.ancestor_matrix.tocsc()
    descendants.sort_indices()
    return descendants


class _PatientTerms:
    """A patient's terms as indices, with their ancestors flat: the same for every gene explained."""

    def __init__(self, hpo: HPO, case: Case):
        self.present = hpo.term_indices(list(case.present))
        self.excluded = hpo.term_indices(list(case.excluded))
        self.present_labels = [hpo.name(t) for t in case.present]
        self.excluded_labels = [hpo.name(t) for t in case.excluded]
        ancestors, term_of = _ancestors_of(hpo, self.present)
        #: where each term's run of ancestors begins in ``preferred``
        self.runs = np.searchsorted(term_of, np.arange(len(self.present)))
        #: per term, its ancestors by preference (see _preference), grouped by term in the patient's order
        order, place = _preference(hpo)
        self.preferred = order[np.sort(term_of * len(order) + place[ancestors]) % len(order)]


class _Slots:
    """The genes explained (slots), each of one patient (``patients[patient[slot]]``), slot by slot:
    a patient's terms are laid out once per slot of theirs, so that every (slot, term) pair is an
    entry of one flat array."""

    def __init__(self, patients: list[_PatientTerms], patient: np.ndarray):
        self.patients, self.patient = patients, patient

    def spread(self, arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each slot's copy of its patient's array (``arrays[p]``, integers), end to end; for each
        entry its slot and its position in the patient's array; and where each slot's copy begins."""
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        n = lengths[self.patient]
        positions, firsts = span_positions(starts[self.patient], n)
        flat = np.concatenate(arrays).astype(np.int64)[positions]
        return flat, np.repeat(np.arange(len(self.patient)), n), positions - np.repeat(starts[self.patient], n), firsts

    def shared_ancestors(self, closure: _Keyed, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Per (slot, present term) pair, the term's most informative ancestor the slot's gene is
        annotated with (then the deepest, then the lowest index), -1 where there is none; and the
        gene's frequency of it (0 where none)."""
        preferred, slot, _, segments = self.spread([p.preferred for p in self.patients])
        n = len(preferred)
        if not n:
            return np.full(0, -1, dtype=np.int64), np.zeros(0)
        where, found = closure.find(slot * width + preferred)
        # each term's run of ancestors, within its slot's segment (every run holds at least the term itself)
        runs, run_slot, _, _ = self.spread([p.runs for p in self.patients])
        first = np.minimum.reduceat(np.where(found, np.arange(n), n), runs + segments[run_slot])
        has, first = first < n, np.minimum(first, n - 1)
        frequency = closure.values[where[first]] if len(closure.keys) else 0.0
        return (np.where(has, preferred[first], -1).astype(np.int64),  # int64: made into keys (* width)
                np.where(has, frequency, 0.0).astype(np.float64))


@functools.lru_cache(maxsize=16)
def _patient_terms(hpo: HPO, case: Case) -> _PatientTerms:
    return _PatientTerms(hpo, case)


def _row(matrix: sp.csr_matrix, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Row ``i`` of a CSR matrix: its column indices and values (scipy's row indexing costs more)."""
    start, end = matrix.indptr[i], matrix.indptr[i + 1]
    return matrix.indices[start:end], matrix.data[start:end]


def _spans(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions ``starts[i] .. starts[i] + lengths[i]`` of every span, flat, and for each the span it is in."""
    return span_positions(starts, lengths)[0], np.repeat(np.arange(len(starts)), lengths)


def _ancestors_of(hpo: HPO, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ancestors of each of ``terms`` (itself included), flat, and for each the position of
    the term it belongs to, read from the ancestor matrix's arrays in one go."""
    m = hpo.ancestor_matrix
    terms = np.asarray(terms, dtype=np.int64)
    offsets, term_of = _spans(m.indptr[terms], m.indptr[terms + 1] - m.indptr[terms])
    return m.indices[offsets], term_of


def matched_diseases(hpo: HPO, genes: Sequence[str], explanations: Sequence[dict], limit: int = 3) -> list[list[dict]]:
    """Per gene, its diseases whose annotations match the patient (the explanation's matched terms),
    best first: id (OMIM/ORPHA), name, modes of inheritance, and how many of the matched terms each
    disease's annotations explain. All genes' diseases are looked up at once."""
    rows = [hpo.gene_index.get(gene) if e["matched"] else None for gene, e in zip(genes, explanations)]
    asked = [i for i, g in enumerate(rows) if g is not None]
    found: list[list[dict]] = [[] for _ in genes]
    if not asked:
        return found
    shared = [[hpo.index[m["shared_ancestor"]["id"]] for m in explanations[i]["matched"]] for i in asked]
    # every (gene, disease) pair, then every (pair, shared ancestor): is it in the disease's closure?
    indptr = hpo.gene_diseases.indptr
    starts = indptr[[rows[i] for i in asked]]
    at, gene_of = _spans(starts, indptr[[rows[i] + 1 for i in asked]] - starts)
    diseases = hpo.gene_diseases.indices[at].astype(np.int64)
    n_shared = np.array([len(terms) for terms in shared])
    first_shared = np.cumsum(n_shared) - n_shared
    which, pair = _spans(first_shared[gene_of], n_shared[gene_of])
    # the diseases' closures, keyed by the pair's position: a search among their terms only
    closure, width = hpo.disease_closure, len(hpo.ids)
    starts = closure.indptr[diseases]
    at, row_of = _spans(starts, closure.indptr[diseases + 1] - starts)
    terms = _Keyed(row_of * width + closure.indices[at], check=not closure.has_sorted_indices)
    held = terms.find(pair * width + np.concatenate(shared)[which])[1]
    counts = np.bincount(pair[held], minlength=len(diseases)).tolist()
    by_gene: list[list[tuple[int, str, int]]] = [[] for _ in asked]
    names, inheritance = hpo.disease_names, _inheritance_names(hpo)
    for k, d, n in zip(gene_of.tolist(), diseases.tolist(), counts):
        if n:
            by_gene[k].append((n, hpo.disease_ids[d], d))
    for i, candidates in zip(asked, by_gene):
        candidates.sort(key=lambda item: (-item[0], item[1]))
        found[i] = [{"id": disease_id, "name": names[d], "matched_terms": n, "inheritance": list(inheritance[d])}
                    for n, disease_id, d in candidates[:limit]]
    return found


def rank_and_explain(ranker: Ranker, case: Case, top: int = 10, hpo: HPO | None = None,
                     notes: list[str] | None = None, candidates: Candidates | None = None) -> PatientRanking:
    """The ranking's first ``top`` genes, each with its score, probability and explanation;
    ``notes`` (what became of the input) are carried into the result. With ``candidates`` (a gene
    list or the genes of a VCF) only they are ranked, those the knowledge base lacks last."""
    return explain_ranking(ranker, case, ranker.rank(case), top, hpo or load_hpo(), notes, candidates)


def explain_ranking(ranker: Ranker, case: Case, ranking: Ranking, top: int, hpo: HPO,
                    notes: list[str] | None = None, candidates: Candidates | None = None) -> PatientRanking:
    """:func:`rank_and_explain` of a ranking already made."""
    return explain_rankings(ranker, [(case, ranking, notes)], top, hpo, candidates)[0]


def explain_rankings(ranker: Ranker, rankings: Sequence[tuple[Case, Ranking, list[str] | None]], top: int, hpo: HPO,
                     candidates: Candidates | None = None) -> list[PatientRanking]:
    """:func:`explain_ranking` of many (case, ranking, notes), their genes explained all at once
    (a batch ranks and explains many cases together)."""
    restricted = []
    for case, ranking, notes in rankings:
        notes = list(notes or [])
        if candidates is not None:
            ranking = restrict_ranking(ranking, candidates)
            notes += candidates.notes
        restricted.append((case, ranking, notes))
    # a candidate the knowledge base lacks is explained like any unknown gene: nothing matches
    explanations = explain_many(hpo, [(case, ranking.genes[:top]) for case, ranking, _ in restricted],
                                ranker.case_annotations)
    diseases = iter(matched_diseases(hpo, [g for _, ranking, _ in restricted for g in ranking.genes[:top]],
                                     [e for some in explanations for e in some]))
    return [_patient_ranking(ranker, case, ranking, hpo, notes, candidates, some, [next(diseases) for _ in some])
            for (case, ranking, notes), some in zip(restricted, explanations)]


def _patient_ranking(ranker: Ranker, case: Case, ranking: Ranking, hpo: HPO, notes: list[str],
                     candidates: Candidates | None, explanations: list[dict], diseases: list[list[dict]]) -> PatientRanking:
    """The ranking's first genes (as many as ``explanations``), each with its score, probability,
    explanation, diseases and similar cases."""
    unranked = ranking.extra.get("unranked", {})
    genes = []
    scores = [float(s) for s in ranking.scores[: len(explanations)]]
    ties = tie_sizes(ranking.scores, scores)
    for position, (gene, explanation) in enumerate(zip(ranking.genes, explanations), 1):
        explanation["diseases"] = diseases[position - 1]
        explanation["similar_cases"] = ranker.similar_cases(case, gene)
        if gene in unranked:
            explanation["not_ranked"] = unranked[gene]
        candidate = candidates.get(gene) if candidates is not None else None
        if candidate is not None:
            explanation["variants"] = [v.to_json() for v in candidate.variants]
        score = scores[position - 1] if len(scores) >= position else None
        probability = None if ranking.probabilities is None else float(ranking.probabilities[position - 1])
        genes.append(RankedGene(
            rank=position, gene=gene,
            score=None if score is None or math.isnan(score) else score,
            probability=None if probability is None or math.isnan(probability) else probability,
            explanation=explanation, tied=ties[position - 1] if score is not None else 1,
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


def tie_sizes(scores: np.ndarray, of: list[float]) -> list[int]:
    """How many genes of a ranking have each score of ``of`` (1 for NaN), all compared at once."""
    of, scores = np.asarray(of, dtype=float), np.asarray(scores, dtype=float)
    if not len(of):
        return []
    if np.isfinite(of).all():  # only scores within twice the tolerance of one of them can be close
        slack = 2 * (1e-12 + 1e-9 * np.abs(of).max())
        scores = scores[(scores >= of.min() - slack) & (scores <= of.max() + slack)]
        # np.isclose(scores, of, rtol=1e-9, atol=1e-12) of finite values, without its checks
        same = (np.abs(scores[None, :] - of[:, None]) <= 1e-12 + 1e-9 * np.abs(of[:, None])).sum(axis=1)
    else:
        same = np.isclose(scores[None, :], of[:, None], rtol=1e-9, atol=1e-12).sum(axis=1)
    return [1 if math.isnan(s) else max(1, int(n)) for s, n in zip(of.tolist(), same.tolist())]


def tie_note(tied: int, ranked: int) -> str:
    """What a tie at the top means, for the notes of a ranking."""
    if tied >= ranked:
        return (f"all {ranked} genes have the same score: the ranking carries no information; their order is "
                "alphabetical. Add more specific phenotypes")
    return (f"{tied} genes share the top score: the phenotypes do not tell them apart, and their order "
            "(alphabetical) is not a ranking. More specific phenotypes, or candidate genes, narrow it")

"""Knowledge without one publication: what a case from that paper is ranked with as a new patient."""

import math

import numpy as np
import pytest
from conftest import hpoa_row, write_hpo_release

from rare_disease_rft.hpo import HPO
from rare_disease_rft.rankers import Case
from rare_disease_rft.rankers.features import GeneEnrichment
from rare_disease_rft.rankers.knowledge import gene_matcher

# OMIM:610021 (hyperinsulinemic hypoglycemia, familial, 7; SLC16A1) is annotated with hypoglycemic
# seizures by PMID:11207177 alone; its other annotations (hypoglycemia among them) cite OMIM
HYPOGLYCEMIC_SEIZURES, HYPOGLYCEMIA = "HP:0002173", "HP:0001943"
DISEASE, PAPER = "OMIM:610021", "PMID:11207177"


def test_the_hpo_knows_which_annotations_a_paper_is_the_only_source_of(hpo):
    assert hpo.references(DISEASE, HYPOGLYCEMIC_SEIZURES) == (PAPER,)
    withheld = hpo.without_publication(PAPER)
    assert withheld.annotations == ((DISEASE, HYPOGLYCEMIC_SEIZURES),)
    assert [hpo.disease_ids[d] for d in withheld.diseases.rows] == [DISEASE]
    assert [hpo.gene_symbols[g] for g in withheld.genes.rows] == ["SLC16A1"]
    assert hpo.without_publication("PMID:1") is None  # cited by no annotation
    assert hpo.without_publication(PAPER) is withheld  # kept per publication


def test_a_papers_only_annotation_stops_matching_when_withheld(hpo, phenomizer, likelihood):
    d = hpo.disease_index[DISEASE]
    case = Case((HYPOGLYCEMIC_SEIZURES,))
    withheld = Case((HYPOGLYCEMIC_SEIZURES,), withheld_publication=PAPER)
    # phenomizer: the term itself, then its best ancestor among the rest, hypoglycemia (a parent)
    as_released, without = phenomizer.disease_scores(case), phenomizer.disease_scores(withheld)
    assert as_released[d] == pytest.approx(hpo.ic(HYPOGLYCEMIC_SEIZURES))
    assert without[d] == pytest.approx(hpo.ic(HYPOGLYCEMIA)) and without[d] < as_released[d] - 2
    assert np.flatnonzero(as_released != without).tolist() == [d]  # no other disease moves
    # likelihood: f / B(q) with the frequency unstated (0.5), then f / B(a) of the ancestor annotated
    background = likelihood.matcher.background
    as_released, without = likelihood.disease_scores(case), likelihood.disease_scores(withheld)
    assert as_released[d] == pytest.approx(math.log(0.5 / background[hpo.index[HYPOGLYCEMIC_SEIZURES]]), rel=1e-5)
    assert without[d] == pytest.approx(math.log(0.5 / background[hpo.index[HYPOGLYCEMIA]]), rel=1e-5)
    assert np.flatnonzero(as_released != without).tolist() == [d]


def test_the_gene_level_knowledge_is_withheld_too(hpo):
    g = hpo.gene_index["SLC16A1"]
    matcher = gene_matcher(hpo)

    def annotated(publication):
        return matcher.rescored_without(publication, lambda m, rows: m.annotated_share([HYPOGLYCEMIC_SEIZURES], rows))

    assert annotated(None)[g] == 1.0 and annotated(PAPER)[g] == 0.0
    assert np.flatnonzero(annotated(None) != annotated(PAPER)).tolist() == [g]
    # some rows only: the withheld gene among them is rescored, the others are as released
    some = np.array([3, g, 0, g + 1])
    of_some = matcher.rescored_without(PAPER, lambda m, rows: m.annotated_share([HYPOGLYCEMIC_SEIZURES], rows), some)
    assert np.array_equal(of_some, annotated(PAPER)[some]) and of_some[1] == 0.0
    enrichment = GeneEnrichment(hpo)
    assert enrichment.annotation_sizes(PAPER)[g] == enrichment.annotation_size[g] - 1
    assert enrichment.scores([HYPOGLYCEMIC_SEIZURES])[g] > 0 == enrichment.scores([HYPOGLYCEMIC_SEIZURES], PAPER)[g]


def test_a_disease_known_only_from_the_paper_has_nothing_left(hpo, phenomizer):
    # developmental and epileptic encephalopathy 96 (NSF): every annotation from PMID:31675180
    withheld = hpo.without_publication("PMID:31675180")
    d = hpo.disease_index["OMIM:619340"]
    assert len(withheld.annotations) == hpo.disease_terms[d].nnz == 9
    case = Case(tuple(hpo.ids[t] for t in hpo.disease_terms[d].indices))
    assert phenomizer.disease_scores(case)[d] == pytest.approx(np.mean([hpo.ic(t) for t in case.present]))
    assert phenomizer.disease_scores(Case(case.present, withheld_publication="PMID:31675180"))[d] == 0.0


def test_without_a_withheld_publication_every_score_is_as_released(hpo, phenomizer, likelihood):
    case = Case(("HP:0001250", "HP:0001263", "HP:0000252"), excluded=("HP:0001166",))
    for ranker in (phenomizer, likelihood):
        scores = ranker.scores(case)
        assert np.array_equal(scores, ranker.scores(Case(case.present, case.excluded, withheld_publication="PMID:1")))
    # the released scores are the matchers' own, untouched
    assert np.array_equal(phenomizer.disease_scores(case), phenomizer.diseases.mean_best_match(list(case.present)))
    lr = likelihood.matcher.log_likelihood_ratio(list(case.present), 0.1, 0.001)
    assert np.array_equal(likelihood.present_log_lr(case), lr)


def test_excluded_terms_of_some_diseases_are_those_of_all_bit_for_bit(hpo, likelihood):
    d = hpo.disease_index[DISEASE]
    withheld = Case((HYPOGLYCEMIA,), excluded=(HYPOGLYCEMIC_SEIZURES, "HP:0001250"), withheld_publication=PAPER)
    every = likelihood.excluded_log_lr(withheld)
    assert every[d] > likelihood.excluded_log_lr(Case(withheld.present, withheld.excluded))[d]  # seizures no longer shown
    for some in (np.array([d]), np.array([5, d, 2, 7000]), np.array([8])):
        assert np.array_equal(likelihood.excluded_log_lr(withheld, rows=some).view(np.uint32), every[some].view(np.uint32))


def test_rows_recomputed_with_nothing_withheld_are_the_released_rows(hpo):
    def same(a, b):
        return (a.indptr == b.indptr).all() and (a.indices == b.indices).all() and np.array_equal(a.data, b.data,
                                                                                                  equal_nan=True)

    diseases = hpo.recomputed_disease_rows(np.arange(len(hpo.disease_ids)))
    assert same(diseases.direct, hpo.disease_terms) and same(diseases.closure, hpo.disease_closure)
    genes = hpo.recomputed_gene_rows(np.arange(len(hpo.gene_symbols)))
    assert same(genes.direct, hpo.gene_terms) and same(genes.closure, hpo.gene_closure)


def test_only_rows_citing_nothing_but_the_paper_are_withheld(tmp_path):
    rows = [hpoa_row("OMIM:1", "HP:0000003", "PMID:10", "3/4"),  # Very tall: from P, then from Q
            hpoa_row("OMIM:1", "HP:0000003", "PMID:11", "1/2"),
            hpoa_row("OMIM:1", "HP:0000010", "PMID:10", "1/4"),  # Short: from P alone
            hpoa_row("OMIM:1", "HP:0000002", "PMID:10;OMIM:1", "1/3"),  # Tall: P and OMIM
            hpoa_row("OMIM:2", "HP:0000010", "PMID:20")]
    kb = HPO.load(write_hpo_release(tmp_path, rows, [(2200, "FBN1", "OMIM:1"), (4000, "LMNA", "OMIM:2")]))
    withheld = kb.without_publication("PMID:10")
    assert withheld.annotations == (("OMIM:1", "HP:0000010"),)
    row = withheld.diseases.direct[0]
    # Very tall keeps the frequency of its last remaining row (as HPO's table would have had it), Tall its own
    assert dict(zip((kb.ids[t] for t in row.indices), row.data.round(4))) == {"HP:0000003": 0.5, "HP:0000002": 0.3333}
    assert [kb.gene_symbols[g] for g in withheld.genes.rows] == ["FBN1"]
    assert kb.without_publication("PMID:11").annotations == ()  # Very tall stays, from PMID:10


def test_the_policys_knowledge_features_leave_the_paper_out(hpo):
    from rare_disease_rft.rankers.case_index import CaseIndex
    from rare_disease_rft.rankers.features import FeatureExtractor
    from rare_disease_rft.tasks import Answer, Task

    index = CaseIndex.build(hpo, [Task("c1", [HYPOGLYCEMIA], answer=Answer("ABCC8"), source={"pmid": "PMID:3"})])
    extractor = FeatureExtractor(hpo, index, shortlist_per_source=30)
    g = hpo.gene_index["SLC16A1"]
    case, withheld = Case((HYPOGLYCEMIC_SEIZURES,)), Case((HYPOGLYCEMIC_SEIZURES,), withheld_publication=PAPER)
    as_released, without = extractor._knowledge(case), extractor._knowledge(withheld)
    for name in ("phenomizer", "lr_present", "enrichment"):
        assert np.flatnonzero(as_released[name] != without[name]).tolist() == [g], name
        assert without[name][g] < as_released[name][g]
    # what only the shortlist gets: the exact-match share (here 1 -> 0) and excluded terms' likelihood
    genes = np.array([g - 1, g, g + 1])
    shortlisted = extractor._shortlisted_knowledge(case, genes), extractor._shortlisted_knowledge(withheld, genes)
    assert [s["exact_share"].tolist() for s in shortlisted] == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    # the paper's gene makes the shortlist for its term only thanks to the paper
    assert g in extractor.extract(case).candidates and g not in extractor.extract(withheld).candidates


def test_evaluate_ranks_each_case_without_its_own_papers_knowledge_when_asked(tmp_path, capsys):
    import json

    from rare_disease_rft.cli import main
    from rare_disease_rft.tasks import Answer, Task, write_tasks

    tasks = tmp_path / "tasks.jsonl"
    write_tasks(tasks, [Task("case-1", [HYPOGLYCEMIC_SEIZURES], answer=Answer(gene="SLC16A1"),
                             source={"pmid": PAPER})])
    ranks = {}
    for flag in ([], ["--withhold-own-paper"]):
        out = tmp_path / f"metrics{len(flag)}.json"
        assert main(["evaluate", "--model", "phenomizer", "--tasks", str(tasks), "--json", str(out), *flag]) == 0
        metrics = json.loads(out.read_text())
        ranks[bool(flag)] = (metrics["mrr"], metrics.get("own_paper_withheld", False))
    assert "without the knowledge its own paper alone gave HPO" in capsys.readouterr().out
    # as released the paper's own annotation names the gene; withheld, only its broader parent does
    assert ranks[False][1] is False and ranks[True][1] is True
    assert ranks[True][0] < ranks[False][0]

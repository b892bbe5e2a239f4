import math

import numpy as np
import pytest

from rare_disease_rft.explain import explain_gene, rank_and_explain
from rare_disease_rft.rankers import Case, load_ranker
from rare_disease_rft.rankers.knowledge import LikelihoodRanker, LikelihoodSettings, PhenomizerRanker

# Marfan syndrome: arachnodactyly, ectopia lentis, aortic root aneurysm, disproportionate tall stature
MARFAN = ("HP:0001166", "HP:0001083", "HP:0002616", "HP:0001519")
ECTOPIA_LENTIS = "HP:0001083"
# neurofibromatosis 1: cafe-au-lait spots, axillary freckling, Lisch nodules, neurofibromas
NF1 = ("HP:0000957", "HP:0000997", "HP:0009737", "HP:0001067")
# achondroplasia: rhizomelia, frontal bossing, midface retrusion, trident hand, short stature
ACHONDROPLASIA = ("HP:0008905", "HP:0002007", "HP:0011800", "HP:0004060", "HP:0004322")


@pytest.fixture(scope="module")
def phenomizer(hpo):
    return PhenomizerRanker(hpo)


@pytest.fixture(scope="module")
def likelihood(hpo):
    return LikelihoodRanker(hpo)


@pytest.mark.parametrize("terms, gene", [(MARFAN, "FBN1"), (NF1, "NF1"), (ACHONDROPLASIA, "FGFR3")])
def test_classic_presentations_rank_their_gene_at_the_top(likelihood, phenomizer, terms, gene):
    assert likelihood.rank(Case(terms)).genes[0] == gene
    # phenomizer ties genes that explain every term (FBN1 with four others, NF1 with NF2, SPRED1)
    assert gene in phenomizer.rank(Case(terms)).genes[:5]


def test_phenomizer_score_is_the_mean_ic_of_best_matches(hpo, phenomizer):
    ranking = phenomizer.rank(Case(MARFAN))
    # FBN1 is annotated with all four terms: each best match is the term itself
    assert ranking.scores[0] == pytest.approx(np.mean([hpo.ic(t) for t in MARFAN]), rel=1e-5)
    # four other genes explain every term as well; the tie is broken alphabetically
    assert ranking.genes[:5] == ["FBN1", "FBN2", "SMAD3", "TGFBR1", "TGFBR2"]
    assert len(set(ranking.scores[:5].tolist())) == 1 and ranking.scores[5] < ranking.scores[0]


@pytest.mark.parametrize("name", ["phenomizer", "likelihood"])
def test_rankings_cover_every_annotated_gene_once_best_first_ties_alphabetical(hpo, phenomizer, likelihood, name):
    ranking = {"phenomizer": phenomizer, "likelihood": likelihood}[name].rank(Case(MARFAN))
    assert sorted(ranking.genes) == sorted(hpo.gene_symbols)
    scores = ranking.scores
    assert np.all(scores[:-1] >= scores[1:])
    tied = scores[:-1] == scores[1:]
    assert all(a < b for a, b, t in zip(ranking.genes, ranking.genes[1:], tied) if t)


def test_an_excluded_term_the_gene_shows_lowers_it_by_the_documented_amount(likelihood):
    present = tuple(t for t in MARFAN if t != ECTOPIA_LENTIS)
    without = likelihood.rank(Case(present))
    with_excluded = likelihood.rank(Case(present, (ECTOPIA_LENTIS,)))
    score = lambda ranking, gene: float(ranking.scores[ranking.genes.index(gene)])
    matcher, cap = likelihood.matcher, likelihood.settings.max_frequency
    background = min(float(matcher.background[matcher.hpo.index[ECTOPIA_LENTIS]]), cap)
    # FBN1 shows ectopia lentis in every annotated case (frequency 1, capped at 0.95)
    assert score(with_excluded, "FBN1") - score(without, "FBN1") == pytest.approx(
        0.1 * (math.log(1 - cap) - math.log(1 - background)), abs=1e-4)
    # TGFBR2 is annotated as lacking it (frequency 0): the exclusion speaks slightly for it
    assert score(with_excluded, "TGFBR2") - score(without, "TGFBR2") == pytest.approx(
        -0.1 * math.log(1 - background), abs=1e-4)


def test_weighted_fully_an_excluded_cardinal_feature_moves_the_gene_down(hpo):
    ranker = LikelihoodRanker(hpo, LikelihoodSettings(excluded_weight=1.0))
    present = tuple(t for t in MARFAN if t != ECTOPIA_LENTIS)
    assert ranker.rank(Case(present)).genes[0] == "FBN1"
    assert ranker.rank(Case(present, (ECTOPIA_LENTIS,))).genes.index("FBN1") > 0


def test_an_unrelated_term_gives_every_gene_at_least_the_noise_floor(hpo, likelihood):
    term = ECTOPIA_LENTIS
    lr = likelihood.matcher.likelihood_ratio([term], near_miss=0.1, noise=0.001)[:, 0]
    floor = 0.001 / likelihood.matcher.background[hpo.index[term]]
    assert lr.min() == pytest.approx(floor, rel=1e-5)
    assert lr[hpo.gene_index["FBN1"]] == pytest.approx(1.0 / likelihood.matcher.background[hpo.index[term]], rel=1e-5)


def test_explanation_of_marfan_for_fbn1(hpo):
    present = tuple(t for t in MARFAN if t != ECTOPIA_LENTIS)
    explanation = explain_gene(hpo, Case(present, (ECTOPIA_LENTIS,)), "FBN1")
    assert [m["match"] for m in explanation["matched"]] == ["exact"] * 3
    assert explanation["contradicting"] == [{"id": ECTOPIA_LENTIS, "label": "Ectopia lentis", "frequency": 1.0}]
    assert explanation["unexplained"] == []
    # annotated as lacking the feature: no contradiction
    assert explain_gene(hpo, Case(present, (ECTOPIA_LENTIS,)), "TGFBR2")["contradicting"] == []


def test_an_exact_match_is_its_own_shared_ancestor_even_when_its_parent_ties_in_ic(hpo):
    term = "HP:0025051"  # Reduced brain creatine level by MRS; its parent has the same genes
    match = explain_gene(hpo, Case((term,)), "GATM")["matched"][0]
    assert (match["match"], match["shared_ancestor"]["id"]) == ("exact", term)


def test_a_gene_without_annotations_explains_nothing(hpo):
    explanation = explain_gene(hpo, Case(MARFAN), "ARHGAP19")
    assert explanation["gene_annotated"] is False
    assert [u["id"] for u in explanation["unexplained"]] == list(MARFAN)


def test_rank_and_explain_lists_the_top_genes_with_scores(hpo, likelihood):
    result = rank_and_explain(likelihood, Case(MARFAN), top=3, hpo=hpo)
    assert [g["rank"] for g in result["genes"]] == [1, 2, 3]
    assert result["genes"][0]["gene"] == "FBN1"
    assert result["genes"][0]["score"] == pytest.approx(float(likelihood.rank(Case(MARFAN)).scores[0]))


def test_load_ranker_knows_the_built_ins_and_names_them_on_error(tmp_path):
    assert isinstance(load_ranker("phenomizer"), PhenomizerRanker)
    assert isinstance(load_ranker("likelihood"), LikelihoodRanker)
    with pytest.raises(FileNotFoundError, match="neither a built-in ranker \\(phenomizer, likelihood, default\\)"):
        load_ranker(str(tmp_path / "nothing-here"))

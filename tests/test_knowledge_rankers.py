import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from rare_disease_rft.explain import explain_gene, rank_and_explain
from rare_disease_rft.rankers import Case
from rare_disease_rft.registry import ModelError, load_ranker
from rare_disease_rft.rankers.knowledge import LikelihoodRanker, LikelihoodSettings, PhenomizerRanker

# Marfan syndrome: arachnodactyly, ectopia lentis, aortic root aneurysm, disproportionate tall stature
MARFAN = ("HP:0001166", "HP:0001083", "HP:0002616", "HP:0001519")
ECTOPIA_LENTIS = "HP:0001083"
# neurofibromatosis 1: cafe-au-lait spots, axillary freckling, Lisch nodules, neurofibromas
NF1 = ("HP:0000957", "HP:0000997", "HP:0009737", "HP:0001067")
# achondroplasia: rhizomelia, frontal bossing, midface retrusion, trident hand, short stature
ACHONDROPLASIA = ("HP:0008905", "HP:0002007", "HP:0011800", "HP:0004060", "HP:0004322")


@pytest.mark.parametrize("terms, gene", [(MARFAN, "FBN1"), (NF1, "NF1"), (ACHONDROPLASIA, "FGFR3")])
def test_classic_presentations_rank_their_gene_at_the_top(likelihood, phenomizer, terms, gene):
    assert likelihood.rank(Case(terms)).genes[0] == gene
    # phenomizer ties genes that explain every term (FBN1 with four others, NF1 with NF2, SPRED1)
    assert gene in phenomizer.rank(Case(terms)).genes[:5]


def test_phenomizer_score_is_the_mean_ic_of_best_matches(hpo, phenomizer):
    ranking = phenomizer.rank(Case(MARFAN))
    # FBN1 is annotated with all four terms: each best match is the term itself
    assert ranking.scores[0] == pytest.approx(np.mean([hpo.ic(t) for t in MARFAN]), rel=1e-5)
    # a disease of each of three other genes explains every term as well; ties go alphabetically
    assert ranking.genes[:4] == ["FBN1", "FBN2", "TGFBR1", "TGFBR2"]
    assert len(set(ranking.scores[:4].tolist())) == 1 and ranking.scores[4] < ranking.scores[0]


@pytest.mark.parametrize("name", ["phenomizer", "likelihood"])
def test_rankings_cover_every_annotated_gene_once_best_first_ties_alphabetical(hpo, phenomizer, likelihood, name):
    ranking = {"phenomizer": phenomizer, "likelihood": likelihood}[name].rank(Case(MARFAN))
    assert sorted(ranking.genes) == sorted(hpo.gene_symbols)
    scores = ranking.scores
    assert np.all(scores[:-1] >= scores[1:])
    tied = scores[:-1] == scores[1:]
    assert all(a < b for a, b, t in zip(ranking.genes, ranking.genes[1:], tied) if t)


MARFAN_SYNDROME = "OMIM:154700"


def test_an_excluded_term_the_disease_shows_lowers_it_by_the_documented_amount(hpo, likelihood):
    present = tuple(t for t in MARFAN if t != ECTOPIA_LENTIS)
    d = hpo.disease_ids.index(MARFAN_SYNDROME)
    without = likelihood.disease_scores(Case(present))[d]
    with_excluded = likelihood.disease_scores(Case(present, (ECTOPIA_LENTIS,)))[d]
    cap = likelihood.settings.max_frequency
    freq = min(float(hpo.disease_closure[d, hpo.index[ECTOPIA_LENTIS]]), cap)
    background = min(float(likelihood.matcher.background[hpo.index[ECTOPIA_LENTIS]]), cap)
    assert freq > 0.4  # Marfan syndrome is annotated with ectopia lentis
    assert with_excluded - without == pytest.approx(0.1 * (math.log1p(-freq) - math.log1p(-background)), abs=1e-4)


def test_a_gene_scores_as_its_best_disease(hpo, likelihood):
    """Excluding ectopia lentis moves Marfan syndrome down, not FBN1: MASS syndrome (also FBN1)
    has the other features without it."""
    present = tuple(t for t in MARFAN if t != ECTOPIA_LENTIS)
    ranker = LikelihoodRanker(hpo, LikelihoodSettings(excluded_weight=1.0))
    case = Case(present, (ECTOPIA_LENTIS,))
    diseases = ranker.disease_scores(case)
    order = [hpo.disease_ids[i] for i in np.argsort(-diseases, kind="stable")]
    before = [hpo.disease_ids[i] for i in np.argsort(-ranker.disease_scores(Case(present)), kind="stable")]
    assert order.index(MARFAN_SYNDROME) > before.index(MARFAN_SYNDROME)
    fbn1 = hpo.gene_index["FBN1"]
    assert ranker.scores(case)[fbn1] == pytest.approx(diseases[hpo.gene_diseases[fbn1].indices].max())
    assert ranker.rank(case).genes[0] == "FBN1"


def test_an_unrelated_term_gives_every_disease_at_least_the_noise_floor(hpo, likelihood):
    term = ECTOPIA_LENTIS
    lr = np.exp(likelihood.matcher.log_likelihood_ratio([term], near_miss=0.1, noise=0.001))
    background = likelihood.matcher.background[hpo.index[term]]
    assert lr.min() == pytest.approx(0.001 / background, rel=1e-5)
    d = hpo.disease_ids.index(MARFAN_SYNDROME)
    assert lr[d] == pytest.approx(float(hpo.disease_closure[d, hpo.index[term]]) / background, rel=1e-5)


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
    explanation = explain_gene(hpo, Case(MARFAN), "MDGA2")
    assert explanation["gene_annotated"] is False
    assert [u["id"] for u in explanation["unexplained"]] == list(MARFAN)


def test_many_patients_explained_at_once_are_each_explained_as_alone(hpo):
    from rare_disease_rft.explain import explain_many

    marfan = Case(tuple(t for t in MARFAN if t != ECTOPIA_LENTIS), (ECTOPIA_LENTIS,))
    requests = [(marfan, ["FBN1", "TGFBR2", "MDGA2"]), (Case(ACHONDROPLASIA), ["FGFR3", "FBN1"]),
                (Case(("HP:0025051",)), []), (Case(("HP:0025051",), (ECTOPIA_LENTIS,)), ["GATM", "FBN1"])]
    together = explain_many(hpo, requests)
    assert together == [[explain_gene(hpo, case, gene) for gene in genes] for case, genes in requests]
    assert together[0][0]["contradicting"][0]["id"] == ECTOPIA_LENTIS and together[1][0]["matched"]


def test_rank_and_explain_lists_the_top_genes_with_scores(hpo, likelihood):
    result = rank_and_explain(likelihood, Case(MARFAN), top=3, hpo=hpo)
    assert [g.rank for g in result.genes] == [1, 2, 3]
    assert result.genes[0].gene == "FBN1"
    assert result.genes[0].score == pytest.approx(float(likelihood.rank(Case(MARFAN)).scores[0]))


def test_load_ranker_knows_the_built_ins_and_names_them_on_error(tmp_path):
    assert isinstance(load_ranker("phenomizer"), PhenomizerRanker)
    assert isinstance(load_ranker("likelihood"), LikelihoodRanker)
    with pytest.raises(ModelError, match="neither a built-in ranker \\(phenomizer, likelihood, default\\)"):
        load_ranker(str(tmp_path / "nothing-here"))


def test_dense_columns_is_scipys_column_slice_in_its_memory_order():
    import scipy.sparse as sp

    from rare_disease_rft.rankers.knowledge import dense_columns

    matrix = sp.random(50, 30, density=0.2, format="csc", dtype=np.float32, random_state=0)
    matrix.data[matrix.indptr[4]] = 0.0  # an explicit zero stays a zero
    # few columns (copied one by one) and many (gathered at once)
    for columns in (np.array([4, 0, 29, 4, 7]), np.array([4, 0, 29, 4, 7, 1, 2, 3, 29, 11])):
        got, expected = dense_columns(matrix, columns), matrix[:, columns].toarray()
        assert np.array_equal(got, expected) and got.flags.f_contiguous == expected.flags.f_contiguous
    assert dense_columns(matrix, np.array([], dtype=np.int64)).shape == (50, 0)


def test_the_column_cache_keeps_the_most_recently_used_columns_within_its_bytes():
    from rare_disease_rft.rankers.knowledge import ColumnCache

    cache = ColumnCache(max_bytes=3 * 400)  # three dense columns of 100 float32
    rng = np.random.default_rng(0)
    columns = {key: rng.random(100, dtype=np.float32) for key in (1, 2, 3, 4)}
    for key in (1, 2, 3):
        cache.put((key,), columns[key])
    assert np.array_equal(cache.get((1,)), columns[1])  # 1 was used again: 2 is dropped for 4
    cache.put((4,), columns[4])
    assert cache.get((2,)) is None and len(cache) == 3 and cache.bytes == 1200
    assert all(np.array_equal(cache.get((key,)), columns[key]) for key in (1, 3, 4))
    with pytest.raises(ValueError):
        cache.get((1,))[0] = 5.0  # read-only: every later caller shares it


def test_a_column_mostly_at_one_value_is_kept_compact_and_returned_bit_for_bit():
    from rare_disease_rft.rankers.knowledge import ColumnCache

    cache = ColumnCache()
    floor = np.full(2000, 0.25, dtype=np.float32)  # mostly its smallest value
    floor[[3, 500, 1999]] = [1.5, 0.5, np.inf]
    ceiling = -floor  # mostly its largest
    cache.put(("lr", 7), floor)
    cache.put(("excluded", 7), ceiling)
    assert cache.bytes == 2 * 3 * (2 + 4)  # three rows each: a 16-bit row number and a float32
    signed = np.zeros(2000, dtype=np.float32)
    signed[[10, 20]] = [-0.0, np.nan]  # -0.0 equals 0.0, but is kept as it was
    cache.put(("frequency", 7), signed)
    for key, expected in ((("lr", 7), floor), (("excluded", 7), ceiling), (("frequency", 7), signed)):
        assert np.array_equal(cache.get(key).view(np.uint32), expected.view(np.uint32))
    before = cache.bytes
    cache.put(("lr", 8), floor[:12])  # a short column is kept whole
    assert cache.bytes - before == 12 * 4 and np.array_equal(cache.get(("lr", 8)), floor[:12])


def test_a_matcher_that_keeps_no_columns_scores_exactly_as_one_that_does(hpo):
    from rare_disease_rft.rankers.knowledge import TermMatcher

    cached = TermMatcher(hpo, hpo.disease_closure, hpo.disease_terms)
    forgetful = TermMatcher(hpo, hpo.disease_closure, hpo.disease_terms, cache_bytes=0)
    terms = list(MARFAN + NF1)
    cached.log_likelihood_ratio(terms[:3], 0.1, 0.001)  # some columns computed before, some not
    for method, args in (("mean_best_match", ()), ("log_likelihood_ratio", (0.1, 0.001)), ("log_excluded_ratio", (0.95,))):
        assert np.array_equal(getattr(cached, method)(terms, *args), getattr(forgetful, method)(terms, *args))
    assert len(forgetful.columns) == 0 and len(cached.columns) == 3 * len(terms)


def test_the_annotated_share_is_the_mean_of_the_dense_columns_above_zero(hpo):
    from rare_disease_rft.rankers.knowledge import TermMatcher, dense_columns

    matcher = TermMatcher(hpo, hpo.gene_closure, hpo.gene_terms)
    terms = list(MARFAN + NF1)
    dense = dense_columns(matcher.closure, hpo.term_indices(terms))
    share = matcher.annotated_share(terms)
    assert share.tobytes() == (dense > 0).mean(axis=1).tobytes()
    rows = np.array([hpo.gene_index["FBN1"], hpo.gene_index["NF1"], hpo.gene_index["FBN1"]])
    assert share[rows].tolist() == matcher.annotated_share(terms, rows).tolist()
    assert share[rows[0]] >= 0.5 and share[rows[1]] >= 0.5 and share.min() == 0.0


def test_order_by_score_is_lexsorts_order_for_float32_scores_ties_zeros_infinities_and_nan():
    from rare_disease_rft.rankers.base import order_by_score

    rng = np.random.default_rng(3)
    scores = rng.choice(np.array([-np.inf, -7.5, -0.0, 0.0, 1e-30, 2.5, 2.5000002, np.inf, np.nan, -np.nan],
                                 dtype=np.float32), size=3000)
    # all genes' ranks (a permutation), some genes' ranks, and tie orders with repeated values
    for tie_order in (rng.permutation(3000), rng.permutation(9000)[:3000], rng.integers(0, 3000, 3000),
                      rng.integers(0, 4, 3000)):
        for values in (scores, scores.astype(np.float64)):  # float64 keeps lexsort itself
            assert np.array_equal(order_by_score(values, tie_order), np.lexsort((tie_order, -values)))
        rows = scores.reshape(3, 1000)
        assert np.array_equal(order_by_score(rows, tie_order[:1000]),
                              np.stack([np.lexsort((tie_order[:1000], -row)) for row in rows]))


def test_best_by_score_is_the_first_k_of_order_by_score_on_every_processor(tmp_path):
    """The shortlist's selection: the best k with ties broken by a preference (here the order of the
    tie ranks), not by numpy's selection algorithm, which on an AVX-512 processor picks other tied
    values than without."""
    from rare_disease_rft.rankers.base import best_by_score, order_by_score

    rng = np.random.default_rng(5)
    # a row like a case score's: most genes at 0 (no cases), tied far beyond the best 100
    rows = np.zeros((3, 5000), dtype=np.float32)
    genes = rng.permutation(5000)
    rows[0, genes[:40]], rows[0, genes[40:640]] = rng.normal(3, 1, 40), -rng.exponential(2, 600)
    rows[1] = rng.choice(np.array([-1.0, 0.0, 3.0, np.nan], dtype=np.float32), 5000)
    rows[2] = rng.normal(size=5000)
    tie_order = rng.permutation(5000)
    preference = np.argsort(tie_order)  # the indices by tie rank: order_by_score's tie rule
    picked = best_by_score(rows, 100, preference)
    assert picked.shape == (3, 100)
    for row, chosen in zip(order_by_score(rows, tie_order), picked):
        assert sorted(chosen.tolist()) == sorted(row[:100].tolist())
    assert sorted(best_by_score(rows[2], 5000, preference).tolist()) == list(range(5000))  # k of all: every one
    # the same in a process whose numpy may not use AVX-512 (where the processor has it, numpy's
    # argpartition then chooses other tied genes of row 0)
    code = ("import sys, numpy as np; from rare_disease_rft.rankers.base import best_by_score; "
            "print(np.sort(best_by_score(np.load(sys.argv[1]), 100, np.load(sys.argv[2])), axis=1).tolist())")
    np.save(tmp_path / "rows.npy", rows)
    np.save(tmp_path / "preference.npy", preference)
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "rows.npy"), str(tmp_path / "preference.npy")],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert json.loads(out) == np.sort(picked, axis=1).tolist()


@pytest.mark.parametrize("n_runs", [300, 3000])  # below and above REDUCEAT_RUNS: reduceat and blocks
def test_run_maxima_are_each_runs_maximum_by_every_path(n_runs):
    from rare_disease_rft.rankers.knowledge import REDUCEAT_RUNS, RunMaxima

    rng = np.random.default_rng(n_runs)
    counts = rng.choice([0, 1, 2, 3, 5, 9, 40, 300], size=n_runs, p=[0.1, 0.3, 0.2, 0.1, 0.1, 0.1, 0.07, 0.03])
    starts = np.cumsum(counts) - counts
    members = rng.permutation(int(counts.sum()))  # each member in one run, runs of any members
    maxima = RunMaxima(starts, counts, members)
    assert (len(np.flatnonzero(counts)) < REDUCEAT_RUNS) == (n_runs == 300)
    for columns in (None, 1, 7):
        shape = (len(members),) if columns is None else (len(members), columns)
        values = rng.normal(size=shape).astype(np.float32)
        got = maxima(values, -np.inf)
        expected = np.stack([values[members[s : s + c]].max(axis=0) if c else np.full(shape[1:], -np.inf, np.float32)
                             for s, c in zip(starts, counts)])
        assert got.dtype == np.float32 and got.shape == expected.shape and np.array_equal(got, expected), columns
    assert np.array_equal(maxima(np.ones(len(members), np.float32), 0.0, np.float64), (counts > 0) * 1.0)


@pytest.mark.parametrize("n_rows", [1, 107, 8861])
def test_row_sums_are_numpys_sums_along_rows_bit_for_bit(n_rows):
    from rare_disease_rft.rankers.knowledge import COMPACT_FROM, ColumnCache, CompactColumn, row_sums

    rng = np.random.default_rng(n_rows)
    for k in [*range(0, 40), 63, 64, 65, 127, 128, 129, 200, 300]:
        matrix = (rng.normal(size=(n_rows, k)) * rng.choice([1e-4, 1.0, 1e4], size=(n_rows, k))).astype(np.float32)
        matrix[rng.random((n_rows, k)) < 0.05] = -0.0
        matrix[: n_rows // 2 + 1, : k // 3] = -0.0
        matrix[:1] = -0.0  # a row of -0.0 only sums to 0.0
        got = row_sums([np.ascontiguousarray(matrix[:, j]) for j in range(k)], n_rows)
        assert np.array_equal(got.view(np.uint32), matrix.sum(axis=1).view(np.uint32)), k
    # columns kept compact (mostly one value) are added as they are kept, to the same bits
    cache = ColumnCache()
    for k in (3, 8, 21, 130):
        matrix = np.full((n_rows, k), -0.0, dtype=np.float32)  # the smallest value, in most rows
        matrix[rng.random((n_rows, k)) < 0.2] = 0.5
        matrix[rng.random((n_rows, k)) < 0.05] = 1e4
        for j in range(k):
            cache.put((k, j), matrix[:, j])
        kept = cache.get_many([(k, j) for j in range(k)], compact=True)
        assert n_rows < COMPACT_FROM or any(isinstance(c, CompactColumn) for c in kept)
        assert np.array_equal(row_sums(kept, n_rows).view(np.uint32), matrix.sum(axis=1).view(np.uint32)), k


def test_a_ranker_loaded_for_inference_computes_on_one_thread():
    from threadpoolctl import threadpool_info, threadpool_limits

    from rare_disease_rft.registry import load_ranker

    def blas_threads():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    with threadpool_limits(2):  # restored when the test ends
        load_ranker("phenomizer", threads=None)  # as training loads a shortlister: threads left alone
        assert blas_threads() == {2}
        load_ranker("phenomizer")
        assert blas_threads() == {1}

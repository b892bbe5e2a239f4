import json
import math

import numpy as np
import pytest

from rare_disease_rft.evaluate import (
    CaseResult, bootstrap_interval, evaluate, format_table, metrics, paired_differences, rank_cases,
)
from rare_disease_rft.rankers.base import Ranker, Ranking
from rare_disease_rft.rankers.knowledge import gene_order
from rare_disease_rft.tasks import Answer, Task

SPEC_KEYS = {"model", "n", "top1", "top5", "top10", "mrr", "found", "format_ok", "latency_ms", "subsets"}
OUR_KEYS = {"partial_credit", "ci95", "topk_curve", "errors"}
SUMMARY_KEYS = {"n", "top1", "top5", "top10", "mrr", "found", "partial_credit"}


def task(key, gene, pmid="PMID:1"):
    """A task whose first present term ``key`` tells the scripted ranker what to answer."""
    return Task(id=f"case_{key}_{gene}", present=[key], answer=Answer(gene),
                source={"kind": "phenopacket", "pmid": pmid})


class ScriptedRanker(Ranker):
    """Answers each case by its first present term: a gene list, a Ranking, or an exception to raise."""

    name = "scripted"

    def __init__(self, script, training_genes=frozenset()):
        self.script = script
        self.training_genes = frozenset(training_genes)

    def rank(self, case):
        out = self.script[case.present[0]]
        if isinstance(out, Exception):
            raise out
        if isinstance(out, Ranking):
            return out
        return Ranking(list(out), np.linspace(1, 0, len(out)))


# answers at ranks 2, absent, 1
GENES = ["CBS", "FBN1"]
TASKS = [task("HP:0000001", "FBN1", "PMID:1"), task("HP:0000001", "KMT2D", "PMID:2"), task("HP:0000001", "CBS", "PMID:3")]


def test_ranks_come_from_the_output_order_and_absent_answers_count():
    m, results = evaluate(ScriptedRanker({"HP:0000001": GENES}), TASKS)
    assert [r.rank for r in results] == [2.0, math.inf, 1.0]
    assert {k: m[k] for k in ("n", "top1", "top5", "top10", "found", "format_ok", "errors")} == {
        "n": 3, "top1": pytest.approx(1 / 3), "top5": pytest.approx(2 / 3), "top10": pytest.approx(2 / 3),
        "found": pytest.approx(2 / 3), "format_ok": 1.0, "errors": 0}
    assert m["mrr"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["partial_credit"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["topk_curve"] == pytest.approx([1 / 3] + [2 / 3] * 49)


def test_a_tie_with_the_answer_puts_it_where_the_output_puts_it():
    tied = Ranking(["ACTA2", "CBS", "FBN1"], np.ones(3))
    m, results = evaluate(ScriptedRanker({"HP:0000001": tied}), [task("HP:0000001", "FBN1")])
    assert results[0].rank == 3.0
    assert (m["top1"], m["mrr"]) == (0.0, pytest.approx(1 / 3))


class SameScoreForEveryGene(Ranker):
    """Every known gene scores 0; the knowledge rankers' own tie rule orders them."""

    name = "same-score"

    def __init__(self, hpo):
        self.order = gene_order(hpo)

    def rank(self, case):
        return self.order.ranking(np.zeros(len(self.order.genes), dtype=np.float32))


def test_equal_scores_never_favour_the_answer(hpo):
    alphabetical = sorted(map(str, hpo.gene_symbols))
    answers = ["FBN1", "ZNF469", "ACTA2", "MECP2"]
    m, results = evaluate(SameScoreForEveryGene(hpo), [task("HP:0001166", g) for g in answers])
    expected = [alphabetical.index(g) + 1 for g in answers]  # ties broken alphabetically
    assert [r.rank for r in results] == expected
    assert min(expected) > 10
    assert (m["top1"], m["top10"], m["found"]) == (0.0, 0.0, 1.0)


def test_a_failing_case_scores_zero_and_still_counts():
    ranker = ScriptedRanker({"HP:0000001": ["FBN1"], "HP:0000002": RuntimeError("model crashed")})
    tasks = [task("HP:0000001", "FBN1"), task("HP:0000002", "FBN1"), task("HP:0000001", "CBS")]
    m, results = evaluate(ranker, tasks)
    assert [r.rank for r in results] == [1.0, math.inf, math.inf]
    assert results[1].error == "RuntimeError: model crashed"
    assert (m["n"], m["top1"], m["found"], m["format_ok"]) == (3, pytest.approx(1 / 3), pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert (m["errors"], m["first_error"]) == (1, "RuntimeError: model crashed")


class ShortBatchRanker(ScriptedRanker):
    def rank_many(self, cases):
        return [self.rank(c) for c in cases][:1]  # loses every case after the first


def test_a_batch_that_loses_cases_fails_the_whole_batch():
    tasks = [task("HP:0000001", "FBN1")] * 3
    results, rankings = rank_cases(ShortBatchRanker({"HP:0000001": ["FBN1"]}), tasks, batch_size=2)
    assert [r.rank for r in results] == [math.inf, math.inf, 1.0]
    assert results[0].error == "RuntimeError: 1 rankings for a batch of 2 cases"
    assert rankings[:2] == [None, None]


def test_format_ok_is_the_share_of_outputs_that_parsed():
    bad = Ranking(["FBN1"], np.ones(1), format_ok=False)
    ranker = ScriptedRanker({"HP:0000001": ["FBN1"], "HP:0000002": bad})
    m, _ = evaluate(ranker, [task("HP:0000001", "FBN1")] * 3 + [task("HP:0000002", "FBN1")])
    assert (m["format_ok"], m["top1"]) == (0.75, 1.0)


def test_metrics_json_has_exactly_the_spec_keys_plus_ours():
    m, _ = evaluate(ScriptedRanker({"HP:0000001": GENES}), TASKS, name="my-model")
    assert set(m) == SPEC_KEYS | OUR_KEYS
    assert m["model"] == "my-model"
    assert set(m["latency_ms"]) == {"p50", "p95"} and m["latency_ms"]["p50"] >= 0
    assert set(m["subsets"]) == {"answer_gene_in_training", "answer_gene_not_in_training"}
    assert all(set(s) == SUMMARY_KEYS for s in m["subsets"].values())
    assert set(m["ci95"]) == {"top1", "top10"}
    json.dumps(m, allow_nan=False)  # strict JSON: no NaN or Infinity anywhere


def test_subsets_split_by_training_answers_after_symbol_mapping():
    # MLL2 is a previous symbol of KMT2D: a model trained on MLL2 cases has seen KMT2D
    ranker = ScriptedRanker({"HP:0000001": ["KMT2D", "FBN1"]}, training_genes={"MLL2", "FBN1"})
    tasks = [task("HP:0000001", "KMT2D", "PMID:1"), task("HP:0000001", "FBN1", "PMID:2"),
             task("HP:0000001", "CBS", "PMID:3")]
    m, _ = evaluate(ranker, tasks, cited_pmids=frozenset({"PMID:2", "PMID:3"}))
    seen, unseen = m["subsets"]["answer_gene_in_training"], m["subsets"]["answer_gene_not_in_training"]
    assert (seen["n"], seen["top1"], seen["top5"], seen["mrr"]) == (2, 0.5, 1.0, 0.75)
    assert (unseen["n"], unseen["top1"], unseen["found"]) == (1, 0.0, 0.0)
    cited, uncited = m["subsets"]["paper_cited_by_hpo_annotations"], m["subsets"]["paper_not_cited_by_hpo_annotations"]
    assert (cited["n"], cited["top1"], cited["top5"]) == (2, 0.0, 0.5)
    assert (uncited["n"], uncited["top1"]) == (1, 1.0)


def test_cases_split_by_what_is_known_of_their_gene():
    # KMT2D: trained (as MLL2) and annotated; FBN1: trained only; CBS: annotated only; NEW1: neither
    ranker = ScriptedRanker({"HP:0000001": ["KMT2D", "FBN1", "CBS"]}, training_genes={"MLL2", "FBN1"})
    tasks = [task("HP:0000001", g, f"PMID:{i}") for i, g in enumerate(["KMT2D", "FBN1", "CBS", "NEW1"])]
    m, _ = evaluate(ranker, tasks, annotated_genes=frozenset({"KMT2D", "CBS"}))
    kinds = m["by_answer_gene"]
    assert {k: (v["n"], v["mrr"]) for k, v in kinds.items()} == {
        "in_training_and_hpo": (1, 1.0), "in_training_not_hpo": (1, 0.5),
        "in_hpo_not_training": (1, pytest.approx(1 / 3)), "in_neither": (1, 0.0)}
    # split by the reference genes when given, like the seen/unseen subsets
    m, _ = evaluate(ranker, tasks, annotated_genes=frozenset({"KMT2D", "CBS"}), reference_genes=frozenset({"CBS"}))
    assert (m["by_answer_gene"]["in_training_and_hpo"]["n"], m["by_answer_gene"]["in_hpo_not_training"]["n"]) == (1, 1)
    assert m["by_answer_gene"]["in_training_not_hpo"]["n"] == 0


def test_an_empty_subset_is_null_not_nan():
    m, _ = evaluate(ScriptedRanker({"HP:0000001": GENES}), TASKS)
    assert m["subsets"]["answer_gene_in_training"] == {"n": 0, **dict.fromkeys(SUMMARY_KEYS - {"n"})}


def test_bootstrap_contains_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    ranks = np.where(rng.random(400) < 0.4, 1.0, np.inf)
    groups = [f"PMID:{i % 60}" for i in range(400)]
    low, high = bootstrap_interval(ranks, groups, k=1)
    assert low < np.mean(ranks <= 1) < high
    assert high - low < 0.2
    assert bootstrap_interval(ranks, groups, k=1) == [low, high]
    assert bootstrap_interval(ranks, groups, k=1, seed=5) != [low, high]


def test_bootstrap_resamples_publications_not_cases():
    # paper A: 9 hits, paper B: 1 miss. Resampling papers, B twice (p = 1/4) gives 0.0, A twice 1.0;
    # resampling cases would give a narrow interval around 0.9
    ranks = np.array([1.0] * 9 + [np.inf])
    assert bootstrap_interval(ranks, ["A"] * 9 + ["B"], k=1) == [0.0, 1.0]
    assert bootstrap_interval(np.array([1.0, np.inf]), ["A", "A"], k=1) == [0.5, 0.5]


def test_paired_differences_compare_the_same_cases_overall_and_on_unseen_genes():
    # 40 papers of 5 cases; model a finds every case of the even papers, b those and one more case
    # in each odd paper; gene "SEEN" has training cases, "NEW" has none
    tasks, a, b = [], [], []
    for paper in range(40):
        for i in range(5):
            gene = "SEEN" if i < 3 else "NEW"
            tasks.append(task("HP:0000001", gene, f"PMID:{paper}"))
            hit_a = paper % 2 == 0
            hit_b = hit_a or i == 4
            a.append(CaseResult(tasks[-1].id, gene, 1.0 if hit_a else np.inf, 0.0, True))
            b.append(CaseResult(tasks[-1].id, gene, 2.0 if hit_b else np.inf, 0.0, True))
    paired = paired_differences({"a": a, "b": b}, tasks, {"SEEN"}, n_boot=300)
    assert paired["reference"] == "a" and list(paired["against"]) == ["b"]
    everywhere, unseen = paired["against"]["b"]["all"], paired["against"]["b"]["answer_gene_not_in_training"]
    assert (everywhere["n"], unseen["n"]) == (200, 80)
    # top-1: a ranks its hits first, b second; top-10: b finds 20 cases more
    assert everywhere["top1"]["difference"] == 0.5 and everywhere["top10"]["difference"] == -0.1
    assert unseen["top10"]["difference"] == -0.25
    low, high = everywhere["top10"]["ci95"]
    # paired: b is never worse, so no resample can favour a; a lucky draw of papers moves only the size
    assert low < -0.1 < high <= 0.0
    assert paired_differences({"a": a, "b": a}, tasks, {"SEEN"})["against"]["b"]["all"]["top1"] == {
        "difference": 0.0, "ci95": [0.0, 0.0]}


def test_metrics_takes_ci_over_publications():
    results = evaluate(ScriptedRanker({"HP:0000001": GENES}), TASKS)[1]
    m = metrics("x", TASKS, results, n_boot=200)
    low, high = m["ci95"]["top1"]
    assert low <= m["top1"] <= high
    assert m["ci95"]["top10"][0] <= m["top10"] <= m["ci95"]["top10"][1]


def test_table_has_one_row_per_model():
    m, _ = evaluate(ScriptedRanker({"HP:0000001": GENES}), TASKS, name="scripted")
    lines = format_table({"first": m, "second": {**m, "model": "second"}}).splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["first", "second"]
    assert lines[2].split()[1:3] == ["3", "0.333"]


def test_accuracy_by_gene_counts_absent_answers_and_puts_the_most_cases_first():
    from rare_disease_rft.evaluate import accuracy_by_gene

    _, results = evaluate(ScriptedRanker({"HP:0000001": GENES}),
                          TASKS + [task("HP:0000001", "KMT2D", "PMID:4")])
    rows = accuracy_by_gene(results, ks=(1, 2))
    assert [row["gene"] for row in rows] == ["KMT2D", "CBS", "FBN1"]  # 2 cases, then alphabetical
    assert rows[0] == {"gene": "KMT2D", "n": 2, "top1": 0.0, "top2": 0.0, "mrr": 0.0}
    assert rows[2] == {"gene": "FBN1", "n": 1, "top1": 0.0, "top2": 1.0, "mrr": 0.5}


def test_calibration_error_weighs_each_bin_by_its_cases():
    from rare_disease_rft.evaluate import calibration_error

    # bin 0.9: said 0.9, right half the time (gap 0.4); bin 0.1: said 0.1, never right (gap 0.1)
    assert calibration_error([0.9, 0.9, 0.1, 0.1], [True, False, False, False]) == pytest.approx(0.25)
    assert calibration_error([1.0, 0.5], [True, False]) == pytest.approx(0.25)  # 1.0 falls in the last bin


def test_metrics_give_the_top1_calibration_error_of_rankers_with_probabilities():
    said = Ranking(list(GENES), np.linspace(1, 0, len(GENES)), np.full(len(GENES), 0.5))
    m, results = evaluate(ScriptedRanker({"HP:0000001": said}), TASKS)
    assert [r.top_probability for r in results] == [0.5] * len(TASKS)
    assert m["top1_calibration_error"] == round(abs(0.5 - m["top1"]), 4) == 0.1667  # said 0.5, right 1 in 3
    assert "top1_calibration_error" not in evaluate(ScriptedRanker({"HP:0000001": GENES}), TASKS)[0]

"""Ranking many patients across worker processes."""

from rare_disease_rft.batch import rank_many_parallel
from rare_disease_rft.explain import rank_and_explain
from rare_disease_rft.rankers import Case, load_ranker
from rare_disease_rft.tasks import read_tasks


def test_rank_many_parallel_is_rank_and_explain_of_each_case_in_order(small_task_dir, hpo):
    ranker = load_ranker("likelihood")
    cases = [Case.from_task(t) for t in read_tasks(small_task_dir / "test.jsonl")]  # 40: three chunks
    expected = [rank_and_explain(ranker, case, top=3, hpo=hpo) for case in cases]
    assert rank_many_parallel(ranker, cases, workers=2, top=3) == expected
    assert rank_many_parallel(ranker, cases[:5], workers=1, top=3) == expected[:5]
    assert rank_many_parallel(ranker, [], workers=2) == []

"""One contract, every ranker kind: what callers (explain, evaluate, the app, the LLM prompt) may rely on.

The kinds: both knowledge rankers, a trained policy (the default ranker's kind) and an LLM that
re-ranks the policy's shortlist (a tiny random Llama: its order is noise, its plumbing is real).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("trl")

from test_llm import tiny_converted, tiny_dir, tiny_model, tokenizer  # noqa: E402,F401  (fixtures)
from test_policy import small_config  # noqa: E402

from rare_disease_rft.explain import rank_and_explain  # noqa: E402
from rare_disease_rft.llm.config import PromptConfig  # noqa: E402
from rare_disease_rft.llm.ranker import LLMRanker  # noqa: E402
from rare_disease_rft.rankers import Case, Ranker, Ranking  # noqa: E402
from rare_disease_rft.registry import load_ranker  # noqa: E402
from rare_disease_rft.training.policy_grpo import train_policy  # noqa: E402

KINDS = ["phenomizer", "likelihood", "policy", "llm"]


@pytest.fixture(scope="module")
def policy_dir(small_task_dir, tmp_path_factory):
    return train_policy(small_config(small_task_dir), tmp_path_factory.mktemp("contract") / "policy",
                        log=lambda _: None)


@pytest.fixture(scope="module")
def rankers(policy_dir, tiny_dir, tokenizer):  # noqa: F811
    policy = load_ranker(str(policy_dir))
    llm = LLMRanker(tiny_model(tiny_dir), tokenizer, policy, shortlist_size=4, prompt=PromptConfig(), seed=0,
                    max_new_tokens=8, batch_size=2, name="tiny-llm")
    return {"phenomizer": load_ranker("phenomizer"), "likelihood": load_ranker("likelihood"),
            "policy": policy, "llm": llm}


@pytest.fixture(scope="module")
def indexed_task(small_task_dir):
    """A training case whose gene has other cases in the index: every hook has something to say."""
    from rare_disease_rft.tasks import read_tasks

    tasks = read_tasks(small_task_dir / "train.jsonl")
    counts = {}
    for t in tasks:
        counts[t.answer.gene] = counts.get(t.answer.gene, 0) + 1
    return next(t for t in tasks if counts[t.answer.gene] > 1)


@pytest.mark.parametrize("kind", KINDS)
def test_every_ranker_ranks_in_score_order_with_unique_genes(rankers, indexed_task, kind):
    ranker: Ranker = rankers[kind]
    ranking = ranker.rank(Case.from_task(indexed_task))
    assert isinstance(ranking, Ranking)
    assert len(ranking.genes) == len(set(ranking.genes)) == len(ranking.scores) > 100
    assert np.all(np.diff(ranking.scores) <= 0)  # the output order is the score order
    if ranking.probabilities is not None:
        p = np.asarray(ranking.probabilities)
        assert len(p) == len(ranking.genes) and p.min() >= 0 and p.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_batched_and_single_rankings_agree(rankers, small_task_dir, kind):
    from rare_disease_rft.tasks import read_tasks

    cases = [Case.from_task(t) for t in read_tasks(small_task_dir / "validation.jsonl")[:2]]
    ranker = rankers[kind]
    assert [r.genes[:20] for r in ranker.rank_many(cases)] == [ranker.rank(c).genes[:20] for c in cases]


@pytest.mark.parametrize("kind", KINDS)
def test_every_hook_is_declared_with_its_shape(rankers, indexed_task, kind):
    ranker = rankers[kind]
    case, gene = Case.from_task(indexed_task), indexed_task.answer.gene
    assert isinstance(ranker.training_genes, frozenset) and isinstance(ranker.indexed_cases, frozenset)
    assert ranker.describe()["name"] == ranker.name
    similar = ranker.similar_cases(case, gene)
    rows = ranker.case_annotations(gene)
    if kind in ("phenomizer", "likelihood"):  # they hold no case reports
        assert similar == [] and rows is None and not ranker.indexed_cases
        return
    # the policy holds the training cases; the LLM delegates to the policy it re-ranks
    assert indexed_task.id in ranker.indexed_cases
    assert similar and similar[0]["case_id"] in ranker.indexed_cases and 0 < similar[0]["similarity"] <= 1.0 + 1e-6
    assert {"case_id", "pmid", "similarity"} <= set(similar[0])


def test_an_llm_over_the_policy_cites_its_cases_and_explains_case_only_genes(rankers, indexed_task, hpo):
    policy, llm = rankers["policy"], rankers["llm"]
    case = Case.from_task(indexed_task)
    result = rank_and_explain(llm, case, top=30, hpo=hpo)
    cited = [g for g in result.genes if g.explanation["similar_cases"]]
    assert cited, "an LLM ranking over the default model's kind must cite the policy's similar cases"
    case_only = [g for g in policy.extractor.index.genes if g not in hpo.gene_index]
    assert case_only, "the small index holds a gene known only from cases"
    rows = llm.case_annotations(case_only[0])
    assert rows is not None and all(isinstance(r, sp.csr_matrix) and r.shape[0] == 1 for r in rows)
    assert rows[0].nnz == policy.case_annotations(case_only[0])[0].nnz

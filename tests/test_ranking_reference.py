"""The rankings and explanations the speed work (issue 19) must not change.

``fixtures/rankings_before_speedup.json.xz`` holds, for 344 cases of the bundled test split (every
4th), what the code at commit 6e4edf8 (before the per-term caches and the numpy network) gave: the
top 10 genes with scores and probabilities, the answer's rank, the length of the ranking and a
digest of the top 10's explanations (matched, contradicting and unexplained terms, similar cases),
for phenomizer, likelihood and a policy ranker with fixed weights (``reference_weights``, seeded)
over a case index of the bundled training split.

They were made with the HPO release of that time, 2025-01-16 (still bundled), on tasks prepared with
it; the test uses the same. The knowledge rankers' scores must be bit-identical; the policy's may differ in the last digits (its
network ran in torch then, in numpy now), but its top 10 and the answer's rank may not.
"""

import hashlib
import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from rare_disease_rft.explain import explain_gene
from rare_disease_rft.rankers import Case
from rare_disease_rft.rankers.case_index import CaseIndex
from rare_disease_rft.rankers.features import FEATURES, FeatureExtractor
from rare_disease_rft.rankers.knowledge import LikelihoodRanker, PhenomizerRanker
from rare_disease_rft.rankers.policy import KNOWLEDGE_FEATURES, PolicyRanker, PolicyWeights
from rare_disease_rft.tasks import read_tasks

REFERENCE = Path(__file__).parent / "fixtures" / "rankings_before_speedup.json.xz"
HIDDEN, LAYERS = 16, 2
#: features added since the reference was made: the reference network does not use them
ADDED_SINCE = ("cooccurrence", "cooccurrence_rank", "case_cooccurrence")


def reference_weights() -> dict[str, np.ndarray]:
    """The policy network the reference was made with (seeded; hidden 16, two layers per head), over
    the features of that time; the features added since get zero weights and are not used."""
    rng = np.random.default_rng(19)
    before = [i for i, f in enumerate(FEATURES) if f not in ADDED_SINCE]
    knowledge_before = [i for i, f in enumerate(KNOWLEDGE_FEATURES) if f not in ADDED_SINCE]
    n = len(before)

    def widened(values: np.ndarray, columns: list[int], width: int, fill: float = 0.0) -> np.ndarray:
        out = np.full(values.shape[:-1] + (width,), fill)
        out[..., columns] = values
        return out

    weights = {"mean": widened(rng.normal(0, 0.5, n), before, len(FEATURES)),
               "std": widened(rng.uniform(0.5, 3.0, n), before, len(FEATURES), 1.0),
               "used": widened(np.ones(n), before, len(FEATURES)),
               "start.weight": np.ones((1, 1)), "start.bias": np.zeros(1)}
    for head, columns, width in (("knowledge", knowledge_before, len(KNOWLEDGE_FEATURES)), ("cases", before, len(FEATURES))):
        drawn = len(columns)
        for layer in range(LAYERS + 1):
            out = 1 if layer == LAYERS else HIDDEN
            weight = rng.normal(0, drawn ** -0.5, (out, drawn))
            weights[f"{head}.{2 * layer}.weight"] = widened(weight, columns, width) if layer == 0 else weight
            weights[f"{head}.{2 * layer}.bias"] = rng.normal(0, 0.1, out)
            drawn = width = out
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    weights["knowledge_columns"] = np.array([FEATURES.index(f) for f in KNOWLEDGE_FEATURES], dtype=np.int64)
    return weights


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def reference():
    with lzma.open(REFERENCE, "rt") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def hpo_2025():
    from rare_disease_rft.hpo import HPO
    from rare_disease_rft.resources import BUNDLED_HPO_RELEASES

    return HPO.load(BUNDLED_HPO_RELEASES / "2025-01-16")


@pytest.fixture(scope="module")
def tasks_2025(hpo_2025, tmp_path_factory):
    from conftest import prepare_bundled

    return prepare_bundled(tmp_path_factory, hpo_2025, "bundled-2025")


@pytest.fixture(scope="module")
def rankers(hpo_2025, tasks_2025):
    hpo = hpo_2025
    extractor = FeatureExtractor(hpo, CaseIndex.build(hpo, read_tasks(tasks_2025 / "train.jsonl")), 100)
    policy = PolicyRanker(PolicyWeights(reference_weights()), extractor, {}, {"temperature": 2.0}, name="reference")
    return {"policy": policy, "phenomizer": PhenomizerRanker(hpo), "likelihood": LikelihoodRanker(hpo)}


@pytest.mark.parametrize("name", ["phenomizer", "likelihood", "policy"])
def test_rankings_and_explanations_are_those_of_before_the_speedup(name, reference, rankers, hpo_2025, tasks_2025):
    hpo = hpo_2025
    tasks = read_tasks(tasks_2025 / "test.jsonl")[::4]
    assert [t.id for t in tasks] == reference["cases"]
    ranker = rankers[name]
    changed = []
    for task, before in zip(tasks, reference[name]):
        case = Case.from_task(task)
        ranking = ranker.rank(case)
        explanations = []
        for gene in ranking.genes[:10]:
            explanation = explain_gene(hpo, case, gene, getattr(ranker, "case_annotations", None))
            explanation["similar_cases"] = ranker.similar_cases(case, gene) if name == "policy" else []
            explanations.append(explanation)
        answer = task.answer.gene
        now = {"top": ranking.genes[:10], "n_genes": len(ranking.genes),
               "answer_rank": ranking.genes.index(answer) + 1 if answer in ranking.genes else None,
               "explanations": digest(explanations)}
        if any(now[k] != before[k] for k in now):
            changed.append((task.id, {k: (before[k], now[k]) for k in now if now[k] != before[k]}))
            continue
        scores = [float(s) for s in ranking.scores[:10]]
        if name == "policy":  # its network's sums run in another order: the last digits may differ
            assert scores == pytest.approx(before["scores"], rel=1e-5, abs=1e-5), task.id
            assert list(ranking.probabilities[:10]) == pytest.approx(before["probabilities"], rel=1e-5), task.id
        else:
            assert scores == before["scores"], task.id  # bit for bit
    assert not changed, changed[:3]

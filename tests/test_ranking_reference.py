"""The rankings and explanations the speed work (issue 19) must not change.

``fixtures/rankings_before_speedup.json.xz`` holds, for 344 cases of the bundled test split (every
4th), what the code at commit 6e4edf8 (before the per-term caches and the numpy network) gave: the
top 10 genes with scores and probabilities, the answer's rank, the length of the ranking and a
digest of the top 10's explanations (matched, contradicting and unexplained terms, similar cases),
for phenomizer, likelihood and a policy ranker with fixed weights (``reference_weights``, seeded)
over a case index of the bundled training split.

They were made with the HPO release of that time, 2025-01-16 (still bundled), on tasks prepared with
it; the test uses the same. The knowledge rankers' scores must be bit-identical on a processor with
the SIMD extensions numpy used there (``KNOWLEDGE_SIMD``; numpy's float32 logarithms round otherwise
elsewhere, in the last digit); the policy's may differ in the last digits (its network's sums may
run in another order on another processor). The top 10 and the answer's rank may not differ.

The policy's entries were made again (``policy_source``) when the shortlist's ties became the same
on every machine: until then they were numpy's choice on this machine's processor (AVX-512), and
this test failed on one without. Run this file (``python tests/test_ranking_reference.py``) to make
them again, after a change that is meant to change the policy's rankings, and say why in the commit.
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
#: the SIMD extensions numpy found where the knowledge rankers' entries were made (AVX-512)
KNOWLEDGE_SIMD = ["X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"]


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


def reference_policy(hpo, task_dir: Path) -> PolicyRanker:
    """The policy ranker of the reference: its fixed weights over a case index of ``task_dir``'s training split."""
    extractor = FeatureExtractor(hpo, CaseIndex.build(hpo, read_tasks(task_dir / "train.jsonl")), 100)
    return PolicyRanker(PolicyWeights(reference_weights()), extractor, {}, {"temperature": 2.0}, name="reference")


@pytest.fixture(scope="module")
def rankers(hpo_2025, tasks_2025):
    return {"policy": reference_policy(hpo_2025, tasks_2025), "phenomizer": PhenomizerRanker(hpo_2025),
            "likelihood": LikelihoodRanker(hpo_2025)}


def reference_entry(name: str, ranker, hpo, task) -> dict:
    """What the reference holds of one case's ranking by ``ranker`` (see the module's docstring)."""
    case = Case.from_task(task)
    ranking = ranker.rank(case)
    explanations = []
    for gene in ranking.genes[:10]:
        explanation = explain_gene(hpo, case, gene, getattr(ranker, "case_annotations", None))
        explanation["similar_cases"] = ranker.similar_cases(case, gene) if name == "policy" else []
        explanations.append(explanation)
    answer = task.answer.gene
    return {"top": ranking.genes[:10], "scores": [float(s) for s in ranking.scores[:10]],
            "probabilities": None if ranking.probabilities is None else [float(p) for p in ranking.probabilities[:10]],
            "answer_rank": ranking.genes.index(answer) + 1 if answer in ranking.genes else None,
            "n_genes": len(ranking.genes), "explanations": digest(explanations)}


@pytest.mark.parametrize("name", ["phenomizer", "likelihood", "policy"])
def test_rankings_and_explanations_are_those_of_before_the_speedup(name, reference, rankers, hpo_2025, tasks_2025):
    tasks = read_tasks(tasks_2025 / "test.jsonl")[::4]
    assert [t.id for t in tasks] == reference["cases"]
    changed = []
    for task, before in zip(tasks, reference[name]):
        now = reference_entry(name, rankers[name], hpo_2025, task)
        exact = ("top", "n_genes", "answer_rank", "explanations")
        if any(now[k] != before[k] for k in exact):
            changed.append((task.id, {k: (before[k], now[k]) for k in exact if now[k] != before[k]}))
            continue
        if name == "policy":  # its network's sums may run in another order: the last digits may differ
            assert now["scores"] == pytest.approx(before["scores"], rel=1e-5, abs=1e-5), task.id
            assert now["probabilities"] == pytest.approx(before["probabilities"], rel=1e-5), task.id
        elif np.show_config(mode="dicts")["SIMD Extensions"]["found"] == KNOWLEDGE_SIMD:
            assert now["scores"] == before["scores"], task.id  # bit for bit
        else:
            assert now["scores"] == pytest.approx(before["scores"], rel=1e-6), task.id
    assert not changed, changed[:3]


if __name__ == "__main__":  # the policy's entries made again (see the module's docstring)
    import subprocess
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from rare_disease_rft.hpo import HPO
    from rare_disease_rft.resources import BUNDLED_HPO_RELEASES, BUNDLED_PHENOPACKETS

    from data_prep.phenopackets import prepare_phenopackets

    hpo = HPO.load(BUNDLED_HPO_RELEASES / "2025-01-16")
    with tempfile.TemporaryDirectory() as folder:
        prepare_phenopackets([BUNDLED_PHENOPACKETS], Path(folder), hpo=hpo)
        policy = reference_policy(hpo, Path(folder))
        tasks = read_tasks(Path(folder) / "test.jsonl")[::4]
        with lzma.open(REFERENCE, "rt") as handle:
            stored = json.load(handle)
        assert [t.id for t in tasks] == stored["cases"]
        stored["policy"] = [reference_entry("policy", policy, hpo, task) for task in tasks]
    # "-dirty": made from the commit's files with changes not yet committed (the commit that follows)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    stored["policy_source"] = f"rare-disease-rft {commit}"
    with lzma.open(REFERENCE, "wt") as handle:
        json.dump(stored, handle)
    print(f"made the policy's {len(tasks)} entries of {REFERENCE} again")

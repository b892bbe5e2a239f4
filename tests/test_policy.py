"""The RL-trained default ranker: features, the Plackett-Luce objective, training runs, model dirs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rare_disease_rft.config import ConfigError
from rare_disease_rft.registry import load_config
from rare_disease_rft.explain import explain_gene
from rare_disease_rft.rankers import Case
from rare_disease_rft.registry import load_ranker
from rare_disease_rft.rankers.case_index import CaseIndex
from rare_disease_rft.rankers.features import FEATURES, FeatureExtractor
from rare_disease_rft.rankers.policy import calibrated_probabilities
from rare_disease_rft.tasks import Answer, Task, read_tasks
from rare_disease_rft.training.policy_grpo import fit_calibration, plackett_luce_log_prob, reward_table, train_policy
from rare_disease_rft.training.policy_net import PolicyNet

REPO = Path(__file__).resolve().parent.parent


def small_config(task_dir, **training):
    settings = [f"data.train={task_dir / 'train.jsonl'}", f"data.validation={task_dir / 'validation.jsonl'}",
                "training.steps=12", "training.batch_cases=16", "training.group_size=4", "training.eval_every=4",
                "training.checkpoint_every=4", "training.workers=1", "model.hidden=16",
                "model.shortlist_per_source=20"]
    settings += [f"training.{k}={v}" for k, v in training.items()]
    return load_config(REPO / "configs" / "default.yaml", settings)


# MDGA2 has no HPO annotation in release 2026-06-06; here its two papers report these terms
ARACHNODACTYLY, ECTOPIA_LENTIS, TALL_STATURE = "HP:0001166", "HP:0001083", "HP:0000098"


def _case_only_index(hpo):
    def task(i, pmid, gene, present):
        return Task(f"case{i}", list(present), answer=Answer(gene), source={"pmid": pmid})

    tasks = [task(1, "PMID:1", "MDGA2", [ARACHNODACTYLY, ECTOPIA_LENTIS]),
             task(2, "PMID:2", "MDGA2", [ARACHNODACTYLY, TALL_STATURE]),
             task(3, "PMID:3", "FBN1", [ARACHNODACTYLY])]
    assert "MDGA2" not in hpo.gene_index
    return FeatureExtractor(hpo, CaseIndex.build(hpo, tasks), shortlist_per_source=30)


def _value(extractor, feats, gene, name):
    where = np.flatnonzero(feats.candidates == extractor.universe_index[gene])
    return float(feats.values[where[0], FEATURES.index(name)])


def test_a_gene_known_only_from_cases_gets_knowledge_evidence_from_what_they_report(hpo):
    extractor = _case_only_index(hpo)
    case = Case((ARACHNODACTYLY, ECTOPIA_LENTIS))
    feats = extractor.extract(case)
    background = extractor.likelihood.matcher.background[hpo.term_indices([ARACHNODACTYLY, ECTOPIA_LENTIS])]
    # both cases report arachnodactyly, one of two ectopia lentis: LR = share of cases / background
    expected = np.log(1.0 / background[0]) + np.log(0.5 / background[1])
    assert _value(extractor, feats, "MDGA2", "lr_present") == pytest.approx(expected, rel=1e-5)
    ic = hpo.information_content[hpo.term_indices([ARACHNODACTYLY, ECTOPIA_LENTIS])]
    assert _value(extractor, feats, "MDGA2", "phenomizer") == pytest.approx(ic.mean(), rel=1e-5)
    assert _value(extractor, feats, "MDGA2", "exact_share") == 1.0
    assert _value(extractor, feats, "MDGA2", "annotated") == 0.0  # still told apart from HPO-annotated genes
    # three distinct most specific terms over its cases
    assert _value(extractor, feats, "MDGA2", "annotation_size") == pytest.approx(np.log1p(3))


def test_a_gene_whose_cases_are_all_left_out_is_again_a_gene_nothing_is_known_of(hpo):
    extractor = _case_only_index(hpo)
    case = Case((ARACHNODACTYLY, ECTOPIA_LENTIS))
    background = extractor.likelihood.matcher.background[hpo.term_indices([ARACHNODACTYLY, ECTOPIA_LENTIS])]
    noise = extractor.likelihood.settings.noise
    one_left = extractor.extract(case, exclude_pmid="PMID:1")  # only case 2: no ectopia lentis
    assert _value(extractor, one_left, "MDGA2", "lr_present") == pytest.approx(
        np.log(1.0 / background[0]) + np.log(noise / background[1]), rel=1e-5)
    assert _value(extractor, one_left, "MDGA2", "exact_share") == 0.5
    # with its only paper left out (a training case of that paper), the gene has no evidence at all
    index = CaseIndex.build(hpo, [Task("case1", [ARACHNODACTYLY], answer=Answer("MDGA2"), source={"pmid": "PMID:1"})])
    alone = FeatureExtractor(hpo, index, shortlist_per_source=30)
    genes = alone._case_only_knowledge(case, *alone._case_weights("PMID:1"))[0]
    assert len(genes) == 0  # its rows keep the defaults of a gene without annotation or case
    assert alone.universe_index["MDGA2"] not in alone.extract(case, exclude_pmid="PMID:1").candidates
    assert len(alone._case_only_knowledge(case, *alone._case_weights(None))[0]) == 1


def test_the_policy_withholds_the_publication_a_case_names(hpo):
    from rare_disease_rft.rankers.policy import PolicyRanker

    extractor = _case_only_index(hpo)
    feats = extractor.extract(Case((ARACHNODACTYLY, ECTOPIA_LENTIS)))
    net = PolicyNet(hidden=8)
    net.set_standardisation(feats.values.mean(0), feats.values.std(0))
    ranker = PolicyRanker(net.weights(), extractor, {}, {"temperature": 1.0})

    def score(ranking, gene):
        return float(ranking.scores[ranking.genes.index(gene)])

    withheld = ranker.rank(Case((ARACHNODACTYLY, ECTOPIA_LENTIS), withheld_publication="PMID:1"))
    as_published = ranker.rank(Case((ARACHNODACTYLY, ECTOPIA_LENTIS)))
    # without paper 1, MDGA2's one remaining case does not report ectopia lentis: weaker evidence
    expected = ranker.scores(extractor.extract(Case((ARACHNODACTYLY, ECTOPIA_LENTIS)), exclude_pmid="PMID:1").values)
    candidates = list(extractor.extract(Case((ARACHNODACTYLY, ECTOPIA_LENTIS)), exclude_pmid="PMID:1").candidates)
    row = candidates.index(extractor.universe_index["MDGA2"])
    assert score(withheld, "MDGA2") == pytest.approx(float(expected[row]))
    assert score(withheld, "MDGA2") < score(as_published, "MDGA2")


def test_the_explanation_of_a_gene_known_only_from_cases_matches_what_they_report(hpo):
    extractor = _case_only_index(hpo)
    explanation = explain_gene(hpo, Case((ARACHNODACTYLY, ECTOPIA_LENTIS, "HP:0001250"), (TALL_STATURE,)),
                               "MDGA2", extractor.case_annotations)
    assert (explanation["gene_annotated"], explanation["annotations_from"]) == (False, "published cases")
    assert [(m["id"], m["match"], m["frequency"]) for m in explanation["matched"]] == [
        (ARACHNODACTYLY, "exact", 1.0), (ECTOPIA_LENTIS, "exact", 0.5)]
    assert [u["id"] for u in explanation["unexplained"]] == ["HP:0001250"]
    assert explanation["contradicting"] == [{"id": TALL_STATURE, "label": "Tall stature", "frequency": 0.5}]
    assert extractor.case_annotations("FBN1") is None  # annotated genes are explained by HPO
    assert explain_gene(hpo, Case((ARACHNODACTYLY,)), "FBN1", extractor.case_annotations)["annotations_from"] == "hpo"


def test_hypergeometric_enrichment_is_scipys_upper_tail():
    from scipy.stats import hypergeom

    from rare_disease_rft.rankers.features import hypergeometric_enrichment

    overlap, sizes = np.array([0, 1, 3, 2, 5]), np.array([40, 40, 12, 900, 5])
    got = hypergeometric_enrichment(overlap, sizes, universe=9000, drawn=6)
    expected = [0.0] + [-np.log10(hypergeom.sf(k - 1, 9000, n, 6)) for k, n in zip(overlap[1:], sizes[1:])]
    assert got == pytest.approx(expected, rel=1e-9)
    # the scores kept across calls (tables by overlap and size, grown as larger sizes come) are the same bits
    known: dict = {}
    for overlap, sizes in ((overlap, sizes), (np.array([1, 4, 2]), np.array([3000, 4, 900]))):
        fresh = hypergeometric_enrichment(overlap, sizes, universe=9000, drawn=6)
        for _ in range(2):
            assert hypergeometric_enrichment(overlap, sizes, 9000, 6, known).tobytes() == fresh.tobytes()
    assert known[6].shape[1] > 3000 and np.isfinite(known[6]).sum() == 6


def test_plackett_luce_log_prob_matches_the_sequential_definition():
    torch.manual_seed(0)
    scores = torch.randn(2, 6, requires_grad=True)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 5] = False
    picks = torch.tensor([[[0, 3, 1]], [[4, 2, 0]]])
    got = plackett_luce_log_prob(scores, mask, picks)
    for b in range(2):
        logits = scores[b].masked_fill(~mask[b], float("-inf"))
        expected = 0.0
        for i in picks[b, 0]:
            expected = expected + logits[i] - torch.logsumexp(logits, 0)
            logits = logits.clone()
            logits[i] = float("-inf")
        assert got[b, 0].item() == pytest.approx(expected.item(), abs=1e-5)
    got.sum().backward()
    assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0


def test_reward_table_comes_from_the_grader_registry():
    table = reward_table("partial_credit", {}, 6)
    assert table.tolist() == pytest.approx([1.0, 0.5, 0.35, 0.25, 0.25, 0.1, 0.0])
    custom = reward_table("partial_credit", {"schedule": [[1, 1.0], [3, 0.2]]}, 4)
    assert custom.tolist() == pytest.approx([1.0, 0.2, 0.2, 0.0, 0.0])
    assert reward_table("top1", {}, 3).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_features_leave_the_training_case_publication_out(hpo, small_task_dir):
    train = read_tasks(small_task_dir / "train.jsonl")
    extractor = FeatureExtractor(hpo, CaseIndex.build(hpo, train), shortlist_per_source=30)
    task = train[0]
    case = Case.from_task(task)
    gene = extractor.universe_index[task.answer.gene]
    col = FEATURES.index("case_count")
    own_paper = sum(t.pmid == task.pmid and t.answer.gene == task.answer.gene for t in train)
    all_cases = sum(t.answer.gene == task.answer.gene for t in train)

    def value(feats, name):
        where = np.flatnonzero(feats.candidates == gene)
        return feats.values[where[0], FEATURES.index(name)] if len(where) else None

    with_own = extractor.extract(case)
    without_own = extractor.extract(case, exclude_pmid=task.pmid)
    assert value(with_own, "case_count") == pytest.approx(np.log1p(all_cases))
    left = value(without_own, "case_count")
    assert left is None or left == pytest.approx(np.log1p(all_cases - own_paper))
    # the patient is its own nearest case only while its paper is in the index
    assert value(with_own, "case_max_sim") == pytest.approx(1.0, abs=1e-5)
    assert left is None or value(without_own, "case_max_sim") < 1.0 - 1e-6
    assert col < len(FEATURES)


def test_untrained_policy_ranks_like_the_likelihood_evidence(hpo, small_task_dir):
    train = read_tasks(small_task_dir / "train.jsonl")
    extractor = FeatureExtractor(hpo, CaseIndex.build(hpo, train), shortlist_per_source=30)
    feats = extractor.extract(Case.from_task(read_tasks(small_task_dir / "validation.jsonl")[0]))
    net = PolicyNet(hidden=8)
    net.set_standardisation(feats.values.mean(0), feats.values.std(0))
    scores = net(torch.from_numpy(feats.values)).detach().numpy()
    lr = feats.values[:, FEATURES.index("lr_present")]
    assert np.array_equal(np.argsort(-scores, kind="stable"), np.argsort(-lr, kind="stable"))


def _weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


@pytest.fixture(scope="module")
def trained(small_task_dir, tmp_path_factory):
    """One uninterrupted run of the small config."""
    return train_policy(small_config(small_task_dir), tmp_path_factory.mktemp("policy") / "m", log=lambda _: None)


def test_training_writes_a_complete_model_dir(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"model.safetensors", "config.json", "case_index.safetensors", "case_index.json", "MODEL_CARD.md",
            "training_curves.csv", "training_curves.png", "validation_metrics.json"} <= names
    assert "checkpoint.safetensors" not in names  # removed once the model is complete
    assert sum(p.stat().st_size for p in trained.iterdir()) < 50 * 2**20
    meta = json.loads((trained / "config.json").read_text())
    assert meta["kind"] == "policy" and meta["training"]["objective"] == "grpo"
    assert meta["versions"]["data"]["hpo_release"] == "2026-06-06"
    cal = meta["calibration"]
    assert 0 < cal["temperature"] and 0 <= cal["validation_ece"] <= 1 and 0 <= cal["validation_ece_cross_fitted"] <= 1
    curves = (trained / "training_curves.csv").read_text().splitlines()
    assert curves[0].startswith("step,train_reward,loss,val_reward,val_top1,val_top10")
    assert "val_clinic_top1,val_clinic_top10" in curves[0]  # the clinic-like validation cases too
    assert [line.split(",")[0] for line in curves[1:]] == ["0", "4", "8", "12"]
    assert "not a diagnostic device" in (trained / "MODEL_CARD.md").read_text()


def test_the_model_card_counts_the_genes_known_only_from_cases(trained, hpo):
    genes = json.loads((trained / "case_index.json").read_text())["genes"]
    unannotated = sum(g not in hpo.gene_index for g in genes)
    assert f"{unannotated:,} of their genes have no HPO annotation" in (trained / "MODEL_CARD.md").read_text()


def test_data_versions_name_the_bundled_archive_by_its_place_in_the_repository(tmp_path):
    from rare_disease_rft.hpo import load_hpo
    from rare_disease_rft.resources import BUNDLED_PHENOPACKETS
    from rare_disease_rft.model_dir import data_versions

    outside = tmp_path / "my-cohort"
    (tmp_path / "train.jsonl").write_text("")
    (tmp_path / "report.json").write_text(json.dumps({"sources": [str(BUNDLED_PHENOPACKETS), str(outside)]}))
    versions = data_versions(load_hpo(), [str(tmp_path / "train.jsonl")])
    assert versions["phenopacket_sources"] == ["rare_disease_rft/data/phenopacket-store/phenopackets.tar.xz",
                                               str(outside)]
    assert versions["phenopacket_store_commit"] == "b694d17ec6fd3bccab8a69235f4e13b0b82b7ae5"


def test_a_killed_run_resumes_to_the_same_result_as_an_uninterrupted_one(trained, small_task_dir, tmp_path):
    """Also the reproducibility test: the resumed run repeats the uninterrupted run's seeds."""
    config = small_config(small_task_dir)

    def crash(step):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_policy(config, tmp_path / "killed", on_step=crash, log=lambda _: None)
    assert (tmp_path / "killed" / "checkpoint.safetensors").is_file()
    messages = []
    resumed = train_policy(config, tmp_path / "killed", log=messages.append)
    assert "resuming from step 4" in messages
    a, b = _weights(trained), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    metrics_a = json.loads((trained / "validation_metrics.json").read_text())
    metrics_b = json.loads((resumed / "validation_metrics.json").read_text())
    assert (metrics_a["top1"], metrics_a["mrr"]) == (metrics_b["top1"], metrics_b["mrr"])


def test_a_checkpoint_of_another_config_is_refused(small_task_dir, tmp_path):
    def crash(step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_policy(small_config(small_task_dir), tmp_path / "m", on_step=crash, log=lambda _: None)
    with pytest.raises(ValueError, match="belongs to another config"):
        train_policy(small_config(small_task_dir, learning_rate=0.01), tmp_path / "m", log=lambda _: None)


def test_trained_model_ranks_explains_and_calibrates(small_task_dir, tmp_path, hpo):
    folder = train_policy(small_config(small_task_dir, objective="listwise"), tmp_path / "m", log=lambda _: None)
    ranker = load_ranker(str(folder))
    task = read_tasks(small_task_dir / "validation.jsonl")[0]
    ranking = ranker.rank(Case.from_task(task))
    assert len(ranking.genes) == len(set(ranking.genes)) >= len(hpo.gene_symbols)
    assert np.all(np.diff(ranking.scores) <= 1e-6)  # best first
    assert np.all(np.diff(ranking.probabilities) <= 1e-9)
    assert ranking.probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    assert ranking.probabilities[0] > ranking.probabilities[-1] == 0.0  # past the shortlist
    train = read_tasks(small_task_dir / "train.jsonl")
    known = train + read_tasks(small_task_dir / "validation.jsonl")
    gene = train[0].answer.gene
    similar = ranker.similar_cases(Case.from_task(train[0]), gene)
    assert similar and similar[0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert {s["pmid"] for s in similar} <= {t.pmid for t in known if t.answer.gene == gene}


def test_the_kept_model_indexes_the_validation_cases_after_it_is_measured_on_them(trained, small_task_dir, hpo):
    train = read_tasks(small_task_dir / "train.jsonl")
    validation = read_tasks(small_task_dir / "validation.jsonl")
    ranker = load_ranker(str(trained))
    assert ranker.indexed_cases == {t.id for t in train + validation}
    assert ranker.training_genes == {t.answer.gene for t in train + validation}
    # measured with the training cases alone: the validation cases' own records would rank them first
    metrics = json.loads((trained / "validation_metrics.json").read_text())
    seen = {t.answer.gene for t in train}
    assert metrics["subsets"]["answer_gene_in_training"]["n"] == sum(t.answer.gene in seen for t in validation)
    assert metrics["top1"] < 0.9
    assert "40 validation cases, added after the validation metrics" in (trained / "MODEL_CARD.md").read_text()
    # the clinic-like subset, measured then too: the validation cases of papers HPO does not cite
    uncited = sum(t.pmid not in hpo.cited_pmids for t in validation)
    assert metrics["subsets"]["clinic_like"]["n"] == uncited > 0
    assert "clinic-like (cases of papers HPO's annotations do not cite" in (trained / "MODEL_CARD.md").read_text()


def test_training_features_can_withhold_the_own_papers_knowledge(hpo):
    from rare_disease_rft.training.policy_grpo import featurise

    # PMID:11207177 alone annotates SLC16A1's disease with hypoglycemic seizures
    task = Task("t", ["HP:0002173"], answer=Answer("SLC16A1"), source={"pmid": "PMID:11207177"})
    extractor = _case_only_index(hpo)
    as_released = featurise(extractor, [task], True, 1)
    withheld = featurise(extractor, [task], True, 1, withhold_knowledge=True)
    exact = FEATURES.index("exact_share")
    assert as_released.values[0, as_released.answer[0], exact] == 1.0
    assert withheld.answer[0] < 0 or withheld.values[0, withheld.answer[0], exact] == 0.0
    assert not torch.equal(as_released.values, withheld.values)


def test_feature_sets_of_different_shortlist_widths_add_up():
    from rare_disease_rft.training.policy_grpo import FeatureSet

    narrow = FeatureSet(torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.bool), torch.tensor([0, -1]))
    wide = FeatureSet(torch.full((1, 5, 4), 2.0), torch.ones(1, 5, dtype=torch.bool), torch.tensor([4]))
    both = narrow + wide
    assert both.values.shape == (3, 5, 4) and both.answer.tolist() == [0, -1, 4]
    assert both.mask.tolist() == [[True] * 3 + [False] * 2] * 2 + [[True] * 5]
    assert both.values[:2, 3:].abs().sum() == 0 and both.values[2].eq(2.0).all()


def test_training_on_simulated_clinic_patients(small_task_dir, tmp_path):
    logs = []
    config = small_config(small_task_dir, **{"clinic_simulation.copies": 1})
    folder = train_policy(config, tmp_path / "also", log=logs.append)
    assert "features: 480 training and 40 validation cases" in logs[0]  # the 240 cases and a presentation of each
    assert json.loads((folder / "config.json").read_text())["training"]["clinic_simulation"]["copies"] == 1
    logs.clear()
    instead = train_policy(small_config(small_task_dir, select_subset="clinic_like",
                                        **{"clinic_simulation.copies": 1, "clinic_simulation.replace_cases": True}),
                           tmp_path / "instead", log=logs.append)
    assert "features: 240 training and 40 validation cases" in logs[0]
    # the kept step is the one best on the clinic-like validation cases (the first of equals)
    curves = [line.split(",") for line in (instead / "training_curves.csv").read_text().splitlines()]
    column = curves[0].index("val_clinic_reward")
    rewards = [float(row[column]) for row in curves[1:]]
    kept = json.loads((instead / "config.json").read_text())["training_summary"]["best_step"]
    assert kept == int(curves[1 + rewards.index(max(rewards))][0])


def test_config_errors_name_the_setting():
    default = REPO / "configs" / "default.yaml"
    assert load_config(default, ["training.steps=7"]).training.steps == 7
    with pytest.raises(ConfigError, match="unknown setting 'training.stepz'"):
        load_config(default, ["training.stepz=7"])
    with pytest.raises(ConfigError, match="training.steps: expected an integer"):
        load_config(default, ["training.steps=many"])
    with pytest.raises(ConfigError, match="training.objective: 'ppo' is not one of grpo, listwise"):
        load_config(default, ["training.objective=ppo"])


def test_evaluating_a_model_on_cases_it_holds_warns(trained, small_task_dir, capsys, tmp_path):
    from rare_disease_rft.cli import main

    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(trained), "--tasks", str(small_task_dir / "validation.jsonl"),
                 "--json", str(out)]) == 0
    assert "warning: 40 of the 40 tasks are case reports" in capsys.readouterr().err
    assert json.loads(out.read_text())["tasks_in_case_index"] == 40
    assert main(["evaluate", "--model", str(trained), "--tasks", str(small_task_dir / "test.jsonl"),
                 "--json", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert "tasks_in_case_index" not in json.loads(out.read_text())


def test_index_adds_a_labs_solved_cases_without_retraining(trained, small_task_dir, tmp_path, capsys, hpo):
    from rare_disease_rft.cli import main
    from rare_disease_rft.tasks import write_tasks

    before = load_ranker(str(trained))
    new = [t for t in read_tasks(small_task_dir / "test.jsonl") if t.answer.gene not in before.training_genes][:3]
    assert new
    own = tmp_path / "own.jsonl"
    write_tasks(own, new)
    out = tmp_path / "with-own-cases"
    assert main(["index", "--model", str(trained), "--tasks", str(own), "--out", str(out)]) == 0
    assert f"with {len(new)} more cases" in capsys.readouterr().out
    after = load_ranker(str(out))
    assert after.indexed_cases == before.indexed_cases | {t.id for t in new}
    assert {t.answer.gene for t in new} <= after.training_genes
    assert _weights(out).keys() == _weights(trained).keys()
    assert all(torch.equal(_weights(out)[k], _weights(trained)[k]) for k in _weights(out))
    case, gene = Case.from_task(new[0]), new[0].answer.gene

    def rank_and_similarity(ranker):
        feats = ranker.extractor.extract(case)
        where = np.flatnonzero(feats.candidates == ranker.extractor.universe_index[gene])
        return ranker.rank(case).genes.index(gene), float(feats.values[where[0], FEATURES.index("case_max_sim")])

    (rank_before, similarity_before), (rank_after, similarity_after) = map(rank_and_similarity, (before, after))
    # its own record is now a similar case: the gene's case evidence, and a rank no worse
    assert similarity_before == 0.0 and similarity_after == pytest.approx(1.0, abs=1e-5)
    assert rank_after <= rank_before
    assert after.similar_cases(case, gene)[0]["case_id"] == new[0].id
    meta = json.loads((out / "config.json").read_text())
    assert meta["added_cases"][0]["cases"] == len(new)
    assert "joined the case index" in (out / "MODEL_CARD.md").read_text()
    # the same cases twice, or into a directory that is not empty: one line, exit 2
    assert main(["index", "--model", str(out), "--tasks", str(own), "--out", str(tmp_path / "again")]) == 2
    assert "already in the case index" in capsys.readouterr().err
    assert main(["index", "--model", str(trained), "--tasks", str(own), "--out", str(out)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert main(["index", "--model", "phenomizer", "--tasks", str(own), "--out", str(tmp_path / "x")]) == 2
    assert "no model directory" in capsys.readouterr().err
    twice = tmp_path / "twice.jsonl"
    write_tasks(twice, [new[0], new[0]])
    assert main(["index", "--model", str(trained), "--tasks", str(twice), "--out", str(tmp_path / "y")]) == 2
    assert f"{twice}:2: task id '{new[0].id}' is also on line 1" in capsys.readouterr().err



def test_rank_serves_default_with_the_test_split_indexed_and_evaluate_the_held_out_model(
        trained, small_task_dir, tmp_path, monkeypatch, capsys):
    import os
    import shutil

    import rare_disease_rft.resources as resources
    from rare_disease_rft.cli import main
    from rare_disease_rft.tasks import write_tasks

    held_out, data, served = tmp_path / "default-model", tmp_path / "data", tmp_path / "default-model-all-cases"
    shutil.copytree(trained, held_out)
    data.mkdir()
    test_split = [t for t in read_tasks(small_task_dir / "test.jsonl")][:5]
    write_tasks(data / "test.jsonl", test_split)
    for name, value in (("DEFAULT_MODEL_DIR", held_out), ("DEFAULT_DATA_DIR", data), ("SERVED_MODEL_DIR", served)):
        monkeypatch.setattr(resources, name, value)
    present = ",".join(test_split[0].present)

    def rank() -> str:
        assert main(["rank", "--model", "default", "--present", present, "--json"]) == 0
        return capsys.readouterr().err

    assert "adding the test split's cases" in rank()
    assert load_ranker(str(served)).indexed_cases == load_ranker(str(held_out)).indexed_cases | {t.id for t in test_split}
    assert "adding" not in rank()  # built once
    os.utime(held_out / "config.json", (served.stat().st_mtime + 10,) * 2)  # retrained: built again
    assert "adding" in rank()
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", "default", "--tasks", str(data / "test.jsonl"), "--json", str(out)]) == 0
    assert "tasks_in_case_index" not in json.loads(out.read_text())  # the benchmark's model never saw them

def test_calibration_recovers_the_temperature_and_keeps_misses_honest():
    # answers drawn from softmax(scores / 3); then 15% of them moved outside the shortlist
    rng = np.random.default_rng(0)
    scores = 4 * rng.standard_normal((4000, 30))
    scores[:, 25:] = -np.inf  # padding of a shorter shortlist
    truth = calibrated_probabilities(scores, 3.0)
    answer = np.array([rng.choice(30, p=p) for p in truth])
    assert fit_calibration(scores, answer) == pytest.approx(3.0, rel=0.1)
    answer[rng.random(4000) < 0.15] = -1
    probabilities = calibrated_probabilities(scores, fit_calibration(scores, answer))
    assert probabilities.max(axis=1).mean() == pytest.approx((probabilities.argmax(axis=1) == answer).mean(), abs=0.02)


@pytest.mark.parametrize("ignored", [(), ("case_vote", "enrichment")])
def test_the_numpy_forward_pass_is_the_torch_networks(ignored, tmp_path):
    from rare_disease_rft.rankers.policy import PolicyWeights
    from rare_disease_rft.training.policy_net import save_policy

    torch.manual_seed(0)
    net = PolicyNet(hidden=16, layers=2, ignored=ignored)
    with torch.no_grad():  # the output layers start at zero: give every weight a value
        for parameter in net.parameters():
            parameter.normal_(0, 0.5)
    net.set_standardisation(np.linspace(-1, 1, len(FEATURES)), np.linspace(0.5, 2, len(FEATURES)))
    features = np.random.default_rng(0).normal(0, 2, (3, 50, len(FEATURES))).astype(np.float32)
    features[..., FEATURES.index("has_cases")] = np.arange(50) % 2  # half the genes have cases
    with torch.no_grad():
        expected = [h.numpy() for h in net.heads(torch.from_numpy(features))]
    save_policy(tmp_path, net)
    for weights in (net.weights(), PolicyWeights.load(tmp_path / "model.safetensors")):
        for got, want in zip(weights.heads(features), expected):
            assert got.dtype == np.float32 and np.abs(got - want).max() <= 1e-6 * max(1.0, np.abs(want).max())
    assert np.abs(expected[1] - expected[0]).max() > 0.1  # the case head contributes


def test_ranking_with_a_trained_model_imports_no_torch(trained):
    """Nor matplotlib, pandas or scipy.special (0.15-0.3 s): what `rdrft rank` waits for. The
    training of ``trained`` has kept the log-factorial table the enrichment reads."""
    import subprocess
    import sys

    code = (f"import sys; from rare_disease_rft.explain import explain_gene; from rare_disease_rft.hpo import load_hpo; "
            f"from rare_disease_rft.rankers import Case; from rare_disease_rft.registry import load_ranker; r = load_ranker({str(trained)!r}); "
            "case = Case(('HP:0001166', 'HP:0001083'), ('HP:0002650',)); top = r.rank(case).genes[:3]; "
            "[(explain_gene(load_hpo(), case, g, r.case_annotations), r.similar_cases(case, g)) for g in top]; "
            "print(len(top), sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', 'pandas') "
            "or m.startswith('scipy.special')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.split() == ["3", "[]"]


def test_rank_many_is_rank_for_each_case_bit_for_bit(trained, small_task_dir):
    ranker = load_ranker(str(trained))
    cases = [Case.from_task(t) for t in read_tasks(small_task_dir / "test.jsonl")]
    one_by_one = [ranker.rank(case) for case in cases]
    for batch in (ranker.rank_many(cases), ranker.rank_many(cases[3:])):  # other neighbours in the batch
        offset = len(cases) - len(batch)
        for single, batched in zip(one_by_one[offset:], batch):
            assert single.genes == batched.genes
            assert np.array_equal(single.scores, batched.scores) and np.array_equal(single.probabilities, batched.probabilities)
    assert ranker.rank_many([]) == []


def test_product_by_columns_is_scipys_csr_product_bit_for_bit():
    """One patient's similarities to the indexed cases: from the patient's columns alone, each row
    summed in column order as scipy's CSR product sums it (a gather-and-add in another order differs)."""
    import scipy.sparse as sp

    from rare_disease_rft.rankers.case_index import TermVector
    from rare_disease_rft.rankers.features import product_by_columns

    rng = np.random.default_rng(11)
    matrix = sp.random(3000, 2000, density=0.02, format="csr", dtype=np.float32, random_state=rng)
    matrix.data = (matrix.data * rng.choice([1e-3, 1.0, 1e3], matrix.nnz)).astype(np.float32)
    by_column = matrix.tocsc()
    for terms in (0, 1, 3, 6, 7, 45, 400):
        vector = np.zeros(2000, np.float32)
        vector[rng.choice(2000, terms, replace=False)] = rng.random(terms, dtype=np.float32)
        nonzero = np.flatnonzero(vector)
        product = product_by_columns(by_column, TermVector(nonzero, vector[nonzero]))
        assert product.dtype == np.float32
        assert product.tobytes() == (matrix @ vector).tobytes()
        reordered = np.zeros(3000, np.float32)  # the same products added in row order instead: differs
        coo = by_column[:, np.flatnonzero(vector)].tocoo()
        np.add.at(reordered, coo.row[::-1], (coo.data * vector[np.flatnonzero(vector)][coo.col])[::-1])
        assert terms < 45 or reordered.tobytes() != product.tobytes()


def test_the_numpy_gelu_is_the_exact_one_to_float32_precision_and_torchs_within_1e_6():
    import math

    from rare_disease_rft.rankers.policy import _gelu

    x = np.concatenate([np.linspace(-30, 30, 100_001), [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])
    got = _gelu(x)
    assert got.dtype == np.float32 and np.abs(got - exact).max() < 3e-7  # torch's own is 1e-6 off
    assert np.abs(got - torch.nn.functional.gelu(torch.from_numpy(x)).numpy()).max() < 1e-6
    assert np.isnan(_gelu(np.array([np.nan], np.float32))).all()


def test_logsumexp_rows_is_scipys_bit_for_bit():
    from scipy.special import logsumexp

    from rare_disease_rft.rankers.features import logsumexp_rows

    rng = np.random.default_rng(0)
    for width in (1, 2, 7, 8, 9, 40, 130):
        a = rng.normal(0, 30, (500, width))
        a[rng.random(a.shape) < 0.4] = -np.inf
        a[:, 0] = np.where(np.isinf(a[:, 0]), 3.0, a[:, 0])  # every row holds a finite value
        a[:5] = 2.5  # ties at the maximum
        assert np.array_equal(logsumexp_rows(a), logsumexp(a, axis=1))


def test_ranking_many_patients_on_two_workers_gives_each_ones_ranking_and_explanation(trained, small_task_dir, hpo):
    from rare_disease_rft.batch import rank_many_parallel
    from rare_disease_rft.explain import rank_and_explain

    ranker = load_ranker(str(trained))
    cases = [Case.from_task(t) for t in read_tasks(small_task_dir / "test.jsonl")[:20]]
    expected = [rank_and_explain(ranker, case, top=2, hpo=hpo) for case in cases]
    assert rank_many_parallel(ranker, cases, workers=2, top=2) == expected

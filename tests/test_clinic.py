"""Clinic patients: the clinic-like presentation of a case, simulated clinic patients, and the
benchmark's clinic-like subset."""

import json

import numpy as np
import pytest

from rare_disease_rft.clinic import (
    CLINIC_MAX_TERMS, ClinicSimulation, ReportedTerms, as_clinic_patient, most_specific_terms, simulate_clinic_patient,
)
from rare_disease_rft.evaluate import clinic_like_tasks, evaluate, format_differences, format_table, paired_differences
from rare_disease_rft.rankers.base import Ranker, Ranking
from rare_disease_rft.tasks import Answer, Task

SEIZURE, FOCAL_SEIZURE, ARACHNODACTYLY, TALL_STATURE = "HP:0001250", "HP:0007359", "HP:0001166", "HP:0000098"
ECTOPIA_LENTIS, DEVELOPMENTAL_DELAY, MICROCEPHALY = "HP:0001083", "HP:0001263", "HP:0000252"


def test_the_most_specific_terms_drop_implied_ancestors_then_keep_the_highest_information_content(hpo):
    # Seizure is implied by Focal-onset seizure; of the rest, the highest IC first
    terms = [SEIZURE, DEVELOPMENTAL_DELAY, FOCAL_SEIZURE, ARACHNODACTYLY, TALL_STATURE, ECTOPIA_LENTIS, "HP:9999999"]
    assert most_specific_terms(hpo, terms) == [ECTOPIA_LENTIS, ARACHNODACTYLY, TALL_STATURE, FOCAL_SEIZURE,
                                               DEVELOPMENTAL_DELAY]
    assert most_specific_terms(hpo, terms, limit=2) == [ECTOPIA_LENTIS, ARACHNODACTYLY]
    assert most_specific_terms(hpo, [SEIZURE, SEIZURE]) == [SEIZURE]


def test_terms_of_equal_information_content_are_kept_by_id(hpo):
    ic = hpo.information_content
    top = float(ic[hpo.phenotypic].max())
    same = [hpo.ids[i] for i in np.flatnonzero((ic == top) & hpo.phenotypic)]
    unrelated = []
    for term in same:  # pairwise unrelated, so that none implies another
        if all(term not in hpo.ancestors(u) and u not in hpo.ancestors(term) for u in unrelated):
            unrelated.append(term)
        if len(unrelated) == CLINIC_MAX_TERMS + 3:
            break
    given = list(reversed(unrelated))
    assert most_specific_terms(hpo, given) == sorted(unrelated)[:CLINIC_MAX_TERMS]


def test_a_clinic_patient_has_present_terms_only_and_no_sex_or_age(hpo):
    task = Task("PMID_5_1", [SEIZURE, FOCAL_SEIZURE, MICROCEPHALY], [TALL_STATURE], "FEMALE", 4.5, Answer("SCN1A"),
                {"kind": "phenopacket", "pmid": "PMID:5"}, "test")
    clinic = as_clinic_patient(task, hpo)
    assert (clinic.id, clinic.present, clinic.excluded, clinic.sex, clinic.age_years) == (
        "PMID_5_1", [FOCAL_SEIZURE, MICROCEPHALY], [], None, None)
    assert (clinic.answer, clinic.pmid, clinic.split) == (Answer("SCN1A"), "PMID:5", "test")
    assert task.present == [SEIZURE, FOCAL_SEIZURE, MICROCEPHALY] and task.sex == "FEMALE"  # the task is untouched


def _reported(hpo):
    return ReportedTerms(hpo, [Task("a", [DEVELOPMENTAL_DELAY, SEIZURE]), Task("b", [DEVELOPMENTAL_DELAY]),
                               Task("c", [MICROCEPHALY])])


def test_reported_terms_are_the_share_of_reports_of_each_term(hpo):
    reported = _reported(hpo)
    assert reported.terms == sorted([DEVELOPMENTAL_DELAY, SEIZURE, MICROCEPHALY])
    assert dict(zip(reported.terms, reported.probabilities)) == {
        DEVELOPMENTAL_DELAY: 0.5, SEIZURE: 0.25, MICROCEPHALY: 0.25}


def test_a_simulation_without_noise_is_the_clinic_presentation(hpo):
    task = Task("PMID_5_1", [SEIZURE, FOCAL_SEIZURE, ARACHNODACTYLY], [TALL_STATURE], "MALE", 3.0, Answer("X"),
                {"pmid": "PMID:5"})
    quiet = ClinicSimulation(copies=1, dropout=0.0, imprecision=0.0, noise_terms=0.0)
    simulated = simulate_clinic_patient(task, hpo, _reported(hpo), quiet)
    assert (simulated.id, simulated.present, simulated.excluded, simulated.sex) == (
        "PMID_5_1#clinic0", [ARACHNODACTYLY, FOCAL_SEIZURE], [], None)
    assert simulated.pmid == "PMID:5"


def test_a_simulation_is_seeded_by_the_case_and_copy(hpo):
    task = Task("PMID_5_1", [FOCAL_SEIZURE, ARACHNODACTYLY, TALL_STATURE, ECTOPIA_LENTIS, MICROCEPHALY],
                answer=Answer("X"), source={"pmid": "PMID:5"})
    settings = ClinicSimulation(copies=2, dropout=0.4, imprecision=0.5, noise_terms=2.0)
    draws = [simulate_clinic_patient(task, hpo, _reported(hpo), settings, copy).present for copy in range(6)]
    assert draws[0] == simulate_clinic_patient(task, hpo, _reported(hpo), settings, 0).present
    assert len({tuple(d) for d in draws}) > 1  # copies differ
    other_seed = ClinicSimulation(copies=2, dropout=0.4, imprecision=0.5, noise_terms=2.0, seed=1)
    assert [simulate_clinic_patient(task, hpo, _reported(hpo), other_seed, c).present for c in range(6)] != draws


def test_imprecision_replaces_terms_by_parents_and_dropout_keeps_one_term(hpo):
    task = Task("t", [FOCAL_SEIZURE, ECTOPIA_LENTIS], answer=Answer("X"))
    broader = ClinicSimulation(dropout=0.0, imprecision=1.0, noise_terms=0.0)
    assert sorted(simulate_clinic_patient(task, hpo, _reported(hpo), broader).present) == sorted(
        [SEIZURE, hpo.term(ECTOPIA_LENTIS).parents[0]])
    everything_dropped = ClinicSimulation(dropout=1.0, imprecision=0.0, noise_terms=0.0)
    assert len(simulate_clinic_patient(task, hpo, _reported(hpo), everything_dropped).present) == 1


def test_noise_adds_only_findings_unrelated_to_the_patients_terms(hpo):
    # the background holds Seizure (an ancestor of the patient's term) and Developmental delay
    reported = ReportedTerms(hpo, [Task("a", [SEIZURE]), Task("b", [DEVELOPMENTAL_DELAY])])
    noisy = ClinicSimulation(dropout=0.0, imprecision=0.0, noise_terms=5.0)
    for copy in range(5):
        present = simulate_clinic_patient(Task("t", [FOCAL_SEIZURE], answer=Answer("X")), hpo, reported, noisy,
                                          copy).present
        assert FOCAL_SEIZURE in present and SEIZURE not in present
        assert set(present) <= {FOCAL_SEIZURE, DEVELOPMENTAL_DELAY}
    assert any(DEVELOPMENTAL_DELAY in simulate_clinic_patient(Task("t", [FOCAL_SEIZURE], answer=Answer("X")), hpo,
                                                              reported, noisy, c).present for c in range(5))


# ------------------------------------------------------------------ the benchmark's clinic-like subset
class PaperAwareRanker(Ranker):
    """Ranks FBN1 first when a publication is withheld, CBS first otherwise; records what it saw."""

    name = "paper-aware"

    def __init__(self, first_when_withheld="FBN1", training_genes=frozenset()):
        self.first_when_withheld = first_when_withheld
        self.training_genes = frozenset(training_genes)
        self.seen = []

    def rank(self, case):
        self.seen.append(case)
        first = self.first_when_withheld if case.withheld_publication else "CBS"
        return Ranking([first] + [g for g in ("CBS", "FBN1") if g != first], np.array([2.0, 1.0]))


def _tasks(hpo):
    cited = sorted(hpo.cited_pmids)[0]
    assert "PMID:1" not in hpo.cited_pmids and "PMID:2" not in hpo.cited_pmids
    source = lambda pmid: {"kind": "phenopacket", "pmid": pmid}  # noqa: E731
    return [Task("a", [SEIZURE, FOCAL_SEIZURE], [TALL_STATURE], "FEMALE", 2.0, Answer("FBN1"), source("PMID:1")),
            Task("b", [ARACHNODACTYLY], [], None, None, Answer("CBS"), source("PMID:2")),
            Task("c", [ARACHNODACTYLY], [], None, None, Answer("FBN1"), source(cited))]


def test_clinic_like_tasks_are_the_uncited_cases_as_clinic_patients(hpo):
    positions, clinic = clinic_like_tasks(_tasks(hpo), hpo)
    assert positions == [0, 1]
    assert [(t.id, t.present, t.excluded, t.sex) for t in clinic] == [("a", [FOCAL_SEIZURE], [], None),
                                                                     ("b", [ARACHNODACTYLY], [], None)]


def test_every_evaluation_with_the_knowledge_base_reports_the_clinic_like_subset(hpo):
    ranker = PaperAwareRanker()
    m, results = evaluate(ranker, _tasks(hpo), hpo=hpo, reference_genes=frozenset({"CBS"}))
    # as published, CBS first: ranks 2, 1, 2; as clinic patients with their paper withheld, FBN1 first
    assert [r.rank for r in results] == [2.0, 1.0, 2.0]
    assert [r.clinic_rank for r in results] == [1.0, 2.0, None]
    clinic_cases = ranker.seen[3:]
    assert [(c.present, c.excluded, c.sex, c.age_years, c.withheld_publication) for c in clinic_cases] == [
        ((FOCAL_SEIZURE,), (), None, None, "PMID:1"), ((ARACHNODACTYLY,), (), None, None, "PMID:2")]
    assert all(c.withheld_publication is None for c in ranker.seen[:3])  # the main pass keeps the knowledge
    clinic, unseen = m["subsets"]["clinic_like"], m["subsets"]["clinic_like_gene_unseen"]
    assert {k: clinic[k] for k in ("n", "top1", "top5", "top10", "mrr", "found")} == {
        "n": 2, "top1": 0.5, "top5": 1.0, "top10": 1.0, "mrr": 0.75, "found": 1.0}
    assert clinic["ci95"] == {"top1": [0.0, 1.0], "top10": [1.0, 1.0]}  # two papers, one hit each way
    # split by the reference genes: FBN1 has no training case
    assert {k: unseen[k] for k in ("n", "top1", "mrr")} == {"n": 1, "top1": 1.0, "mrr": 1.0}
    assert unseen["ci95"] == {"top1": [1.0, 1.0], "top10": [1.0, 1.0]}
    json.dumps(m, allow_nan=False)
    table = format_table({"paper-aware": m})
    assert "clinic-like subset" in table
    assert table.splitlines()[-1].split() == ["paper-aware", "2", "0.500", "0.00-1.00", "1.000", "1.000",
                                              "1.00-1.00", "0.750", "1.000", "1", "1.000", "1.000"]


def test_without_the_knowledge_base_there_is_no_second_pass(hpo):
    ranker = PaperAwareRanker()
    m, results = evaluate(ranker, _tasks(hpo))
    assert len(ranker.seen) == 3 and all(r.clinic_rank is None for r in results)
    assert "clinic_like" not in m["subsets"] and "clinic-like" not in format_table({"x": m})


def test_an_empty_clinic_like_part_is_null(hpo):
    m, _ = evaluate(PaperAwareRanker(), _tasks(hpo), hpo=hpo, reference_genes=frozenset({"CBS", "FBN1"}))
    assert m["subsets"]["clinic_like_gene_unseen"] == {
        "n": 0, "top1": None, "top5": None, "top10": None, "mrr": None, "partial_credit": None, "found": None,
        "ci95": {"top1": [None, None], "top10": [None, None]}}
    json.dumps(m, allow_nan=False)
    assert format_table({"x": m}).splitlines()[-1].split()[-3:] == ["0", "-", "-"]


def test_paired_differences_cover_the_clinic_like_subset(hpo):
    tasks = _tasks(hpo)
    _, aware = evaluate(PaperAwareRanker(), tasks, hpo=hpo)
    _, other = evaluate(PaperAwareRanker(first_when_withheld="CBS"), tasks, hpo=hpo)
    paired = paired_differences({"aware": aware, "other": other}, tasks, {"CBS"}, n_boot=200)
    parts = paired["against"]["other"]
    assert parts["all"]["top1"]["difference"] == 0.0  # the same ranking as published
    # clinic-like: aware ranks a (FBN1) first and b (CBS) second; other the reverse
    assert parts["clinic_like"]["n"] == 2 and parts["clinic_like"]["top1"]["difference"] == 0.0
    assert parts["clinic_like_gene_unseen"]["n"] == 1
    assert parts["clinic_like_gene_unseen"]["top1"] == {"difference": 1.0, "ci95": [1.0, 1.0]}
    assert "clinic-like (n=2)" in format_differences(paired)
    assert "clinic_like" not in paired_differences({"aware": aware, "plain": evaluate(PaperAwareRanker(), tasks)[1]},
                                                   tasks, {"CBS"})["against"]["plain"]

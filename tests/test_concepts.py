import json

import pytest

from rare_disease_rft.cli import main
from rare_disease_rft.inputs.case_reports import heading_kind, patient_spans
from rare_disease_rft.inputs.concepts import PATIENT, RELATIVE, ConceptRecognizer, Mention, build_index, normalise_word
from rare_disease_rft.inputs.texts import patient_from_text


@pytest.fixture(scope="module")
def recognizer(hpo):
    return ConceptRecognizer.for_hpo(hpo)


def found(recognizer, text, **kwargs):
    return [(m.id, m.text, m.excluded) for m in recognizer.annotate(text, **kwargs)]


def test_offsets_point_at_the_mention_text(recognizer):
    text = "A 4-year-old girl with Seizures and global developmental delay."
    mentions = recognizer.annotate(text)
    assert [(m.id, m.start, m.end) for m in mentions] == [("HP:0001250", 23, 31), ("HP:0001263", 36, 62)]
    for m in mentions:
        assert text[m.start:m.end] == m.text
    assert mentions[0] == Mention("HP:0001250", "Seizure", 23, 31, "Seizures", False)
    assert mentions[0].to_json() == {"id": "HP:0001250", "label": "Seizure", "start": 23, "end": 31,
                                     "text": "Seizures", "excluded": False}


def test_case_plurals_hyphens_and_word_order(recognizer):
    assert found(recognizer, "HYPOTONIA") == [("HP:0001252", "HYPOTONIA", False)]
    assert found(recognizer, "epicanthal folds") == [("HP:0000286", "epicanthal folds", False)]
    assert found(recognizer, "hyper-extensible skin") == [("HP:0000974", "hyper-extensible skin", False)]
    assert found(recognizer, "café-au-lait spots") == [("HP:0000957", "café-au-lait spots", False)]
    # word order and little words do not matter; British spelling is folded
    assert found(recognizer, "hypoplasia of the corpus callosum") == \
        [("HP:0002079", "hypoplasia of the corpus callosum", False)]
    assert found(recognizer, "corpus callosum hypoplasia") == [("HP:0002079", "corpus callosum hypoplasia", False)]
    assert found(recognizer, "oedema") == [("HP:0000969", "oedema", False)]
    assert normalise_word("Dysplastic") == "dysplasia" and normalise_word("kidneys") == "renal"
    assert found(recognizer, "2nd and 3rd toes syndactyly") == [("HP:0004691", "2nd and 3rd toes syndactyly", False)]


def test_anatomical_adjectives_and_participles_read_as_the_term_words(recognizer):
    assert found(recognizer, "patellar dysplasia") == [("HP:0006446", "patellar dysplasia", False)]
    assert found(recognizer, "abnormal clavicular shape") == [("HP:0000889", "abnormal clavicular shape", False)]
    assert found(recognizer, "cutaneous abnormalities") == [("HP:0000951", "cutaneous abnormalities", False)]
    assert found(recognizer, "bridging of the sella turcica") == [
        ("HP:0005449", "bridging of the sella turcica", False)]
    # an -ed participle reads as the -ing form, never as the bare verb: "jump" is not Jumping
    assert normalise_word("bridged") == normalise_word("bridging") == "bridging"
    assert found(recognizer, "the child would jump") == []


def test_longest_match_wins(recognizer):
    assert found(recognizer, "bilateral sensorineural hearing impairment") == \
        [("HP:0008619", "bilateral sensorineural hearing impairment", False)]
    assert found(recognizer, "Generalized hypotonia") == [("HP:0001290", "Generalized hypotonia", False)]


def test_a_label_matches_without_its_qualifier_when_no_term_owns_the_shorter_wording(recognizer):
    assert found(recognizer, "skin lesions") == [("HP:0011355", "skin lesions", False)]  # Localized skin lesion
    assert found(recognizer, "subcortical infarcts") == [("HP:0007236", "subcortical infarcts", False)]
    # a term that owns the shorter wording keeps it: "hypotonia" is not Generalized hypotonia
    assert found(recognizer, "hypotonia") == [("HP:0001252", "hypotonia", False)]
    # a single word left over means too many things: "colds" is not Recurrent colds
    assert found(recognizer, "infections") == found(recognizer, "cold water") == []


def test_a_window_read_across_of_ends_with_its_noun_phrase(recognizer):
    assert found(recognizer, "hyperplasia of the mandibular") == [
        ("HP:0000303", "hyperplasia of the mandibular", False)]
    # "coronoid" continues the phrase: the hyperplasia is of the coronoid processes, not the mandible
    assert found(recognizer, "hyperplasia of the mandibular coronoid processes") == []
    # a copula or a conjunction ends the phrase
    assert found(recognizer, "Hypoplasia of the corpus callosum was seen.") == [
        ("HP:0002079", "Hypoplasia of the corpus callosum", False)]
    assert found(recognizer, "absence of the thumb and ptosis") == [
        ("HP:0009777", "absence of the thumb", False), ("HP:0000508", "ptosis", False)]


def test_coordination_gives_both_readings(recognizer):
    assert found(recognizer, "palmar and plantar pits") == [
        ("HP:0010610", "palmar and plantar pits", False), ("HP:0010612", "plantar pits", False)]
    assert found(recognizer, "Cleft lip and palate") == [
        ("HP:0410030", "Cleft lip", False), ("HP:0000175", "Cleft lip and palate", False)]


def test_coordination_drops_either_side_of_the_conjunction(recognizer):
    # a two-word side ("posterior subcapsular") and a modifier shared across "or" ("posterior")
    assert found(recognizer, "posterior subcapsular or capsular cataract") == [
        ("HP:0007787", "posterior subcapsular or capsular cataract", False),
        ("HP:0100020", "posterior subcapsular or capsular cataract", False),
        ("HP:0100017", "capsular cataract", False)]
    # a negator is no modifier: no "hypotonic seizures" here, and the seizures stay negated
    assert found(recognizer, "The patient had hypotonia and no seizures.") == [
        ("HP:0001252", "hypotonia", False), ("HP:0001250", "seizures", True)]
    # a list of findings is not a shared head
    assert found(recognizer, "nystagmus or hypotonia") == [
        ("HP:0000639", "nystagmus", False), ("HP:0001252", "hypotonia", False)]


def test_abbreviations_defined_in_the_text(recognizer):
    text = "She has intellectual disability (ID). The ID was severe."
    assert [(m.id, m.text, m.start) for m in recognizer.annotate(text)] == [
        ("HP:0001249", "intellectual disability", 8), ("HP:0001249", "ID", 33), ("HP:0001249", "ID", 42)]
    # a definition for a non-phenotype silences the dictionary sense (ASD is also atrial septal defect)
    assert found(recognizer, "anxiety and sleep disorder (ASD). ASD improved.") == [("HP:0000739", "anxiety", False)]
    # the letters must fit the long form: a gene symbol in parentheses defines nothing
    assert found(recognizer, "hepatocellular carcinoma (SAMD9L). SAMD9L") == \
        [("HP:0001402", "hepatocellular carcinoma", False)]


def test_well_known_abbreviations_are_case_sensitive(recognizer):
    assert found(recognizer, "a VSD and PDA") == [("HP:0001629", "VSD", False), ("HP:0001643", "PDA", False)]
    assert found(recognizer, "a vsd") == []


@pytest.mark.parametrize("text, excluded", [
    ("The patient had no seizures.", True),
    ("He was born without hypotonia.", True),
    ("Seizures were absent.", True),
    ("She was negative for ataxia.", True),
    ("An MRI did not show microcephaly.", True),
    ("Ataxia was not observed.", True),
    ("No further seizures occurred after treatment.", False),
    ("He had seizures.", False),
])
def test_negation(recognizer, text, excluded):
    assert [m.excluded for m in recognizer.annotate(text)] == [excluded]


def test_negation_scope_stops_at_but(recognizer):
    assert found(recognizer, "There was no ataxia, nystagmus or hypotonia but she had seizures.") == [
        ("HP:0001251", "ataxia", True), ("HP:0000639", "nystagmus", True),
        ("HP:0001252", "hypotonia", True), ("HP:0001250", "seizures", False)]


def test_a_negation_word_inside_the_mention_negates_nothing(recognizer):
    assert found(recognizer, "She had absent thumbs.") == [("HP:0009777", "absent thumbs", False)]


def test_only_phenotypic_abnormalities(recognizer):
    assert found(recognizer, "autosomal dominant inheritance with childhood onset") == []


CASE_REPORT = "\n".join([
    "A novel variant in a girl with microcephaly",
    "Introduction",
    "The syndrome is characterized by seizures, ataxia and cataract.",
    "Case presentation",
    "The patient is a 4-year-old girl with hypotonia. She had no nystagmus.",
    "Her mother had scoliosis.",
    "Methods",
    "Sequencing was done to exclude ptosis syndromes.",
    "Discussion",
    "Patients with this syndrome usually have cataract. Our patient also had strabismus.",
    "References",
    "Clinical photograph of the proband showing ptosis.",
])


def test_case_report_mode_keeps_what_is_about_the_patient(recognizer):
    assert [(m.id, m.text, m.excluded) for m in recognizer.annotate(CASE_REPORT, case_report=True)] == [
        ("HP:0000252", "microcephaly", False),
        ("HP:0001252", "hypotonia", False),
        ("HP:0000639", "nystagmus", True),
        ("HP:0000508", "ptosis", False),
    ]
    plain = {m.id for m in recognizer.annotate(CASE_REPORT)}
    assert {"HP:0001250", "HP:0001251", "HP:0000518", "HP:0002650"} <= plain


def test_headings(recognizer):
    assert heading_kind("2. Case Report") == "case"
    assert heading_kind("DISCUSSION") == "discussion"
    assert heading_kind("Materials and methods") == "admin"
    assert heading_kind("The patient is a girl.") is None
    assert patient_spans("Title\nIntroduction\nGeneral text.") == [(0, 5)]


def test_index_is_cached_as_json(hpo, tmp_path, monkeypatch):
    monkeypatch.setenv("RDRFT_CACHE", str(tmp_path))
    ConceptRecognizer.for_hpo(hpo)
    [cached] = list((tmp_path / "concepts").glob("*.json"))
    index = json.loads(cached.read_text())
    assert index["hpo_version"] == hpo.version
    assert index["keys"]["seizure"] == ["HP:0001250"]
    assert index["abbreviations"]["VSD"] == "HP:0001629"


def test_build_index_skips_non_phenotypic_terms(hpo):
    index = build_index(hpo)
    ids = {t for ts in index["keys"].values() for t in ts}
    assert "HP:0000006" not in ids  # autosomal dominant inheritance
    assert "HP:0001250" in ids


def test_default_is_shared():
    assert ConceptRecognizer.default() is ConceptRecognizer.default()


def test_negation_of_a_list_needs_or(recognizer):
    # "no A, B or C" negates all three; "no A, B and C" only A
    assert [m.excluded for m in recognizer.annotate("She had no ataxia, nystagmus or ptosis.")] == [True] * 3
    assert [m.excluded for m in recognizer.annotate("The course showed no ataxia, nystagmus, and ptosis.")] == \
        [True, False, False]


def test_a_trigger_inside_a_mention_negates_nothing_after_it(recognizer):
    assert found(recognizer, "He had absence of subcutaneous fat, hirsutism and ptosis.") == [
        ("HP:0007485", "absence of subcutaneous fat", False), ("HP:0001007", "hirsutism", False),
        ("HP:0000508", "ptosis", False)]


def test_case_reports_drop_organ_system_terms(recognizer):
    text = "A boy\nCase report\nHe had ocular abnormalities and microphthalmia."
    assert [m.id for m in recognizer.annotate(text)] == ["HP:0000478", "HP:0000568"]
    assert [m.id for m in recognizer.annotate(text, case_report=True)] == ["HP:0000568"]


def test_tables_and_discussion_are_not_read_as_the_patient(recognizer):
    text = "Title\nResults\nSeizure\t12/12\t+\nPtosis\tyes\tno\nDiscussion\nOur patient also had ataxia."
    assert recognizer.annotate(text, case_report=True) == []


def test_structured_abstract_labels_switch_sections(recognizer):
    text = "A girl with ptosis\nBACKGROUND: The syndrome is characterized by ataxia. CASE: She had no seizures."
    assert found(recognizer, text, case_report=True) == [("HP:0000508", "ptosis", False),
                                                          ("HP:0001250", "seizures", True)]


def test_laboratory_findings_in_their_usual_wordings(recognizer):
    assert found(recognizer, "low serum copper") == [("HP:0011967", "low serum copper", False)]
    assert found(recognizer, "Serum copper was low.") == [("HP:0011967", "Serum copper was low", False)]
    # only a measure reads across "was": this is a negated seizure, not an absence seizure
    assert found(recognizer, "Seizures were absent.") == [("HP:0001250", "Seizures", True)]
    # a word dropped from lab terms never makes an everyday word a term ("concentration problems")
    assert found(recognizer, "He had problems at school.") == []


# ------------------------------------------------------------------------------ relatives
HYPOTONIA, SEIZURE, HEARING_IMPAIRMENT, SCOLIOSIS = "HP:0001252", "HP:0001250", "HP:0000365", "HP:0002650"


@pytest.mark.parametrize("text, about", [
    ("She denies hypotonia. Mother has hypotonia.", [PATIENT, RELATIVE]),
    ("Family history of deafness.", [RELATIVE]),
    ("No family history of seizures.", [RELATIVE]),
    ("Hypotonia was also noted in her mother.", [RELATIVE]),
    ("His older brother has scoliosis.", [RELATIVE]),
    ("The patient's mother has scoliosis.", [RELATIVE]),
    ("Her mother had hypotonia and she had seizures.", [RELATIVE, PATIENT]),
    ("The boy had seizures, and hypotonia was found in his father.", [PATIENT, RELATIVE]),
])
def test_a_finding_stated_of_a_relative_is_marked_so(recognizer, text, about):
    assert [m.about for m in recognizer.annotate(text)] == about


@pytest.mark.parametrize("text", [
    "Mother reports seizures since age 2.",  # a relative who only tells
    "The parents noticed hypotonia at 3 months.",
    "This patient and his younger brother exhibited hearing loss.",  # who shares the finding
    "Patient 2 showed features similar to her brother and EMG features of neuropathy.",  # compared with
    "Two brothers presented with hypotonia.",  # siblings who are the patients
    "Maternal pregnancy was complicated by polyhydramnios.",  # the patient's prenatal history
])
def test_a_relative_who_tells_shares_or_is_compared_with_leaves_the_finding_the_patients(recognizer, text):
    mentions = recognizer.annotate(text)
    assert mentions and all(m.about == PATIENT for m in mentions)


def test_the_mark_is_written_for_relatives_only(recognizer):
    denied, relative = recognizer.annotate("She denies hypotonia. Mother has hypotonia.")
    assert "about" not in denied.to_json() and denied.excluded
    assert relative.to_json() == {"id": HYPOTONIA, "label": "Hypotonia", "start": 33, "end": 42, "text": "hypotonia",
                                  "excluded": False, "about": "relative"}


def test_a_relatives_finding_is_not_the_patients_and_the_patients_denial_stands(recognizer):
    patient = patient_from_text("She denies hypotonia. Mother has hypotonia.", recognizer)
    assert (patient.present, patient.excluded) == ([], [HYPOTONIA])
    patient = patient_from_text("A boy with seizures. Family history of deafness.", recognizer)
    assert (patient.present, patient.excluded) == ([SEIZURE], [])
    assert patient.notes == [f"Hearing impairment ({HEARING_IMPAIRMENT}) is stated of a relative, not the patient: "
                             "left out"]
    assert list(patient.evidence) == [SEIZURE]


def test_case_report_mode_drops_relatives_findings(recognizer):
    assert found(recognizer, "Case report\nShe had seizures; her father has scoliosis.", case_report=True) == [
        (SEIZURE, "seizures", False)]


def test_rdrft_concepts_marks_relatives_findings(tmp_path):
    (tmp_path / "note.txt").write_text("She denies hypotonia. Mother has hypotonia. Family history of deafness.")
    assert main(["concepts", str(tmp_path / "note.txt"), "--jsonl", str(tmp_path / "out.jsonl")]) == 0
    [line] = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(c["id"], c["excluded"], c.get("about")) for c in line["concepts"]] == [
        (HYPOTONIA, True, None), (HYPOTONIA, False, "relative"), (HEARING_IMPAIRMENT, False, "relative")]

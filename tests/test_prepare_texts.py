import json
import shutil
from pathlib import Path

import pytest

from data_prep.texts import document_key, prepare_texts, read_answers
from rare_disease_rft.cli import main
from rare_disease_rft.inputs.case_reports import sex_and_age
from rare_disease_rft.inputs.texts import read_documents

FIXTURES = Path(__file__).parent / "fixtures"
TEXTS = FIXTURES / "texts"
PUBMED_XML = FIXTURES / "pubmed" / "efetch_pubmed.xml"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_texts_to_tasks(tmp_path):
    report = prepare_texts([TEXTS], TEXTS / "answers.csv", tmp_path, split=False)
    tasks = read_jsonl(tmp_path / "tasks.jsonl")
    assert tasks == [
        {"id": "PMID_30000008_1",
         "source": {"kind": "case_report_text", "pmid": "PMID:30000008", "file": "texts:1"},
         "present": ["HP:0000256"], "excluded": [], "sex": None, "age_years": None,
         "answer": {"gene": "PTEN", "hgnc": "HGNC:9588"}, "split": None},
        {"id": "DOC_" + tasks[1]["id"][4:], "source": {"kind": "case_report_text", "file": "texts:2"},
         "present": ["HP:0001252"], "excluded": ["HP:0001250"], "sex": None, "age_years": None,
         "answer": {"gene": "STXBP1", "hgnc": "HGNC:11444"}, "split": None},
    ]
    assert "case_1" not in tasks[1]["id"]  # file stems may name the gene; ids never carry them
    assert report["skipped"] == [{"document": "nothing", "file": str(TEXTS / "nothing.txt"),
                                  "reason": "no present phenotype found in the text"}]
    assert report["documents_read"] == 3 and report["tasks"] == 2
    assert json.loads((tmp_path / "report.json").read_text())["skipped_count"] == 1


def test_gene_names_in_the_text_never_reach_the_task(tmp_path):
    text = tmp_path / "in" / "STXBP1_patient.txt"  # file names may name the gene too
    text.parent.mkdir()
    text.write_text("STXBP1-related disorder: a girl with an STXBP1 variant had seizures and hypotonia.")
    answers = tmp_path / "answers.tsv"
    answers.write_text("STXBP1_patient\tSTXBP1\n")
    prepare_texts([text.parent], answers, tmp_path / "out", split=False)
    [task] = read_jsonl(tmp_path / "out" / "tasks.jsonl")
    line = json.dumps({k: v for k, v in task.items() if k != "answer"})
    assert "STXBP1" not in line and "disorder" not in line
    assert task["present"] == ["HP:0001250", "HP:0001252"]


def test_unreadable_and_unanswered_documents_are_reported_not_dropped(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(TEXTS, folder)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "latin1.txt").write_bytes("Fi\xe8vre and seizures".encode("latin-1"))
    (folder / "unanswered.txt").write_text("A boy with seizures.")
    report = prepare_texts([folder, PUBMED_XML], TEXTS / "answers.csv", tmp_path / "out", split=False)
    reasons = {s["document"]: s["reason"] for s in report["skipped"]}
    assert reasons["empty"] == "empty file"
    assert reasons["latin1"] == "not UTF-8 text (byte 0xe8 at offset 2)"
    assert reasons["unanswered"] == f"no answer gene in {TEXTS / 'answers.csv'}"
    assert reasons["30000001"] == reasons["30000002"] == reasons["unanswered"]
    assert report["tasks"] == 2 and report["documents_read"] == 8


def test_pubmed_documents_become_tasks_with_their_pmid(tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("pmid,gene\nPMID:30000001,STXBP1\n30000002,SCN1A\n")
    report = prepare_texts([PUBMED_XML], answers, tmp_path / "out", split=True, seed=3)
    tasks = read_jsonl(tmp_path / "out" / "tasks.jsonl")
    assert [(t["id"], t["source"]["pmid"]) for t in tasks] == [("PMID_30000001_1", "PMID:30000001"),
                                                               ("PMID_30000002_1", "PMID:30000002")]
    # the title's epileptic encephalopathy, the case section's findings, the negated microcephaly
    assert tasks[0]["present"] == ["HP:0200134", "HP:0001250", "HP:0001263"]
    assert tasks[0]["excluded"] == ["HP:0000252"]
    assert tasks[1]["present"] == ["HP:0001252", "HP:0001251"] and tasks[1]["excluded"] == ["HP:0001250"]
    # "a 4-year-old girl"; the two brothers of the second article have no single sex and age
    assert (tasks[0]["sex"], tasks[0]["age_years"]) == ("FEMALE", 4.0)
    assert (tasks[1]["sex"], tasks[1]["age_years"]) == (None, None)
    assert all(t["split"] in ("train", "validation", "test") for t in tasks)
    assert report["tasks"] == 2 and (tmp_path / "out" / "train.jsonl").is_file()


@pytest.mark.parametrize("text, expected", [
    ("A girl\nCase report\nWe report a 4-year-old Italian girl with ptosis.", ("FEMALE", 4.0)),
    ("A boy\nCase report\nAn 18-month-old boy had seizures. The boy was seen again.", ("MALE", 1.5)),
    ("Twins\nCase report\nA 3-year-old boy and his 5-year-old sister had ptosis.", (None, None)),
    ("Two cases\nCase report\nPatient 1 was a 3-year-old boy. Patient 2 was a 5-year-old boy.", (None, None)),
    ("Review\nIntroduction\nPatients are typically a 3-year-old boy.", (None, None)),
])
def test_sex_and_age_only_when_the_text_states_one(text, expected):
    assert sex_and_age(text) == expected


def test_read_answers(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("document,gene\nPMID_1,stxbp1\n# a comment\n\n2,PTEN\n")
    assert read_answers(path) == {"1": "stxbp1", "2": "PTEN"}
    path.write_text("1,STXBP1\n1,PTEN\n")
    with pytest.raises(ValueError, match=r"a.csv:2: document 1 has two genes \(STXBP1, PTEN\)"):
        read_answers(path)
    path.write_text("1\n")
    with pytest.raises(ValueError, match=r"a.csv:1: expected a document id and a gene symbol"):
        read_answers(path)
    assert document_key(" PMID:123 ") == "123"


def test_read_documents_reports_missing_inputs(tmp_path):
    [error] = read_documents([tmp_path / "missing.txt"])
    assert error.reason == "no such file or folder"
    (tmp_path / "x.xml").write_text("<html></html>")
    [error] = read_documents([tmp_path / "x.xml"])
    assert error.reason.startswith("XML but not a PubmedArticleSet")


def test_cli_prepare_texts(tmp_path, capsys):
    assert main(["prepare", "texts", str(TEXTS), "--answers", str(TEXTS / "answers.csv"),
                 "--out", str(tmp_path), "--no-split"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("2 tasks from 3 documents")
    assert err == f"rdrft prepare: skipped {TEXTS / 'nothing.txt'} [nothing]: no present phenotype found in the text\n"


def test_cli_prepare_texts_bad_answers_is_one_line(tmp_path, capsys):
    assert main(["prepare", "texts", str(TEXTS), "--answers", str(tmp_path / "none.csv"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "answers file" in err and "does not exist" in err


def test_cli_concepts(tmp_path, capsys):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    out = tmp_path / "concepts.jsonl"
    assert main(["concepts", str(TEXTS / "case_1.txt"), str(tmp_path / "bad.txt"), str(PUBMED_XML),
                 "--jsonl", str(out)]) == 0
    lines = read_jsonl(out)
    assert [line["doc"] for line in lines] == ["case_1", "30000001", "30000002"]
    text = (TEXTS / "case_1.txt").read_text()
    assert lines[0]["concepts"] == [
        {"id": "HP:0001252", "label": "Hypotonia", "start": 38, "end": 47, "text": "hypotonia", "excluded": False},
        {"id": "HP:0001250", "label": "Seizure", "start": 55, "end": 63, "text": "seizures", "excluded": True},
    ]
    assert all(text[c["start"]:c["end"]] == c["text"] for c in lines[0]["concepts"])
    expected = f"rdrft concepts: {tmp_path / 'bad.txt'} [bad]: not UTF-8 text (byte 0xff at offset 0)\n"
    assert capsys.readouterr().err == expected


def test_cli_concepts_with_nothing_readable_fails(tmp_path, capsys):
    (tmp_path / "empty.txt").write_bytes(b"")
    assert main(["concepts", str(tmp_path / "empty.txt"), "--jsonl", str(tmp_path / "o.jsonl")]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == f"rdrft concepts: error: no readable document in {tmp_path / 'empty.txt'}"

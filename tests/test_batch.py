"""`rdrft rank` for many patients (phenopackets, task files) and for candidate genes (lists, VCFs)."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from conftest import phenopacket, with_pmid, write_json
from rare_disease_rft.batch import BatchReport, rank_many_parallel, rank_tasks
from rare_disease_rft.cli import main
from rare_disease_rft.explain import rank_and_explain
from rare_disease_rft.rankers import Case
from rare_disease_rft.registry import load_ranker
from rare_disease_rft.tasks import Answer, Task, read_tasks, write_tasks

FIXTURES = Path(__file__).parent / "fixtures"
MARFAN = ["HP:0001166", "HP:0001083", "HP:0002616"]


@pytest.fixture
def lab_folder(tmp_path):
    """A lab's phenopackets: one diagnosed with a PMID, one in-house (no PMID), one undiagnosed, one broken."""
    folder = tmp_path / "lab"
    write_json(folder / "a.json", with_pmid(phenopacket(id="patient-A"), 111))
    write_json(folder / "b.json", phenopacket(id="patient-B", metaData={}))
    write_json(folder / "c.json", phenopacket(id="patient-C", interpretations=[]))
    (folder / "d.json").write_text("{not json")
    return folder


def test_phenopackets_of_a_lab_rank_one_record_each_keyed_by_their_own_id_and_file(lab_folder, tmp_path, capsys):
    out = tmp_path / "rankings.jsonl"
    assert main(["rank", "--model", "likelihood", "--phenopackets", str(lab_folder), "--out", str(out),
                 "--top", "3"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["patient-A", "patient-B", "patient-C"]
    assert [r["source"]["file"] for r in records] == [str(lab_folder / f"{x}.json") for x in "abc"]
    assert all([g["rank"] for g in r["genes"]] == [1, 2, 3] for r in records)
    # the three are one patient (the same terms): one ranking
    assert records[0]["genes"] == records[1]["genes"] == records[2]["genes"]
    assert set(records[0]["genes"][0]) >= {"rank", "gene", "score", "probability", "explanation"}
    err = capsys.readouterr().err
    assert f"skipped {lab_folder / 'd.json'}: not valid JSON" in err
    assert "ranked 3 patients" in err and "skipped 1: 1 not valid JSON ->" in err


def test_a_task_file_without_answers_ranks_and_writes_a_row_per_patient_and_gene(tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    write_tasks(tasks, [Task("p1", MARFAN), Task("p2", ["HP:0001250", "HP:0001263"], answer=Answer("STXBP1"))])
    out = tmp_path / "rankings.tsv"
    assert main(["rank", "--model", "likelihood", "--tasks", str(tasks), "--out", str(out), "--top", "2"]) == 0
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows[0][:3] == ["id", "rank", "gene"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("p1", "1"), ("p1", "2"), ("p2", "1"), ("p2", "2")]
    assert rows[1][2] == "FBN1"


def test_a_folder_output_holds_one_file_per_patient(lab_folder, tmp_path):
    out = tmp_path / "per-patient"
    assert main(["rank", "--model", "likelihood", "--phenopackets", str(lab_folder), "--out", f"{out}/"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["patient-A.json", "patient-B.json", "patient-C.json"]
    assert json.loads((out / "patient-B.json").read_text())["id"] == "patient-B"


def test_candidate_genes_restrict_the_ranking_and_unknown_ones_come_last_with_the_reason(tmp_path, capsys):
    assert main(["rank", "--model", "likelihood", "--present", ",".join(MARFAN), "--genes",
                 "TGFBR2,FBN1,NOTAGENE1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [g["gene"] for g in result["genes"]] == ["FBN1", "TGFBR2", "NOTAGENE1"]
    last = result["genes"][-1]
    assert last["score"] is None and "not in the knowledge base" in last["explanation"]["not_ranked"]
    assert any("NOTAGENE1" in note for note in result["notes"])


def test_genes_from_a_vep_vcf_are_the_candidates_with_their_variants(capsys):
    assert main(["rank", "--model", "likelihood", "--present", "HP:0001250,HP:0001263", "--vcf",
                 str(FIXTURES / "vcf" / "vep.vcf"), "--json", "--top", "20"]) == 0
    result = json.loads(capsys.readouterr().out)
    genes = [g["gene"] for g in result["genes"]]
    assert {"SCN1A", "STXBP1", "SLC2A1", "CDKL5"} <= set(genes) and len(genes) == 7
    scn1a = next(g for g in result["genes"] if g["gene"] == "SCN1A")
    assert scn1a["explanation"]["variants"] and scn1a["explanation"]["variants"][0]["chrom"]


@pytest.mark.parametrize("argv, message", [
    (["--present", "HP:0001250", "--tasks", "x.jsonl"], "exactly one of --present, --phenopackets or --tasks"),
    ([], "exactly one of --present, --phenopackets or --tasks"),
    (["--present", "HP:0001250", "--out", "ranking.xlsx"], "unknown output format '.xlsx'"),
    (["--present", "HP:0001250", "--genes", "nosuchfile.txt"], "gene list file nosuchfile.txt does not exist"),
])
def test_bad_batch_arguments_are_one_line_and_exit_2(argv, message, capsys):
    assert main(["rank", "--model", "likelihood", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_rank_many_parallel_is_rank_and_explain_of_each_case_in_order(small_task_dir, hpo):
    ranker = load_ranker("likelihood")
    cases = [Case.from_task(t) for t in read_tasks(small_task_dir / "test.jsonl")]  # 40: three chunks
    expected = [rank_and_explain(ranker, case, top=3, hpo=hpo) for case in cases]
    assert rank_many_parallel(ranker, cases, workers=2, top=3) == expected
    assert rank_many_parallel(ranker, cases[:5], workers=1, top=3) == expected[:5]
    assert rank_many_parallel(ranker, [], workers=2) == []
    assert gc.get_freeze_count() == 0  # what a batch froze out of garbage collection is given back


def test_a_batch_stopped_early_gives_back_what_it_froze(small_task_dir, hpo):
    ranker = load_ranker("likelihood")
    tasks = read_tasks(small_task_dir / "test.jsonl") * 4  # 160 patients: 10 chunks
    report = BatchReport()
    results = rank_tasks(ranker, tasks, hpo, 3, report, workers=2)
    first = next(results)
    assert gc.get_freeze_count() > 0
    results.close()
    assert first.id == tasks[0].id and report.ranked == 1
    assert gc.get_freeze_count() == 0

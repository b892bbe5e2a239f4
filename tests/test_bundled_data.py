"""The bundled phenopacket-store archive, end to end (about 3 s)."""

import json

from rare_disease_rft.cli import main
from rare_disease_rft.tasks import read_tasks


def test_bundled_archive_converts_end_to_end(tmp_path, capsys):
    assert main(["prepare", "phenopackets", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["files_read"] == 9232
    assert report["tasks"] == 9160
    assert report["skipped_by_reason"]["no causal gene in the interpretations"] == 69
    assert report["seconds"] < 30
    tasks = read_tasks(tmp_path / "tasks.jsonl")
    assert len({t.id for t in tasks}) == len(tasks) == 9160
    assert len({t.answer.gene for t in tasks}) > 600
    train = {t.pmid for t in read_tasks(tmp_path / "train.jsonl")}
    test = {t.pmid for t in read_tasks(tmp_path / "test.jsonl")}
    assert train and test and not train & test
    assert "9160 tasks from 9232 files" in capsys.readouterr().out


def test_cli_errors_are_one_specific_line(tmp_path, capsys):
    assert main(["prepare", "phenopackets", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rdrft prepare: error: source {tmp_path / 'missing.json'} does not exist "
                   "(give a phenopacket .json, a folder or an archive)"]

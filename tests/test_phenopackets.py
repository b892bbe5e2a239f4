import json
import tarfile
import zipfile

import pytest

from conftest import phenopacket, with_pmid, write_json
from data_prep.phenopackets import prepare_phenopackets
from rare_disease_rft.inputs.phenopackets import age_in_years, convert_sources
from rare_disease_rft.tasks import read_tasks


def test_converts_present_excluded_sex_age_and_gene(tmp_path, hpo):
    write_json(tmp_path / "STXBP1" / "case.json", phenopacket())
    tasks, report = convert_sources([tmp_path], hpo)
    assert len(tasks) == 1 and not report.skipped
    task = tasks[0]
    assert task.id == "PMID_111_1"
    assert task.present == ["HP:0001250", "HP:0001263"]
    assert task.excluded == ["HP:0000252"]
    assert (task.sex, task.age_years) == ("FEMALE", 4.5)
    assert (task.answer.gene, task.answer.hgnc) == ("STXBP1", "HGNC:11444")
    assert task.source == {"kind": "phenopacket", "pmid": "PMID:111", "file": f"{tmp_path.name}:1"}


def test_nothing_that_names_the_gene_reaches_the_task(tmp_path, hpo):
    write_json(tmp_path / "STXBP1" / "PMID_111_STX_1.json", phenopacket())
    tasks, _ = convert_sources([tmp_path], hpo)
    data = tasks[0].to_json()
    data.pop("answer")
    text = json.dumps(data)
    for leak in ("STX", "OMIM", "encephalopathy", "c1501", "related disorders"):
        assert leak not in text


def test_obsolete_term_is_mapped_and_reported(tmp_path, hpo):
    packet = phenopacket(phenotypicFeatures=[{"type": {"id": "HP:0000057"}}, {"type": {"id": "HP:9999999"}}])
    write_json(tmp_path / "a.json", packet)
    tasks, report = convert_sources([tmp_path], hpo)
    assert tasks[0].present == ["HP:0008665"]
    assert report.mapped_terms == {"HP:0000057 -> HP:0008665": 1}
    assert report.unknown_terms == {"HP:9999999": 1}


def test_compound_heterozygote_is_one_gene(tmp_path, hpo):
    packet = phenopacket()
    gis = packet["interpretations"][0]["diagnosis"]["genomicInterpretations"]
    gis.append(json.loads(json.dumps(gis[0])))
    write_json(tmp_path / "a.json", packet)
    tasks, report = convert_sources([tmp_path], hpo)
    assert [t.answer.gene for t in tasks] == ["STXBP1"] and not report.skipped


def test_skips_are_reported_with_reasons_and_never_stop_the_run(tmp_path, hpo):
    no_gene = phenopacket(interpretations=[])
    only_excluded = phenopacket(phenotypicFeatures=[{"type": {"id": "HP:0001250"}, "excluded": True}])
    two_genes = phenopacket()
    gis = two_genes["interpretations"][0]["diagnosis"]["genomicInterpretations"]
    gis.append({"interpretationStatus": "CAUSATIVE", "gene": {"valueId": "HGNC:10585", "symbol": "SCN1A"}})
    write_json(tmp_path / "1.json", no_gene)
    write_json(tmp_path / "2.json", only_excluded)
    write_json(tmp_path / "3.json", two_genes)
    (tmp_path / "4.json").write_text('{"id": "broken", ')
    write_json(tmp_path / "5.json", with_pmid(phenopacket(), 222))
    tasks, report = convert_sources([tmp_path], hpo)
    assert [t.pmid for t in tasks] == ["PMID:222"]
    reasons = {s["file"].rsplit("/", 1)[1]: s["reason"] for s in report.skipped}
    assert reasons["1.json"] == "no causal gene in the interpretations"
    assert reasons["2.json"].startswith("no present phenotype")
    assert reasons["3.json"] == "2 causal genes; a task has one answer"
    assert reasons["4.json"].startswith("not valid JSON (Expecting property name")


def test_reads_zip_and_tar_archives(tmp_path, hpo):
    with zipfile.ZipFile(tmp_path / "p.zip", "w") as z:
        z.writestr("x/a.json", json.dumps(phenopacket()))
        z.writestr("x/b.json", json.dumps(with_pmid(phenopacket(), 5)))
    src = write_json(tmp_path / "t" / "c.json", with_pmid(phenopacket(), 7))
    with tarfile.open(tmp_path / "p.tar.gz", "w:gz") as t:
        t.add(src, arcname="c.json")
    tasks, _ = convert_sources([tmp_path / "p.zip", tmp_path / "p.tar.gz"], hpo)
    assert sorted(t.id for t in tasks) == ["PMID_111_1", "PMID_5_1", "PMID_7_1"]


def test_unsupported_source_is_a_clear_error(tmp_path, hpo):
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="not a phenopacket source"):
        convert_sources([bad], hpo)


@pytest.mark.parametrize("text, years", [("P4Y6M", 4.5), ("P3M", 0.25), ("P14D", 0.038), ("P2W", 0.038), ("", None)])
def test_age_in_years(text, years):
    assert age_in_years(text) == years


def test_prepare_writes_split_files_and_report(tmp_path, hpo):
    src = tmp_path / "src"
    for pmid in range(1, 41):
        for case in range(3):
            packet = with_pmid(phenopacket(), pmid)
            packet["id"] = f"p{pmid}_{case}"
            write_json(src / f"{pmid}_{case}.json", packet)
    report = prepare_phenopackets([src], tmp_path / "out", hpo=hpo)
    splits = {name: read_tasks(tmp_path / "out" / f"{name}.jsonl") for name in ("train", "validation", "test")}
    pmids = {name: {t.pmid for t in ts} for name, ts in splits.items()}
    assert not (pmids["train"] & pmids["test"]) and not (pmids["train"] & pmids["validation"])
    assert not (pmids["validation"] & pmids["test"])
    assert sum(len(ts) for ts in splits.values()) == 120 == report["tasks"]
    assert 0.6 < len(splits["train"]) / 120 < 0.8
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["splits"]["train"]["cases"] == len(splits["train"])
    assert all(t.split == "test" for t in splits["test"])
    # a second run gives the same files
    prepare_phenopackets([src], tmp_path / "again", hpo=hpo)
    assert (tmp_path / "again" / "test.jsonl").read_text() == (tmp_path / "out" / "test.jsonl").read_text()

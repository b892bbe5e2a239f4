import dataclasses
import io
import json
import random
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import phenopacket, with_pmid, write_json
from data_prep.phenopackets import prepare_phenopackets
from rare_disease_rft.cli import main
from rare_disease_rft.inputs.phenopackets import MAX_FILE_BYTES, age_in_years, convert_sources
from rare_disease_rft.rankers import Case
from rare_disease_rft.tasks import read_tasks

FIXTURES = Path(__file__).parent / "fixtures" / "phenopackets"


def test_converts_present_excluded_sex_age_and_gene(tmp_path, hpo):
    path = write_json(tmp_path / "STXBP1" / "case.json", phenopacket())
    tasks, report = convert_sources([tmp_path], hpo)
    assert len(tasks) == 1 and not report.skipped
    task = tasks[0]
    assert task.id == "PMID_111_STX_1"  # the phenopacket's own id
    assert task.present == ["HP:0001250", "HP:0001263"]
    assert task.excluded == ["HP:0000252"]
    assert (task.sex, task.age_years) == ("FEMALE", 4.5)
    assert (task.answer.gene, task.answer.hgnc) == ("STXBP1", "HGNC:11444")
    assert task.source == {"kind": "phenopacket", "pmid": "PMID:111", "file": str(path)}


def test_nothing_that_names_the_gene_reaches_what_a_ranker_sees(tmp_path, hpo):
    write_json(tmp_path / "STXBP1" / "PMID_111_STX_1.json", phenopacket())
    tasks, _ = convert_sources([tmp_path], hpo)
    data = tasks[0].to_json()
    # the id and the file name the patient's file (and here the gene): for people and joins only
    assert "STX" in data.pop("id") and "STXBP1" in data.pop("source")["file"]
    data.pop("answer")
    text = json.dumps(data)
    for leak in ("STX", "OMIM", "encephalopathy", "c1501", "related disorders"):
        assert leak not in text
    # a ranker, a trainer and an LLM prompt see a Case: terms, sex and age, never the id or the file
    # (and, to evaluate as for a new patient, which paper's curated knowledge to withhold: unset here)
    assert [f.name for f in dataclasses.fields(Case)] == ["present", "excluded", "sex", "age_years",
                                                          "withheld_publication"]
    renamed = dataclasses.replace(tasks[0], id="neutral", source={"kind": "phenopacket", "file": "x.json"})
    assert Case.from_task(renamed) == Case.from_task(tasks[0])
    assert Case.from_task(tasks[0]).withheld_publication is None


def test_a_task_set_split_by_publication_names_no_gene_in_ids_or_files(tmp_path, hpo):
    from data_prep.phenopackets import prepare_phenopackets

    for n, pmid in enumerate((111, 111, 222, 333, 444, 555, 666, 777)):
        write_json(tmp_path / "in" / "STXBP1" / f"PMID_{pmid}_STX_{n}.json",
                   with_pmid(phenopacket(id=f"PMID_{pmid}_STX_{n}"), pmid))
    prepare_phenopackets([tmp_path / "in"], tmp_path / "out", hpo=hpo)
    tasks = read_tasks(tmp_path / "out" / "tasks.jsonl")
    assert [t.id for t in tasks][:3] == ["PMID_111_1", "PMID_111_2", "PMID_222_1"]
    assert [t.source["file"] for t in tasks][:3] == ["in:1", "in:2", "in:3"]
    assert not any("STX" in json.dumps(t.to_json()["source"]) + t.id for t in tasks)
    # a lab's own patients, converted to be ranked, keep their own ids and files
    prepare_phenopackets([tmp_path / "in"], tmp_path / "own", split=False, hpo=hpo)
    assert read_tasks(tmp_path / "own" / "tasks.jsonl")[0].id == "PMID_111_STX_0"


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
    # three files with one phenopacket id: unique by a suffix, in reading order; files name the member
    assert [(t.id, t.pmid, t.source["file"]) for t in tasks] == [
        ("PMID_111_STX_1", "PMID:111", f"{tmp_path / 'p.zip'}!x/a.json"),
        ("PMID_111_STX_1_2", "PMID:5", f"{tmp_path / 'p.zip'}!x/b.json"),
        ("PMID_111_STX_1_3", "PMID:7", f"{tmp_path / 'p.tar.gz'}!c.json")]


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


# ------------------------------------------------------------------------------ as users have them
def test_a_schema_v1_phenopacket_is_read(hpo):
    """v1: ``negated``, ``subject.ageAtCollection``, the gene in the top-level ``genes`` (NCBI id)."""
    tasks, report = convert_sources([FIXTURES / "v1_ncbi_gene.json"], hpo)
    assert not report.skipped
    task = tasks[0]
    assert task.id == "family-7-proband" and task.pmid == "PMID:222"
    assert task.present == ["HP:0001166", "HP:0001083"] and task.excluded == ["HP:0002650"]
    assert (task.sex, task.age_years) == ("MALE", 7.0)
    assert (task.answer.gene, task.answer.hgnc) == ("FBN1", "HGNC:3603")


@pytest.mark.parametrize("gene", [
    {"valueId": "HGNC:3603", "symbol": "FBN1"},
    {"valueId": "HGNC:3603"},  # no symbol
    {"valueId": "ensembl:ENSG00000166147", "symbol": "FBN1"},
    {"valueId": "ENSG00000166147.19"},  # an Ensembl id with its version
    {"valueId": "NCBIGene:2200"},
    {"valueId": "Entrez:2200", "symbol": "FBN1"},
    {"symbol": "MFS1"},  # a previous symbol
    {"valueId": "HGNC:99999999", "symbol": "mfs1"},  # an unknown id, a previous symbol in lower case
    {"valueId": "OMIM:134797", "symbol": "x", "alternateIds": ["NCBIGene:2200"]},
])
def test_a_gene_descriptor_by_any_id_or_symbol_maps_to_the_approved_symbol(tmp_path, hpo, gene):
    packet = phenopacket()
    packet["interpretations"][0]["diagnosis"]["genomicInterpretations"] = [
        {"subjectOrBiosampleId": "STX_1", "interpretationStatus": "CAUSATIVE", "gene": gene}]
    write_json(tmp_path / "a.json", packet)
    tasks, report = convert_sources([tmp_path], hpo)
    assert not report.skipped
    assert (tasks[0].answer.gene, tasks[0].answer.hgnc) == ("FBN1", "HGNC:3603")


def test_a_variant_gene_context_by_ensembl_id_maps_too(hpo):
    tasks, _ = convert_sources([FIXTURES / "v2_gene_descriptor_ensembl.json"], hpo)
    assert (tasks[0].id, tasks[0].answer.gene, tasks[0].answer.hgnc) == ("clinic-0042", "STXBP1", "HGNC:11444")


def test_no_pmid_is_converted_without_a_split_and_skipped_with_one(tmp_path, hpo):
    source = [FIXTURES / "v2_no_pmid.json"]
    tasks, report = convert_sources(source, hpo, require_pmid=False)
    assert [(t.id, t.pmid, t.answer.gene) for t in tasks] == [("clinic-0043", None, "STXBP1")]
    assert tasks[0].source == {"kind": "phenopacket", "file": str(source[0])}
    _, report = convert_sources(source, hpo)
    assert report.skipped[0]["reason"].startswith("no PMID in metaData.externalReferences; cannot split")


def test_an_undiagnosed_patient_is_a_task_without_answer_for_ranking_and_left_out_of_task_sets(tmp_path, hpo):
    source = [FIXTURES / "v2_undiagnosed.json"]
    tasks, report = convert_sources(source, hpo, require_answer=False, require_pmid=False)
    assert [(t.id, t.answer, t.present, t.excluded) for t in tasks] == [
        ("clinic-0044", None, ["HP:0001250", "HP:0001263"], ["HP:0000252"])]
    report = prepare_phenopackets(source, tmp_path / "out", split=False, hpo=hpo)
    assert report["tasks"] == 0 and report["skipped"][0]["reason"] == "no causal gene in the interpretations"


def test_prepare_no_split_converts_in_house_phenopackets_keyed_by_their_ids(tmp_path):
    folder = tmp_path / "clinic"
    shutil.copytree(FIXTURES, folder)
    assert main(["prepare", "phenopackets", str(folder), "--out", str(tmp_path / "out"), "--no-split"]) == 0
    tasks = read_tasks(tmp_path / "out" / "tasks.jsonl")
    # ordered by PMID (none first), then id
    assert [(t.id, t.pmid, t.answer.gene, t.source["file"]) for t in tasks] == [
        ("clinic-0043", None, "STXBP1", str(folder / "v2_no_pmid.json")),
        ("family-7-proband", "PMID:222", "FBN1", str(folder / "v1_ncbi_gene.json")),
        ("clinic-0042", "PMID:333", "STXBP1", str(folder / "v2_gene_descriptor_ensembl.json"))]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["skipped_by_reason"] == {"no causal gene in the interpretations": 1}
    assert report["splits"]["all"]["publications"] == 2  # a task without a PMID is no paper


def test_a_phenopacket_without_an_id_is_named_by_its_file(tmp_path, hpo):
    packet = phenopacket()
    del packet["id"]
    write_json(tmp_path / "patient 7.json", packet)
    tasks, _ = convert_sources([tmp_path], hpo)
    assert tasks[0].id == "patient 7"


# ------------------------------------------------------------------------------ bad files
def _with(path: str, value):
    """The valid phenopacket with the field at ``path`` (keys and list indices, dot-separated) set to ``value``."""
    packet = phenopacket()
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = packet
    for key in parents:
        target = target[key]
    target[last] = value
    return packet


GENE_CONTEXT = "interpretations.0.diagnosis.genomicInterpretations.0.variantInterpretation.variationDescriptor.geneContext"
WRONG_TYPES = [
    ("phenotypicFeatures", "HP:0001250", "phenotypicFeatures is a string, expected a list"),
    ("phenotypicFeatures", {"type": {"id": "HP:0001250"}}, "phenotypicFeatures is an object, expected a list"),
    ("phenotypicFeatures", ["HP:0001250"], "phenotypicFeatures[0] is a string, expected an object"),
    ("phenotypicFeatures", [None], "phenotypicFeatures[0] is null, expected an object"),
    ("phenotypicFeatures.0.type", "HP:0001250", "phenotypicFeatures[0].type is a string, expected an object"),
    ("phenotypicFeatures.0.type.id", 1250, "phenotypicFeatures[0].type.id is a number (1250), expected a string"),
    ("phenotypicFeatures.2.excluded", "false", "phenotypicFeatures[2].excluded is a string, expected true or false"),
    ("phenotypicFeatures.2.negated", 1, "phenotypicFeatures[2].negated is a number (1), expected true or false"),
    ("subject", "STX_1", "subject is a string, expected an object"),
    ("subject", ["STX_1"], "subject is a list, expected an object"),
    ("subject.sex", 1, "subject.sex is a number (1), expected a string"),
    ("subject.timeAtLastEncounter", "P4Y6M", "subject.timeAtLastEncounter is a string, expected an object"),
    ("subject.timeAtLastEncounter.age.iso8601duration", float("nan"),
     "subject.timeAtLastEncounter.age.iso8601duration is NaN, expected a string"),
    ("id", ["PMID_111_STX_1"], "id is a list, expected a string"),
    ("interpretations", {"id": "x"}, "interpretations is an object, expected a list"),
    ("interpretations.0.diagnosis", "DEE4", "interpretations[0].diagnosis is a string, expected an object"),
    ("interpretations.0.diagnosis.genomicInterpretations", "STXBP1",
     "interpretations[0].diagnosis.genomicInterpretations is a string, expected a list"),
    ("interpretations.0.diagnosis.genomicInterpretations.0.interpretationStatus", True,
     "interpretations[0].diagnosis.genomicInterpretations[0].interpretationStatus is true, expected a string"),
    (f"{GENE_CONTEXT}.symbol", 11444, f"{GENE_CONTEXT.replace('.0.', '[0].').replace('s.0', 's[0]')}.symbol is a "
                                      "number (11444), expected a string"),
    (f"{GENE_CONTEXT}.alternateIds", "HGNC:11444", "interpretations[0].diagnosis.genomicInterpretations[0]."
     "variantInterpretation.variationDescriptor.geneContext.alternateIds is a string, expected a list"),
    ("metaData", [], "metaData is a list, expected an object"),
    ("metaData.externalReferences", "PMID:111", "metaData.externalReferences is a string, expected a list"),
    ("metaData.externalReferences.0.id", 111, "metaData.externalReferences[0].id is a number (111), expected a string"),
]


@pytest.mark.parametrize("path, value, reason", WRONG_TYPES, ids=[f"{p}={v!r}" for p, v, _ in WRONG_TYPES])
def test_a_field_of_the_wrong_type_skips_that_file_with_the_field_named(tmp_path, hpo, path, value, reason):
    write_json(tmp_path / "bad.json", _with(path, value))
    write_json(tmp_path / "good.json", with_pmid(phenopacket(id="good"), 5))
    tasks, report = convert_sources([tmp_path], hpo)
    assert [t.id for t in tasks] == ["good"]
    assert report.skipped == [{"file": str(tmp_path / "bad.json"),
                               "reason": f"does not follow the phenopacket schema: {reason}"}]
    assert report.reasons == {"does not follow the phenopacket schema (a field has the wrong JSON type)": 1}
    assert not report.unknown_terms and not report.mapped_terms  # nothing of a skipped file is counted


def test_a_v1_genes_list_of_the_wrong_type_is_named_too(tmp_path, hpo):
    packet = json.loads((FIXTURES / "v1_ncbi_gene.json").read_text())
    packet["genes"] = "FBN1"
    write_json(tmp_path / "v1.json", packet)
    _, report = convert_sources([tmp_path], hpo)
    assert report.skipped[0]["reason"] == "does not follow the phenopacket schema: genes is a string, expected a list"


def _tar(path, members: dict[str, bytes], mode="w:xz"):
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_damaged_archives_links_and_oversized_members_are_reported_and_the_run_goes_on(tmp_path):
    good = tmp_path / "good"
    write_json(good / "a.json", with_pmid(phenopacket(id="folder-a"), 1))
    (good / "broken.json").symlink_to(tmp_path / "nowhere.json")
    (tmp_path / "elsewhere").mkdir()
    (good / "linked-folder").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "corrupt.zip").write_bytes(b"PK\x03\x04 this is not a zip archive")
    (tmp_path / "corrupt.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 not gzip data at all")
    (tmp_path / "corrupt.tar.xz").write_bytes(b"\xfd7zXZ\x00\x00 not xz data")
    # members of incompressible text, so that half the archive holds whole members
    members = {f"p{i:02d}.json": json.dumps(with_pmid(phenopacket(id=f"tar-{i}", description=random.Random(i).randbytes(
        2000).hex()), 10 + i)).encode() for i in range(40)}
    whole = _tar(tmp_path / "whole.tar.xz", members).read_bytes()
    (tmp_path / "cut.tar.xz").write_bytes(whole[: len(whole) // 2])  # a download that stopped half way
    with tarfile.open(tmp_path / "links.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("etc.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(info)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.json", b" " * (MAX_FILE_BYTES + 1))  # 10 MB of blanks deflate to 10 kB
        archive.writestr("ok.json", json.dumps(with_pmid(phenopacket(id="zip-ok"), 99)))
    sources = [good, *(tmp_path / n for n in ("corrupt.zip", "corrupt.tar.gz", "corrupt.tar.xz", "cut.tar.xz",
                                               "links.tar.gz", "bomb.zip"))]
    out = tmp_path / "out"
    assert main(["prepare", "phenopackets", *map(str, sources), "--out", str(out), "--no-split"]) == 0
    ids = [t.id for t in read_tasks(out / "tasks.jsonl")]
    assert "folder-a" in ids and "zip-ok" in ids and "tar-0" in ids  # what comes before the damage is kept
    reasons = {s["file"]: s["reason"] for s in json.loads((out / "report.json").read_text())["skipped"]}
    assert reasons[str(good / "broken.json")] == f"a broken symbolic link (to {tmp_path / 'nowhere.json'})"
    assert reasons[str(good / "linked-folder")].startswith("a symbolic link to a folder")
    assert reasons[str(tmp_path / "corrupt.zip")] == "a damaged archive: File is not a zip file"
    assert reasons[str(tmp_path / "corrupt.tar.gz")].startswith("a damaged archive: ")
    assert reasons[str(tmp_path / "corrupt.tar.xz")].startswith("a damaged archive: ")
    assert reasons[str(tmp_path / "cut.tar.xz")].startswith("a damaged archive after its first ")
    assert reasons[f"{tmp_path / 'links.tar.gz'}!etc.json"] == \
        "a link in the archive (to /etc/passwd); links in archives are not followed"
    assert reasons[f"{tmp_path / 'bomb.zip'}!big.json"] == \
        "10.0 MB, more than the 10 MB a phenopacket may have; not read"
    assert len(ids) + len(reasons) == json.loads((out / "report.json").read_text())["files_read"]


def test_a_source_of_the_wrong_kind_is_refused_before_anything_is_read(tmp_path, capsys):
    write_json(tmp_path / "a.json", phenopacket())
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "out"
    assert main(["prepare", "phenopackets", str(tmp_path / "a.json"), str(tmp_path / "notes.txt"),
                 "--out", str(out)]) == 2
    assert "not a phenopacket source" in capsys.readouterr().err and not out.exists()

"""The gene -> term table built from phenotype.hpoa + genes_to_disease.txt by HPO's rule."""

import math

import numpy as np
import pytest
from conftest import hpoa_row, write_hpo_release

from rare_disease_rft.hpo import HPO
from rare_disease_rft.hpo_release import (build_gene_phenotypes, read_annotations, read_gene_diseases,
                                          read_gene_phenotypes, read_obo, release_files)
from rare_disease_rft.resources import BUNDLED_HPO, BUNDLED_HPO_RELEASES

TALL = [
    hpoa_row("OMIM:1", "HP:0000003", "PMID:10", "3/4"),
    hpoa_row("OMIM:1", "HP:0000003", "PMID:11;OMIM:1", ""),  # a second row: its (empty) frequency wins
    hpoa_row("OMIM:1", "HP:0000010", "PMID:10", "1/2", qualifier="NOT"),  # NOT rows are joined too
    hpoa_row("OMIM:1", "HP:0000005", "OMIM:1"),  # inheritance: in the table, not a phenotype
    hpoa_row("OMIM:2", "HP:0000099", "PMID:20", "HP:0040281"),  # an alternative id of Tall
    hpoa_row("OMIM:3", "HP:0000010", "PMID:30"),  # a disease no gene has
]


def test_builds_one_row_per_gene_term_disease_with_the_last_frequency_and_references(tmp_path):
    folder = write_hpo_release(tmp_path, TALL, [(2200, "FBN1", "OMIM:1"), (4000, "LMNA", "OMIM:1"),
                                            (4000, "LMNA", "OMIM:2"), (17, "ABC", "OMIM:9")])
    files = release_files(folder)
    names = {t["id"]: t["name"] for t in read_obo(files.ontology)["terms"]}
    rows = build_gene_phenotypes(read_gene_diseases(files.gene_diseases), read_annotations(files.annotations), names)
    assert [tuple(r) for r in rows] == [
        # genes in NCBI id order (ABC's disease has no annotation: no row), HPO's columns, then references
        ("2200", "FBN1", "HP:0000003", "Very tall", "-", "OMIM:1", ("PMID:10", "PMID:11", "OMIM:1")),
        ("2200", "FBN1", "HP:0000010", "Short", "1/2", "OMIM:1", ("PMID:10",)),
        ("2200", "FBN1", "HP:0000005", "Mode of inheritance", "-", "OMIM:1", ("OMIM:1",)),
        ("4000", "LMNA", "HP:0000003", "Very tall", "-", "OMIM:1", ("PMID:10", "PMID:11", "OMIM:1")),
        ("4000", "LMNA", "HP:0000010", "Short", "1/2", "OMIM:1", ("PMID:10",)),
        ("4000", "LMNA", "HP:0000005", "Mode of inheritance", "-", "OMIM:1", ("OMIM:1",)),
        ("4000", "LMNA", "HP:0000099", "", "HP:0040281", "OMIM:2", ("PMID:20",)),
    ]


def test_a_built_release_loads_as_a_knowledge_base(tmp_path):
    folder = write_hpo_release(tmp_path, TALL, [(2200, "FBN1", "OMIM:1"), (4000, "LMNA", "OMIM:1"),
                                            (4000, "LMNA", "OMIM:2")])
    kb = HPO.load(folder)
    assert kb.version == "2099-01-01"
    assert kb.gene_symbols == ["FBN1", "LMNA"]
    fbn1 = kb.gene("FBN1")
    assert set(fbn1.terms) == {"HP:0000003", "HP:0000010"}  # the inheritance mode is left out
    assert math.isnan(fbn1.terms["HP:0000003"])  # the last row states no frequency
    assert fbn1.references["HP:0000003"] == ("PMID:10", "PMID:11", "OMIM:1")
    lmna = kb.gene("LMNA")
    assert lmna.terms["HP:0000002"] == pytest.approx(0.895)  # HP:0000099 is Tall's alternative id
    assert lmna.diseases == ("OMIM:1", "OMIM:2")
    assert kb.references("OMIM:2", "HP:0000002") == ("PMID:20",)
    assert kb.disease_names == ["Disease OMIM:1", "Disease OMIM:2"]
    assert kb.cited_pmids == {"PMID:10", "PMID:11", "PMID:20", "PMID:30"}


def test_a_folder_needs_one_of_the_two_gene_tables(tmp_path):
    write_hpo_release(tmp_path, TALL, [])
    (tmp_path / "genes_to_disease.txt").unlink()
    with pytest.raises(FileNotFoundError, match="holds neither genes_to_phenotype.txt nor genes_to_disease.txt"):
        release_files(tmp_path)


# ------------------------------------------------------------------ the bundled release
def test_builder_reproduces_hpos_2025_01_16_genes_to_phenotype_row_for_row():
    files = release_files(BUNDLED_HPO_RELEASES / "2025-01-16")  # the release HPO's own table exists for
    assert files.gene_phenotypes is not None and files.gene_diseases is not None
    official = read_gene_phenotypes(files.gene_phenotypes)
    names = {t["id"]: t["name"] for t in read_obo(files.ontology)["terms"]}
    built = build_gene_phenotypes(read_gene_diseases(files.gene_diseases), read_annotations(files.annotations), names)
    official_rows = {tuple(r[:6]) for r in official}
    built_rows = {tuple(r[:6]) for r in built}
    assert len(official) == len(official_rows) == 316_589
    assert len(built) == len(built_rows) == 316_589
    assert built_rows == official_rows
    # genes come in HPO's order; every row keeps the references of the annotations it joins
    assert list(dict.fromkeys(r.ncbi_gene_id for r in built)) == list(dict.fromkeys(r.ncbi_gene_id for r in official))
    assert all(r.references for r in built)


def test_the_bundled_release_built_from_genes_to_disease_is_the_same_knowledge(tmp_path):
    release = BUNDLED_HPO_RELEASES / "2025-01-16"  # the release that ships HPO's own table too
    files = release_files(release)
    hpo = HPO.load(release)
    for path in (files.ontology, files.annotations, files.gene_diseases):
        (tmp_path / path.name).symlink_to(path)
    built = HPO.load(tmp_path)
    assert hpo.source == str(release)  # the folder holds both tables: HPO's own is used
    assert built.gene_symbols == hpo.gene_symbols and built.gene_hgnc == hpo.gene_hgnc
    for name in ("gene_terms", "gene_closure"):
        a, b = getattr(built, name), getattr(hpo, name)
        assert (a.indptr == b.indptr).all() and (a.indices == b.indices).all()
        assert np.array_equal(a.data, b.data, equal_nan=True)
    assert np.array_equal(built.information_content, hpo.information_content)
    assert np.array_equal(built.gene_frequency, hpo.gene_frequency)
    assert built.cited_pmids == hpo.cited_pmids
    # diseases come in another order (HPO's order within a gene follows no rule): same rows
    assert sorted(built.disease_ids) == sorted(hpo.disease_ids)
    order = np.array([built.disease_index[d] for d in hpo.disease_ids])
    for name in ("disease_terms", "disease_closure"):
        a, b = getattr(built, name)[order], getattr(hpo, name)
        assert (a.indptr == b.indptr).all() and (a.indices == b.indices).all()
        assert np.array_equal(a.data, b.data, equal_nan=True)
    assert (built.gene_diseases[:, order] != hpo.gene_diseases).nnz == 0
    assert [built.disease_names[i] for i in order] == hpo.disease_names


def test_every_command_takes_hpo_dir(tmp_path, monkeypatch, capsys):
    import json

    from rare_disease_rft.cli import build_parser, main

    monkeypatch.setenv("RDRFT_HPO_DIR", str(BUNDLED_HPO))  # --hpo sets it; monkeypatch restores it after the test
    folder = write_hpo_release(tmp_path / "release", TALL, [(2200, "FBN1", "OMIM:1"), (4000, "LMNA", "OMIM:2")])
    assert main(["rank", "--model", "likelihood", "--hpo", str(folder), "--present", "HP:0000099", "--json"]) == 0
    genes = [g["gene"] for g in json.loads(capsys.readouterr().out)["genes"]]
    assert genes == ["LMNA", "FBN1"]  # LMNA's disease is Tall very frequently, FBN1's at an unstated frequency
    assert main(["rank", "--model", "phenomizer", "--hpo", str(tmp_path / "none"), "--present", "HP:0000002"]) == 2
    assert capsys.readouterr().err.strip() == f"rdrft rank: error: HPO folder {tmp_path / 'none'} does not exist"
    for argv in (["prepare", "phenopackets", "--out", "x"], ["concepts", "a", "--jsonl", "b"], ["train", "--config", "c"],
                 ["evaluate", "--model", "m", "--tasks", "t"], ["benchmark", "--models", "m", "--tasks", "t"],
                 ["index", "--tasks", "t", "--out", "o"], ["app"], ["prepare", "texts", "a", "--answers", "b", "--out", "o"]):
        assert build_parser().parse_args(argv + ["--hpo", "DIR"]).hpo == "DIR"


def test_the_bundled_2026_release_builds_the_table_hpo_would_ship():
    files = release_files(BUNDLED_HPO.parent / "2026-06-06")
    assert files.gene_phenotypes is None  # HPO shipped none usable: it is built
    names = {t["id"]: t["name"] for t in read_obo(files.ontology)["terms"]}
    built = build_gene_phenotypes(read_gene_diseases(files.gene_diseases), read_annotations(files.annotations), names)
    # the counts measured when the release was collected (its README)
    assert len(built) == len({tuple(r[:6]) for r in built}) == 331_338
    assert len({r.ncbi_gene_id for r in built}) == 5_271
    assert len({(r.ncbi_gene_id, r.disease_id) for r in built}) == 12_651

import math

import numpy as np
import pytest

from rare_disease_rft.hpo import HPO, HPOError, normalise_id, parse_frequency


def test_release_and_sizes(hpo):
    assert hpo.version == "2026-06-06"  # the bundled default (rare_disease_rft/data/hpo/)
    assert 19_500 < len(hpo) < 20_500
    assert 5_200 < len(hpo.gene_symbols) < 5_300


def test_term_by_id_and_label(hpo):
    term = hpo.term("HP:0001250")
    assert term.name == "Seizure"
    assert term.parents == ("HP:0012638",)
    assert hpo.term("hp_0001250").id == "HP:0001250"


def test_alternative_id_maps_to_current_term(hpo):
    res = hpo.resolve("HP:0004715")
    assert res.id == "HP:0000003"
    assert "alternative id" in res.note
    assert hpo.term("HP:0004715").id == "HP:0000003"


def test_obsolete_id_maps_to_replacement_and_is_reported(hpo):
    resolved = hpo.resolve_all(["HP:0000057", "HP:0001250", "HP:0000057"])
    assert resolved.ids == ["HP:0008665", "HP:0001250"]
    assert resolved.replaced == {"HP:0000057": "HP:0008665"}
    assert any("obsolete" in n and "HP:0008665" in n for n in resolved.notes)


def test_unknown_obsolete_and_malformed_ids_give_specific_errors(hpo):
    with pytest.raises(HPOError, match="no replacement"):
        hpo.term("HP:0000535")
    with pytest.raises(HPOError, match="HP:9999999 is not a term of HPO release 2026-06-06"):
        hpo.term("HP:9999999")
    with pytest.raises(HPOError, match="not an HPO id"):
        normalise_id("seizure")
    assert list(hpo.resolve_all(["HP:9999999"]).unknown) == ["HP:9999999"]


def test_search_by_label_synonym_and_id(hpo):
    assert hpo.search("seizure")[0][0].id == "HP:0001250"
    # "Epileptic seizure" is a synonym of Seizure
    assert "HP:0001250" in [t.id for t, _ in hpo.search("epileptic seiz", limit=20)]
    assert hpo.search("HP:0004715")[0][0].id == "HP:0000003"
    assert hpo.search("   ") == []


def test_ancestors_and_information_content(hpo):
    anc = hpo.ancestors("HP:0002373")  # Febrile seizure
    assert {"HP:0001250", "HP:0000118", "HP:0000001", "HP:0002373"} <= anc
    assert hpo.is_a("HP:0002373", "HP:0001250") and not hpo.is_a("HP:0001250", "HP:0002373")
    # information content never falls from parent to child
    assert hpo.ic("HP:0002373") >= hpo.ic("HP:0001250") >= hpo.ic("HP:0000118") == pytest.approx(0.0, abs=1e-6)


def test_gene_annotations(hpo):
    scn1a = hpo.gene("SCN1A")
    assert scn1a.hgnc_id == "HGNC:10585"
    assert "HP:0002373" in scn1a.terms  # febrile seizures
    assert any(d.startswith("OMIM:") for d in scn1a.diseases)
    # previous symbols find the gene under its approved name
    assert hpo.gene("GBA").symbol == "GBA1"
    # the closure gives every ancestor of an annotated term a frequency
    g, t = hpo.gene_index["SCN1A"], hpo.index["HP:0001250"]
    assert hpo.gene_closure[g, t] > 0.5
    with pytest.raises(KeyError, match="no HPO annotation"):
        hpo.gene("NOTAGENE1")


@pytest.mark.parametrize("text, value", [("HP:0040281", 0.895), ("3/4", 0.75), ("25%", 0.25), ("-", math.nan), ("", math.nan)])
def test_parse_frequency(text, value):
    got = parse_frequency(text)
    assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value)


def _write_small_release(folder):
    """Five terms (one alternative id, one obsolete), two genes, one disease with a name."""
    (folder / "hp.obo").write_text(
        "format-version: 1.2\ndata-version: hp/releases/2099-01-01\n\n"
        "[Term]\nid: HP:0000001\nname: All\n\n"
        "[Term]\nid: HP:0000118\nname: Phenotypic abnormality\nis_a: HP:0000001 ! All\n\n"
        "[Term]\nid: HP:0000002\nname: Tall\nalt_id: HP:0000099\nsynonym: \"Long\" EXACT layperson []\nis_a: HP:0000118\n\n"
        "[Term]\nid: HP:0000003\nname: Very tall\nis_a: HP:0000002\n\n"
        "[Term]\nid: HP:0000004\nname: Old tall\nis_obsolete: true\nreplaced_by: HP:0000003\n"
    )
    (folder / "genes_to_phenotype.txt").write_text(
        "ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\n"
        "2200\tFBN1\tHP:0000003\tVery tall\t3/4\tOMIM:154700\n"
        "4000\tLMNA\tHP:0000002\tTall\t-\tOMIM:1\n"
    )
    (folder / "phenotype.hpoa").write_text("#description\nOMIM:154700\tMarfan syndrome\t\tHP:0000003\n")


def test_loads_a_release_folder_a_user_names(tmp_path):
    _write_small_release(tmp_path)
    kb = HPO.load(tmp_path)
    assert kb.version == "2099-01-01"
    assert kb.term("HP:0000099").id == "HP:0000002"
    assert kb.term("HP:0000004").id == "HP:0000003"
    assert kb.search("long")[0][0].id == "HP:0000002"
    assert kb.gene("FBN1").terms == {"HP:0000003": 0.75}
    assert kb.gene_closure[kb.gene_index["FBN1"], kb.index["HP:0000002"]] == pytest.approx(0.75)
    assert kb.ic("HP:0000003") > kb.ic("HP:0000002")
    assert kb.disease_names == ["Marfan syndrome", "OMIM:1"]


def test_a_release_read_from_its_cache_is_the_release_built(tmp_path, monkeypatch):
    """The second load reads the cache the first wrote (one .npy per array, no pickle): the same
    matrices, tables and search results."""
    monkeypatch.setenv("RDRFT_CACHE", str(tmp_path / "cache"))
    release = tmp_path / "release"
    release.mkdir()
    _write_small_release(release)
    built = HPO.load(release)
    (entry,) = (tmp_path / "cache" / "hpo").iterdir()
    assert (entry / "meta.json").is_file() and (entry / "gene_closure_data.npy").is_file()
    read = HPO.load(release)
    for name in ("parents", "ancestor_matrix", "gene_terms", "gene_closure", "gene_diseases", "disease_terms",
                 "disease_closure", "gene_closure_by_term", "disease_closure_by_term"):
        a, b = getattr(built, name), getattr(read, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert (a.indptr.tolist(), a.indices.tolist()) == (b.indptr.tolist(), b.indices.tolist())
        assert np.array_equal(a.data, b.data, equal_nan=a.dtype.kind == "f"), name
    assert read.gene_closure_by_term.format == "csc" and (read.gene_closure_by_term != read.gene_closure).nnz == 0
    assert (read.disease_closure_by_term != read.disease_closure).nnz == 0
    assert np.array_equal(built.information_content, read.information_content)
    assert (built.ids, built.names, built.synonyms, built.gene_symbols) == (read.ids, read.names, read.synonyms,
                                                                             read.gene_symbols)
    assert math.isnan(read.gene("LMNA").terms["HP:0000002"])  # an unstated frequency stays NaN
    assert read.search("long") == built.search("long") and read.search("long")[0][0].id == "HP:0000002"
    assert read.references("OMIM:154700", "HP:0000003") == built.references("OMIM:154700", "HP:0000003")

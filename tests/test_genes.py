import pytest

from rare_disease_rft.genes import gene_names


def test_previous_symbols_and_aliases_map_to_approved():
    names = gene_names()
    assert names.approved("MLL2") == "KMT2D"
    assert names.approved("mll2") == "KMT2D"
    assert names.approved("KIAA1109") == "BLTP1"
    assert names.approved("kmt2d") == "KMT2D"
    assert names.approved("NOTAREALGENE") is None
    assert names.normalise("notarealgene") == "NOTAREALGENE"
    assert names.get("GBA").hgnc_id == "HGNC:4177"
    assert names.by_entrez("2200").symbol == "FBN1"
    assert names.by_hgnc("HGNC:3603").symbol == "FBN1"
    assert names.by_hgnc("HGNC:0") is None


def test_ensembl_gene_ids_map_to_approved():
    names = gene_names()
    assert names.lookup("ENSG00000144285").symbol == "SCN1A"
    assert names.lookup("ENSG00000167548.17").symbol == "KMT2D"  # versioned, as VEP writes them
    assert names.lookup("ENSG00000000000") is None


@pytest.mark.parametrize("identifier", ["FBN1", "fbn1", "MFS1", "HGNC:3603", "hgnc:3603", "ENSG00000166147",
                                        "ensembl:ENSG00000166147.19", "NCBIGene:2200", "Entrez:2200"])
def test_lookup_finds_a_gene_by_any_symbol_or_id(identifier):
    assert gene_names().lookup(identifier).symbol == "FBN1"


@pytest.mark.parametrize("identifier", ["", None, "HGNC:", "HGNC:0", "NCBIGene:fbn1", "ENSG1", "OMIM:134797"])
def test_lookup_of_an_unknown_id_is_none(identifier):
    assert gene_names().lookup(identifier) is None

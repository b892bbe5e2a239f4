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

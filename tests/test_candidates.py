import math
from pathlib import Path

import numpy as np
import pysam
import pytest

from rare_disease_rft.inputs.candidates import (
    NOT_IN_KNOWLEDGE_BASE,
    CandidateError,
    read_gene_list,
    read_vcf,
    restrict_ranking,
)
from rare_disease_rft.rankers import Case, Ranking
from rare_disease_rft.rankers.knowledge import PhenomizerRanker

FIXTURES = Path(__file__).parent / "fixtures" / "vcf"
VEP, SNPEFF = FIXTURES / "vep.vcf", FIXTURES / "snpeff.vcf"
VEP_GENES = ["SLC2A1", "SCN1A", "SCN1A-AS1", "STXBP1", "KMT2D", "AC125611.3", "CDKL5"]
# seizures, global developmental delay, hypotonia, EEG abnormality: an epileptic encephalopathy
EPILEPTIC_ENCEPHALOPATHY = ("HP:0001250", "HP:0001263", "HP:0001252", "HP:0002353")


def edited(tmp_path, source, old, new, name="edited.vcf"):
    text = source.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


# ------------------------------------------------------------------ gene lists
def test_comma_separated_symbols_map_through_hgnc_and_unknown_ones_are_kept():
    genes = read_gene_list("SCN1A, stxbp1,MLL2,NOTAGENE1,scn1a")
    assert genes.symbols() == ["SCN1A", "STXBP1", "KMT2D", "NOTAGENE1"]
    assert genes.get("KMT2D").given == ["MLL2"] and genes.get("KMT2D").hgnc_id == "HGNC:7133"
    assert genes.get("NOTAGENE1").hgnc_id is None
    assert any(n.startswith("MLL2 -> KMT2D") for n in genes.notes)
    assert any(n.startswith("NOTAGENE1 is not an HGNC symbol") for n in genes.notes)


def test_a_gene_file_with_comments_aliases_and_ids(tmp_path):
    path = tmp_path / "panel.txt"
    path.write_text("# epilepsy panel, v3\nSCN1A\n\nGLUT1   # alias\nSLC2A1\nHGNC:11444\nENSG00000008086\n"
                    "KCNQ2, KCNT1\n")
    genes = read_gene_list(str(path))
    assert genes.symbols() == ["SCN1A", "SLC2A1", "STXBP1", "CDKL5", "KCNQ2", "KCNT1"]
    assert genes.get("SLC2A1").given == ["GLUT1", "SLC2A1"]
    assert genes.source == str(path)


@pytest.mark.parametrize("text", ["Gene,Score\nSCN1A,0.9\nSTXBP1,0.4\n", "score\tsymbol\n0.9\tSCN1A\n0.4\tSTXBP1\n"])
def test_a_table_with_a_gene_column(tmp_path, text):
    path = tmp_path / "genes.csv"
    path.write_text(text)
    assert read_gene_list(str(path)).symbols() == ["SCN1A", "STXBP1"]


@pytest.mark.parametrize("spec, message", [
    ("", "names no gene"),
    (" , ,", "names no gene"),
    ("SCN1A,HP:0001250", "HP:0001250 is an HPO term, not a gene"),
    ("SCN1A,(STXBP1)", "'(STXBP1)' is not a gene symbol"),
    ("panels/epilepsy.txt", "gene list file panels/epilepsy.txt does not exist"),
])
def test_bad_gene_lists_say_what_is_wrong(spec, message):
    with pytest.raises(CandidateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_gene_list(spec)


def test_a_bad_token_in_a_file_names_its_line(tmp_path):
    path = tmp_path / "panel.txt"
    path.write_text("# comment\nSCN1A\nSTX*BP1\n")
    with pytest.raises(CandidateError, match=r"panel.txt, line 3: 'STX\*BP1' is not a gene symbol"):
        read_gene_list(str(path))
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    with pytest.raises(CandidateError, match="empty.txt names no gene"):
        read_gene_list(str(tmp_path / "empty.txt"))


# ------------------------------------------------------------------ VCF
def test_vep_vcf_genes_variants_and_genotypes():
    genes = read_vcf(VEP)
    # ADGRG1 (genotype 0/0) and the intergenic record name no candidate
    assert genes.symbols() == VEP_GENES
    kmt2d = genes.get("KMT2D")  # multi-allelic, genotype 1/2: both alleles, each with its consequence
    assert [(v.alt, v.consequence, v.impact, v.genotype) for v in kmt2d.variants] == [
        ("A", "stop_gained", "HIGH", "1/2"), ("T", "missense_variant", "MODERATE", "1/2")]
    stxbp1 = genes.get("STXBP1").variants[0]  # a deletion, whose CSQ allele is "-"
    assert (stxbp1.chrom, stxbp1.pos, stxbp1.ref, stxbp1.alt, stxbp1.consequence) == (
        "chr9", 127668133, "AG", "A", "frameshift_variant")
    assert stxbp1.describe() == ("chr9:127668133 AG>A, frameshift_variant (HIGH), ENST00000373302.8:c.875del, "
                                 "ENSP00000362399.3:p.Arg292LysfsTer9, genotype 0/1")
    assert genes.get("SLC2A1").given == ["GLUT1"]
    cdkl5 = genes.get("CDKL5")  # no SYMBOL: named by its Ensembl id; haploid call, LowQual
    assert cdkl5.given == ["ENSG00000008086"] and cdkl5.variants[0].genotype == "1"
    assert cdkl5.variants[0].filter == "LowQual" and "FILTER LowQual" in cdkl5.variants[0].describe()
    assert genes.get("AC125611.3").hgnc_id is None
    notes = "\n".join(genes.notes)
    assert "8 records annotated by VEP (CSQ); 7 candidate genes" in notes
    assert "1 alternate allele that PROBAND does not carry left out" in notes
    assert "1 record in no gene (intergenic)" in notes
    assert "AC125611.3 is not an HGNC symbol" in notes and "GLUT1 -> SLC2A1" in notes


def test_bgzipped_vcf_reads_the_same(tmp_path):
    packed = tmp_path / "vep.vcf.gz"
    pysam.tabix_compress(str(VEP), str(packed))
    genes = read_vcf(packed)
    assert genes.symbols() == VEP_GENES
    assert genes.get("KMT2D").variants == read_vcf(VEP).get("KMT2D").variants


def test_snpeff_vcf_without_samples():
    genes = read_vcf(SNPEFF)
    # the intergenic_region's Gene_Name "ASGR2-DLG4" names the flanking genes: no candidate
    assert genes.symbols() == ["SCN1A", "STXBP1", "KMT2D"]
    kmt2d = genes.get("KMT2D")
    assert kmt2d.given == ["MLL2"]
    assert [(v.alt, v.impact, v.genotype) for v in kmt2d.variants] == [("CA", "HIGH", None), ("CT", "HIGH", None)]
    assert genes.get("STXBP1").variants[0].hgvs_p == "p.Arg292*"


def test_min_impact_leaves_out_modifier_annotations():
    genes = read_vcf(VEP, min_impact="moderate")
    assert genes.symbols() == ["SLC2A1", "SCN1A", "STXBP1", "KMT2D", "CDKL5"]
    assert any("2 variants whose annotations in a gene are all below MODERATE impact" in n for n in genes.notes)
    with pytest.raises(CandidateError, match="min_impact 'severe' is not one of HIGH"):
        read_vcf(VEP, min_impact="severe")


def test_the_sample_whose_genotypes_count(tmp_path):
    lines = VEP.read_text().splitlines()
    trio = []
    for line in lines:
        if line.startswith("#CHROM"):
            line += "\tMOTHER"
        elif not line.startswith("#"):
            # the mother carries only the SCN1A variant
            line += "\t0/1:30" if "\t166011003\t" in line else "\t0/0:30"
        trio.append(line)
    path = tmp_path / "trio.vcf"
    path.write_text("\n".join(trio) + "\n")
    proband = read_vcf(path)
    assert proband.symbols() == VEP_GENES
    assert any("holds 2 samples (PROBAND, MOTHER); the genotypes used are those of the first, PROBAND" in n
               for n in proband.notes)
    assert read_vcf(path, sample="MOTHER").symbols() == ["SCN1A", "SCN1A-AS1"]
    with pytest.raises(CandidateError, match=r"no sample 'FATHER' in the VCF \(its samples: PROBAND, MOTHER\)"):
        read_vcf(path, sample="FATHER")


def test_vcf_errors_are_one_specific_line(tmp_path):
    no_csq = tmp_path / "plain.vcf"
    no_csq.write_text("".join(line + "\n" for line in VEP.read_text().splitlines() if "ID=CSQ" not in line))
    with pytest.raises(CandidateError, match="declares no CSQ \\(VEP\\) or ANN \\(snpEff\\) annotation"):
        read_vcf(no_csq)
    bad_pos = edited(tmp_path, VEP, "chr9\t127668133\t", "chr9\t127668133x\t")
    with pytest.raises(CandidateError, match=r"edited.vcf, line 21: not a valid VCF record: POS '127668133x'"):
        read_vcf(bad_pos)
    short = edited(tmp_path, VEP, "chr16\t57653120\t.\tC\tG\t", "chr16\t57653120\t", name="short.vcf")
    with pytest.raises(CandidateError, match=r"short.vcf, line 24: not a valid VCF record: \d tab-separated columns"):
        read_vcf(short)
    other_format = edited(tmp_path, VEP, "Format: Allele|Consequence|IMPACT|SYMBOL|Gene|",
                          "Format: Allele|Consequence|IMPACT|Name|Id|", name="other.vcf")
    with pytest.raises(CandidateError, match="does not list the VEP fields Allele and SYMBOL or Gene"):
        read_vcf(other_format)
    not_vcf = tmp_path / "patient.json"
    not_vcf.write_text('{"id": "P1"}')
    with pytest.raises(CandidateError, match="patient.json: not a VCF file that can be read"):
        read_vcf(not_vcf)
    with pytest.raises(CandidateError, match="VCF file .*missing.vcf does not exist"):
        read_vcf(tmp_path / "missing.vcf")


def test_a_vcf_whose_sample_carries_nothing_in_a_gene(tmp_path):
    lines = [line if line.startswith("#") else line.rsplit("\t", 1)[0] + "\t0/0:30"
             for line in VEP.read_text().splitlines()]
    path = tmp_path / "refcalls.vcf"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CandidateError, match="no variant of PROBAND falls in an annotated gene"):
        read_vcf(path)


# ------------------------------------------------------------------ the ranking restricted to candidates
@pytest.fixture(scope="module")
def full_ranking(hpo):
    return PhenomizerRanker(hpo).rank(Case(EPILEPTIC_ENCEPHALOPATHY))


def test_restricted_ranking_keeps_the_rankers_order_and_lists_unknown_candidates_last(full_ranking):
    candidates = read_vcf(VEP)
    restricted = restrict_ranking(full_ranking, candidates)
    position = {g: i for i, g in enumerate(full_ranking.genes)}
    known = [g for g in candidates.symbols() if g in position]
    assert {"SCN1A", "STXBP1", "KMT2D", "SLC2A1", "CDKL5"} <= set(known)
    assert restricted.genes[: len(known)] == sorted(known, key=position.get)
    assert restricted.genes[len(known):] == ["SCN1A-AS1", "AC125611.3"]  # no HPO annotation: last, in VCF order
    assert restricted.extra["unranked"] == {"SCN1A-AS1": NOT_IN_KNOWLEDGE_BASE, "AC125611.3": NOT_IN_KNOWLEDGE_BASE}
    expected = [full_ranking.scores[position[g]] for g in restricted.genes[: len(known)]]
    assert np.allclose(restricted.scores[: len(known)], expected)
    assert all(math.isnan(s) for s in restricted.scores[len(known):])
    assert restricted.probabilities is None
    assert len(full_ranking.genes) > 4000  # the full ranking is untouched
    assert "unranked" not in full_ranking.extra


def test_restricted_ranking_takes_symbols_and_keeps_probabilities(full_ranking):
    shifted = full_ranking.scores - full_ranking.scores.max()
    probabilities = np.exp(shifted) / np.exp(shifted).sum()
    with_p = Ranking(full_ranking.genes, full_ranking.scores, probabilities)
    restricted = restrict_ranking(with_p, ["STXBP1", "NOTAGENE1", "SCN1A"])
    order = sorted(["STXBP1", "SCN1A"], key=full_ranking.genes.index)
    assert restricted.genes == order + ["NOTAGENE1"]
    assert restricted.probabilities[:2] == pytest.approx([probabilities[full_ranking.genes.index(g)] for g in order])
    assert math.isnan(restricted.probabilities[2])
    assert restricted.extra["unranked"] == {"NOTAGENE1": NOT_IN_KNOWLEDGE_BASE}

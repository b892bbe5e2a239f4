"""`rdrft knowledge update`: new HPO release files checked, written as a release folder, compared."""

import gzip
import hashlib
import lzma

import pytest
from conftest import hpoa_row, write_hpo_release

from rare_disease_rft.cli import main
from rare_disease_rft.resources import BUNDLED_HPO

ROWS = [hpoa_row("OMIM:1", "HP:0000003", "PMID:10", "3/4"), hpoa_row("OMIM:2", "HP:0000010", "PMID:20"),
        hpoa_row("OMIM:3", "HP:0000002", "OMIM:3")]
GENES = [(2200, "FBN1", "OMIM:1"), (4000, "LMNA", "OMIM:2")]
NEW_TERM = "\n[Term]\nid: HP:0000011\nname: Very short\nis_a: HP:0000010\n"
HEADER = '"HPO annotations for rare diseases [3: OMIM; 0: DECIPHER; 0 ORPHANET]"'


@pytest.fixture
def current(tmp_path, monkeypatch):
    """The release in use (by --hpo): 2099-01-01 with FBN1 and LMNA."""
    monkeypatch.setenv("RDRFT_HPO_DIR", str(BUNDLED_HPO))  # --hpo sets it; restored after the test
    return write_hpo_release(tmp_path / "current", ROWS, GENES)


def update(capsys, *argv):
    code = main(["knowledge", "update", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_a_newer_release_is_written_compressed_with_a_readme_and_what_changed(tmp_path, current, capsys):
    source = write_hpo_release(tmp_path / "new", ROWS + [hpoa_row("OMIM:4", "HP:0000011", "PMID:40", "1/2")],
                               GENES[1:] + [(7000, "TP53", "OMIM:4")], version="2100-01-01", description=HEADER,
                               more_terms=NEW_TERM)
    (source / "genes_to_disease.txt").write_bytes(gzip.compress((source / "genes_to_disease.txt").read_bytes()))
    (source / "genes_to_disease.txt").rename(source / "genes_to_disease.txt.gz")
    into = tmp_path / "releases" / "2100"
    code, out, err = update(capsys, source, "--into", into, "--hpo", current)
    assert code == 0, err
    assert sorted(p.name for p in into.iterdir()) == ["README.md", "genes_to_disease.txt.xz", "hp.obo.xz",
                                                      "phenotype.hpoa.xz"]
    assert lzma.decompress((into / "hp.obo.xz").read_bytes()) == (source / "hp.obo").read_bytes()
    assert lzma.decompress((into / "genes_to_disease.txt.xz").read_bytes()).startswith(b"ncbi_gene_id\tgene_symbol")
    readme = (into / "README.md").read_text()
    assert "# Human Phenotype Ontology release 2100-01-01" in readme and "https://hpo.jax.org/app/license" in readme
    text_sha = hashlib.sha256(gzip.decompress((source / "genes_to_disease.txt.gz").read_bytes())).hexdigest()
    assert f"| `genes_to_disease.txt.xz` | `{source / 'genes_to_disease.txt.gz'}` | `{text_sha}` |" in readme
    lines = out.splitlines()
    assert lines[0] == f"wrote HPO release 2100-01-01 to {into}"
    assert lines[1] == "HPO 2099-01-01 -> 2100-01-01"
    assert lines[2].split() == ["terms", "6", "->", "7", "+1", "new,", "-0", "obsoleted"]
    assert lines[3].split() == ["annotated", "genes", "2", "->", "2", "+1", "new,", "-1", "removed"]
    assert lines[4].split() == ["diseases", "with", "a", "gene", "2", "->", "2", "+1", "new,", "-1", "removed"]
    assert "new genes: TP53" in out and "genes no longer annotated: FBN1" in out and "new terms: HP:0000011" in out
    assert f"--hpo {into}" in out
    assert [line for line in err if "error" in line] == []


@pytest.mark.parametrize("damage, message", [
    (lambda s: (s / "phenotype.hpoa").write_text(""), "error: phenotype.hpoa: {source}/phenotype.hpoa is empty (0 bytes)"),
    (lambda s: (s / "genes_to_disease.txt").write_text("ncbi_gene_id\tgene_symbol\tassociation_type\tdisease_id\tsource\n"),
     "error: genes_to_disease.txt: has a header but no data line (an empty release file); download it again"),
    (lambda s: (s / "phenotype.hpoa").write_text((s / "phenotype.hpoa").read_text() + "OMIM:9\tX\t\tHP:0000002\n"),
     "error: phenotype.hpoa: 1 lines have other than 12 tab-separated columns (first: line 7, 4 columns)"),
    (lambda s: (s / "phenotype.hpoa").write_text((s / "phenotype.hpoa").read_text().replace("[3: OMIM", "[300: OMIM")),
     "error: phenotype.hpoa: 3 OMIM diseases, but its header states 300: a cut-off file? download it again"),
    (lambda s: (s / "hp.obo").write_text((s / "hp.obo").read_text().replace("2100-01-01", "2098-01-01")),
     "error: hp.obo: release 2098-01-01 is older than the current 2099-01-01 (pass --allow-older to write it anyway)"),
    (lambda s: (s / "hp.obo").unlink(), "error: hp.obo: missing from {source} (nor hp.obo.xz or hp.obo.gz)"),
    (lambda s: ((s / "hp.obo.xz").write_bytes(lzma.compress((s / "hp.obo").read_bytes())[:-40]), (s / "hp.obo").unlink()),
     "error: hp.obo: {source}/hp.obo.xz cannot be read to its end"),
])
def test_a_bad_file_is_one_specific_error_and_nothing_is_written(tmp_path, current, capsys, damage, message):
    source = write_hpo_release(tmp_path / "new", ROWS, GENES, version="2100-01-01", description=HEADER)
    damage(source)
    into = tmp_path / "out"
    code, out, err = update(capsys, source, "--into", into, "--hpo", current)
    assert code == 2
    expected = "rdrft knowledge update: " + message.format(source=source)
    assert [line for line in err if line.startswith(expected)], err
    assert err[-1].endswith("nothing was written") and not into.exists() and out == ""


def test_problems_that_leave_the_rest_usable_are_warnings(tmp_path, current, capsys):
    source = write_hpo_release(tmp_path / "new", ROWS + [hpoa_row("OMIM:2", "HP:0999999", "PMID:20")],
                               GENES + [(999999999, "NOTAGENE9", "OMIM:2")], version="2100-01-01")
    code, _, err = update(capsys, source, "--into", tmp_path / "out", "--hpo", current)
    assert code == 0
    prefix = "rdrft knowledge update: warning: "
    assert prefix + ("phenotype.hpoa: 1 terms hp.obo does not know (HP:0999999; first at line 7); their annotations "
                     "are left out") in err
    assert prefix + ("genes_to_disease.txt: 1 genes the bundled HGNC nomenclature does not know (NOTAGENE9; first "
                     "at line 4); kept under the release's symbols") in err
    assert prefix + "phenotype.hpoa: has no '#description' header with disease counts to check against" in err


def test_an_existing_folder_is_replaced_only_when_asked(tmp_path, current, capsys):
    source = write_hpo_release(tmp_path / "new", ROWS, GENES, version="2100-01-01")
    into = tmp_path / "out"
    into.mkdir()
    (into / "mine.txt").write_text("kept")
    code, _, err = update(capsys, source, "--into", into, "--hpo", current)
    assert (code, err) == (2, [f"rdrft knowledge: error: {into} is there already; pass --force to replace it, "
                               "or choose another --into"])
    assert (into / "mine.txt").read_text() == "kept"
    code, _, err = update(capsys, source, "--into", BUNDLED_HPO, "--hpo", current)
    assert code == 2 and f"{BUNDLED_HPO} is a bundled release; pass --force" in err[0]
    assert update(capsys, source, "--into", into, "--hpo", current, "--force")[0] == 0
    assert sorted(p.name for p in into.iterdir()) == ["README.md", "genes_to_disease.txt.xz", "hp.obo.xz",
                                                      "phenotype.hpoa.xz"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary folder left

"""The files of an HPO release, and the gene -> term table HPO builds from them.

A release folder holds ``hp.obo`` (the ontology), ``phenotype.hpoa`` (disease -> term
annotations, each row with the references it was curated from) and either HPO's own
``genes_to_phenotype.txt`` or ``genes_to_disease.txt``, from which :func:`build_gene_phenotypes`
derives the same table by HPO's rule: every (gene, disease) row of ``genes_to_disease.txt``,
whatever its association type, joined with every ``phenotype.hpoa`` row of that disease
(NOT-qualified rows included), one row per (gene, term, disease) with the frequency of the last
such row (``-`` when empty) and the term's label from ``hp.obo``. On the 2025-01-16 files this
gives HPO's official ``genes_to_phenotype.txt`` row for row (``tests/test_hpo_release.py``);
HPO stopped shipping a usable one in 2026 (an empty ``phenotype_to_genes.txt``, issue #11613).

Each file may be plain or compressed (``.xz``, ``.gz``). Every file is read as a table of
tab-separated lines; :func:`table_lines` is the one reader, which the validation of new
release files (:mod:`rare_disease_rft.hpo_update`) shares.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from .resources import find_text_file, open_text

ONTOLOGY = "hp.obo"
ANNOTATIONS = "phenotype.hpoa"
GENE_PHENOTYPES = "genes_to_phenotype.txt"
GENE_DISEASES = "genes_to_disease.txt"
#: the columns of each table file, as HPO writes them in its header line
ANNOTATION_COLUMNS = ("database_id", "disease_name", "qualifier", "hpo_id", "reference", "evidence", "onset",
                      "frequency", "sex", "modifier", "aspect", "biocuration")
GENE_PHENOTYPE_COLUMNS = ("ncbi_gene_id", "gene_symbol", "hpo_id", "hpo_name", "frequency", "disease_id")
GENE_DISEASE_COLUMNS = ("ncbi_gene_id", "gene_symbol", "association_type", "disease_id", "source")


@dataclass(frozen=True)
class ReleaseFiles:
    """The files of one release folder; exactly one of the two gene tables is used."""

    folder: Path
    ontology: Path
    annotations: Path
    gene_phenotypes: Path | None  # HPO's own table: used when the folder has it
    gene_diseases: Path | None  # otherwise the table is built from this one

    @property
    def used(self) -> list[Path]:
        """The files a knowledge base is built from (what its cache is keyed by)."""
        return [self.ontology, self.gene_phenotypes or self.gene_diseases, self.annotations]


def _find(folder: Path, name: str) -> Path | None:
    try:
        return find_text_file(folder, name)
    except FileNotFoundError:
        return None


def release_files(folder: str | Path) -> ReleaseFiles:
    """The release files in ``folder``; a clear :class:`FileNotFoundError` for what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"HPO folder {folder} does not exist")
    gene_phenotypes, gene_diseases = _find(folder, GENE_PHENOTYPES), _find(folder, GENE_DISEASES)
    if gene_phenotypes is None and gene_diseases is None:
        raise FileNotFoundError(f"{folder} holds neither {GENE_PHENOTYPES} nor {GENE_DISEASES} (plain, .xz or .gz); "
                                "an HPO release folder needs one of them")
    return ReleaseFiles(folder, find_text_file(folder, ONTOLOGY), find_text_file(folder, ANNOTATIONS),
                        gene_phenotypes, gene_diseases)


# ------------------------------------------------------------------------ the ontology
def read_obo(path: Path) -> dict:
    """``{"version": ..., "terms": [...]}``: every HP term stanza of an OBO file, obsolete ones
    included, with its name, EXACT and RELATED synonyms, ``is_a`` parents, alternative ids,
    ``replaced_by`` and ``consider``."""
    terms: list[dict] = []
    version = "unknown"
    current: dict | None = None
    with open_text(path) as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.startswith("["):
                current = {"id": None, "name": "", "synonyms": [], "is_a": [], "alt": [], "obsolete": False,
                           "replaced_by": None, "consider": []} if line == "[Term]" else None
                if current is not None:
                    terms.append(current)
                continue
            if current is None:
                if line.startswith("data-version:"):
                    version = line.split(":", 1)[1].strip().replace("hp/releases/", "")
                continue
            tag, _, value = line.partition(": ")
            if tag == "id":
                current["id"] = value
            elif tag == "name":
                current["name"] = value
            elif tag == "synonym":
                text = value[1 : value.index('"', 1)]
                scope = value[value.index('"', 1) + 2 :].split(" ")[0]
                if scope in ("EXACT", "RELATED") and text != current["name"]:
                    current["synonyms"].append(text)
            elif tag == "is_a":
                current["is_a"].append(value.split(" ")[0])
            elif tag == "alt_id":
                current["alt"].append(value)
            elif tag == "is_obsolete":
                current["obsolete"] = value.strip() == "true"
            elif tag == "replaced_by":
                current["replaced_by"] = value.strip()
            elif tag == "consider":
                current["consider"].append(value.strip())
    return {"version": version, "terms": [t for t in terms if t["id"] and t["id"].startswith("HP:")]}


# ------------------------------------------------------------------------ the tables
def table_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every line of a tab-separated HPO table, the header included,
    ``#`` comment lines and blank lines skipped."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if line and not line.startswith("#"):
                yield number, line.split("\t")


def _records(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """The data lines of a table, each padded (or cut) to ``columns`` in that order; the file's
    header line names the columns (a file without one is read in HPO's order)."""
    lines = table_lines(path)
    first = next(lines, None)
    if first is None:
        return
    if columns[0] in first[1]:
        position = {name: i for i, name in enumerate(first[1])}
        order = [position.get(name) for name in columns]
    else:
        order = list(range(len(columns)))
        lines = iter([first, *lines])  # no header: the first line is data
    for number, fields in lines:
        yield number, [fields[i] if i is not None and i < len(fields) else "" for i in order]


class DiseaseAnnotation(NamedTuple):
    """One row of ``phenotype.hpoa``: a disease annotated with a term (or, qualified NOT, its absence)."""

    disease_id: str
    disease_name: str
    qualifier: str
    hpo_id: str
    references: tuple[str, ...]  # PMIDs, OMIM/ORPHA ids, ISBNs, URLs: what the curators read
    frequency: str
    aspect: str  # P phenotype, I inheritance, C onset, M modifier, H past medical history


class GenePhenotype(NamedTuple):
    """One row of ``genes_to_phenotype.txt``, and the references of the annotations it joins."""

    ncbi_gene_id: str
    gene_symbol: str
    hpo_id: str
    hpo_name: str
    frequency: str
    disease_id: str
    references: tuple[str, ...] = ()


class GeneDisease(NamedTuple):
    """One row of ``genes_to_disease.txt``."""

    ncbi_gene_id: str  # NCBIGene:1234
    gene_symbol: str
    association_type: str  # MENDELIAN, POLYGENIC, UNKNOWN
    disease_id: str
    source: str


def split_references(text: str) -> tuple[str, ...]:
    """``PMID:1;OMIM:2`` -> each reference once, in the order given."""
    return tuple(dict.fromkeys(ref.strip() for ref in text.split(";") if ref.strip()))


def read_annotations(path: Path) -> list[DiseaseAnnotation]:
    """The rows of ``phenotype.hpoa`` in file order (the order HPO's frequency rule reads them)."""
    idx = {name: i for i, name in enumerate(ANNOTATION_COLUMNS)}
    return [DiseaseAnnotation(f[idx["database_id"]], f[idx["disease_name"]], f[idx["qualifier"]], f[idx["hpo_id"]],
                              split_references(f[idx["reference"]]), f[idx["frequency"]], f[idx["aspect"]])
            for _, f in _records(path, ANNOTATION_COLUMNS)]


def read_gene_phenotypes(path: Path) -> list[GenePhenotype]:
    return [GenePhenotype(*fields) for _, fields in _records(path, GENE_PHENOTYPE_COLUMNS)]


def read_gene_diseases(path: Path) -> list[GeneDisease]:
    return [GeneDisease(*fields) for _, fields in _records(path, GENE_DISEASE_COLUMNS)]


def build_gene_phenotypes(gene_diseases: Iterable[GeneDisease], annotations: Iterable[DiseaseAnnotation],
                          term_names: dict[str, str]) -> list[GenePhenotype]:
    """HPO's ``genes_to_phenotype.txt`` from its inputs (the rule in the module docstring), each
    row with the references of every annotation row it joins (first seen first).

    Rows come gene by gene in NCBI id order, as in HPO's file; within a gene, by disease in the
    order of ``genes_to_disease.txt`` and by term in the order of ``phenotype.hpoa`` (HPO's own
    order within a gene follows no rule we could find).
    """
    by_disease: dict[str, dict[str, tuple[str, list[str]]]] = {}
    for row in annotations:
        terms = by_disease.setdefault(row.disease_id, {})
        _, refs = terms.get(row.hpo_id, ("", []))
        refs.extend(r for r in row.references if r not in refs)
        terms[row.hpo_id] = (row.frequency or "-", refs)  # the last row's frequency wins, as in HPO's file
    pairs = list(dict.fromkeys((g.ncbi_gene_id, g.gene_symbol, g.disease_id) for g in gene_diseases))
    pairs.sort(key=lambda p: _ncbi_number(p[0]))  # stable: within a gene, the file's disease order
    out = []
    for ncbi, symbol, disease in pairs:
        ncbi = ncbi.removeprefix("NCBIGene:")
        for term, (frequency, refs) in by_disease.get(disease, {}).items():
            out.append(GenePhenotype(ncbi, symbol, term, term_names.get(term, ""), frequency, disease, tuple(refs)))
    return out


def _ncbi_number(ncbi: str) -> int:
    digits = ncbi.removeprefix("NCBIGene:")
    return int(digits) if digits.isdigit() else -1


def gene_phenotypes(files: ReleaseFiles, annotations: list[DiseaseAnnotation] | None = None,
                    term_names: dict[str, str] | None = None) -> list[GenePhenotype]:
    """The gene -> term table of a release: HPO's file if the folder has it, else built.
    ``annotations`` and ``term_names`` spare re-reading files the caller has read already."""
    if files.gene_phenotypes is not None:
        return read_gene_phenotypes(files.gene_phenotypes)
    if annotations is None:
        annotations = read_annotations(files.annotations)
    if term_names is None:
        term_names = {t["id"]: t["name"] for t in read_obo(files.ontology)["terms"]}
    return build_gene_phenotypes(read_gene_diseases(files.gene_diseases), annotations, term_names)


def write_gene_phenotypes(rows: Iterable[GenePhenotype], path: Path) -> None:
    """``genes_to_phenotype.txt`` in HPO's format (tools such as hpo3 read that file)."""
    tmp = Path(path).with_name(f".{Path(path).name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\t".join(GENE_PHENOTYPE_COLUMNS) + "\n")
        for row in rows:
            handle.write("\t".join(row[: len(GENE_PHENOTYPE_COLUMNS)]) + "\n")
    os.replace(tmp, path)

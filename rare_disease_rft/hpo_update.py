"""Updating the knowledge base from new HPO release files: check them, write a release folder, say
what changed (``rdrft knowledge update SOURCE_DIR [--into DIR]``).

New files are checked before anything is written, one line per problem: files that are missing,
empty (HPO shipped an empty ``phenotype_to_genes.txt`` in June 2026) or unreadable, lines with
the wrong number of columns, disease counts short of what ``phenotype.hpoa``'s own header states,
terms the ontology does not know, gene symbols HGNC does not know, and a release older than the
current one. Errors stop the update; warnings are written into the folder's README. The folder is
written through a temporary folder and a rename, so a failed update leaves nothing half-written,
and an existing folder (a bundled release included) is replaced only when asked (``force``).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .genes import gene_names
from .hpo import HPO
from .hpo_release import (ANNOTATION_COLUMNS, ANNOTATIONS, GENE_DISEASE_COLUMNS, GENE_DISEASES, GENE_PHENOTYPE_COLUMNS,
                          GENE_PHENOTYPES, ONTOLOGY, read_obo, table_lines)
from .resources import BUNDLED_HPO_RELEASES, data_home, find_text_file, open_text

#: a disease count this far below what the file's header states means a cut-off file
SHORT_OF_HEADER = 0.95
EXAMPLES = 5  # ids named per problem line
_HEADER_COUNTS = re.compile(r"(\d+):?\s*(OMIM|DECIPHER|ORPHANET|ORPHA)")
_HEADER_PREFIX = {"ORPHANET": "ORPHA"}
LICENSE = """## License and attribution
The HPO is distributed under the HPO license (https://hpo.jax.org/app/license), which allows
redistribution with attribution and a statement of the version used. hp.obo states:
`dc:rights "Peter Robinson, Sebastian Koehler, The Human Phenotype Ontology Consortium, and The
Monarch Initiative"`. The ORPHA rows of `genes_to_disease.txt` come from Orphadata (CC BY 4.0,
Orphanet, INSERM); its OMIM rows from NCBI `mim2gene_medgen` (public domain).

Cite: Gargano MA, et al. *The Human Phenotype Ontology in 2024: phenotypes around the world.*
Nucleic Acids Research 52(D1):D1333-D1346 (2024). https://doi.org/10.1093/nar/gkad1005
"""


class ReleaseError(ValueError):
    """A release folder that cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class Problem:
    """One finding about a file: an ``error`` stops the update; a ``warning`` (something is wrong
    but the rest is usable) or a ``note`` (normal for HPO's files, worth knowing) is reported and
    kept in the folder's README."""

    level: str  # "error", "warning" or "note"
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.file}: {self.message}"


@dataclass
class Checked:
    """New release files as checked: where each is, the release they are, what is wrong."""

    source: Path
    files: dict[str, Path] = field(default_factory=dict)  # release file name -> the file given
    version: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def add(self, level: str, file: str, message: str) -> None:
        self.problems.append(Problem(level, file, message))


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:EXAMPLES])
    return shown + (f" and {len(items) - EXAMPLES:,} more" if len(items) > EXAMPLES else "")


def check_release_files(source: str | Path, current: HPO | None = None, allow_older: bool = False) -> Checked:
    """Checks the release files in ``source`` (``hp.obo``, ``phenotype.hpoa``, and
    ``genes_to_disease.txt`` or ``genes_to_phenotype.txt``; plain, .xz or .gz) against each other,
    the bundled HGNC nomenclature and, if given, the ``current`` release."""
    checked = Checked(Path(source))
    if not checked.source.is_dir():
        checked.add("error", str(source), "is not a folder (give the folder holding the new release files)")
        return checked
    for name in (ONTOLOGY, ANNOTATIONS, GENE_DISEASES, GENE_PHENOTYPES):
        try:
            checked.files[name] = find_text_file(checked.source, name)
        except FileNotFoundError:
            pass
    for name in (ONTOLOGY, ANNOTATIONS):
        if name not in checked.files:
            checked.add("error", name, f"missing from {source} (nor {name}.xz or {name}.gz)")
    if GENE_DISEASES not in checked.files and GENE_PHENOTYPES not in checked.files:
        checked.add("error", GENE_DISEASES, f"missing from {source} (nor {GENE_PHENOTYPES}): one gene table is needed")
    if checked.errors:
        return checked
    terms = _check_ontology(checked)
    if terms is None:
        return checked
    diseases = _check_annotations(checked, terms)
    if GENE_DISEASES in checked.files:
        _check_gene_table(checked, GENE_DISEASES, GENE_DISEASE_COLUMNS, diseases)
    else:
        _check_gene_table(checked, GENE_PHENOTYPES, GENE_PHENOTYPE_COLUMNS, diseases)
    if current is not None and checked.version:
        if checked.version < current.version and not allow_older:
            checked.add("error", ONTOLOGY, f"release {checked.version} is older than the current {current.version} "
                        "(pass --allow-older to write it anyway)")
        elif checked.version == current.version:
            checked.add("warning", ONTOLOGY, f"release {checked.version} is the current release already")
    return checked


def _open_bytes(path: Path):
    """A release file's bytes, decompressed (plain, .xz or .gz)."""
    return {".xz": lzma.open, ".gz": gzip.open}.get(path.suffix, open)(path, "rb")


def _readable(checked: Checked, name: str) -> bool:
    """False (with an error) when a file is empty or cannot be decompressed to its end."""
    path = checked.files[name]
    if path.stat().st_size == 0:
        checked.add("error", name, f"{path} is empty (0 bytes); download the release file again")
        return False
    try:
        with _open_bytes(path) as handle:
            while handle.read(1 << 20):
                pass
    except (OSError, EOFError, lzma.LZMAError) as err:
        checked.add("error", name, f"{path} cannot be read to its end ({err}); a cut-off download?")
        return False
    return True


def _check_ontology(checked: Checked) -> dict[str, str | None] | None:
    """The ontology's term ids -> the live term each stands for (None: obsolete, no replacement)."""
    if not _readable(checked, ONTOLOGY):
        return None
    obo = read_obo(checked.files[ONTOLOGY])
    if not obo["terms"]:
        checked.add("error", ONTOLOGY, "holds no [Term] stanza with an HP id; is it an OBO file of the HPO?")
        return None
    if obo["version"] == "unknown":
        checked.add("warning", ONTOLOGY, "has no data-version line; the release cannot be dated")
    else:
        checked.version = obo["version"]
    live = {t["id"] for t in obo["terms"] if not t["obsolete"]}
    if "HP:0000118" not in live:
        checked.add("error", ONTOLOGY, "has no live HP:0000118 (Phenotypic abnormality); is it the whole HPO?")
        return None
    terms: dict[str, str | None] = {t: t for t in live}
    for t in obo["terms"]:
        target = t["id"] if not t["obsolete"] else (t["replaced_by"] if t["replaced_by"] in live else None)
        for given in [t["id"], *t["alt"]]:
            terms.setdefault(given, target)
    return terms


def _columns(checked: Checked, name: str, expected: tuple[str, ...]):
    """The data lines of a table file, after checking its header and every line's column count."""
    lines = table_lines(checked.files[name])
    header = next(lines, None)
    if header is None:
        checked.add("error", name, f"{checked.files[name]} holds no line (an empty release file); download it again")
        return []
    if tuple(header[1]) != expected:
        checked.add("error", name, f"line {header[0]}: header {' '.join(header[1])!r} is not HPO's "
                    f"{' '.join(expected)!r}")
        return []
    rows, wrong = [], []
    for number, fields in lines:
        if len(fields) != len(expected):
            wrong.append((number, len(fields)))
        else:
            rows.append((number, fields))
    if wrong:
        checked.add("error", name, f"{len(wrong):,} lines have other than {len(expected)} tab-separated columns "
                    f"(first: line {wrong[0][0]}, {wrong[0][1]} columns)")
    if not rows and not wrong:
        checked.add("error", name, "has a header but no data line (an empty release file); download it again")
    return rows


def _report_ids(checked: Checked, name: str, found: dict[str, int], what: str, then: str) -> None:
    """One warning for ids of a file that something is wrong with: how many, a few of them, the
    line of the first, and what becomes of them."""
    if found:
        checked.add("warning", name, f"{len(found):,} {what} ({_examples(list(found))}; first at line "
                    f"{min(found.values())}); {then}")


def _check_annotations(checked: Checked, terms: dict[str, str | None]) -> set[str]:
    """Checks ``phenotype.hpoa``; returns the diseases it annotates."""
    if not _readable(checked, ANNOTATIONS):
        return set()
    path = checked.files[ANNOTATIONS]
    stated: dict[str, int] = {}
    version = None
    with open_text(path) as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            if line.startswith("#description"):
                stated = {_HEADER_PREFIX.get(p, p): int(n) for n, p in _HEADER_COUNTS.findall(line)}
            elif line.startswith("#version:"):
                version = line.split(":", 1)[1].strip()
    rows = _columns(checked, ANNOTATIONS, ANNOTATION_COLUMNS)
    col = {c: i for i, c in enumerate(ANNOTATION_COLUMNS)}
    diseases = {f[col["database_id"]] for _, f in rows}
    for prefix, n in sorted(stated.items()):
        found = sum(d.startswith(prefix + ":") for d in diseases)
        if found < SHORT_OF_HEADER * n:
            checked.add("error", ANNOTATIONS, f"{found:,} {prefix} diseases, but its header states {n:,}: "
                        "a cut-off file? download it again")
        elif found != n:
            checked.add("note", ANNOTATIONS, f"{found:,} {prefix} diseases where its header states {n:,} "
                        "(HPO's headers are often off by a few)")
    if rows and not stated:
        checked.add("warning", ANNOTATIONS, "has no '#description' header with disease counts to check against")
    if version and checked.version and version != checked.version:
        checked.add("warning", ANNOTATIONS, f"is version {version}, hp.obo {checked.version}: "
                    "annotations and ontology of different releases")
    unknown: dict[str, int] = {}
    retired: dict[str, int] = {}
    no_reference = []
    for number, f in rows:
        term = f[col["hpo_id"]]
        if term not in terms:
            unknown.setdefault(term, number)
        elif terms[term] is None:
            retired.setdefault(term, number)
        if not f[col["reference"]].strip():
            no_reference.append(number)
    _report_ids(checked, ANNOTATIONS, unknown, "terms hp.obo does not know", "their annotations are left out")
    _report_ids(checked, ANNOTATIONS, retired, "terms obsolete in hp.obo without a replacement",
                "their annotations are left out")
    if no_reference:
        checked.add("warning", ANNOTATIONS, f"{len(no_reference):,} rows cite no reference (first: line "
                    f"{no_reference[0]}); they cannot be withheld with a publication")
    return diseases


def _check_gene_table(checked: Checked, name: str, columns: tuple[str, ...], diseases: set[str]) -> None:
    if not _readable(checked, name):
        return
    rows = _columns(checked, name, columns)
    col = {c: i for i, c in enumerate(columns)}
    names = gene_names()
    unknown: dict[str, int] = {}
    bad_ids: list[int] = []
    no_symbol: dict[str, int] = {}
    without = set()
    for number, f in rows:
        ncbi, symbol = f[col["ncbi_gene_id"]], f[col["gene_symbol"]]
        digits = ncbi.removeprefix("NCBIGene:")
        if not digits.isdigit():
            bad_ids.append(number)
        elif symbol in ("", "-"):
            no_symbol.setdefault(ncbi, number)
        elif not names.by_entrez(digits) and not names.approved(symbol):
            unknown.setdefault(symbol, number)
        if f[col["disease_id"]] not in diseases:
            without.add(f[col["disease_id"]])
    if bad_ids:
        checked.add("error", name, f"{len(bad_ids):,} lines have an NCBI gene id that is not a number "
                    f"(first: line {bad_ids[0]}); expected e.g. NCBIGene:2200")
    _report_ids(checked, name, no_symbol, "genes without a symbol ('-')", "they are left out")
    _report_ids(checked, name, unknown, "genes the bundled HGNC nomenclature does not know",
                "kept under the release's symbols")
    if without and diseases:
        checked.add("note", name, f"{len(without):,} of its diseases have no annotation in {ANNOTATIONS} "
                    f"({_examples(sorted(without))}); their genes get no phenotype from them")


# ------------------------------------------------------------------------ writing
def _refuse_to_replace(into: Path, force: bool) -> None:
    if into.exists() and not force:
        what = "a bundled release" if into.resolve().is_relative_to(BUNDLED_HPO_RELEASES) else "there already"
        raise ReleaseError(f"{into} is {what}; pass --force to replace it, or choose another --into")


def _sha256_of_text(path: Path) -> str:
    digest = hashlib.sha256()
    with _open_bytes(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_compressed(path: Path, out: Path) -> None:
    """``out`` (a .xz name) holds the file's text: an .xz file is copied as it is, others compressed."""
    if path.suffix == ".xz":
        shutil.copyfile(path, out)
        return
    with _open_bytes(path) as src, lzma.open(out, "wb", preset=9) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def write_release(checked: Checked, into: str | Path, force: bool = False) -> Path:
    """Writes the checked files, xz-compressed, and a README (provenance, checksums, warnings,
    license) into the release folder ``into``: through a temporary folder and a rename. An existing
    folder is replaced only with ``force``."""
    if checked.errors:
        raise ReleaseError(f"the release files in {checked.source} have errors; nothing is written")
    into = Path(into)
    _refuse_to_replace(into, force)
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = into.with_name(f".{into.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        rows = []
        for name, path in checked.files.items():
            _write_compressed(path, tmp / f"{name}.xz")
            rows.append(f"| `{name}.xz` | `{path}` | `{_sha256_of_text(path)}` |")
        warnings = [f"- {p.file}: {p.message}" for p in checked.problems]
        readme = "\n".join([
            f"# Human Phenotype Ontology release {checked.version}",
            "",
            f"Written by `rdrft knowledge update` on {date.today().isoformat()} from the files below "
            "(compressed with xz; the text inside is the file as given).",
            "",
            "| file | given as | sha256 of the text |",
            "|---|---|---|",
            *rows,
            "",
            "## What the checks found",
            *(warnings or ["- nothing"]),
            "",
            LICENSE,
        ])
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        if into.exists():
            old = into.with_name(f".{into.name}.old{os.getpid()}")
            os.replace(into, old)
            os.replace(tmp, into)
            shutil.rmtree(old)
        else:
            os.replace(tmp, into)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return into


# ------------------------------------------------------------------------ what changed
def changes(old: HPO, new: HPO) -> dict:
    """What ``new`` adds and removes against ``old``: terms, genes, diseases and annotations."""
    old_ids, new_ids = set(old.ids), set(new.ids)

    def pairs(kb: HPO, matrix, labels: list[str]) -> set[tuple[str, str]]:
        coo = matrix.tocoo()
        return {(labels[r], kb.ids[c]) for r, c in zip(coo.row.tolist(), coo.col.tolist())}

    def counted(before: set, after: set) -> dict:
        return {"before": len(before), "after": len(after), "added": sorted(after - before),
                "removed": sorted(before - after)}

    return {
        "release": {"before": old.version, "after": new.version},
        # HPO never deletes a term: one that is no longer live was made obsolete
        "terms": {"before": len(old_ids), "after": len(new_ids), "added": sorted(new_ids - old_ids),
                  "obsoleted": sorted(old_ids - new_ids)},
        "genes": counted(set(old.gene_symbols), set(new.gene_symbols)),
        "diseases": counted(set(old.disease_ids), set(new.disease_ids)),
        "disease_annotations": counted(pairs(old, old.disease_terms, old.disease_ids),
                                       pairs(new, new.disease_terms, new.disease_ids)),
        "gene_annotations": counted(pairs(old, old.gene_terms, old.gene_symbols),
                                    pairs(new, new.gene_terms, new.gene_symbols)),
    }


def format_changes(diff: dict) -> str:
    """The table ``rdrft knowledge update`` prints."""
    lines = [f"HPO {diff['release']['before']} -> {diff['release']['after']}"]
    labels = {"terms": "terms", "genes": "annotated genes", "diseases": "diseases with a gene",
              "disease_annotations": "annotations (disease, term)", "gene_annotations": "annotations (gene, term)"}
    for key, label in labels.items():
        d = diff[key]
        removed = d.get("removed", d.get("obsoleted"))
        gone = "obsoleted" if key == "terms" else "removed"
        lines.append(f"  {label:<28} {d['before']:>8,} -> {d['after']:>8,}   +{len(d['added']):,} new, "
                     f"-{len(removed):,} {gone}")
    for key in ("genes", "terms"):
        if diff[key]["added"]:
            lines.append(f"  new {key}: {_examples(diff[key]['added'])}")
    if diff["genes"]["removed"]:
        lines.append(f"  genes no longer annotated: {_examples(diff['genes']['removed'])}")
    return "\n".join(lines)


# ------------------------------------------------------------------------ the whole update
@dataclass
class Update:
    checked: Checked
    folder: Path | None = None  # None: errors, nothing written
    changes: dict | None = None  # against the current release, when one was given


def update_release(source: str | Path, into: str | Path | None = None, current: HPO | None = None,
                   force: bool = False, allow_older: bool = False) -> Update:
    """Checks the release files in ``source``, writes them as a release folder ``into`` (default:
    ``data_home()/hpo/VERSION``) unless there are errors, loads it, and compares it with ``current``."""
    if into is not None:
        _refuse_to_replace(Path(into), force)  # before the checks, which read every file
    checked = check_release_files(source, current, allow_older)
    if checked.errors:
        return Update(checked)
    folder = write_release(checked, into or data_home("hpo", checked.version or "unversioned"), force)
    return Update(checked, folder, changes(current, HPO.load(folder)) if current is not None else None)

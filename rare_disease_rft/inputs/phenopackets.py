"""GA4GH phenopackets (schema v2, and v1) -> a :class:`Patient`, and -> tasks. Only phenotypes,
sex and age reach a task.

Sources may be single files, folders (searched recursively) or ``.tar.xz``/``.tar.gz``/``.zip``
archives. A file that cannot be used is listed in the report with the reason, and the run goes on:
invalid JSON, a field of the wrong JSON type (the reason names it: ``phenotypicFeatures[2] is a
string, expected an object``), a corrupt archive (the members read before the damage are kept), a
file or archive member over :data:`MAX_FILE_BYTES` (checked before it is read, and no more than
that is ever read of one, so a zip bomb costs no memory), a symbolic link whose target is missing
or is a folder, and a link member of an archive (links inside archives are not followed: the
member they point at is read in its own right, and one pointing outside must not be). Links in a
folder to files are followed.

What is read
    Phenotypic features (``type.id``; excluded when ``excluded``, v2, or ``negated``, v1, is true),
    mapped to current HPO ids; ``subject.sex``; the age at the last encounter
    (``subject.timeAtLastEncounter.age.iso8601duration``, v2, or ``subject.ageAtCollection.age``,
    v1). The causal gene: v2 interpretations' genomic interpretations (a GeneDescriptor ``gene``,
    or a variant's ``geneContext``) not REJECTED or UNCERTAIN_SIGNIFICANCE; in v1, the top-level
    ``genes``. A gene named by an HGNC, Ensembl or NCBI gene id (``valueId``, ``id``,
    ``alternateIds``) or by an approved, previous or alias symbol maps to its approved HGNC symbol.
    The publication: the PMID in ``metaData.externalReferences``. A phenopacket without a gene
    (undiagnosed) or without a PMID is still a task for ranking (:func:`convert_sources` with
    ``require_answer``/``require_pmid`` False); a training set needs both.

Ids and files
    A task's ``id`` is the phenopacket's own ``id`` (the file's stem when it has none), made unique
    within a run by a suffix (``_2``, ``_3``, ... in reading order), and ``source.file`` names the
    real file: the path as given, with ``archive!member`` for a member of an archive. So a result
    can be joined back to its patient. In phenopacket-store both often name the gene (ids such as
    ``PMID_36322151_KDM2B_1``, folders named by gene). No model reads them: a ranker sees a
    ``Case`` (present, excluded, sex, age: ``Case.from_task``), LLM prompts are built from the Case,
    and the case index and calibration group cases by PMID; keep it so (pinned by
    ``tests/test_phenopackets.py``). A task set split by publication, what models are trained and
    benchmarked on, still names no gene: ``data_prep.phenopackets`` gives it gene-free ids and files.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..genes import gene_names
from ..hpo import HPO
from ..tasks import SEXES, Answer, Task
from .patient import Patient

ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".zip")
_TAR_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz")
# A phenopacket is a few kB (phenopacket-store's largest is 67 kB); no file is read beyond this.
MAX_FILE_BYTES = 10_000_000
_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?")
# what reading a damaged archive raises, by compression and container
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, lzma.LZMAError, zlib.error,
                   NotImplementedError, RuntimeError)


class PhenopacketError(ValueError):
    """Why one file cannot be used as a phenopacket. The message is the reason, as reports and the app
    say it; ``kind`` is its general form (without the file's particulars), counted in reports."""

    def __init__(self, reason: str, kind: str | None = None):
        super().__init__(reason)
        self.kind = kind or reason


# why a phenopacket cannot be used (the kinds of PhenopacketError)
NOT_UTF8 = "not UTF-8 text"
NOT_JSON = "not valid JSON"
NOT_A_PHENOPACKET = "not a phenopacket: no 'subject' or 'phenotypicFeatures'"
WRONG_TYPE = "does not follow the phenopacket schema (a field has the wrong JSON type)"
NO_CAUSAL_GENE = "no causal gene in the interpretations"
SEVERAL_GENES = "several causal genes; a task has one answer"
NO_PRESENT_PHENOTYPE = "no present phenotype (only excluded or unknown terms)"
NO_PMID = "no PMID in metaData.externalReferences; cannot split by publication (--no-split converts it)"
LINK = "a link, not followed"
TOO_LARGE = f"larger than {MAX_FILE_BYTES // 1_000_000} MB"
UNREADABLE = "cannot be read (a damaged archive or file)"


@dataclass
class PhenopacketFile:
    """One file of a source: its bytes, or why they could not be read. ``origin`` is the path as
    given, or archive path + "!" + member."""

    origin: str
    data: bytes = b""
    problem: PhenopacketError | None = None

    @property
    def stem(self) -> str:
        """The file name without folders and ``.json``: a phenopacket's id when it has none."""
        return Path(self.origin.rsplit("!", 1)[-1]).stem


@dataclass
class ConversionReport:
    files: int = 0
    skipped: list[dict] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)  # kind of reason -> files skipped for it
    mapped_terms: Counter = field(default_factory=Counter)  # "old -> new" -> count
    unknown_terms: Counter = field(default_factory=Counter)  # id -> count of uses dropped
    present_and_excluded: int = 0  # terms reported both ways in one case; kept as present

    def skip(self, origin: str, error: PhenopacketError) -> None:
        self.skipped.append({"file": origin, "reason": str(error)})
        self.reasons[error.kind] += 1


# ------------------------------------------------------------------------------ files
def check_source(source: str | Path) -> None:
    """FileNotFoundError or ValueError (one line for the user) unless ``source`` is a phenopacket source."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if not (source.is_dir() or source.name.lower().endswith((*ARCHIVE_SUFFIXES, ".json"))):
        raise ValueError(f"{source}: not a phenopacket source; give a .json file, a folder, or a "
                         f"{'/'.join(ARCHIVE_SUFFIXES)} archive")


def iter_phenopacket_files(source: str | Path) -> Iterator[PhenopacketFile]:
    """Yields every ``.json`` file of a file, folder or archive source, in a stable order; a file that
    cannot be read comes with its ``problem``, and so does a damaged archive (after its readable members)."""
    check_source(source)
    source = Path(source)
    name = source.name.lower()
    if source.is_dir():
        yield from _folder_files(source)
    elif name.endswith(_TAR_SUFFIXES):
        yield from _tar_files(source)
    elif name.endswith(".zip"):
        yield from _zip_files(source)
    else:
        yield _read_file(source)


def _folder_files(folder: Path) -> Iterator[PhenopacketFile]:
    found: list[Path] = []
    for base, dirs, files in os.walk(folder):  # lists links to folders among dirs, and does not enter them
        found += [Path(base, d) for d in dirs if os.path.islink(os.path.join(base, d))]
        found += [Path(base, f) for f in files if f.endswith(".json")]
    for path in sorted(found):
        if path.is_file():  # a link to a file is followed
            yield _read_file(path)
        elif path.is_dir():
            yield PhenopacketFile(str(path), problem=PhenopacketError(
                f"a symbolic link to a folder ({os.readlink(path)}); links to folders are not followed: "
                "give the folder itself", LINK))
        else:
            yield PhenopacketFile(str(path), problem=PhenopacketError(
                f"a broken symbolic link (to {os.readlink(path)})", LINK))


def _read_file(path: Path) -> PhenopacketFile:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return PhenopacketFile(str(path), problem=_too_large(size))
        with open(path, "rb") as handle:
            return PhenopacketFile(str(path), handle.read(MAX_FILE_BYTES + 1))
    except OSError as err:
        return PhenopacketFile(str(path), problem=PhenopacketError(f"cannot be read: {err.strerror or err}",
                                                                   UNREADABLE))


def _too_large(size: int) -> PhenopacketError:
    return PhenopacketError(f"{size / 1e6:.1f} MB, more than the {MAX_FILE_BYTES // 1_000_000} MB a phenopacket "
                            "may have; not read", TOO_LARGE)


def _damaged(err: Exception, after: str = "") -> PhenopacketError:
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return PhenopacketError(f"a damaged archive{after}: {first_line}", UNREADABLE)


def _tar_files(source: Path) -> Iterator[PhenopacketFile]:
    try:
        archive = tarfile.open(source, "r:*")
    except _ARCHIVE_ERRORS as err:
        yield PhenopacketFile(str(source), problem=_damaged(err))
        return
    with archive:
        members: list[tarfile.TarInfo] = []
        damage = None
        try:
            members.extend(archive)  # reads the headers one by one: what comes before damage is kept
        except _ARCHIVE_ERRORS as err:
            damage = _damaged(err, f" after its first {len(members)} members")
        for member in sorted((m for m in members if m.name.endswith(".json") and not m.isdir()),
                             key=lambda m: m.name):
            origin = f"{source}!{member.name}"
            if member.issym() or member.islnk():
                yield PhenopacketFile(origin, problem=PhenopacketError(
                    f"a link in the archive (to {member.linkname}); links in archives are not followed", LINK))
            elif not member.isfile():
                yield PhenopacketFile(origin, problem=PhenopacketError("not a regular file in the archive",
                                                                       UNREADABLE))
            elif member.size > MAX_FILE_BYTES:
                yield PhenopacketFile(origin, problem=_too_large(member.size))
            else:
                try:
                    yield PhenopacketFile(origin, archive.extractfile(member).read(MAX_FILE_BYTES + 1))
                except _ARCHIVE_ERRORS as err:
                    yield PhenopacketFile(origin, problem=_damaged(err))
        if damage is not None:
            yield PhenopacketFile(str(source), problem=damage)


def _zip_files(source: Path) -> Iterator[PhenopacketFile]:
    try:
        archive = zipfile.ZipFile(source)
    except _ARCHIVE_ERRORS as err:
        yield PhenopacketFile(str(source), problem=_damaged(err))
        return
    with archive:
        for info in sorted((i for i in archive.infolist() if i.filename.endswith(".json") and not i.is_dir()),
                           key=lambda i: i.filename):
            origin = f"{source}!{info.filename}"
            if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symbolic link, as Unix zip stores one
                yield PhenopacketFile(origin, problem=PhenopacketError(
                    "a link in the archive; links in archives are not followed", LINK))
            elif info.file_size > MAX_FILE_BYTES:
                yield PhenopacketFile(origin, problem=_too_large(info.file_size))
            else:
                try:
                    with archive.open(info) as handle:
                        data = handle.read(MAX_FILE_BYTES + 1)  # the header's size may lie
                except _ARCHIVE_ERRORS as err:
                    yield PhenopacketFile(origin, problem=_damaged(err))
                    continue
                yield (PhenopacketFile(origin, data) if len(data) <= MAX_FILE_BYTES
                       else PhenopacketFile(origin, problem=_too_large(len(data))))


# ------------------------------------------------------------------------------ typed reading
_EXPECTED = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    return {str: "a string", list: "a list", dict: "an object"}[type(value)]


def _typed(value, kind: type, where: str, default=None):
    """``value`` if it has the JSON type ``kind``, ``default`` if it is absent or null; else the
    :class:`PhenopacketError` that names the field."""
    if value is None:
        return default
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise PhenopacketError(f"does not follow the phenopacket schema: {where} is {_json_kind(value)}, "
                           f"expected {_EXPECTED[kind]}", WRONG_TYPE)


def _objects(value, where: str) -> Iterator[tuple[str, dict]]:
    """The objects of a list field, each with its place (``phenotypicFeatures[2]``)."""
    for i, item in enumerate(_typed(value, list, where, [])):
        if not isinstance(item, dict):
            raise PhenopacketError(f"does not follow the phenopacket schema: {where}[{i}] is {_json_kind(item)}, "
                                   "expected an object", WRONG_TYPE)
        yield f"{where}[{i}]", item


def _string(obj: dict, key: str, where: str) -> str:
    """A string field, stripped; "" when absent."""
    return (_typed(obj.get(key), str, f"{where}.{key}" if where else key) or "").strip()


def _object(obj: dict, key: str, where: str) -> dict:
    return _typed(obj.get(key), dict, f"{where}.{key}" if where else key, {})


# ------------------------------------------------------------------------------ what a phenopacket says
def age_in_years(duration: str) -> float | None:
    """ISO 8601 durations as used by phenopackets (``P4Y6M``, ``P3W``, ``P10D``) -> years."""
    match = _DURATION.match(duration or "")
    if not match or not any(match.groups()):
        return None
    years, months, weeks, days = (float(g) if g else 0.0 for g in match.groups())
    return round(years + months / 12 + weeks * 7 / 365.25 + days / 365.25, 3)


def causal_genes(packet: dict) -> list[Answer]:
    """Every causal gene the phenopacket names (v2 interpretations, else v1 ``genes``), as approved
    HGNC symbols, deduplicated; a symbol the HGNC table does not know is kept upper-cased. A gene
    given only by an id the table does not know is left out."""
    genes: dict[str, Answer] = {}
    for where, descriptor in _gene_descriptors(packet):
        answer = _answer(descriptor, where)
        if answer is not None:
            genes.setdefault(answer.gene, answer)
    return list(genes.values())


def _gene_descriptors(packet: dict) -> Iterator[tuple[str, dict]]:
    interpretations = list(_objects(packet.get("interpretations"), "interpretations"))
    for where, interpretation in interpretations:
        diagnosis = _object(interpretation, "diagnosis", where)
        found = _objects(diagnosis.get("genomicInterpretations"), f"{where}.diagnosis.genomicInterpretations")
        for gi_where, gi in found:
            if _string(gi, "interpretationStatus", gi_where) in ("REJECTED", "UNCERTAIN_SIGNIFICANCE"):
                continue
            gene = _object(gi, "gene", gi_where)
            if gene:
                yield f"{gi_where}.gene", gene
                continue
            variant = _object(gi, "variantInterpretation", gi_where)
            descriptor = _object(variant, "variationDescriptor", f"{gi_where}.variantInterpretation")
            context_where = f"{gi_where}.variantInterpretation.variationDescriptor"
            context = _object(descriptor, "geneContext", context_where)
            if context:
                yield f"{context_where}.geneContext", context
    if not interpretations:  # schema v1: the genes of the patient's diagnosis, at the top level
        yield from _objects(packet.get("genes"), "genes")


def _answer(descriptor: dict, where: str) -> Answer | None:
    """A GeneDescriptor (v2: ``valueId``, ``symbol``, ``alternateIds``) or a v1 Gene (``id``,
    ``symbol``, ``alternateIds``) -> the approved symbol and HGNC id."""
    names = gene_names()
    symbol = _string(descriptor, "symbol", where)
    given_id = _string(descriptor, "valueId", where) or _string(descriptor, "id", where)
    alternates = [_typed(a, str, f"{where}.alternateIds[{i}]", "")
                  for i, a in enumerate(_typed(descriptor.get("alternateIds"), list, f"{where}.alternateIds", []))]
    for identifier in (given_id, symbol, *alternates):
        gene = names.lookup(identifier)
        if gene is not None:
            return Answer(gene.symbol, gene.hgnc_id)
    if symbol:
        return Answer(symbol.upper(), given_id if given_id.upper().startswith("HGNC:") else None)
    return None


def publication(packet: dict) -> str | None:
    """The PMID of the source article (``PMID:123``), from the external references."""
    meta = _object(packet, "metaData", "")
    for where, ref in _objects(meta.get("externalReferences"), "metaData.externalReferences"):
        ref_id = _string(ref, "id", where)
        if ref_id.upper().startswith("PMID:"):
            return "PMID:" + ref_id.split(":", 1)[1].strip()
    return None


def is_phenopacket(packet) -> bool:
    """A JSON object with a subject or phenotypic features (what every converter step needs)."""
    return isinstance(packet, dict) and ("phenotypicFeatures" in packet or "subject" in packet)


def load_phenopacket(data: bytes) -> dict:
    """A file's bytes -> the phenopacket's JSON object; :class:`PhenopacketError` with the reason if not one."""
    try:
        packet = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise PhenopacketError(f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})",
                               NOT_UTF8) from None
    except json.JSONDecodeError as err:
        raise PhenopacketError(f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})",
                               NOT_JSON) from None
    except RecursionError:
        raise PhenopacketError("not valid JSON (nested too deeply)", NOT_JSON) from None
    if not is_phenopacket(packet):
        raise PhenopacketError(NOT_A_PHENOPACKET)
    return packet


def read_patient(packet: dict, hpo: HPO, report: ConversionReport | None = None) -> Patient:
    """Present and excluded terms (current ids; how given ids were mapped, or why left out, in the
    notes and counted in ``report``), sex and age at the last encounter. Needs no diagnosis: also for
    undiagnosed patients. :class:`PhenopacketError` naming a field of the wrong JSON type."""
    features = []
    for where, feature in _objects(packet.get("phenotypicFeatures"), "phenotypicFeatures"):
        given = _string(_object(feature, "type", where), "id", f"{where}.type")
        is_excluded = _typed(feature.get("excluded"), bool, f"{where}.excluded", False)
        is_negated = _typed(feature.get("negated"), bool, f"{where}.negated", False)  # v1's word for it
        if given:
            features.append((given, is_excluded or is_negated))
    subject = _object(packet, "subject", "")
    sex = _string(subject, "sex", "subject").upper()
    age = _string(_object(_object(subject, "timeAtLastEncounter", "subject"), "age", "subject.timeAtLastEncounter"),
                  "iso8601duration", "subject.timeAtLastEncounter.age")
    age = age or _string(_object(subject, "ageAtCollection", "subject"), "age", "subject.ageAtCollection")  # v1
    # counted only once the whole phenopacket has been read: a file skipped for a wrong type counts nothing
    report = report if report is not None else ConversionReport()
    present: list[str] = []
    excluded: list[str] = []
    notes: list[str] = []
    for given, negated in features:
        res = hpo.resolve(given)
        if res.id is None:
            report.unknown_terms[given] += 1
            notes.append(f"Left out: {res.note}")
            continue
        if res.note and res.id != given:
            report.mapped_terms[f"{given} -> {res.id}"] += 1
            notes.append(res.note)
        target = excluded if negated else present
        if res.id not in target:
            target.append(res.id)
    both = [t for t in excluded if t in present]
    if both:
        report.present_and_excluded += len(both)
        excluded = [t for t in excluded if t not in present]
    return Patient(present, excluded, sex if sex in SEXES else None, age_in_years(age) if age else None,
                   list(dict.fromkeys(notes)))


# ------------------------------------------------------------------------------ tasks
def convert(file: PhenopacketFile, hpo: HPO, report: ConversionReport, require_answer: bool = True,
            require_pmid: bool = True) -> Task | None:
    """One phenopacket -> a task (id: the phenopacket's own, made unique by :func:`convert_sources`),
    or None with the reason recorded in ``report``. Without ``require_answer`` an undiagnosed patient,
    or one with several causal genes, is a task with no answer."""
    try:
        if file.problem is not None:
            raise file.problem
        packet = load_phenopacket(file.data)
        genes = causal_genes(packet)
        if require_answer and not genes:
            raise PhenopacketError(NO_CAUSAL_GENE)
        if require_answer and len(genes) > 1:
            raise PhenopacketError(f"{len(genes)} causal genes; a task has one answer", SEVERAL_GENES)
        own_id = _string(packet, "id", "")
        pmid = publication(packet)
        patient = read_patient(packet, hpo, report)
        if not patient.present:
            raise PhenopacketError(NO_PRESENT_PHENOTYPE)
        if require_pmid and pmid is None:
            raise PhenopacketError(NO_PMID)
    except PhenopacketError as err:
        report.skip(file.origin, err)
        return None
    return Task(
        id=own_id or file.stem,
        present=patient.present,
        excluded=patient.excluded,
        sex=patient.sex,
        age_years=patient.age_years,
        answer=genes[0] if len(genes) == 1 else None,
        source={"kind": "phenopacket", **({"pmid": pmid} if pmid else {}), "file": file.origin},
    )


def convert_sources(sources: list[str | Path], hpo: HPO, require_answer: bool = True,
                    require_pmid: bool = True) -> tuple[list[Task], ConversionReport]:
    """Converts every phenopacket of the sources, in reading order; ids unique (module docstring).
    Every source is checked before any is read (:func:`check_source`)."""
    for source in sources:
        check_source(source)
    report = ConversionReport()
    tasks: list[Task] = []
    for source in sources:
        for file in iter_phenopacket_files(source):
            report.files += 1
            task = convert(file, hpo, report, require_answer, require_pmid)
            if task is not None:
                tasks.append(task)
    taken: set[str] = set()
    for task in tasks:
        unique, n = task.id, 1
        while unique in taken:
            n += 1
            unique = f"{task.id}_{n}"
        task.id = unique
        taken.add(unique)
    return tasks, report

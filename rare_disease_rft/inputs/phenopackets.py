"""GA4GH phenopackets (schema v2, and v1) -> a :class:`Patient`, and -> tasks. Only phenotypes,
sex and age reach a task.

Sources may be single files, folders (searched recursively) or ``.tar.xz``/``.tar.gz``/``.zip``
archives. A file that cannot be used is listed in the report with the reason; it never stops the
run.

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
    ``PMID_36322151_KDM2B_1``, folders named by gene); that is harmless only because no model ever
    reads them: a ranker sees a ``Case`` (present, excluded, sex, age: ``Case.from_task``), LLM
    prompts are built from the Case, and the case index and calibration group cases by PMID. Keep it
    so: nothing that scores or trains may read ``task.id`` or ``task.source`` (pinned by
    ``tests/test_phenopackets.py``).
"""

from __future__ import annotations

import json
import re
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..genes import gene_names
from ..hpo import HPO
from ..tasks import SEXES, Answer, Task
from .patient import Patient

ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".zip")
_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?")


@dataclass
class PhenopacketFile:
    """One file's bytes and where it came from: the path as given, or archive path + "!" + member."""

    origin: str
    data: bytes

    @property
    def stem(self) -> str:
        """The file name without folders and ``.json``: a phenopacket's id when it has none."""
        return Path(self.origin.rsplit("!", 1)[-1]).stem


@dataclass
class ConversionReport:
    files: int = 0
    skipped: list[dict] = field(default_factory=list)
    mapped_terms: Counter = field(default_factory=Counter)  # "old -> new" -> count
    unknown_terms: Counter = field(default_factory=Counter)  # id -> count of uses dropped
    present_and_excluded: int = 0  # terms reported both ways in one case; kept as present

    def skip(self, origin: str, reason: str) -> None:
        self.skipped.append({"file": origin, "reason": reason})


def iter_phenopacket_files(source: str | Path) -> Iterator[PhenopacketFile]:
    """Yields every ``.json`` file of a file, folder or archive source, in a stable order."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*.json") if p.is_file()):
            yield PhenopacketFile(str(path), path.read_bytes())
    elif source.name.lower().endswith((".tar.xz", ".txz", ".tar.gz", ".tgz")):
        with tarfile.open(source, "r:*") as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".json")),
                             key=lambda m: m.name)
            for member in members:
                handle = archive.extractfile(member)
                yield PhenopacketFile(f"{source}!{member.name}", handle.read() if handle else b"")
    elif source.name.lower().endswith(".zip"):
        with zipfile.ZipFile(source) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".json"))
            for member in names:
                yield PhenopacketFile(f"{source}!{member}", archive.read(member))
    elif source.suffix.lower() == ".json":
        yield PhenopacketFile(str(source), source.read_bytes())
    else:
        raise ValueError(
            f"{source}: not a phenopacket source; give a .json file, a folder, or a {'/'.join(ARCHIVE_SUFFIXES)} archive"
        )


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
    for descriptor in _gene_descriptors(packet):
        answer = _answer(descriptor)
        if answer is not None:
            genes.setdefault(answer.gene, answer)
    return list(genes.values())


def _gene_descriptors(packet: dict) -> Iterator[dict]:
    interpretations = packet.get("interpretations") or []
    for interpretation in interpretations:
        diagnosis = interpretation.get("diagnosis") or {}
        for gi in diagnosis.get("genomicInterpretations") or []:
            if gi.get("interpretationStatus") in ("REJECTED", "UNCERTAIN_SIGNIFICANCE"):
                continue
            descriptor = gi.get("gene") or (
                ((gi.get("variantInterpretation") or {}).get("variationDescriptor") or {}).get("geneContext")
            )
            if descriptor:
                yield descriptor
    if not interpretations:  # schema v1: the genes of the patient's diagnosis, at the top level
        yield from packet.get("genes") or []


def _answer(descriptor: dict) -> Answer | None:
    """A GeneDescriptor (v2: ``valueId``, ``symbol``, ``alternateIds``) or a v1 Gene (``id``,
    ``symbol``, ``alternateIds``) -> the approved symbol and HGNC id."""
    names = gene_names()
    symbol = str(descriptor.get("symbol") or "").strip()
    given_id = str(descriptor.get("valueId") or descriptor.get("id") or "").strip()
    for identifier in (given_id, symbol, *(descriptor.get("alternateIds") or [])):
        gene = names.lookup(identifier)
        if gene is not None:
            return Answer(gene.symbol, gene.hgnc_id)
    if symbol:
        return Answer(symbol.upper(), given_id if given_id.upper().startswith("HGNC:") else None)
    return None


def publication(packet: dict) -> str | None:
    """The PMID of the source article (``PMID:123``), from the external references."""
    for ref in (packet.get("metaData") or {}).get("externalReferences") or []:
        ref_id = str(ref.get("id") or "")
        if ref_id.upper().startswith("PMID:"):
            return "PMID:" + ref_id.split(":", 1)[1].strip()
    return None


class PhenopacketError(ValueError):
    """Why one file cannot be read as a phenopacket; the message is the reason, as reports and the app say it."""


# why a phenopacket cannot be used, as the converter's report and the app say it
NOT_A_PHENOPACKET = "not a phenopacket: no 'subject' or 'phenotypicFeatures'"
NO_PRESENT_PHENOTYPE = "no present phenotype (only excluded or unknown terms)"
WRONG_TYPE = "does not follow the phenopacket v2 schema (a field has the wrong type)"


def is_phenopacket(packet) -> bool:
    """A JSON object with a subject or phenotypic features (what every converter step needs)."""
    return isinstance(packet, dict) and ("phenotypicFeatures" in packet or "subject" in packet)


def load_phenopacket(data: bytes) -> dict:
    """A file's bytes -> the phenopacket's JSON object; :class:`PhenopacketError` with the reason if not one."""
    try:
        packet = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise PhenopacketError(f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None
    except json.JSONDecodeError as err:
        raise PhenopacketError(f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not is_phenopacket(packet):
        raise PhenopacketError(NOT_A_PHENOPACKET)
    return packet


def read_patient(packet: dict, hpo: HPO, report: ConversionReport | None = None) -> Patient:
    """Present and excluded terms (current ids; how given ids were mapped, or why left out, in the
    notes and counted in ``report``), sex and age at the last encounter. Needs no diagnosis: also for
    undiagnosed patients. :class:`PhenopacketError` if a field has the wrong JSON type."""
    try:
        return _read_patient(packet, hpo, report if report is not None else ConversionReport())
    except (AttributeError, TypeError, ValueError):  # a field of the wrong JSON type somewhere inside
        raise PhenopacketError(WRONG_TYPE) from None


def _read_patient(packet: dict, hpo: HPO, report: ConversionReport) -> Patient:
    present: list[str] = []
    excluded: list[str] = []
    notes: list[str] = []
    for feature in packet.get("phenotypicFeatures") or []:
        given = ((feature or {}).get("type") or {}).get("id")
        if not given:
            continue
        res = hpo.resolve(given)
        if res.id is None:
            report.unknown_terms[given] += 1
            notes.append(f"Left out: {res.note}")
            continue
        if res.note and res.id != given:
            report.mapped_terms[f"{given} -> {res.id}"] += 1
            notes.append(res.note)
        target = excluded if feature.get("excluded") or feature.get("negated") else present
        if res.id not in target:
            target.append(res.id)
    both = [t for t in excluded if t in present]
    if both:
        report.present_and_excluded += len(both)
        excluded = [t for t in excluded if t not in present]
    subject = packet.get("subject") or {}
    sex = subject.get("sex")
    age = (((subject.get("timeAtLastEncounter") or {}).get("age") or {}).get("iso8601duration")
           or (subject.get("ageAtCollection") or {}).get("age"))  # v1
    return Patient(present, excluded, sex if sex in SEXES else None, age_in_years(age) if age else None,
                   list(dict.fromkeys(notes)))


NO_CAUSAL_GENE = "no causal gene in the interpretations"
NO_PMID = "no PMID in metaData.externalReferences; cannot split by publication (--no-split converts it)"


def convert(file: PhenopacketFile, hpo: HPO, report: ConversionReport, require_answer: bool = True,
            require_pmid: bool = True) -> Task | None:
    """One phenopacket -> a task (id: the phenopacket's own, made unique by :func:`convert_sources`),
    or None with the reason recorded in ``report``. Without ``require_answer`` an undiagnosed patient,
    or one with several causal genes, is a task with no answer."""
    try:
        packet = load_phenopacket(file.data)
        genes = causal_genes(packet)
        if require_answer and not genes:
            raise PhenopacketError(NO_CAUSAL_GENE)
        if require_answer and len(genes) > 1:
            raise PhenopacketError(f"{len(genes)} causal genes; a task has one answer")
        patient = read_patient(packet, hpo, report)
    except PhenopacketError as err:
        report.skip(file.origin, str(err))
        return None
    if not patient.present:
        report.skip(file.origin, NO_PRESENT_PHENOTYPE)
        return None
    pmid = publication(packet)
    if require_pmid and pmid is None:
        report.skip(file.origin, NO_PMID)
        return None
    own_id = packet.get("id")
    return Task(
        id=own_id.strip() if isinstance(own_id, str) and own_id.strip() else file.stem,
        present=patient.present,
        excluded=patient.excluded,
        sex=patient.sex,
        age_years=patient.age_years,
        answer=genes[0] if len(genes) == 1 else None,
        source={"kind": "phenopacket", **({"pmid": pmid} if pmid else {}), "file": file.origin},
    )


def convert_sources(sources: list[str | Path], hpo: HPO, require_answer: bool = True,
                    require_pmid: bool = True) -> tuple[list[Task], ConversionReport]:
    """Converts every phenopacket of the sources, in reading order; ids unique (module docstring)."""
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

"""GA4GH phenopacket v2 JSON -> a :class:`Patient`, and -> tasks. Only phenotypes, sex and age
reach a task.

Sources may be single files, folders (searched recursively) or ``.tar.xz``/``.tar.gz``/``.zip``
archives. A file that cannot be used is listed in the report with the reason; it never stops the
run. The task id and ``source.file`` are built so that they cannot name the gene: phenopacket ids,
subject ids and folder names often do.
"""

from __future__ import annotations

import json
import re
import tarfile
import zipfile
from collections import Counter, defaultdict
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
    """One file's bytes and where it came from (``origin`` is for the report, never the task)."""

    origin: str  # path, or archive path + "!" + member
    locator: str  # "<source name>:<ordinal>", gene-free, stored in the task's source.file
    data: bytes


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
    name = source.name
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if source.is_dir():
        for n, path in enumerate(sorted(p for p in source.rglob("*.json") if p.is_file()), 1):
            yield PhenopacketFile(str(path), f"{name}:{n}", path.read_bytes())
    elif source.name.lower().endswith((".tar.xz", ".txz", ".tar.gz", ".tgz")):
        with tarfile.open(source, "r:*") as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".json")),
                             key=lambda m: m.name)
            for n, member in enumerate(members, 1):
                handle = archive.extractfile(member)
                yield PhenopacketFile(f"{source}!{member.name}", f"{name}:{n}", handle.read() if handle else b"")
    elif source.name.lower().endswith(".zip"):
        with zipfile.ZipFile(source) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".json"))
            for n, member in enumerate(names, 1):
                yield PhenopacketFile(f"{source}!{member}", f"{name}:{n}", archive.read(member))
    elif source.suffix.lower() == ".json":
        yield PhenopacketFile(str(source), f"{name}:1", source.read_bytes())
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


def causal_genes(packet: dict) -> list[tuple[str, str]]:
    """``(symbol, HGNC id)`` of every causal gene named by the interpretations, deduplicated."""
    genes: dict[str, str] = {}
    for interpretation in packet.get("interpretations") or []:
        diagnosis = interpretation.get("diagnosis") or {}
        for gi in diagnosis.get("genomicInterpretations") or []:
            if gi.get("interpretationStatus") in ("REJECTED", "UNCERTAIN_SIGNIFICANCE"):
                continue
            context = gi.get("gene") or (
                ((gi.get("variantInterpretation") or {}).get("variationDescriptor") or {}).get("geneContext")
            )
            if context and context.get("symbol"):
                genes.setdefault(context["symbol"], context.get("valueId") or "")
    return list(genes.items())


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
        target = excluded if feature.get("excluded") else present
        if res.id not in target:
            target.append(res.id)
    both = [t for t in excluded if t in present]
    if both:
        report.present_and_excluded += len(both)
        excluded = [t for t in excluded if t not in present]
    subject = packet.get("subject") or {}
    sex = subject.get("sex")
    age = ((subject.get("timeAtLastEncounter") or {}).get("age") or {}).get("iso8601duration")
    return Patient(present, excluded, sex if sex in SEXES else None, age_in_years(age) if age else None,
                   list(dict.fromkeys(notes)))


def convert(file: PhenopacketFile, hpo: HPO, report: ConversionReport) -> Task | None:
    """One phenopacket -> a task, or None with the reason recorded in ``report``."""
    try:
        packet = load_phenopacket(file.data)
    except PhenopacketError as err:
        report.skip(file.origin, str(err))
        return None
    genes = causal_genes(packet)
    if not genes:
        report.skip(file.origin, "no causal gene in the interpretations")
        return None
    names = gene_names()
    approved = {names.normalise(symbol): hgnc for symbol, hgnc in genes}
    if len(approved) > 1:
        report.skip(file.origin, f"{len(approved)} causal genes; a task has one answer")
        return None
    try:
        patient = read_patient(packet, hpo, report)
    except PhenopacketError as err:
        report.skip(file.origin, str(err))
        return None
    if not patient.present:
        report.skip(file.origin, NO_PRESENT_PHENOTYPE)
        return None
    pmid = publication(packet)
    if pmid is None:
        report.skip(file.origin, "no PMID in metaData.externalReferences; cannot split by publication")
        return None
    symbol, hgnc = next(iter(approved.items()))
    gene = names.get(symbol)
    return Task(
        id="",  # assigned once all cases of the publication are known
        present=patient.present,
        excluded=patient.excluded,
        sex=patient.sex,
        age_years=patient.age_years,
        answer=Answer(symbol, gene.hgnc_id if gene else (hgnc or None)),
        source={"kind": "phenopacket", "pmid": pmid, "file": file.locator,
                "_order": str(packet.get("id") or file.origin)},
    )


def convert_sources(sources: list[str | Path], hpo: HPO) -> tuple[list[Task], ConversionReport]:
    """Converts every phenopacket of the sources; ids are ``PMID_<pmid>_<n>``, stable across runs."""
    report = ConversionReport()
    tasks: list[Task] = []
    for source in sources:
        for file in iter_phenopacket_files(source):
            report.files += 1
            task = convert(file, hpo, report)
            if task is not None:
                tasks.append(task)
    by_pmid: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_pmid[task.pmid].append(task)
    for pmid, group in by_pmid.items():
        group.sort(key=lambda t: t.source["_order"])
        for n, task in enumerate(group, 1):
            task.id = f"{pmid.replace(':', '_')}_{n}"
    for task in tasks:
        task.source.pop("_order")
    tasks.sort(key=lambda t: (t.pmid, int(t.id.rsplit("_", 1)[1])))
    return tasks, report

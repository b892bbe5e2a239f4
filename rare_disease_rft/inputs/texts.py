"""Text inputs: plain-text files, folders of them and PubMed exports -> documents; a text -> a patient.

``rdrft concepts`` writes what :func:`write_concepts` reads here; ``rdrft prepare texts``
(``data_prep.texts``) and the app's pasted text read the patient with :func:`patient_from_text`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from .case_reports import sex_and_age
from .concepts import PATIENT, RELATIVE, ConceptRecognizer
from .documents import Document, DocumentError, text_document
from .patient import Patient
from .pubmed import is_medline, is_pubmed_xml, read_medline, read_pubmed_xml

# Characters of the text kept either side of a recognised mention as its evidence.
EVIDENCE_CONTEXT = 40


def read_documents(inputs: list[str | Path]) -> Iterator[Document | DocumentError]:
    """Every document of the inputs, in order (folders: their ``.txt`` files sorted by path)."""
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not files:
                yield DocumentError(str(path), None, "folder holds no .txt files")
            for file in files:
                yield from _read_file(file)
        elif path.is_file():
            yield from _read_file(path)
        else:
            yield DocumentError(str(path), None, "no such file or folder")


def _read_file(path: Path) -> Iterator[Document | DocumentError]:
    try:
        data = path.read_bytes()
    except OSError as err:
        yield DocumentError(str(path), None, f"cannot be read: {err.strerror or err}")
        return
    if is_pubmed_xml(data):
        yield from read_pubmed_xml(data, str(path))
    elif is_medline(data):
        yield from read_medline(data, str(path))
    elif path.suffix.lower() == ".xml":
        yield DocumentError(str(path), None, "XML but not a PubmedArticleSet (PubMed efetch retmode=xml)")
    else:
        yield text_document(data, path)


def write_concepts(
    inputs: list[str | Path], out: str | Path, case_report: bool = False, recognizer: ConceptRecognizer | None = None
) -> tuple[int, list[DocumentError]]:
    """``rdrft concepts``: one JSON line per readable document; returns (lines written, errors)."""
    recognizer = recognizer or ConceptRecognizer.default()
    errors: list[DocumentError] = []
    written = 0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        for item in read_documents(inputs):
            if isinstance(item, DocumentError):
                errors.append(item)
                continue
            mentions = recognizer.annotate(item.text, case_report=case_report)
            line = {"doc": item.id, "concepts": [m.to_json() for m in mentions]}
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            written += 1
    return written, errors


def patient_from_text(text: str, recognizer: ConceptRecognizer, case_report: bool = False) -> Patient:
    """The present and excluded terms of a clinical note or article, sex and age, and where each
    term was read (the words around its first mention). Findings of relatives are not the patient's:
    they are left out, with a note."""
    mentions = recognizer.annotate(text, case_report=case_report)
    # a relative's finding is not the patient's, so the patient's own denial of it stands
    mine = [m for m in mentions if m.about == PATIENT]
    # as in a phenopacket: a term the text both states and negates of the patient counts as present
    present = list(dict.fromkeys(m.id for m in mine if not m.excluded))
    excluded = [t for t in dict.fromkeys(m.id for m in mine if m.excluded) if t not in present]
    relatives = [t for t in dict.fromkeys(m.id for m in mentions if m.about == RELATIVE)
                 if t not in present and t not in excluded]
    notes = [f"{recognizer.hpo.name(t)} ({t}) is stated of a relative, not the patient: left out" for t in relatives]
    evidence: dict[str, str] = {}
    for m in mine:
        if m.id not in evidence:
            start, end = max(0, m.start - EVIDENCE_CONTEXT), m.end + EVIDENCE_CONTEXT
            snippet = f"{'…' if start else ''}{text[start:m.start]}“{m.text}”{text[m.end:end]}" \
                      f"{'…' if end < len(text) else ''}"
            evidence[m.id] = " ".join(snippet.split())
    sex, age = sex_and_age(text)
    return Patient(present, excluded, sex, age, notes, evidence)

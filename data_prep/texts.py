"""Free-text case reports -> tasks (``rdrft prepare texts``); reading the texts is the input layer's.

Only HPO ids found by the recogniser reach a task, so gene names, variants and titles in the text
cannot: the answer comes from a separate table of document id -> gene symbol. Documents without
an answer, or in which no present phenotype is found, are listed in the report with the reason.
Documents without a PMID are one group for the publication split (their papers are unknown, so
they are kept on one side rather than risk one paper on two sides).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from collections import Counter
from pathlib import Path

from rare_disease_rft.genes import gene_names
from rare_disease_rft.hpo import HPO, load_hpo
from rare_disease_rft.inputs.concepts import ConceptRecognizer
from rare_disease_rft.inputs.documents import Document, DocumentError
from rare_disease_rft.inputs.texts import patient_from_text, read_documents
from rare_disease_rft.tasks import Answer, Task

from .prepare import write_task_set
from .split import DEFAULT_SEED


# ------------------------------------------------------------------------------ answers
def document_key(doc_id: str) -> str:
    """Ids compare without a PMID prefix: "PMID:123", "PMID_123" and "123" are one document."""
    return re.sub(r"^PMID[:_\s]*", "", doc_id.strip(), flags=re.IGNORECASE)


def read_answers(path: str | Path) -> dict[str, str]:
    """A CSV or TSV of document id -> gene symbol (first two columns; a header row is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"answers file {path} does not exist (a CSV/TSV of document id, gene symbol)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte at offset {err.start})") from None
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") or "\t" in text.split("\n", 1)[0] else ","
    answers: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and any(c.lower() in ("gene", "gene_symbol", "symbol") for c in cells):
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise ValueError(f"{path}:{number}: expected a document id and a gene symbol, got {row!r}")
        key = document_key(cells[0])
        if key in answers and answers[key] != cells[1]:
            raise ValueError(f"{path}:{number}: document {cells[0]} has two genes ({answers[key]}, {cells[1]})")
        answers[key] = cells[1]
    if not answers:
        raise ValueError(f"{path}: no answers in it (expected rows of document id, gene symbol)")
    return answers


# ------------------------------------------------------------------------------ tasks
def document_task(doc: Document, gene: str, recognizer: ConceptRecognizer) -> tuple[Task | None, str | None]:
    """A task from one document, or None and the reason it cannot be one."""
    names = gene_names()
    approved = names.get(gene)
    if approved is None:
        return None, f"answer gene '{gene}' is not an HGNC symbol, alias or previous symbol"
    patient = patient_from_text(doc.text, recognizer, case_report=True)
    if not patient.present:
        return None, "no present phenotype found in the text" + (
            f" ({len(patient.excluded)} excluded only)" if patient.excluded else "")
    source = {"kind": "case_report_text"}
    if doc.pmid:
        source["pmid"] = f"PMID:{doc.pmid}"
    return Task(id="", present=patient.present, excluded=patient.excluded, sex=patient.sex,
                age_years=patient.age_years, answer=Answer(approved.symbol, approved.hgnc_id), source=source), None


def prepare_texts(
    inputs: list[str | Path],
    answers_path: str | Path,
    out: str | Path,
    split: bool = True,
    seed: int = DEFAULT_SEED,
    hpo: HPO | None = None,
) -> dict:
    """``rdrft prepare texts``: documents -> tasks.jsonl (+ splits) and report.json."""
    started = time.perf_counter()
    hpo = hpo or load_hpo()
    recognizer = ConceptRecognizer.for_hpo(hpo)
    answers = read_answers(answers_path)
    tasks: list[Task] = []
    skipped: list[dict] = []
    read = 0
    for given in inputs:
        for ordinal, item in enumerate(read_documents([given]), 1):
            read += 1
            task, reason = None, None
            if isinstance(item, DocumentError):
                reason = item.reason
            elif document_key(item.id) not in answers:
                reason = f"no answer gene in {answers_path}"
            else:
                task, reason = document_task(item, answers[document_key(item.id)], recognizer)
            if reason is not None:
                skipped.append({"document": item.id, "file": item.source, "reason": reason})
                continue
            # the input's name and an ordinal: member file names may name the gene, as ids may
            task.source["file"] = f"{Path(given).name}:{ordinal}"
            task.id = _task_id(item)
            tasks.append(task)
    _number_duplicates(tasks)
    reasons = Counter(re.sub(r"'[^']*'", "'...'", s["reason"]) for s in skipped)
    return write_task_set(
        out,
        tasks,
        {
            "inputs": [str(i) for i in inputs],
            "answers": str(answers_path),
            "hpo_version": hpo.version,
            "documents_read": read,
            "skipped_count": len(skipped),
            "skipped_by_reason": dict(reasons.most_common()),
            "seconds": round(time.perf_counter() - started, 2),
            "skipped": skipped,
        },
        split=split,
        seed=seed,
    )


def _task_id(doc: Document) -> str:
    # A file stem may name the gene ("STXBP1_case.txt"); only PMIDs are used as they are.
    if doc.pmid:
        return f"PMID_{doc.pmid}"
    return "DOC_" + hashlib.sha256(doc.id.encode()).hexdigest()[:10]


def _number_duplicates(tasks: list[Task]) -> None:
    """``PMID_123`` -> ``PMID_123_1``, ``PMID_123_2`` ...: ids stay unique when a paper comes twice."""
    seen: Counter = Counter()
    for task in tasks:
        seen[task.id] += 1
        task.id = f"{task.id}_{seen[task.id]}"

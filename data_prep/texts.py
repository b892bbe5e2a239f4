"""Free-text case reports -> HPO concepts (``rdrft concepts``) and -> tasks (``rdrft prepare texts``).

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
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

from rare_disease_rft.genes import gene_names
from rare_disease_rft.hpo import HPO, load_hpo
from rare_disease_rft.tasks import Answer, Task

from .case_reports import sex_and_age
from .concepts import ConceptRecognizer
from .documents import Document, DocumentError, text_document
from .prepare import write_task_set
from .pubmed import is_medline, is_pubmed_xml, read_medline, read_pubmed_xml
from .split import DEFAULT_SEED


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
    mentions = recognizer.annotate(doc.text, case_report=True)
    present = list(dict.fromkeys(m.id for m in mentions if not m.excluded))
    excluded = [t for t in dict.fromkeys(m.id for m in mentions if m.excluded) if t not in present]
    if not present:
        return None, "no present phenotype found in the text" + (
            f" ({len(excluded)} excluded only)" if excluded else "")
    source = {"kind": "case_report_text"}
    if doc.pmid:
        source["pmid"] = f"PMID:{doc.pmid}"
    sex, age = sex_and_age(doc.text)
    return Task(id="", present=present, excluded=excluded, sex=sex, age_years=age,
                answer=Answer(approved.symbol, approved.hgnc_id), source=source), None


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

"""Documents: one text to read (a file or a PubMed article), or the reason it could not be read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Document:
    """One text to read: a PMID or file stem as ``id``; ``pmid`` only when the id is a PMID."""

    id: str
    text: str
    source: str
    pmid: str | None = None


@dataclass(frozen=True)
class DocumentError:
    """A document that could not be read, with the reason; the batch goes on without it."""

    source: str
    id: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.source}{f' [{self.id}]' if self.id else ''}: {self.reason}"


def text_document(data: bytes, path: Path) -> Document | DocumentError:
    """A plain-text file as one document named by its stem (a PMID if the stem is digits)."""
    stem = path.stem
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return DocumentError(str(path), stem, f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})")
    if not text.strip():
        return DocumentError(str(path), stem, "empty file")
    return Document(stem, text, str(path), stem if stem.isdigit() else None)

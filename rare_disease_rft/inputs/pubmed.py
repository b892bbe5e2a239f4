"""PubMed records -> documents: PubMed XML and MEDLINE files, and efetch by PMID (Biopython).

A document's text is the title, a newline, then the abstract (docs/SPEC.md). Structured abstracts are
joined as MEDLINE writes them ("BACKGROUND: ... METHODS: ..."), so an article reads the same
from XML and from MEDLINE. A record that cannot be read becomes a :class:`DocumentError` and the
other records of the file still come through.

Fetching follows NCBI's rules: an e-mail address is required (``email`` or ``NCBI_EMAIL``), at most
3 requests per second without an API key and 10 with one (``api_key`` or ``NCBI_API_KEY``), and
transient failures (HTTP 429 and 5xx, network errors) are retried with exponential backoff.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import time
from typing import Iterable, Iterator
from urllib.error import HTTPError, URLError

from Bio import Entrez, Medline

from .documents import Document, DocumentError

# Bio.Entrez ships this DTD; a file without a DOCTYPE is read as this version.
_DOCTYPE = (b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
            b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')
_INLINE_MARKUP = re.compile(r"</?(?:i|b|u|sup|sub|em|strong|sc|mml:\w+)(?:\s[^>]*)?/?>")
_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)
_ARTICLE_START = re.compile(rb"<PubmedArticle>")
_PMID_TAG = re.compile(rb"<PMID[^>]*>\s*(\d+)\s*</PMID>")
_MEDLINE_PMID = re.compile(rb"^PMID-\s*(\d+)", re.MULTILINE)
BATCH = 200  # PMIDs per efetch request; NCBI asks for batches rather than one request per id
MAX_ATTEMPTS = 4
BACKOFF_SECONDS = 2.0


def document_text(title: str, abstract: str) -> str:
    return f"{_clean(title)}\n{_clean(abstract)}"


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", _INLINE_MARKUP.sub("", str(text or ""))).strip()


# ------------------------------------------------------------------------------ PubMed XML
def is_pubmed_xml(data: bytes) -> bool:
    head = data[:2000].lstrip()
    return head.startswith(b"<") and (b"<PubmedArticleSet" in head or b"<PubmedArticle" in head)


def read_pubmed_xml(data: bytes, source: str) -> Iterator[Document | DocumentError]:
    """The articles of a PubmedArticleSet (efetch ``retmode=xml``)."""
    if b"<!DOCTYPE" not in data[:2000]:
        data = _with_doctype(data)
    try:
        records = Entrez.read(io.BytesIO(data))
    except Exception as err:  # Bio.Entrez raises ValueError subclasses and expat errors alike
        # A broken file: read each article on its own so one bad record costs only itself.
        articles = list(_ARTICLE.finditer(data))
        unclosed = _ARTICLE_START.search(data, articles[-1].end() if articles else 0)
        if not articles and unclosed is None:
            yield DocumentError(source, None, f"not readable PubMed XML: {_first_line(err)}")
            return
        for article in articles:
            yield from _read_one_article(article.group(), source)
        if unclosed is not None:  # the file ends inside an article: a download cut short
            match = _PMID_TAG.search(data, unclosed.end())
            yield DocumentError(source, match.group(1).decode() if match else None,
                                "truncated PubMed XML record: the file ends before its </PubmedArticle>")
        return
    if not isinstance(records, dict) or "PubmedArticle" not in records:
        yield DocumentError(source, None, "XML but not a PubmedArticleSet")
        return
    for article in records["PubmedArticle"]:
        yield _article_document(article, source)
    for book in records.get("PubmedBookArticle", []):
        pmid = str(book.get("BookDocument", {}).get("PMID", "")) or None
        yield DocumentError(source, pmid, "a book record, not a journal article")


def _read_one_article(raw: bytes, source: str) -> Iterator[Document | DocumentError]:
    match = _PMID_TAG.search(raw)
    pmid = match.group(1).decode() if match else None
    try:
        records = Entrez.read(io.BytesIO(_with_doctype(b"<PubmedArticleSet>" + raw + b"</PubmedArticleSet>")))
    except Exception as err:  # as above: any parser failure is this record's error line
        yield DocumentError(source, pmid, f"malformed PubMed XML record: {_first_line(err)}")
        return
    for article in records["PubmedArticle"]:
        yield _article_document(article, source)


def _with_doctype(data: bytes) -> bytes:
    body = re.sub(rb"^\s*<\?xml[^>]*\?>", b"", data, count=1)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + _DOCTYPE + b"\n" + body.lstrip()


def _article_document(record: dict, source: str) -> Document | DocumentError:
    citation = record.get("MedlineCitation", {})
    pmid = str(citation.get("PMID", "")).strip() or None
    article = citation.get("Article", {})
    title = str(article.get("ArticleTitle", "") or article.get("VernacularTitle", ""))
    sections = article.get("Abstract", {}).get("AbstractText", [])
    abstract = " ".join(
        f"{part.attributes['Label']}: {part}" if getattr(part, "attributes", {}).get("Label") else str(part)
        for part in sections
    )
    if pmid is None:
        return DocumentError(source, None, "article without a PMID")
    if not _clean(title) and not _clean(abstract):
        return DocumentError(source, pmid, "article with neither title nor abstract")
    return Document(pmid, document_text(title, abstract), source, pmid)


# ------------------------------------------------------------------------------ MEDLINE
def is_medline(data: bytes) -> bool:
    return data.lstrip()[:5] == b"PMID-"


def read_medline(data: bytes, source: str) -> Iterator[Document | DocumentError]:
    """The records of a MEDLINE file (efetch ``rettype=medline``), each decoded on its own."""
    for chunk in re.split(rb"\r?\n\s*\r?\n", data):
        if not chunk.strip():
            continue
        match = _MEDLINE_PMID.search(chunk)
        pmid = match.group(1).decode() if match else None
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as err:
            reason = f"not UTF-8 (byte 0x{chunk[err.start]:02x} at offset {err.start} of the record)"
            yield DocumentError(source, pmid, reason)
            continue
        records = list(Medline.parse(io.StringIO(text)))
        if pmid is None or not records:
            yield DocumentError(source, pmid, "MEDLINE record without a PMID line")
            continue
        record = records[0]
        title, abstract = record.get("TI", ""), record.get("AB", "")
        if not _clean(title) and not _clean(abstract):
            yield DocumentError(source, pmid, "record with neither title (TI) nor abstract (AB)")
            continue
        yield Document(pmid, document_text(title, abstract), source, pmid)


# ------------------------------------------------------------------------------ efetch
class RateLimiter:
    """At most ``per_second`` calls per second (NCBI: 3 without an API key, 10 with one)."""

    def __init__(self, per_second: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._last: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self._sleep(self.interval - (now - self._last))
            now = self._clock()
        self._last = now


def fetch_pubmed(
    pmids: Iterable[str],
    email: str | None = None,
    api_key: str | None = None,
    sleep=time.sleep,
) -> Iterator[Document | DocumentError]:
    """Fetches abstracts by PMID with ``Bio.Entrez.efetch``, in batches, politely."""
    email = email or os.environ.get("NCBI_EMAIL")
    if not email:
        raise ValueError("NCBI asks for an e-mail address with every request: pass email= or set NCBI_EMAIL")
    api_key = api_key or os.environ.get("NCBI_API_KEY") or None
    ids = [_plain_pmid(p) for p in pmids]
    Entrez.email, Entrez.api_key, Entrez.tool = email, api_key, "rare-disease-rft"
    Entrez.max_tries = 1  # retries and backoff are done here, where they can be seen and tested
    limiter = RateLimiter(10 if api_key else 3, sleep=sleep)
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        try:
            data = _efetch_with_retries(batch, limiter, sleep)
        except (HTTPError, URLError, http.client.HTTPException, OSError) as err:
            for pmid in batch:
                yield DocumentError("efetch", pmid, f"fetch failed after {MAX_ATTEMPTS} attempts: {err}")
            continue
        documents = list(read_pubmed_xml(data, "efetch"))
        yield from documents
        returned = {d.id for d in documents}
        for pmid in batch:
            if pmid not in returned:
                yield DocumentError("efetch", pmid, "PubMed returned no record for this PMID")


def _efetch_with_retries(batch: list[str], limiter: RateLimiter, sleep) -> bytes:
    attempt = 1
    while True:
        limiter.wait()
        try:
            with Entrez.efetch(db="pubmed", id=",".join(batch), retmode="xml") as handle:
                return handle.read()
        except HTTPError as err:
            if err.code != 429 and err.code < 500 or attempt == MAX_ATTEMPTS:
                raise  # a bad request does not get better by asking again
        except (URLError, http.client.HTTPException, OSError):
            if attempt == MAX_ATTEMPTS:
                raise
        sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        attempt += 1


def _plain_pmid(pmid: str) -> str:
    digits = re.sub(r"^\s*PMID[:_\s]*", "", str(pmid), flags=re.IGNORECASE).strip()
    if not digits.isdigit():
        raise ValueError(f"'{pmid}' is not a PMID (expected digits, e.g. 27656288 or PMID:27656288)")
    return digits


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]

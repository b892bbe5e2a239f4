"""PubMed readers and efetch. The efetch tests answer from fixture files through a fake HTTP layer
(``Bio.Entrez.urlopen``); they never reach the live service."""

import email.message
import io
import json
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlparse

import pytest

from rare_disease_rft.cli import main
from rare_disease_rft.inputs import pubmed
from rare_disease_rft.inputs.documents import Document, DocumentError
from rare_disease_rft.inputs.pubmed import RateLimiter, fetch_pubmed, read_medline, read_pubmed_xml

FIXTURES = Path(__file__).parent / "fixtures" / "pubmed"
EFETCH_XML = (FIXTURES / "efetch_pubmed.xml").read_bytes()

FIRST_TEXT = ("A novel STXBP1 variant in a girl with epileptic encephalopathy.\n"
              "BACKGROUND: Variants in this gene cause early-onset epilepsy. CASE PRESENTATION: We report a "
              "4-year-old girl with seizures and global developmental delay. She had no microcephaly.")


def test_pubmed_xml_one_document_per_article():
    docs = list(read_pubmed_xml(EFETCH_XML, "x.xml"))
    assert [d.id for d in docs] == ["30000001", "30000002"]
    assert docs[0] == Document("30000001", FIRST_TEXT, "x.xml", "30000001")
    assert docs[1].text == ("Hypotonia and ataxia in two brothers.\n"
                            "Two brothers presented with hypotonia and cerebellar ataxia. Seizures were absent.")


def test_xml_without_doctype_is_read_as_the_bundled_dtd():
    data = EFETCH_XML.replace(EFETCH_XML[EFETCH_XML.index(b"<!DOCTYPE"):EFETCH_XML.index(b"<PubmedArticleSet>")], b"")
    assert [d.id for d in read_pubmed_xml(data, "x.xml")] == ["30000001", "30000002"]


def test_malformed_article_is_one_error_and_the_rest_goes_on():
    items = list(read_pubmed_xml((FIXTURES / "broken.xml").read_bytes(), "broken.xml"))
    assert items[0] == Document("30000003", "Short stature in a boy.\nHe had short stature and scoliosis.",
                                "broken.xml", "30000003")
    assert isinstance(items[1], DocumentError) and items[1].id == "30000004"
    assert items[1].reason.startswith("malformed PubMed XML record")
    assert len(items) == 2


def test_unreadable_xml_is_one_error():
    [error] = read_pubmed_xml(b"<PubmedArticleSet><oops", "bad.xml")
    assert error.source == "bad.xml" and error.id is None and error.reason.startswith("not readable PubMed XML")


def test_medline_records_and_a_record_with_bad_bytes():
    items = list(read_medline((FIXTURES / "articles.medline").read_bytes(), "a.medline"))
    assert items[0] == Document(
        "30000005",
        "Cataract and nystagmus in an infant.\nBACKGROUND: Congenital cataract is rare. CASE: The infant had "
        "bilateral cataract and no hypotonia.", "a.medline", "30000005")
    assert items[1] == Document("30000006", "Ptosis in a woman.\nShe had ptosis.", "a.medline", "30000006")
    assert items[2] == DocumentError("a.medline", "30000007", "not UTF-8 (byte 0xff at offset 31 of the record)")
    assert str(items[2]) == "a.medline [30000007]: not UTF-8 (byte 0xff at offset 31 of the record)"


def test_xml_and_medline_give_the_same_text_for_a_structured_abstract():
    medline = (b"PMID- 30000001\nTI  - A novel STXBP1 variant in a girl with epileptic encephalopathy.\n"
               b"AB  - BACKGROUND: Variants in this gene cause early-onset epilepsy. CASE PRESENTATION: We\n"
               b"      report a 4-year-old girl with seizures and global developmental delay. She had no\n"
               b"      microcephaly.\n")
    [doc] = read_medline(medline, "m")
    assert doc.text == FIRST_TEXT


# ------------------------------------------------------------------------------ efetch
class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, url: str):
        super().__init__(data)
        self.url = url
        self.headers = email.message.Message()
        self.headers["Content-Type"] = "text/xml; charset=UTF-8"


class RecordedEntrez:
    """Stands in for the HTTP layer: answers each request with the next recorded outcome."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.requests = []

    def __call__(self, request):
        url = request.full_url if request.data is None else request.full_url + "?" + request.data.decode()
        self.requests.append(parse_qs(urlparse(url).query))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return FakeResponse(outcome, url)


@pytest.fixture
def entrez(monkeypatch):
    def install(*outcomes):
        recorded = RecordedEntrez(outcomes)
        monkeypatch.setattr("Bio.Entrez.urlopen", recorded)
        monkeypatch.setattr("Bio.Entrez._open.previous", 0)
        monkeypatch.setattr("Bio.Entrez.time.sleep", lambda s: None)
        return recorded
    return install


def test_fetch_sends_email_tool_and_ids_and_reads_the_response(entrez):
    recorded = entrez(EFETCH_XML)
    sleeps = []
    docs = list(fetch_pubmed(["PMID:30000001", "30000002"], email="dev@example.org", sleep=sleeps.append))
    assert [d.id for d in docs] == ["30000001", "30000002"]
    assert docs[0].text == FIRST_TEXT and docs[0].source == "efetch"
    [params] = recorded.requests
    assert params["db"] == ["pubmed"] and params["id"] == ["30000001,30000002"]
    assert params["email"] == ["dev@example.org"] and params["tool"] == ["rare-disease-rft"]
    assert "api_key" not in params and sleeps == []


def test_fetch_reports_pmids_pubmed_did_not_return(entrez):
    entrez(EFETCH_XML)
    items = list(fetch_pubmed(["30000001", "30000002", "39999999"], email="dev@example.org", sleep=lambda s: None))
    assert items[-1] == DocumentError("efetch", "39999999", "PubMed returned no record for this PMID")


def test_fetch_retries_transient_errors_with_backoff(entrez, monkeypatch):
    busy = HTTPError("https://eutils", 503, "Service Unavailable", email.message.Message(), None)
    recorded = entrez(busy, URLError("connection reset"), EFETCH_XML)
    sleeps = []
    monkeypatch.setattr(pubmed.RateLimiter, "wait", lambda self: None)
    docs = list(fetch_pubmed(["30000001", "30000002"], email="dev@example.org", api_key="KEY", sleep=sleeps.append))
    assert [d.id for d in docs] == ["30000001", "30000002"]
    assert sleeps == [2.0, 4.0]  # exponential backoff
    assert len(recorded.requests) == 3 and recorded.requests[0]["api_key"] == ["KEY"]


def test_fetch_does_not_retry_a_bad_request(entrez):
    bad = HTTPError("https://eutils", 400, "Bad Request", email.message.Message(), None)
    recorded = entrez(bad)
    [error] = fetch_pubmed(["30000001"], email="dev@example.org", sleep=lambda s: None)
    assert error.id == "30000001" and "400" in error.reason
    assert len(recorded.requests) == 1


def test_fetch_needs_an_email(monkeypatch):
    monkeypatch.delenv("NCBI_EMAIL", raising=False)
    with pytest.raises(ValueError, match="e-mail"):
        list(fetch_pubmed(["1"]))


def test_fetch_rejects_what_is_not_a_pmid():
    with pytest.raises(ValueError, match="'abc' is not a PMID"):
        list(fetch_pubmed(["abc"], email="dev@example.org"))


def test_rate_limiter_spaces_requests():
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 3))
        now[0] += seconds

    limiter = RateLimiter(3, clock=lambda: now[0], sleep=sleep)
    limiter.wait()
    limiter.wait()
    now[0] += 0.1
    limiter.wait()
    assert slept == [0.333, 0.233]
    assert RateLimiter(10).interval == pytest.approx(0.1)


def test_a_truncated_last_article_is_reported_not_lost(tmp_path, capsys):
    cut = EFETCH_XML[:EFETCH_XML.index(b"Two brothers presented")]  # a download that stopped inside article 2
    items = list(read_pubmed_xml(cut, "cut.xml"))
    assert items[0] == Document("30000001", FIRST_TEXT, "cut.xml", "30000001")
    assert items[1] == DocumentError("cut.xml", "30000002",
                                     "truncated PubMed XML record: the file ends before its </PubmedArticle>")
    assert len(items) == 2
    (tmp_path / "cut.xml").write_bytes(cut)
    assert main(["concepts", str(tmp_path / "cut.xml"), "--jsonl", str(tmp_path / "out.jsonl")]) == 0
    assert f"rdrft concepts: {tmp_path / 'cut.xml'} [30000002]: truncated PubMed XML record" in capsys.readouterr().err
    assert [json.loads(line)["doc"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == ["30000001"]


def test_a_file_holding_only_a_truncated_article_names_its_pmid():
    cut = EFETCH_XML[:EFETCH_XML.index(b"Variants in this gene")]
    assert list(read_pubmed_xml(cut, "cut.xml")) == [DocumentError(
        "cut.xml", "30000001", "truncated PubMed XML record: the file ends before its </PubmedArticle>")]

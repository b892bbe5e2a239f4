"""What the clinician has said about the patient, from any of the app's inputs.

Plain Python (no Streamlit), so the page only lays things out. Reading a text or a phenopacket is
the input layer's (:mod:`rare_disease_rft.inputs`); this adds the page's limits and messages.
Every input path ends in :meth:`PatientEntry.add`, which maps obsolete and alternative ids (with a note) and names the ids it
cannot use; anything else a user can get wrong raises :class:`InputError` with the message the
page shows. Nothing here writes or logs patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from rare_disease_rft.hpo import HPO
from rare_disease_rft.inputs.concepts import ConceptRecognizer
from rare_disease_rft.inputs.patient import Patient
from rare_disease_rft.inputs.phenopackets import NO_PRESENT_PHENOTYPE, PhenopacketError, load_phenopacket, read_patient
from rare_disease_rft.inputs.texts import patient_from_text
from rare_disease_rft.rankers import Case
from rare_disease_rft.rankers.base import both_ways_note

PRESENT, EXCLUDED = "present", "excluded"
# A full case report is 20-60 thousand characters; recognising 100,000 takes about 0.3 s.
MAX_TEXT_CHARS = 100_000
# Phenopackets of one patient are a few kilobytes; this also caps the JSON parser's memory.
MAX_UPLOAD_MB = 1
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1_000_000
# More terms than any case report lists; keeps a crafted link from making the page crawl.
MAX_TERMS = 300


class InputError(ValueError):
    """Input the app cannot use; the message is written for the page."""


@dataclass
class PatientTerm:
    id: str
    label: str
    status: str  # PRESENT or EXCLUDED
    source: str  # how it was entered: search, text, phenopacket or link
    evidence: str | None = None  # the words of the pasted text it was read from


@dataclass
class PatientEntry:
    """The patient as entered on the page: the editable list of terms, sex and age being ranked.

    Terms follow the library's one rule (``rankers.base.read_terms``), as on the command line: a
    term given excluded that is listed present (or the other way round) is present, with the same
    note. Flipping a term's status in the list is the clinician's explicit choice and is kept.
    """

    terms: dict[str, PatientTerm] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what became of the ids given: mapped, given both ways
    sex: str | None = None
    age_years: float | None = None
    #: the note of each term given both ways, dropped when the clinician changes or removes the term
    both_ways: dict[str, str] = field(default_factory=dict)

    def add(self, hpo: HPO, given_ids: list[str], status: str, source: str,
            evidence: Mapping[str, str] | None = None) -> list[str]:
        """Adds (or re-marks) terms; returns why each unusable id cannot be used."""
        if len(self.terms) + len(given_ids) > MAX_TERMS:
            raise InputError(f"A patient can have at most {MAX_TERMS} terms; {len(self.terms)} are listed and "
                             f"{len(given_ids)} more were given.")
        resolved = hpo.resolve_all(given_ids)
        self._note(*resolved.notes)
        for term_id in resolved.ids:
            listed = self.terms.get(term_id)
            given = status
            if listed is not None and listed.status != status:
                given = PRESENT
                self.both_ways[term_id] = both_ways_note(hpo, term_id)
                self._note(self.both_ways[term_id])
            self.terms[term_id] = PatientTerm(term_id, hpo.name(term_id), given, source,
                                              (evidence or {}).get(term_id))
        return list(resolved.unknown.values())

    def _note(self, *notes: str) -> None:
        self.notes.extend(n for n in notes if n not in self.notes)

    def _forget_both_ways(self, term_id: str) -> None:
        note = self.both_ways.pop(term_id, None)
        if note in self.notes:
            self.notes.remove(note)

    def remove(self, term_id: str) -> None:
        self.terms.pop(term_id, None)
        self._forget_both_ways(term_id)

    def set_status(self, term_id: str, status: str) -> None:
        self.terms[term_id].status = status
        self._forget_both_ways(term_id)

    def ids(self, status: str) -> list[str]:
        return [t.id for t in self.terms.values() if t.status == status]

    def case(self, hpo: HPO, notes: list[str] | None = None) -> Case:
        """The ranker's view of the patient (``Case.from_ids``, the command line's rule); HPOError when
        no phenotype is present. What the rule did with the list (an excluded term a present one
        contradicts, a term outside the phenotype branch) is added to ``notes``, for the ranking."""
        return Case.from_ids(hpo, self.ids(PRESENT), self.ids(EXCLUDED), sex=self.sex, age_years=self.age_years,
                             notes=notes)

    def link_query(self) -> str:
        """The query string of a deep link that reopens this ranking."""
        query = "present=" + ",".join(self.ids(PRESENT))
        excluded = self.ids(EXCLUDED)
        return query + ("&excluded=" + ",".join(excluded) if excluded else "")


# ------------------------------------------------------------------------------ deep links
def link_ids(query_params) -> tuple[list[str], list[str]]:
    """``?present=HP:1,HP:2&excluded=HP:3`` -> (present, excluded) ids as given; a parameter given
    twice (``?present=A&present=B``) counts every time (``st.query_params.get_all``)."""
    def split(name: str) -> list[str]:
        return [part.strip() for value in query_params.get_all(name) for part in value.split(",") if part.strip()]

    return split(PRESENT), split(EXCLUDED)


# ------------------------------------------------------------------------------ pasted text
def read_text(recognizer: ConceptRecognizer, text: str, case_report: bool) -> Patient:
    """The present and excluded terms of a clinical note or article, with where each was read."""
    if not text.strip():
        raise InputError("Paste a clinical note or an abstract first: the text box is empty.")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"The text is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}. "
                         "Paste the case description only (for an article: its case report section).")
    return patient_from_text(text, recognizer, case_report)


# ------------------------------------------------------------------------------ phenopackets
def read_phenopacket(data: bytes, hpo: HPO) -> Patient:
    """A GA4GH phenopacket (JSON) of one patient -> its terms, sex and age, with notes on mapped ids."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"The file is {len(data) / 1e6:.1f} MB; a phenopacket of one patient is a few kB, "
                         f"and the limit is {MAX_UPLOAD_MB} MB.")
    try:
        patient = read_patient(load_phenopacket(data), hpo)
    except PhenopacketError as err:
        raise InputError(f"This file cannot be used: {err}. Upload a GA4GH phenopacket (JSON).") from None
    if not patient.present:
        raise InputError(f"This phenopacket cannot be used: {NO_PRESENT_PHENOTYPE}.")
    return patient

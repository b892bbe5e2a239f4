"""Which parts of a case report are about the patient (the rules are described in .concepts).

A document is read as paragraphs (lines). The first is the title. A short line without a final
full stop that names a known section ("2. Case Report", "DISCUSSION", "Materials and methods")
is a heading; the paragraphs under it take its kind. Sub-headings the vocabulary does not know
("Anorectal malformation") keep the kind of the section they are in. Each sentence is then kept
or not according to the kind of its section and the cues in it; labels of structured abstracts
("CASE PRESENTATION: ...") switch the kind inside a paragraph, and lines with tabs are table rows.
"""

from __future__ import annotations

import bisect
import re
from typing import Callable

from .sentences import sentences

CASE, BACKGROUND, DISCUSSION, ADMIN, TITLE, TABLE = "case", "background", "discussion", "admin", "title", "table"

_HEADINGS = [
    # admin first: "Ethics approval and consent" and "Data availability" must not read as case text
    (ADMIN, r"method|material|consent|ethic|funding|acknowledg|contribution|competing|conflict|disclosure|"
            r"reference|abbreviation|availability|supplement|publisher|citation|author|declaration|"
            r"sequencing|statistic|analys[ie]s|pcr|assay|culture|blot|genotyping|in silico|vector|plasmid|"
            r"cell lines?|database|web resources|accession|query|queries"),
    (BACKGROUND, r"introduction|background|purpose|objective|aim"),
    (DISCUSSION, r"discussion|conclusion|comment|review|summary|key (clinical )?message|perspective"),
    (CASE, r"case|patient|proband|subject|clinical|presentation|report|famil|pedigree|phenotyp|findings|"
           r"examination|history|description|results?|observation|individual|sib"),
]
_HEADING_KIND = [(kind, re.compile(rf"\b(?:{words})", re.IGNORECASE)) for kind, words in _HEADINGS]
_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_PER_YEAR = {"year": 1.0, "month": 12.0, "week": 365.25 / 7, "day": 365.25}
_SEX_WORDS = {"girl": "FEMALE", "female": "FEMALE", "woman": "FEMALE", "lady": "FEMALE",
              "boy": "MALE", "male": "MALE", "man": "MALE", "gentleman": "MALE"}
_AGE_SEX = re.compile(
    r"\b(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")[- ‐](year|month|week|day)s?[- ‐]old\s+"
    r"(?:[A-Za-z]+\s+){0,3}?(girl|boy|female|male|woman|man|lady|gentleman|infant|child|baby|neonate|patient|proband|"
    r"sister|brother|sibling|sib|twin|mother|father|cousin)\b",
    re.IGNORECASE,
)
_SEVERAL_PATIENTS = re.compile(
    r"\b(?:(?:case|patient|proband|subject|individual)\s*(?:2|II|B)\b|(?:both|two|three|four|five|six|several|"
    r"all)\s+(?:affected\s+)?(?:patients|cases|siblings|sibs|brothers|sisters|children|individuals|probands))\b",
    re.IGNORECASE,
)
_INLINE_LABEL = re.compile(r"([A-Z][A-Z /&-]{2,40}):\s")
_NUMBERING = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[IVX]+\.|[A-H]\.)\s*")

# A sentence about this patient (or these patients): a determiner that points at them, pronouns
# for one person, ages and examination findings.
_PATIENT_CUE = re.compile(
    r"\b(?:(?:our|this|these|the present|the index|the|both|all|each)\s+(?:two\s+|three\s+|four\s+|affected\s+|"
    r"female\s+|male\s+|young\s+)?(?:patients?|proband|probands|cases?|child|children|boy|girls?|infants?|"
    r"neonates?|newborns?|fetus|men|man|woman|women|subjects?|individuals?|sibs|siblings|brothers|sisters|twins)|"
    r"proband|index case|patient\s+(?:\d+|[A-Z]\b|[IVX]+-\d+)|case\s+\d+|he|she|his|her|him|"
    r"we (?:report|describe|present)|(?:at|by) (?:the )?age of|\d+[- ](?:year|month|week|day)s?[- ]old|"
    r"was born|were born|on (?:physical |clinical )?examination|physical examination|presented (?:with|to|at)|"
    r"was (?:referred|admitted|diagnosed|noted|found)|were (?:noted|found|observed)|showed|revealed)\b",
    re.IGNORECASE,
)
# A sentence about the disease in general or about published patients.
_GENERAL_CUE = re.compile(
    r"\b(?:(?:is|are) characteri[sz]ed by|characteristic (?:features|findings)|has been (?:reported|described|"
    r"associated)|have been (?:reported|described|associated|identified)|(?:was|were) (?:previously )?"
    r"(?:reported|described) (?:in|by)|previously (?:reported|described)|et al|in the literature|literature|"
    r"typically|commonly|frequently|usually|classically|hallmark|is an? (?:rare|autosomal|genetic|heterogeneous|"
    r"inherited|congenital|clinically)|are a (?:group|rare)|includ(?:e|es|ing)\s+(?:the\s+)?(?:following|features)|"
    r"differential diagnos[ie]s|(?:other|previous|reported|published|known|most|many|some)\s+(?:patients|cases|"
    r"individuals)|patients with|individuals with|(?:mice|mouse|zebrafish|model))\b",
    re.IGNORECASE,
)
# A relative named in the text: a sentence of a case section that names one is about relatives,
# not the patient, and a finding stated of one is not the patient's (.concepts). Siblings count
# with a possessive only ("her brother"): case reports of siblings call the patients "the
# brothers". The lookahead on first letters makes the scan fast: few places start such a word.
KIN = re.compile(
    r"\b(?=[fmpgduacnrht])(?:family history|maternal|paternal|(?:grand)?(?:mother|father|parent)s?|mom|dad|"
    r"uncles?|aunts?|cousins?|nieces?|nephews?|relatives?|(?:his|her|their)\s+(?:(?:older|younger|elder|big|"
    r"little|twin|half)[- ]?)?(?:sisters?|brothers?|siblings?|sibs?|twin))\b",
    re.IGNORECASE,
)
_STRONG_PATIENT_CUE = re.compile(
    r"\b(?:our|this|the present|the index)\s+(?:patients?|proband|case|child|boy|girl|family)|proband|"
    r"in (?:this|the present|our) (?:case|report|patient|family)|(?:he|she) (?:had|has|was|showed|presented)\b",
    re.IGNORECASE,
)


def heading_kind(line: str) -> str | None:
    """The kind of section a line heads, or None if it is not a heading."""
    stripped = line.strip()
    if not stripped or len(stripped) > 80 or "\t" in line or stripped.endswith((".", ",", ";")):
        return None
    words = _NUMBERING.sub("", stripped)
    if len(words.split()) > 10:
        return None
    for kind, pattern in _HEADING_KIND:
        if pattern.search(words):
            return kind
    return None


def keep_sentence(sentence: str, kind: str) -> bool:
    """Whether a sentence of a section of this kind is about the patient."""
    if kind == TITLE:
        return True
    if kind in (DISCUSSION, TABLE):
        # Discussions restate the case or compare with published patients, and table rows set the
        # patient beside the literature in columns text cannot tell apart: on the JAX tuning half,
        # the terms only these gave were right 1 time in 14 (discussion) and 2 in 27 (tables).
        return False
    if _STRONG_PATIENT_CUE.search(sentence):
        return True
    if KIN.search(sentence) or _GENERAL_CUE.search(sentence):
        return False
    # case sections are about the patient unless a sentence says otherwise; elsewhere it must say so
    return kind == CASE or _PATIENT_CUE.search(sentence) is not None


def patient_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` that are about the patient, in order."""
    return [(start, end) for start, end, _, kept in classify_sentences(text) if kept]


def classify_sentences(text: str) -> list[tuple[int, int, str, bool]]:
    """Every sentence as (start, end, kind of its section, whether it is about the patient)."""
    out: list[tuple[int, int, str, bool]] = []
    kind: str | None = None  # no heading seen yet: each paragraph is judged by its own sentences
    start = 0
    for number, line in enumerate(text.split("\n")):
        end = start + len(line)
        heading = heading_kind(line) if number else None
        if heading is not None:
            kind = heading
        else:
            line_sentences = sentences(text, start, end)
            line_kind = TITLE if number == 0 else kind or _paragraph_kind(text, line_sentences)
            if "\t" in line:
                line_kind = TABLE
            for s_start, s_end in line_sentences:
                label = _INLINE_LABEL.match(text, s_start, s_end)
                if label and heading_kind(label.group(1)):
                    # "CASE PRESENTATION: ..." in a structured abstract switches the section
                    line_kind = heading_kind(label.group(1))
                    if number:
                        kind = line_kind
                out.append((s_start, s_end, line_kind, keep_sentence(text[s_start:s_end], line_kind)))
        start = end + 1
    return out


def _paragraph_kind(text: str, spans: list[tuple[int, int]]) -> str:
    """A paragraph outside any known section is case text when a third of its sentences point at the patient."""
    cues = sum(1 for s, e in spans if _PATIENT_CUE.search(text, s, e))
    return CASE if cues and cues * 3 >= len(spans) else BACKGROUND


def sex_and_age(text: str) -> tuple[str | None, float | None]:
    """The patient's sex and age when the text about the patient states them one way only
    ("a 4-year-old girl"); (None, None) when it does not, describes several patients, or also gives
    a relative's age (then which age is the patient's is not safe to guess)."""
    stated = set()
    for start, end, _, kept in classify_sentences(text):
        if kept:
            if _SEVERAL_PATIENTS.search(text, start, end):
                return None, None
            for m in _AGE_SEX.finditer(text, start, end):
                number = m.group(1).lower()
                value = float(_NUMBER_WORDS.get(number, number)) / _PER_YEAR[m.group(2).lower()]
                stated.add((_SEX_WORDS.get(m.group(3).lower()), round(value, 3)))
    if len(stated) != 1:
        return None, None
    return next(iter(stated))


def about_patient(text: str) -> Callable[[int], bool]:
    """A test of whether the character at an offset of ``text`` lies in a sentence about the patient."""
    spans = patient_spans(text)
    starts = [s for s, _ in spans]

    def inside(offset: int) -> bool:
        i = bisect.bisect_right(starts, offset) - 1
        return i >= 0 and offset < spans[i][1]

    return inside

"""Text -> HPO mentions: dictionary matching over labels and synonyms, negation, and who is meant.

Matching
    Text is cut into segments at sentence ends and at ``, ; : ( ) [ ]``; a mention never crosses
    a segment edge. Words are normalised (case, accents, British spelling, plurals, adjective and
    noun forms such as *hypoplastic*/*hypoplasia*, *renal*/*kidney*, *patellar*/*patella*,
    *cutaneous*/*skin*, *shape*/*morphology*, and an -ed participle as its -ing form,
    *bridged*/*bridging*) and every window of words in
    a segment whose *multiset* of content words equals that of a label or synonym is a candidate,
    so word order and little words do not matter ("corpus callosum hypoplasia" finds "Hypoplasia
    of the corpus callosum"). A window read across "of" ends with its noun phrase: it does not
    stop before a word that belongs to some term, so "hyperplasia of the mandibular coronoid
    processes" is not "mandibular hyperplasia". Hyphenated words are tried both split and joined
    ("hyper-extensible" finds "Hyperextensible skin"). A label or synonym with a qualifier such as
    localized, generalized, multiple or recurrent also matches without it, below every label and
    synonym and only when two words or more remain ("skin lesions": Localized skin lesion; "episodes
    of pneumonia": Recurrent pneumonia, whose synonym is "Pneumonia, recurrent episodes"); the idea
    and the word list are FastHPOCR's "void tokens". Laboratory terms also match without
    "concentration"/"level", and a measure may be stated across "was"/"were" ("serum copper was
    low"). Of overlapping candidates the one with the most words wins (longest match); a key
    shared by several terms goes to the term whose label it is, else to the term with fewer
    synonyms, else the lowest id.
    Only phenotypic-abnormality terms (under HP:0000118) are indexed: modes of inheritance, onset
    and frequency terms describe no patient finding and are the commonest false hits.

Coordination
    "A and B N" ("or", "nor" alike) is also read with each side dropped in turn, as "A N" and
    "B N": "cleft lip and palate" gives cleft lip and cleft palate, "posterior subcapsular or
    capsular cataract" gives posterior subcapsular cataract and posterior capsular cataract. Such a
    reading spans the whole phrase; it is kept when a mention read plainly lies under it ("capsular
    cataract") and every plain mention it overlaps lies inside it, and of one remainder only the
    longest readings count. Both sides must be words of some term, and a negator is no modifier
    ("hypotonia and no seizures" says nothing about hypotonic seizures).

Abbreviations
    Upper-case synonyms of three letters or more ("VSD", "GERD") match case-sensitively as whole
    words. An abbreviation defined in the text ("intellectual disability (ID)") maps to the term of
    its long form for the rest of that text; one defined for something that is not a phenotype
    ("Ehlers-Danlos syndrome (EDS)") silences any dictionary sense of the letters in that text.

Negation
    NegEx-style: a trigger before a mention ("no", "without", "negative for", "did not show",
    "absence of"...) negates mentions to its right in the same sentence, and a trigger after a
    mention ("were absent", "was not observed", "was ruled out") negates mentions to its left,
    until a scope breaker ("but", "however", "although", "which"...). Negated mentions are kept
    with ``excluded=True``; a trigger inside the mention itself ("absent thumb") negates nothing.

Relatives (every mode)
    A finding stated of a relative is marked ``about="relative"``: from a relative named before
    it ("Mother has hypotonia", "family history of deafness", "his older brother", "maternal") to
    the end of its clause ("but", "however", ";", ", and") or the next mention of the patient
    ("she", "the child", "her son"), and back from one named after it ("hypotonia was also noted
    in her mother"). A relative who only tells ("Mother reports seizures", "the parents noticed"),
    one who shares the finding with the patient ("this patient and his younger brother exhibited
    hearing loss", "in the mother and daughter") or is only compared with ("similar to her
    brother"), and a mother's pregnancy (prenatal findings are the patient's) do not count.
    "Brothers" without a possessive are not relatives: case reports of siblings call the patients
    so. ``rdrft concepts`` writes the mark, case-report mode drops such mentions, and the
    patient's terms (:func:`.texts.patient_from_text`) leave them out. On the benchmark corpora it
    marks 10 mentions in GSC+ (whose gold annotates relatives' findings too, so the benchmark
    scores every mention) and 73 in JAX, of which case-report mode keeps 5 without the mark (its
    F1 is unchanged, 0.534); it costs about a tenth of the recogniser's time.

Who is meant (``case_report=True``)
    Full-text case reports name many phenotypes the patient does not have: the introduction
    describes the disease, the discussion compares with published patients, family history and
    differential diagnosis mention relatives and other conditions. In case-report mode a mention
    is kept only where the text is about the patient (``.case_reports``):
      * the title is kept (it names this patient's findings);
      * sections are recognised by their headings ("2. Case Report", "DISCUSSION", "Methods") and
        by the labels of structured abstracts ("CASE PRESENTATION: ..."); a paragraph outside any
        known section counts as case text when a third of its sentences point at the patient;
      * in case sections every sentence counts except those about relatives (family history) or
        that generalise ("is characterized by", "patients with ... have", "has been reported",
        "differential diagnosis"), unless they name the patient outright ("our patient");
      * in the introduction, abstract background and methods, a sentence counts only when it
        points at the patient ("the proband", "a 4-year-old girl", "he had") and does not
        generalise;
      * organ-system terms ("ocular abnormalities": Abnormality of the eye; "neoplasm") are dropped,
        as they say nothing specific about a patient;
      * the discussion and tables are not read: discussions restate the case or compare with
        published patients, and table rows set the patient beside the literature in columns that
        text cannot tell apart (on the JAX tuning half, the terms only these gave were right 1
        time in 14 and 2 in 27).
    Without ``case_report`` every mention is returned (abstracts are read as they are).

Measured on the tuning halves and not used (GSC+ tuning F1 0.747, JAX case-report tuning F1 0.565
with the rules above):
  * nested terms inside a longest match (GSC+ annotates "colitis" in "ulcerative colitis", but
    not "nevi" in "multiple nevi" nor "hamartomas" in "retinal hamartomas"): every inner term
    added 1 right id and 8 wrong on GSC+ (F1 0.700), only inner terms that generalise the outer
    one 1 right and 2 wrong (F1 0.745); JAX fell to 0.546 and 0.553;
  * NARROW and BROAD synonyms (the HPO loader keeps EXACT and RELATED): NARROW changed nothing,
    BROAD added one wrong id on GSC+;
  * "like" as a little word ("butterfly-like vertebrae"): no change on either tuning half.
Measured on both corpora whole and not used (GSC+ F1 0.750, JAX 0.532 with the rules above except
the qualifier rule; with it 0.763 and 0.534):
  * a plural read as the "Multiple ..." term ("lipomas": Multiple lipomas): 1 right, 4 wrong;
  * participles cut to the bare stem ("bridged", "bridging": "bridg"): verbs then matched
    behaviour terms ("jump": Jumping, "falling": Falls), JAX +1 right, +5 wrong; reading "-ed" as
    "-ing" keeps the gain without them;
  * lists of modifiers across commas ("branchial, otic and renal anomalies"), each item read with
    the head noun: a probe gave GSC+ 1 right id, JAX 4 right and 55 wrong (before the case-report
    filter), as such lists in case reports mostly generalise ("renal, anal, limb and auditory
    abnormalities").
  * the qualifier rule as FastHPOCR has it, also when one word is left over: "colds" became
    Recurrent colds, "infections" Recurrent infections (JAX 7 more wrong than the rule kept, which
    adds GSC+ 2 right, JAX 2 right and 1 wrong). The rule was taken from FastHPOCR after comparing
    its GSC+ hits with ours, so GSC+ is no blind test of it;
  * FastHPOCR's cluster of words read as "abnormality" (manifestation, involvement, problem,
    finding, disorder, disturbance): GSC+ 0 right 1 wrong, JAX 0 right 9 wrong.
Not used either: an embedding pass (the offline all-MiniLM-L6-v2 model: every 2-4 word span no term
covers, compared by cosine with the embeddings of all labels and synonyms) was measured on the
GSC+ tuning half. At cosine >= 0.85 it added 5 ids, none in the gold; at >= 0.8, 22 ids, one in
the gold; and it took about 2 s per abstract (1,400 spans for 12 abstracts). The dictionary path
stands alone.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..hpo import HPO, PHENOTYPIC_ABNORMALITY, load_hpo
from ..resources import atomic_write_bytes, cache_dir, fingerprint
from .case_reports import KIN, about_patient
from .sentences import sentences

_INDEX_FORMAT = 1
_MASK = (1 << 64) - 1

# Words that carry no meaning for matching; they may sit inside a mention but never start or end one.
STOPWORDS = frozenset(
    "a an the of in on at to for by from with his her their its "
    "this that these those as into both".split()
)

# Synonyms that are everyday words far more often than findings ("collecting" data, "ordering" tests).
_EVERYDAY_SYNONYMS = frozenset(
    "collecting hoarding arranging ordering cutting tearing bouncing hopping mouthing fisting blushing panting "
    "fainting twirling stimming".split()
)
# Words a laboratory finding is often stated without ("low serum copper").
_LAB_NOUNS = frozenset({"concentration", "level"})
# Irregular plurals and spelling variants, applied before the suffix rules.
_IRREGULAR = {
    "nevi": "nevus", "naevi": "nevus", "naevus": "nevus", "foci": "focus", "teeth": "tooth", "feet": "foot",
    "phalanges": "phalanx", "vertebrae": "vertebra", "children": "child", "women": "woman", "men": "man",
    "bronchi": "bronchus", "testes": "testis", "ovaries": "ovary", "diverticula": "diverticulum",
    "lentigines": "lentigo", "epiphyses": "epiphysis", "metaphyses": "metaphysis", "diaphyses": "diaphysis",
    "apophyses": "apophysis", "stenoses": "stenosis", "fistulae": "fistula", "ulnae": "ulna", "tibiae": "tibia",
    "fibulae": "fibula", "scapulae": "scapula", "claviculae": "clavicle", "cortices": "cortex",
    "appendices": "appendix", "calices": "calyx", "calyces": "calyx", "ganglia": "ganglion", "thrombi": "thrombus",
    "emboli": "embolus", "hila": "hilum", "ostia": "ostium", "septa": "septum", "labia": "labium",
    "kidney": "renal", "kidneys": "renal", "liver": "hepatic", "heart": "cardiac", "lung": "pulmonary",
    "lungs": "pulmonary", "skull": "cranial", "cranium": "cranial", "dental": "tooth",
    "pes": "foot", "pedal": "foot", "manual": "hand", "ocular": "eye", "eyes": "eye",
    "auricle": "ear", "pinna": "ear", "pinnae": "ear", "auricular": "ear",
    "fits": "seizure", "tumour": "tumor", "tumours": "tumor", "behaviour": "behavior", "behaviours": "behavior",
    "oedema": "edema", "anaemia": "anemia", "haematuria": "hematuria", "faeces": "feces", "foetal": "fetal",
    "oesophagus": "esophagus", "oesophageal": "esophageal", "paediatric": "pediatric",
    "hypertrophic": "hypertrophy", "atrophic": "atrophy", "dystrophic": "dystrophy", "dysmorphic": "dysmorphism",
    "hypotonic": "hypotonia", "hypertonic": "hypertonia", "ataxic": "ataxia", "spastic": "spasticity",
    "epileptic": "epilepsy", "obese": "obesity", "microcephalic": "microcephaly", "macrocephalic": "macrocephaly",
    "hirsute": "hirsutism", "deaf": "deafness", "blind": "blindness", "retarded": "delay",
    "reduced": "decreased", "diminished": "decreased", "elevated": "increased", "raised": "increased",
    "extremities": "limb", "extremity": "limb", "numerous": "multiple", "bloody": "blood", "delayed": "delay",
    "retardation": "delay", "hyperactive": "hyperactivity", "enlarged": "enlargement", "dilated": "dilatation",
    "dilation": "dilatation", "low": "decreased", "serum": "circulating", "plasma": "circulating",
    "widened": "wide", "widening": "wide", "pubis": "pubic", "freckles": "freckling", "freckle": "freckling",
    "metaphyseal": "metaphysis", "epiphyseal": "epiphysis", "diaphyseal": "diaphysis",
    "malformed": "malformation", "absent": "absence", "aplastic": "aplasia", "abnormal": "abnormality",
    "abnormalities": "abnormality", "anomaly": "abnormality", "anomalies": "abnormality",
    "1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth",
    # anatomical adjectives -> the noun ("patellar dysplasia" ~ "Dysplastic patella")
    "patellar": "patella", "clavicular": "clavicle", "mandibular": "mandible", "scapular": "scapula",
    "vertebral": "vertebra", "tibial": "tibia", "fibular": "fibula", "femoral": "femur", "humeral": "humerus",
    "ulnar": "ulna", "sternal": "sternum", "palatal": "palate", "gingival": "gingiva", "retinal": "retina",
    "cerebellar": "cerebellum", "splenic": "spleen", "muscular": "muscle", "nasal": "nose",
    "articular": "joint", "oral": "mouth", "gastric": "stomach", "intestinal": "intestine", "lingual": "tongue",
    "thoracic": "thorax", "pelvic": "pelvis", "facial": "face", "ophthalmic": "eye", "osseous": "bone",
    "spinal": "spine", "digital": "digit",
    "cutaneous": "skin", "occulta": "occult", "shape": "morphology", "shaped": "morphology",
}
_CANONICAL = frozenset(_IRREGULAR.values())
# British digraphs and their American spelling, inside words ("haemorrhage", "orthopaedic").
_BRITISH = [("haem", "hem"), ("aemia", "emia"), ("oedem", "edem"), ("paed", "ped"), ("oesoph", "esoph"),
            ("foet", "fet"), ("aetio", "etio"), ("leukaem", "leukem"), ("oestr", "estr"), ("ischaem", "ischem")]
# Adjective endings -> the noun the HPO labels use ("dysplastic" -> "dysplasia", "scoliotic" -> "scoliosis").
_SUFFIXES = [("plastic", "plasia"), ("trophic", "trophy"), ("otic", "osis"), ("emic", "emia"),
             ("uric", "uria"), ("tonic", "tonia"), ("pathic", "pathy"), ("ptotic", "ptosis")]


@functools.lru_cache(maxsize=200_000)
def normalise_word(word: str) -> str:
    """One word as the index stores it: folded case and accents, American spelling, singular."""
    word = unicodedata.normalize("NFKD", word.lower()).encode("ascii", "ignore").decode()
    if word.endswith("'s"):
        word = word[:-2]
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for british, american in _BRITISH:
        if british in word:
            word = word.replace(british, american)
    if len(word) > 4:
        if word.endswith("ies"):
            word = word[:-3] + "y"
        elif word.endswith(("xes", "ches", "shes", "sses")):
            word = word[:-2]
        elif word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
            word = word[:-1]
    if len(word) > 6 and word.endswith("ed") and word not in _CANONICAL:
        word = word[:-2] + "ing"  # "bridged" ~ "bridging"; the bare verb ("jump") stays apart
    for adjective, noun in _SUFFIXES:
        if word.endswith(adjective) and len(word) > len(adjective) + 2:
            word = word[: -len(adjective)] + noun
            break
    return _IRREGULAR.get(word, word)


# Qualifiers a label is also matched without, when no term owns the shorter wording ("skin lesions":
# Localized skin lesion); FastHPOCR's "void tokens" (Groza et al. 2024).
_DROPPABLE = frozenset(map(normalise_word,
                           "localized generalized unilateral multiple paroxysmal recurrent proximal".split()))


def _word_code(word: str) -> int:
    """A stable 64-bit code per normalised word; a key is the sum of its words' codes (order-free)."""
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


PATIENT, RELATIVE = "patient", "relative"


@dataclass(frozen=True)
class Mention:
    """One HPO concept found in a text; ``text == document[start:end]``."""

    id: str
    label: str
    start: int
    end: int
    text: str
    excluded: bool = False
    about: str = PATIENT  # RELATIVE when the text states it of a relative ("Mother has hypotonia")

    def to_json(self) -> dict:
        data = asdict(self)
        if self.about == PATIENT:  # the patient's own findings keep the line format of the SPEC
            del data["about"]
        return data


# ---------------------------------------------------------------------------------- the index
_WORD = re.compile(r"[^\W_]+(?:['’]s\b)?")
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)")
_ABBREVIATION = re.compile(r"^[A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*$")


def _content_words(text: str) -> list[str]:
    words = (normalise_word(m.group()) for m in _WORD.finditer(text.replace("-", " ")))
    return [w for w in words if w and w not in STOPWORDS]


def _surface_forms(text: str) -> set[str]:
    """A label or synonym and its variants: without parentheticals, each side of an "A/B"."""
    forms = {text, _PARENTHETICAL.sub("", text)}
    for form in list(forms):
        match = re.search(r"(\w+)/(\w+)", form)
        if match:
            forms.add(form[: match.start()] + match.group(1) + form[match.end():])
            forms.add(form[: match.start()] + match.group(2) + form[match.end():])
    return {f for f in forms if "/" not in f}


def build_index(hpo: HPO) -> dict:
    """The matcher's tables as plain JSON-able data (cached on disk by :meth:`ConceptRecognizer.for_hpo`).

    ``keys``: sorted content words joined by spaces -> term ids, best first.
    ``abbreviations``: case-sensitive upper-case synonym -> term id.
    """
    ranked: dict[str, dict[str, tuple]] = {}
    abbreviations: dict[str, set[str]] = {}

    def add(words: list[str], entry: tuple) -> None:
        key = " ".join(sorted(words))
        if not key or (" " not in key and len(key) < 4 and entry[0]):
            return  # "S3", "AN": short synonyms match ordinary words
        best = ranked.setdefault(key, {})
        if entry[2] not in best or entry < best[entry[2]]:
            best[entry[2]] = entry

    for i, term_id in enumerate(hpo.ids):
        if not hpo.phenotypic[i] or term_id == "HP:0000118":
            continue
        for rank, text in [(0, hpo.names[i])] + [(1, s) for s in hpo.synonyms[i]]:
            if _ABBREVIATION.match(text):
                if len(_singular(text)) >= 3:  # two letters ("RA", "MI") mean too many things
                    abbreviations.setdefault(_singular(text), set()).add(term_id)
                continue
            if rank and text.lower() in _EVERYDAY_SYNONYMS:
                continue
            for form in _surface_forms(text):
                words = _content_words(form)
                entry = (rank + (form != text), len(hpo.synonyms[i]), term_id)
                add(words, entry)
                if "-" in form:  # the joined spelling too: "hyper-extensible" ~ "hyperextensible"
                    add(_content_words(form.replace("-", "")), entry)
                shorter = [w for w in words if w not in _DROPPABLE]
                if 1 < len(shorter) < len(words):  # ranked below every label and synonym
                    add(shorter, (3,) + entry[1:])
                if "circulating" in words:  # "low serum copper" for "... circulating copper concentration"
                    add([w for w in words if w not in _LAB_NOUNS], entry)
    keys = {key: [t for t, _ in sorted(c.items(), key=lambda kv: kv[1])] for key, c in ranked.items()}
    return {
        "format": _INDEX_FORMAT,
        "hpo_version": hpo.version,
        "keys": keys,
        # an abbreviation two terms share (ASD: atrial septal defect, autism) means neither unless defined
        "abbreviations": {a: next(iter(ids)) for a, ids in sorted(abbreviations.items()) if len(ids) == 1},
    }


# ---------------------------------------------------------------------------------- negation
_NEG_BEFORE = re.compile(
    r"\b(?:no|not|without|absence of|absent|negative for|free of|lack of|lacked|lacking|lacks|never|neither|nor|"
    r"denie[sd]|(?:did|does|do|could|can) not (?:have|show|exhibit|reveal|display|develop|present with|demonstrate|"
    r"suggest|detect|identify|find|experience|indicate|note|observe)|no (?:evidence|signs?|history|symptoms?) of|"
    r"ruled out|exclusion of|unremarkable for|rather than)\b",
    re.IGNORECASE,
)
_NEG_AFTER = re.compile(
    r"\b(?:(?:was|were|is|are|being|been)\s+(?:also\s+)?(?:absent|not\s+(?:observed|present|seen|detected|found|noted|"
    r"identified|evident|apparent|reported|documented)|negative|ruled out|excluded|unremarkable)|"
    r"(?:was|were|is|are|has been|have been) not (?:observed|present|seen|detected|found|noted)|"
    r"did not (?:occur|develop|appear)|(?:was|were) denied|not (?:observed|present|seen|detected|found|noted))\b",
    re.IGNORECASE,
)
# Phrases that look like negation but are not ("no longer", "not only", "gram-negative").
_PSEUDO_NEGATION = re.compile(
    r"\b(?:no (?:longer|further|change|significant change|increase|decrease|doubt)|not only|not necessarily|"
    r"not (?:be )?(?:ruled out|excluded)|cannot be (?:ruled out|excluded)|without (?:any )?(?:doubt|difficulty)|"
    r"gram[- ]negative|non[- ]?(?:consanguineous|related|affected|synonymous|sense))\b",
    re.IGNORECASE,
)
_DISJUNCTION = re.compile(r"\b(?:or|nor)\b", re.IGNORECASE)
_SCOPE_BREAK = re.compile(
    r"\b(?:but|however|although|though|except|apart from|aside from|yet|whereas|while|which|who|whose)\b|[;:]",
    re.IGNORECASE,
)


def _negated_spans(text: str, start: int, end: int, taken: bytearray) -> list[tuple[int, int]]:
    """The spans a negation covers in the sentence ``text[start:end]``.

    ``taken`` marks the characters of mentions: a trigger inside a mention ("absence of
    subcutaneous fat") is part of that term and negates nothing.
    """
    pseudo = [(m.start(), m.end()) for m in _PSEUDO_NEGATION.finditer(text, start, end)]
    breaks = [(m.start(), m.end()) for m in _SCOPE_BREAK.finditer(text, start, end)]
    spans = []
    for m in _NEG_BEFORE.finditer(text, start, end):
        if any(taken[m.start():m.end()]) or any(s <= m.start() < e for s, e in pseudo):
            continue
        scope_end = next((s for s, _ in breaks if s >= m.end()), end)
        # "no X, Y or Z" negates the list; "showed no weight gain, hypoglycemia and ..." only X
        comma = text.find(",", m.end(), scope_end)
        if comma >= 0 and not _DISJUNCTION.search(text, m.end(), scope_end):
            scope_end = comma
        spans.append((m.end(), scope_end))
    for m in _NEG_AFTER.finditer(text, start, end):
        if any(taken[m.start():m.end()]) or any(s <= m.start() < e for s, e in pseudo):
            continue
        scope_start = max((e for _, e in breaks if e <= m.start()), default=start)
        spans.append((scope_start, m.start()))
    return spans


# ---------------------------------------------------------------------------------- relatives
_THE = r"(?:(?:his|her|their|the)\s+)?"
# the relative is named after the finding: "hypotonia was also noted in her mother"
_AFTER_THE_FINDING = re.compile(rf"\b(?:in|of|by)\s+{_THE}(?:both\s+|a\s+)?$", re.IGNORECASE)
# ... only tells of the patient's findings, or is the mother whose pregnancy is the patient's prenatal history
_INFORMANT = re.compile(
    r"\s+(?:(?:also|again|first|later|then)\s+)?(?:reports?|reported|states?|stated|notes?|noted|noticed|"
    r"describes?|described|says|said|denies|denied|observed|recalls?|recalled|brought|feels|felt|thinks|believes|"
    r"(?:is|was|were|are) (?:concerned|worried)|mentions?|mentioned|complains?|complained)\b"
    r"|['’]s\s+(?:pregnancy|gestation|age)|\s+(?:pregnancy|gestation|age)\b", re.IGNORECASE)
# ... shares the finding with the patient ("this patient and his younger brother exhibited hearing
# loss", "in the mother and daughter") or is only compared with ("similar to her brother")
_SHARED_BEFORE = re.compile(rf"(?:\b(?:he|she|they|patients?|proband|child|children|boy|girl|siblings|sibs|"
                            rf"brothers|sisters|twins|individuals|cases)\s+and|\b(?:similar to|like|than|unlike|"
                            rf"as in))\s+{_THE}$", re.IGNORECASE)
_SHARED_AFTER = re.compile(rf"\s+and\s+{_THE}(?:daughter|son|child|patient|proband|boy|girl)\b", re.IGNORECASE)
# where the patient is named again, ending the relative's scope (not in "the mother of the patient")
_PATIENT_AGAIN = re.compile(r"(?<!of )\b(?:he|she|our patient|the (?:patient|proband|child|boy|girl|infant|baby|"
                            r"index case)|(?:his|her|their) (?:son|daughter|child|baby))\b", re.IGNORECASE)
# a clause boundary: ", and" joins clauses ("the boy had seizures, and hypotonia was found in his father")
_RELATIVE_BREAK = re.compile(
    r"\b(?:but|however|although|though|whereas|while|whilst|yet|except)\b|;|,\s+(?:and|or|then)\b", re.IGNORECASE)


def _relative_spans(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` that state findings of a relative rather than of the patient: from a
    relative named before them to the end of the clause or the next mention of the patient, and
    back from one named after them ("... in her mother") to the clause start or the patient."""
    relatives = [(m, not _AFTER_THE_FINDING.search(text, max(0, m.start() - 16), m.start()))
                 for m in KIN.finditer(text) if not _shared_with_patient(text, m)]
    relatives = [(m, before) for m, before in relatives if not (before and _INFORMANT.match(text, m.end()))]
    if not relatives:
        return []
    bounds = sentences(text)
    starts = [b[0] for b in bounds]
    spans = []
    for relative, before in relatives:
        s_start, s_end = bounds[max(0, bisect.bisect_right(starts, relative.start()) - 1)]
        limits = sorted([(m.start(), m.end()) for m in _RELATIVE_BREAK.finditer(text, s_start, s_end)]
                        + [(m.start(), m.end()) for m in _PATIENT_AGAIN.finditer(text, s_start, s_end)])
        if before:
            spans.append((relative.end(), next((s for s, _ in limits if s >= relative.end()), s_end)))
        else:
            spans.append((max((e for _, e in limits if e <= relative.start()), default=s_start), relative.start()))
    return spans


def _shared_with_patient(text: str, relative: re.Match) -> bool:
    return bool(_SHARED_BEFORE.search(text, max(0, relative.start() - 40), relative.start())
                or _SHARED_AFTER.match(text, relative.end()))


def _mark_relatives(text: str, mentions: list[Mention]) -> list[Mention]:
    spans = _relative_spans(text)
    return [replace(m, about=RELATIVE) if any(s <= m.start and m.end <= e for s, e in spans) else m
            for m in mentions]


# ---------------------------------------------------------------------------------- the matcher
_CONJUNCTIONS = frozenset({"and", "or", "nor"})
_NEGATORS = frozenset({"no", "not", "without", "never"})
_COPULAS = frozenset({"was", "were", "is", "are"})
_PREDICATES = frozenset({"decreased", "increased"})
_HYPHENS = frozenset("-‐–")
# a word (group 1), or a character a mention never crosses (sentence ends, commas, brackets)
_TOKEN = re.compile(r"([^\W_]+(?:['’]s\b)?)|[.;:,()\[\]{}!?\"\n]|\s[/–-]\s")
_DEFINITION = re.compile(r"\(\s*([A-Z][A-Za-z0-9-]{1,9})s?\s*[),;]")


class ConceptRecognizer:
    """Finds HPO concepts in text. Build with :meth:`default` or :meth:`for_hpo`."""

    def __init__(self, hpo: HPO, index: dict):
        self.hpo = hpo
        self._labels = {t: hpo.names[i] for t, i in hpo.index.items()}
        words = sorted({w for key in index["keys"] for w in key.split()})
        self._codes = {w: _word_code(w) for w in words}
        self._keys: dict[int, str] = {}
        self._size: dict[int, int] = {}
        for key, ids in index["keys"].items():
            parts = key.split()
            code = sum(self._codes[w] for w in parts) & _MASK
            self._keys[code] = ids[0]
            self._size[code] = len(parts)
        self._max_words = max(self._size.values())
        self._abbreviations: dict[str, str] = index["abbreviations"]
        # "ocular abnormalities", "neoplasm": organ-system terms say nothing specific about a patient
        organ_rows = hpo.parents[:, hpo.index[PHENOTYPIC_ABNORMALITY]].nonzero()[0]
        self._organ_systems = frozenset(hpo.ids[i] for i in organ_rows)

    @classmethod
    def for_hpo(cls, hpo: HPO) -> "ConceptRecognizer":
        """Loads the index cached for this HPO release, building and caching it the first time."""
        # keyed by the release and by this module, whose normalisation the keys depend on
        code = fingerprint([Path(__file__)])
        path = cache_dir("concepts") / f"index-v{_INDEX_FORMAT}-{_safe(hpo.version)}-{len(hpo.ids)}-{code}.json"
        if path.is_file():
            index = json.loads(path.read_text(encoding="utf-8"))
        else:
            index = build_index(hpo)
            atomic_write_bytes(path, json.dumps(index, separators=(",", ":")).encode())
        return cls(hpo, index)

    @classmethod
    def default(cls) -> "ConceptRecognizer":
        """The recogniser for :func:`load_hpo`, built once per process."""
        return _default_recognizer()

    # ------------------------------------------------------------------ public
    def annotate(self, text: str, case_report: bool = False) -> list[Mention]:
        """Every HPO mention in ``text`` (longest match, negation marked), in text order.

        With ``case_report=True`` only mentions about the patient are kept (module docstring).
        """
        found = self._apply_definitions(text, self._match(text))
        mentions = _mark_relatives(text, self._mark_negation(text, found))
        if case_report:
            keep = about_patient(text)
            mentions = [m for m in mentions
                        if keep(m.start) and m.about == PATIENT and m.id not in self._organ_systems]
        return mentions

    # ------------------------------------------------------------------ matching
    def _match(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, term id) of the chosen mentions, in text order."""
        candidates: list[tuple[int, int, int, str]] = []  # (-words, start, end, id)
        coordinated: list[tuple[int, int, str]] = []  # "palmar and plantar pits" -> palmar pits
        tokens = [(m.start(), m.end(), m.group(1)) for m in _TOKEN.finditer(text)]
        first = 0
        for i, (_, _, word) in enumerate(tokens):
            if word is None:  # a break
                if i > first:
                    self._match_segment(text, tokens[first:i], candidates, coordinated)
                first = i + 1
        if first < len(tokens):
            self._match_segment(text, tokens[first:], candidates, coordinated)
        candidates.sort(key=lambda c: (c[0], c[1] - c[2], c[1]))
        taken = bytearray(len(text) + 1)
        chosen = []
        for _, start, end, term in candidates:
            if not any(taken[start:end]):
                taken[start:end] = b"\x01" * (end - start)
                chosen.append((start, end, term))
        # a coordinated reading spans the whole phrase, so it may overlap the mentions read plainly from
        # its words ("plantar pits" in "palmar and plantar pits"), but only ones lying wholly inside it;
        # one with no plain mention under it was wrong more often than right (JAX tuning half)
        plain = list(chosen)
        for start, end, term in coordinated:
            inside = [s >= start and e <= end for s, e, _ in plain if s < end and start < e]
            if inside and all(inside):
                chosen.append((start, end, term))
        return sorted(set(chosen))

    def _match_segment(self, text: str, words: list[tuple[int, int, str]], out: list, coordinated: list) -> None:
        abbreviations = self._abbreviations
        for word_start, word_end, word in words:
            if not word.islower():
                term = abbreviations.get(word) or (word[-1] == "s" and abbreviations.get(word[:-1]))
                if term:
                    out.append((-1, word_start, word_end, term))
        hyphenated = {i for i in range(1, len(words))
                      if words[i][0] == words[i - 1][1] + 1 and text[words[i - 1][1]] in _HYPHENS}
        readings = [words, _join_hyphenated(words, hyphenated)] if hyphenated else [words]
        for reading in readings:
            normalised = [normalise_word(w) for _, _, w in reading]
            out.extend((-count, reading[i][0], reading[j][1], term)
                       for count, i, j, term in self._windows(reading, normalised))
            self._coordinations(reading, normalised, coordinated)

    def _coordinations(self, words: list[tuple[int, int, str]], normalised: list[str], out: list) -> None:
        """Readings of "A and B N" as "A N" and "B N" ("cleft lip and palate": cleft lip, cleft palate).

        Each side of a conjunction is dropped in turn with it ("A and B N" -> "A N", "B N"); a
        window of what remains that spans the dropped words is a coordinated reading, its span the
        whole phrase. Of one such remainder only the longest readings are kept.
        """
        reach, codes = self._max_words, self._codes
        for c in range(1, len(words) - 1):
            sides = normalised[c - 1], normalised[c + 1]
            # a reading needs both sides to be words of some term; "hypotonia and no seizures" joins
            # a finding and a negated one, not two modifiers of one head
            if normalised[c] not in _CONJUNCTIONS or any(w not in codes or w in _NEGATORS for w in sides):
                continue
            low, high = max(0, c - reach), min(len(words), c + 2 + reach)
            for dropped_from, dropped_to in ((c, c + 2), (c - 1, c + 1)):  # "and B", "A and"
                keep = list(range(low, dropped_from)) + list(range(dropped_to, high))
                gap = dropped_from - low  # the first word after the dropped ones, in ``keep``
                found = [w for w in self._windows([words[k] for k in keep], [normalised[k] for k in keep])
                         if w[1] < gap <= w[2]]
                taken: set[int] = set()
                for _, i, j, term in sorted(found, key=lambda w: -w[0]):
                    if taken.isdisjoint(range(i, j + 1)):
                        taken.update(range(i, j + 1))
                        out.append((words[keep[i]][0], words[keep[j]][1], term))

    def _windows(self, words: list[tuple[int, int, str]], normalised: list[str]) -> list[tuple[int, int, int, str]]:
        """(content words, first word, last word, term) of every window of ``words`` that is a key."""
        codes, keys, size, max_words = self._codes, self._keys, self._size, self._max_words
        n = len(words)
        found = []
        for i in range(n):
            first = normalised[i]
            if first in STOPWORDS or first not in codes:
                continue
            code = 0
            count = 0
            copula = False
            reordered = False
            for j in range(i, min(n, i + 2 * max_words)):
                word = normalised[j]
                if word in STOPWORDS:
                    reordered = reordered or word == "of"
                    continue
                if word in _COPULAS:
                    copula = True
                    continue
                word_code = codes.get(word)
                if word_code is None:
                    break
                code = (code + word_code) & _MASK
                count += 1
                if count > max_words:
                    break
                term = keys.get(code)
                # across "was"/"were" only a measure reads as one finding ("serum copper was low"),
                # never "seizures were absent"
                if term is not None and size[code] == count and (not copula or word in _PREDICATES):
                    # "hyperplasia of the mandibular | coronoid processes": after "of" a mention ends
                    # where the noun phrase does, not before more words of some term
                    if reordered and j + 1 < n and normalised[j + 1] in codes \
                            and normalised[j + 1] not in _CONJUNCTIONS and normalised[j + 1] not in _COPULAS:
                        continue
                    found.append((count, i, j, term))
        return found

    def _apply_definitions(self, text: str, found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """Adds the uses of abbreviations the text defines ("intellectual disability (ID)") and
        drops dictionary readings of letters the text defines as something else."""
        if "(" not in text:
            return found
        ending_at = {end: (start, term) for start, end, term in found}
        defined: dict[str, str | None] = {}
        for m in _DEFINITION.finditer(text):
            abbreviation = m.group(1)
            if abbreviation in defined:
                continue
            long_end = len(text[:m.start()].rstrip())
            start, term = ending_at.get(long_end, (None, None))
            if term is not None and not self._long_form_fits(text, abbreviation, start, long_end):
                term = None
            defined[abbreviation] = term
        if not defined:
            return found
        kept = [f for f in found if defined.get(_singular(text[f[0]:f[1]]), f[2]) == f[2]]
        taken = _occupancy(len(text), kept)
        meaning = {a: t for a, t in defined.items() if t}
        if meaning:
            pattern = re.compile(r"\b(" + "|".join(re.escape(a) for a in meaning) + r")s?\b")
            for m in pattern.finditer(text):
                if not any(taken[m.start():m.end()]):
                    kept.append((m.start(), m.end(), meaning[m.group(1)]))
        return sorted(kept)

    @staticmethod
    def _long_form_fits(text: str, abbreviation: str, start: int, end: int) -> bool:
        # the long form may begin a word or two before the matched term ("bilateral ...")
        starts = [start] + [w.start() for w in _WORD.finditer(text, max(0, start - 25), start)][::-1][:2]
        return any(_abbreviates(abbreviation, text[s:end]) for s in starts)

    # ------------------------------------------------------------------ negation
    def _mark_negation(self, text: str, found: list[tuple[int, int, str]]) -> list[Mention]:
        scopes: list[tuple[int, int]] = []
        # most texts negate little: only sentences holding both a trigger and a mention are parsed
        triggers = [m.start() for m in _NEG_BEFORE.finditer(text)] + [m.start() for m in _NEG_AFTER.finditer(text)]
        if found and triggers:
            starts = [f[0] for f in found]
            triggers.sort()
            taken = _occupancy(len(text), found)
            for s_start, s_end in sentences(text):
                i = bisect.bisect_left(starts, s_start)
                j = bisect.bisect_left(triggers, s_start)
                if i < len(starts) and starts[i] < s_end and j < len(triggers) and triggers[j] < s_end:
                    scopes.extend(_negated_spans(text, s_start, s_end, taken))
        mentions = []
        for start, end, term in found:
            excluded = any(scope_start <= start and end <= scope_end for scope_start, scope_end in scopes)
            mentions.append(Mention(term, self._labels[term], start, end, text[start:end], excluded))
        return mentions


def _occupancy(length: int, spans: list[tuple[int, int, str]]) -> bytearray:
    """A byte per character of the text, set where one of ``spans`` lies."""
    taken = bytearray(length + 1)
    for start, end, _ in spans:
        taken[start:end] = b"\x01" * (end - start)
    return taken


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and word[:-1].isupper() else word


def _abbreviates(short: str, long: str) -> bool:
    """Schwartz & Hearst: the letters of ``short`` appear in order in ``long``, the first one
    starting a word, so "(ID)" after "intellectual disability" counts and "(SAMD9L)" does not."""
    letters = [c for c in short.lower() if c.isalnum()]
    long = long.lower()
    j = len(long) - 1
    for k in range(len(letters) - 1, -1, -1):
        while j >= 0 and (long[j] != letters[k] or (k == 0 and j > 0 and long[j - 1].isalnum())):
            j -= 1
        if j < 0:
            return False
        j -= 1
    return True


def _join_hyphenated(words: list[tuple[int, int, str]], joins: set[int]) -> list[tuple[int, int, str]]:
    """Words with each hyphenated compound as one word ("café-au-lait" -> "caféaulait")."""
    joined: list[tuple[int, int, str]] = []
    for i, word in enumerate(words):
        if i in joins:
            start, _, text = joined[-1]
            joined[-1] = (start, word[1], text + word[2])
        else:
            joined.append(word)
    return joined


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text)


@functools.lru_cache(maxsize=1)
def _default_recognizer() -> ConceptRecognizer:
    return ConceptRecognizer.for_hpo(load_hpo())

"""A ranking with its evidence, typed, and the writers every output goes through.

:class:`PatientRanking` is what ranking one patient gives: the ranked genes, each with its score,
calibrated probability (where the model has them) and explanation, the notes on the input, and the
versions of model and knowledge. It has one JSON shape (:meth:`PatientRanking.to_json`); the CLI,
the app's downloads and batch outputs all write it through the writers here:

- JSON: one document (one patient) or JSON Lines (one patient a line);
- TSV/CSV: one row per patient and ranked gene, for spreadsheets.

Every writer writes to a temporary file beside the target and moves it into place at the end, so
a failed run never leaves a half-written or emptied output.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable

from .resources import atomic_write_bytes


@dataclass
class RankedGene:
    rank: int  # 1-based position in the ranking
    gene: str
    score: float | None
    probability: float | None  # calibrated probability that this gene is the answer, if the model has one
    #: matched / contradicting / unexplained terms, similar cases (see ``explain.explain_gene``)
    explanation: dict
    #: genes of the whole ranking with this gene's score, itself included (1: no tie); among tied
    #: genes the order is the fixed tie rule (alphabetical), not a ranking
    tied: int = 1

    def to_json(self) -> dict:
        # the explanation as it is, not deep-copied (dataclasses.asdict took most of a batch's writing)
        return {"rank": self.rank, "gene": self.gene, "score": self.score, "probability": self.probability,
                "explanation": self.explanation, "tied": self.tied}

    def __reduce__(self):
        return _from_fields(self)


@dataclass
class PatientRanking:
    model: str
    present: list[str]
    excluded: list[str]
    genes: list[RankedGene]
    #: what became of the input: mapped ids, terms given both ways, terms outside the phenotype branch
    notes: list[str] = field(default_factory=list)
    #: generated reasoning (LLM rankers), and whether their answer parsed
    text: str | None = None
    format_ok: bool = True
    #: ``{"model": name, "kind": knowledge, policy or llm, "hpo": release}``
    versions: dict = field(default_factory=dict)
    sex: str | None = None
    age_years: float | None = None
    #: the patient's own id and where it came from (batch ranking: ``{"file": "path[!member]"}``)
    id: str | None = None
    source: dict = field(default_factory=dict)
    #: genes sharing the first gene's score (1: the first gene stands alone); a note says so when more
    tied_at_top: int = 1

    def __reduce__(self):
        return _from_fields(self)

    def to_json(self) -> dict:
        """The one JSON shape of a ranking (``rdrft rank --json``, batch JSON Lines, the app's download)."""
        return {
            "id": self.id,
            "source": self.source,
            "model": self.model,
            "versions": self.versions,
            "present": self.present,
            "excluded": self.excluded,
            "sex": self.sex,
            "age_years": self.age_years,
            "genes": [g.to_json() for g in self.genes],
            "tied_at_top": self.tied_at_top,
            "text": self.text,
            "format_ok": self.format_ok,
            "notes": self.notes,
        }


def _from_fields(item) -> tuple:
    """A dataclass pickled as a call with its fields (batch workers send rankings to their parent):
    unpickled three times faster than by the default, which restores each object's state."""
    return type(item), tuple(getattr(item, f.name) for f in fields(item))


def _labels(terms: list[dict]) -> str:
    return "; ".join(t["label"] for t in terms)


#: the columns of the table writers (and of the app's table)
TABLE_COLUMNS = ("id", "rank", "gene", "probability", "score", "genes with this score", "diseases", "matched terms",
                 "contradicting excluded terms", "unexplained terms", "similar published cases", "variants", "note")


def table_rows(ranking: PatientRanking) -> list[dict]:
    """One row per ranked gene, in :data:`TABLE_COLUMNS`."""
    return [{
        "id": ranking.id or "",
        "rank": g.rank,
        "gene": g.gene,
        "probability": g.probability,
        "score": g.score,
        "genes with this score": g.tied,
        "diseases": "; ".join(_disease_text(d) for d in g.explanation.get("diseases", [])),
        "matched terms": _labels(g.explanation["matched"]),
        "contradicting excluded terms": _labels(g.explanation["contradicting"]),
        "unexplained terms": _labels(g.explanation["unexplained"]),
        "similar published cases": "; ".join(c["pmid"] for c in g.explanation.get("similar_cases", [])),
        "variants": "; ".join(_variant_text(v) for v in g.explanation.get("variants", [])),
        "note": g.explanation.get("not_ranked", ""),
    } for g in ranking.genes]


def _disease_text(disease: dict) -> str:
    modes = ", ".join(disease["inheritance"])
    return f"{disease['id']} {disease['name']}" + (f" ({modes})" if modes else "")


def _variant_text(variant: dict) -> str:
    text = f"{variant['chrom']}:{variant['pos']} {variant['ref']}>{variant['alt']} {variant['consequence']}"
    return text + (f" {variant['genotype']}" if variant.get("genotype") else "")


def json_text(ranking: PatientRanking) -> str:
    return json.dumps(ranking.to_json(), indent=2, ensure_ascii=False) + "\n"


def jsonl_text(rankings: Iterable[PatientRanking]) -> str:
    return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in rankings)


def table_text(rankings: Iterable[PatientRanking], delimiter: str = "\t") -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TABLE_COLUMNS), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    for ranking in rankings:
        writer.writerows(table_rows(ranking))
    return buffer.getvalue()


#: output formats by file suffix
FORMATS = {".json": "json", ".jsonl": "jsonl", ".tsv": "tsv", ".csv": "csv"}


def output_format(path: str | Path) -> str:
    """The format a file name asks for; a :class:`ValueError` names the suffixes there are."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown output format '{suffix or '(none)'}'; end the name with "
                         f"{', '.join(FORMATS)}")
    return FORMATS[suffix]


def write_rankings(rankings: list[PatientRanking], path: str | Path) -> None:
    """Writes rankings in the format the file name says (``.json`` takes exactly one), atomically."""
    kind = output_format(path)
    if kind == "json":
        if len(rankings) != 1:
            raise ValueError(f"{path}: a .json file holds one patient's ranking, not {len(rankings)}; "
                             "use .jsonl, .tsv or .csv for many")
        text = json_text(rankings[0])
    elif kind == "jsonl":
        text = jsonl_text(rankings)
    else:
        text = table_text(rankings, "\t" if kind == "tsv" else ",")
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def patient_file_name(ranking: PatientRanking, taken: set[str]) -> str:
    """A file name for one patient's ranking: its id with anything but letters, digits, ``.-_``
    replaced, made unique among ``taken``."""
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in (ranking.id or "patient")).strip(".") or "patient"
    name, n = f"{stem}.json", 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}.json"
    taken.add(name)
    return name


def write_patient_files(rankings: list[PatientRanking], folder: Path) -> None:
    """One JSON file per patient in ``folder`` (created if needed), named by the patient's id."""
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for ranking in rankings:
        atomic_write_bytes(folder / patient_file_name(ranking, taken), json_text(ranking).encode("utf-8"))

"""A task: one patient's phenotypes (present and excluded), sex and age, and the causal gene.

Nothing else about a case goes into a task: titles, cohorts, diseases and variants name the gene.
The JSON Lines format is fixed by docs/SPEC.md.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .resources import atomic_write_bytes

SEXES = ("FEMALE", "MALE", "OTHER_SEX", "UNKNOWN_SEX")
SPLITS = ("train", "validation", "test")
SOURCE_KINDS = ("phenopacket", "case_report_text")
_HPO_ID = re.compile(r"^HP:\d{7}$")


#: the oldest age in years a patient can have; an age past it is a typo or a unit mixed up
MAX_AGE_YEARS = 130


def age_problem(age) -> str | None:
    """Why ``age`` (years) cannot be a patient's age, or None if it can (None, no age given, can):
    the one rule of task files, ``rdrft rank --age``, phenopackets, texts and the app."""
    if age is None:
        return None
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not math.isfinite(age):
        return f"is {age!r}, not a number"
    if not 0 <= age <= MAX_AGE_YEARS:
        return f"is {age:g} years, outside 0-{MAX_AGE_YEARS}"
    return None


class TaskError(ValueError):
    """A task line that does not follow the format; the message names the file, line and field."""


@dataclass
class Answer:
    gene: str
    hgnc: str | None = None


@dataclass
class Task:
    id: str
    present: list[str]
    excluded: list[str] = field(default_factory=list)
    sex: str | None = None
    age_years: float | None = None
    answer: Answer | None = None
    source: dict = field(default_factory=dict)
    split: str | None = None

    @property
    def pmid(self) -> str | None:
        return self.source.get("pmid")

    def to_json(self) -> dict:
        data = asdict(self)
        # docs/SPEC.md field order: id, source, present, excluded, sex, age_years, answer, split
        return {k: data[k] for k in ("id", "source", "present", "excluded", "sex", "age_years", "answer", "split")}

    @classmethod
    def from_json(cls, data: dict, where: str = "task") -> "Task":
        validate(data, where)
        answer = data.get("answer")
        return cls(
            id=data["id"],
            present=list(data["present"]),
            excluded=list(data.get("excluded") or []),
            sex=data.get("sex"),
            age_years=data.get("age_years"),
            answer=Answer(answer["gene"], answer.get("hgnc")) if answer else None,
            source=dict(data.get("source") or {}),
            split=data.get("split"),
        )


def validate(data: dict, where: str = "task") -> None:
    """Raises :class:`TaskError` naming the first field that breaks the format."""
    if not isinstance(data, dict):
        raise TaskError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise TaskError(f"{where}: 'id' must be a non-empty string")
    for key in ("present", "excluded"):
        values = data.get(key, [] if key == "excluded" else None)
        if not isinstance(values, list):
            raise TaskError(f"{where}: '{key}' must be a list of HPO ids")
        for value in values:
            if not isinstance(value, str) or not _HPO_ID.match(value):
                raise TaskError(f"{where}: '{key}' holds '{value}', which is not an HPO id like HP:0001250")
    if not data["present"]:
        raise TaskError(f"{where}: 'present' is empty; a task needs at least one present phenotype")
    if data.get("sex") not in (None, *SEXES):
        raise TaskError(f"{where}: 'sex' is '{data['sex']}'; use one of {', '.join(SEXES)} or null")
    problem = age_problem(data.get("age_years"))
    if problem:
        raise TaskError(f"{where}: 'age_years' {problem}; give the age in years or null")
    answer = data.get("answer")
    if answer is not None and (not isinstance(answer, dict) or not isinstance(answer.get("gene"), str)):
        raise TaskError(f"{where}: 'answer' must be an object with a 'gene' symbol, or null")
    if data.get("split") not in (None, *SPLITS):
        raise TaskError(f"{where}: 'split' is '{data['split']}'; use one of {', '.join(SPLITS)} or null")
    kind = (data.get("source") or {}).get("kind")
    if kind is not None and kind not in SOURCE_KINDS:
        raise TaskError(f"{where}: 'source.kind' is '{kind}'; use one of {', '.join(SOURCE_KINDS)}")


def read_tasks(path: str | Path, limit: int | None = None) -> list[Task]:
    """Reads a JSONL task file; a bad line is a :class:`TaskError` naming the file and line."""
    return list(iter_tasks(path, limit))


def iter_tasks(path: str | Path, limit: int | None = None) -> Iterator[Task]:
    """The tasks of a JSONL file, in order; a :class:`TaskError` names the file and line of a bad
    one, and of an id that an earlier line has (a file joined twice would count its cases twice)."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"task file {path} does not exist")
    count = 0
    lines: dict[str, int] = {}  # task id -> the line it is on
    with open(path, "rb") as handle:  # decoded line by line, so a bad byte is named by its line
        for number, raw in enumerate(handle, 1):
            if limit is not None and count >= limit:
                return
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise TaskError(f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                                "save the task file as UTF-8") from None
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
            task = Task.from_json(data, where)
            if task.id in lines:
                raise TaskError(f"{where}: task id '{task.id}' is also on line {lines[task.id]}; every task needs "
                                "its own id")
            lines[task.id] = number
            yield task
            count += 1


def tasks_jsonl(tasks: Iterable[Task]) -> bytes:
    """Tasks as the bytes of a JSON Lines task file."""
    return "".join(json.dumps(task.to_json(), ensure_ascii=False) + "\n" for task in tasks).encode("utf-8")


def write_tasks(path: str | Path, tasks: Iterable[Task]) -> int:
    """Writes tasks as JSON Lines (through a temporary file: a failure leaves an earlier file); returns how many."""
    tasks = list(tasks)
    atomic_write_bytes(Path(path), tasks_jsonl(tasks))
    return len(tasks)

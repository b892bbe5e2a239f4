"""Ranking many patients at once: a lab's phenopackets or a task file, with or without answers.

Each patient becomes a :class:`~rare_disease_rft.results.PatientRanking` keyed by its own id and
the file it came from (``archive!member`` for an archive member), so a result can be joined back to
the patient. A patient that cannot be ranked (no usable present term, an unreadable file) is
reported with the reason and the batch goes on; :class:`BatchReport` counts what was ranked and
what was skipped, and why. Patients are ranked through ``Ranker.rank_many`` in chunks, so rankers
with a batched path use it.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .explain import explain_ranking
from .hpo import HPO, HPOError
from .inputs.candidates import Candidates
from .inputs.phenopackets import convert_sources
from .rankers.base import Case, Ranker
from .results import PatientRanking
from .tasks import Task, read_tasks

#: patients ranked per call of ``rank_many``
CHUNK = 64


@dataclass
class BatchReport:
    ranked: int = 0
    skipped: list[dict] = field(default_factory=list)  # {"id" or "file", "reason"}
    seconds: float = 0.0

    def skip(self, where: str, reason: str) -> None:
        self.skipped.append({"patient": where, "reason": reason})

    def summary(self) -> str:
        rate = f" ({self.ranked / self.seconds:.0f} patients/s)" if self.seconds > 0 and self.ranked else ""
        line = f"ranked {self.ranked} patients in {self.seconds:.1f} s{rate}"
        if self.skipped:
            # by the reason's first words: details such as a parser's position follow a colon or a bracket
            reasons = Counter(re.split(r"[:(]", s["reason"])[0].strip() for s in self.skipped)
            line += f"; skipped {len(self.skipped)}: " + "; ".join(f"{n} {r}" for r, n in reasons.most_common())
        return line


def tasks_from_phenopackets(sources: list[str | Path], hpo: HPO, report: BatchReport) -> list[Task]:
    """Every phenopacket of the sources as a task (no PMID or diagnosis needed); unusable files are
    reported in ``report``."""
    tasks, conversion = convert_sources(sources, hpo, require_answer=False, require_pmid=False)
    for skipped in conversion.skipped:
        report.skip(skipped["file"], skipped["reason"])
    return tasks


def tasks_from_file(path: str | Path) -> list[Task]:
    """The tasks of a task file (answers optional), each naming the file it came from unless it
    names its own; a :class:`~rare_disease_rft.tasks.TaskError` names a bad line."""
    tasks = read_tasks(path)
    for task in tasks:
        task.source.setdefault("file", str(path))
    return tasks


def rank_tasks(ranker: Ranker, tasks: list[Task], hpo: HPO, top: int, report: BatchReport,
               candidates: Candidates | None = None,
               progress: Callable[[int, int], None] | None = None) -> Iterator[PatientRanking]:
    """Ranks and explains every task's patient, in order; ``progress(done, total)`` after each chunk."""
    started = time.perf_counter()
    for start in range(0, len(tasks), CHUNK):
        chunk = []
        for task in tasks[start : start + CHUNK]:
            notes: list[str] = []
            try:
                case = Case.from_ids(hpo, task.present, task.excluded, task.sex, task.age_years, notes=notes)
            except HPOError as err:
                report.skip(task.id, str(err))
                continue
            chunk.append((task, case, notes))
        rankings = ranker.rank_many([case for _, case, _ in chunk]) if chunk else []
        for (task, case, notes), ranking in zip(chunk, rankings):
            result = explain_ranking(ranker, case, ranking, top, hpo, notes, candidates)
            result.id = task.id
            result.source = {"file": task.source.get("file")}
            report.ranked += 1
            yield result
        report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(min(start + CHUNK, len(tasks)), len(tasks))

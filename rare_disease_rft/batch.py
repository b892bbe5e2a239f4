"""Ranking many patients at once: a lab's phenopackets or a task file, with or without answers.

Each patient becomes a :class:`~rare_disease_rft.results.PatientRanking` keyed by its own id and
the file it came from (``archive!member`` for an archive member), so a result can be joined back to
the patient. A patient that cannot be ranked (no usable present term, an unreadable file) is
reported with the reason and the batch goes on; :class:`BatchReport` counts what was ranked and
what was skipped, and why.

Patients are ranked across worker processes, each computing on one thread. The ranker is loaded
once, here; the workers are forked from this process (as training's feature extraction is), so they
share its knowledge base, case index and the per-term columns computed so far without pickling
them, and take chunks of patients in turn: a chunk is ranked through the ranker's ``rank_many``
and its top genes explained together (``explain.explain_rankings``). Results come back in the order
of the patients. (An LLM ranker batches its generation itself: give it one worker.)
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .explain import explain_rankings, warm
from .hpo import HPO, HPOError, load_hpo
from .inputs.candidates import Candidates
from .inputs.phenopackets import convert_sources
from .rankers.base import Case, Ranker
from .registry import set_threads
from .results import PatientRanking
from .tasks import Task, read_tasks

#: patients a worker takes at a time: enough that passing them costs little, few enough that the
#: workers finish together
CHUNK = 16

_WORKER: dict[str, Any] = {}


@dataclass
class BatchReport:
    ranked: int = 0
    skipped: list[dict] = field(default_factory=list)  # {"patient": id or file, "reason"}
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


def _explain_chunk(chunk: list[tuple[Case, list[str]]]) -> list[PatientRanking]:
    ranker, top, hpo, candidates = (_WORKER[k] for k in ("ranker", "top", "hpo", "candidates"))
    rankings = ranker.rank_many([case for case, _ in chunk])
    return explain_rankings(ranker, [(case, ranking, notes) for (case, notes), ranking in zip(chunk, rankings)],
                            top, hpo, candidates)


def _explained(ranker: Ranker, cases: Sequence[tuple[Case, list[str]]], workers: int | None, top: int, hpo: HPO,
               candidates: Candidates | None) -> Iterator[list[PatientRanking]]:
    """The explained rankings of ``cases`` (with their notes), chunk by chunk, in order."""
    workers = workers or os.cpu_count() or 1
    chunks = [list(cases[i : i + CHUNK]) for i in range(0, len(cases), CHUNK)]
    _WORKER.update(ranker=ranker, top=top, hpo=hpo, candidates=candidates)
    with _long_lived():
        if workers == 1 or len(chunks) < 2:
            yield from _frozen_after_each(map(_explain_chunk, chunks))
            return
        # fork shares the loaded ranker and the explanations' lookups (built here once, not in each
        # worker); one thread each, so that the workers never wait for each other's cores
        warm(hpo)
        # (an executor, not multiprocessing.Pool: the Pool's worker handler also polls the result
        # pipe, and spun while a result was being read, 0.2 ms a patient of the parent's time)
        pool = ProcessPoolExecutor(min(workers, len(chunks)), mp.get_context("fork"), set_threads, (1,))
        try:
            yield from _frozen_after_each(pool.map(_explain_chunk, chunks))
        finally:  # a caller that stops early does not wait for the chunks not yet started
            pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _long_lived() -> Iterator[None]:
    """While a batch runs, what exists is left out of garbage collection (``gc.freeze``): the
    rankings kept pile up, and every full collection scanned them all again (0.4 ms a patient in a
    batch's parent, half its work); a forked worker's collections would also write to (and so
    copy) every page holding an object of its parent. Refcounting still frees what is dropped. A
    process that froze objects before keeps them frozen."""
    before = gc.get_freeze_count()
    gc.freeze()
    try:
        yield
    finally:
        if not before:
            gc.unfreeze()


def _frozen_after_each(parts: Iterator[list[PatientRanking]]) -> Iterator[list[PatientRanking]]:
    for part in parts:
        gc.freeze()  # the chunk's rankings are kept by the caller: no collection needs to scan them
        yield part


def rank_many_parallel(ranker: Ranker, cases: Sequence[Case], workers: int | None = None, top: int = 10,
                       candidates: Candidates | None = None) -> list[PatientRanking]:
    """:func:`~rare_disease_rft.explain.rank_and_explain` of every case, in the order of ``cases``, on
    ``workers`` processes (default: one per core), each on one thread. One worker, or a single
    chunk, runs here."""
    jobs = [(case, []) for case in cases]
    return [r for part in _explained(ranker, jobs, workers, top, load_hpo(), candidates) for r in part]


def rank_tasks(ranker: Ranker, tasks: list[Task], hpo: HPO, top: int, report: BatchReport,
               candidates: Candidates | None = None, progress: Callable[[int, int], None] | None = None,
               workers: int | None = None) -> Iterator[PatientRanking]:
    """Ranks and explains every task's patient, in order; ``progress(done, total)`` after each chunk."""
    started = time.perf_counter()
    jobs, kept = [], []
    for task in tasks:
        notes: list[str] = []
        try:
            case = Case.from_ids(hpo, task.present, task.excluded, task.sex, task.age_years, notes=notes)
        except HPOError as err:
            report.skip(task.id, str(err))
            continue
        jobs.append((case, notes))
        kept.append(task)
    done = 0
    for part in _explained(ranker, jobs, workers, top, hpo, candidates):
        for task, result in zip(kept[done : done + len(part)], part):
            result.id = task.id
            result.source = {"file": task.source.get("file")}
            report.ranked += 1
            yield result
        done += len(part)
        report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(done, len(jobs))

"""Ranking many patients at once: across worker processes, each computing on one thread.

The ranker is loaded once, here; the workers are forked from this process (as training's feature
extraction is), so they share its knowledge base, case index and the per-term columns computed so
far without pickling them, and take chunks of patients in turn. Results come back in the order of
the patients. (An LLM ranker batches its generation itself: use its ``rank_many``.)
"""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any, Sequence

from .explain import rank_and_explain
from .hpo import load_hpo
from .rankers.base import Case, Ranker
from .rankers.registry import set_threads

#: patients a worker takes at a time: enough that passing them costs little, few enough that the
#: workers finish together
CHUNK = 16

_WORKER: dict[str, Any] = {}


def _rank_and_explain_chunk(chunk: list[Case]) -> list:
    ranker, top, hpo = _WORKER["ranker"], _WORKER["top"], _WORKER["hpo"]
    return [rank_and_explain(ranker, case, top=top, hpo=hpo) for case in chunk]


def rank_many_parallel(ranker: Ranker, cases: Sequence[Case], workers: int | None = None, top: int = 10) -> list:
    """:func:`~rare_disease_rft.explain.rank_and_explain` of every case (its ``top`` genes with
    scores, probabilities and explanations), in the order of ``cases``, on ``workers`` processes
    (default: one per core), each on one thread. One worker, or a single chunk, runs here."""
    workers = workers or os.cpu_count() or 1
    chunks = [list(cases[i : i + CHUNK]) for i in range(0, len(cases), CHUNK)]
    _WORKER.update(ranker=ranker, top=top, hpo=load_hpo())
    if workers == 1 or len(chunks) < 2:
        return [result for chunk in chunks for result in _rank_and_explain_chunk(chunk)]
    # fork shares the loaded ranker; one thread each, so that the workers never wait for each other's cores
    with mp.get_context("fork").Pool(min(workers, len(chunks)), initializer=set_threads, initargs=(1,)) as pool:
        return [result for part in pool.imap(_rank_and_explain_chunk, chunks) for result in part]

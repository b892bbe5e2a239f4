"""What a clinic patient looks like.

A case report lists what its authors found and ruled out, often dozens of terms, with sex and
age; a patient referred from a clinic comes with a handful of findings, none ruled out, and no
paper behind them. :func:`as_clinic_patient` presents a case as a clinic patient is presented:
present terms only, no excluded terms, no sex or age, at most the :data:`CLINIC_MAX_TERMS` most
specific terms. The benchmark's clinic-like subset (``evaluate.clinic_like_tasks``) is built with it.
"""

from __future__ import annotations

from typing import Sequence

from .hpo import HPO
from .tasks import Task

#: terms a clinic-like presentation keeps at most (the kept-back clinic cohort's median is 7)
CLINIC_MAX_TERMS = 9


def most_specific_terms(hpo: HPO, terms: Sequence[str], limit: int = CLINIC_MAX_TERMS) -> list[str]:
    """The terms that no other of ``terms`` refines (an ancestor of another term is implied by it),
    then the ``limit`` of highest information content, ties by id; highest first. Terms the
    release does not know are left out (no ranker could use them)."""
    known = [t for t in dict.fromkeys(terms) if t in hpo.index]
    implied: set[int] = set()
    for term in known:
        own = hpo.index[term]
        implied.update(int(j) for j in hpo.ancestor_indices(own) if j != own)
    leaves = [t for t in known if hpo.index[t] not in implied]
    return sorted(leaves, key=lambda t: (-float(hpo.information_content[hpo.index[t]]), t))[:limit]


def as_clinic_patient(task: Task, hpo: HPO, present: Sequence[str] | None = None,
                      limit: int = CLINIC_MAX_TERMS) -> Task:
    """``task`` presented as a clinic patient (its ``present`` terms, or the given ones): the
    ``limit`` most specific present terms, no excluded terms, no sex or age. Id, answer and source
    stay, so that the case is still told apart, graded and its paper known."""
    chosen = most_specific_terms(hpo, task.present if present is None else present, limit)
    return Task(task.id, chosen, [], None, None, task.answer, dict(task.source), task.split)

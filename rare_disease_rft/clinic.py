"""What a clinic patient looks like, for evaluating and for training.

A case report lists what its authors found and ruled out, often dozens of terms, with sex and
age; a patient referred from a clinic comes with a handful of findings, none ruled out, and no
paper behind them. Two transformations of a task bridge the two:

- :func:`as_clinic_patient` presents a case as a clinic patient is presented: present terms only,
  no excluded terms, no sex or age, at most the :data:`CLINIC_MAX_TERMS` most specific terms. The
  benchmark's clinic-like subset (``evaluate.clinic_like_tasks``) is built with it.
- :func:`simulate_clinic_patient` draws a noisier version for training, as Phenomizer (Köhler et
  al. 2009) and LIRICAL (Robinson et al. 2020) were evaluated on simulated patients: terms
  dropped, terms made imprecise (replaced by a parent), unrelated common findings added, then
  presented as above. Seeded by the task id, so a case's simulation does not depend on the order
  or process it is drawn in.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .hpo import HPO, PHENOTYPIC_ABNORMALITY
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


@dataclass(frozen=True)
class ClinicSimulation:
    """Simulated clinic patients added to (or replacing) the training cases; 0 copies: none."""

    #: simulated presentations of each training case (each its own draw)
    copies: int = 0
    #: train on the simulated presentations only, not also on the cases as published
    replace_cases: bool = False
    #: chance that each of the case's most specific terms is not reported (one always stays)
    dropout: float = 0.3
    #: chance that a reported term is replaced by one of its parents (a broader term)
    imprecision: float = 0.2
    #: mean number (Poisson) of unrelated findings added, drawn by how often training cases report them
    noise_terms: float = 1.0
    #: terms kept at most, the most specific (as in the clinic-like benchmark subset)
    max_terms: int = CLINIC_MAX_TERMS
    seed: int = 0


class ReportedTerms:
    """How often the training cases report each term (as written, not propagated to ancestors):
    the background that unrelated common findings are drawn from."""

    def __init__(self, hpo: HPO, tasks: Sequence[Task]):
        counts = Counter(t for task in tasks for t in set(task.present) if t in hpo.index)
        self.terms = sorted(counts)
        total = sum(counts.values())
        self.probabilities = np.array([counts[t] / total for t in self.terms]) if total else np.zeros(0)


def simulate_clinic_patient(task: Task, hpo: HPO, reported: ReportedTerms, settings: ClinicSimulation,
                            copy: int = 0) -> Task:
    """One simulated clinic presentation of ``task`` (draw ``copy`` of its own seeded stream):
    its most specific terms, each dropped with ``dropout``; a kept one replaced by a random parent
    with ``imprecision`` (never by the root of the phenotypic abnormalities); Poisson(``noise_terms``)
    findings added that are neither an ancestor nor a descendant of a kept term; then presented by
    :func:`as_clinic_patient` with ``max_terms``. The id gains ``#clinic<copy>``."""
    rng = np.random.default_rng([settings.seed, copy, zlib.crc32(task.id.encode())])
    terms = most_specific_terms(hpo, task.present, limit=len(task.present))
    kept = [t for t in terms if rng.random() >= settings.dropout] or [terms[int(rng.integers(len(terms)))]]
    root, parents = hpo.index[PHENOTYPIC_ABNORMALITY], hpo.parents
    shown = []
    for term in kept:
        if rng.random() < settings.imprecision:
            own = hpo.index[term]  # the row's slice: indexing the sparse matrix costs 0.5 ms a term
            broader = [int(p) for p in parents.indices[parents.indptr[own] : parents.indptr[own + 1]] if p != root]
            if broader:
                term = hpo.ids[broader[int(rng.integers(len(broader)))]]
        shown.append(term)
    related = set(hpo.closure(shown).tolist())  # the shown terms and their ancestors
    n_noise = int(rng.poisson(settings.noise_terms)) if settings.noise_terms > 0 and reported.terms else 0
    for pick in (rng.choice(len(reported.terms), size=n_noise, p=reported.probabilities) if n_noise else []):
        term = reported.terms[int(pick)]
        lineage = set(hpo.ancestor_indices(hpo.index[term]).tolist())
        if hpo.index[term] in related or any(hpo.index[s] in lineage for s in shown):
            continue  # a finding the patient's terms already imply or refine is not unrelated
        shown.append(term)
        related |= lineage
    clinic = as_clinic_patient(task, hpo, shown, settings.max_terms)
    clinic.id = f"{task.id}#clinic{copy}"
    return clinic


def simulated_clinic_patients(tasks: Sequence[Task], hpo: HPO, settings: ClinicSimulation) -> list[Task]:
    """``settings.copies`` simulated clinic presentations of every task (copy by copy), unrelated
    findings drawn from what these tasks report."""
    reported = ReportedTerms(hpo, tasks)
    return [simulate_clinic_patient(t, hpo, reported, settings, copy) for copy in range(settings.copies) for t in tasks]

"""Publication-level splits: every case of a paper lands on the same side.

Cases from one paper share authors, phenotyping habits and often a founder variant; a split by
case would let a model recognise the paper instead of the disease.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

from rare_disease_rft.tasks import SPLITS, Task

DEFAULT_FRACTIONS = {"train": 0.70, "validation": 0.15, "test": 0.15}
DEFAULT_SEED = 13


def _order_key(pmid: str, seed: int) -> str:
    # A seeded hash of the PMID: the order depends on the seed and the papers, not on file order.
    return hashlib.sha256(f"{seed}:{pmid}".encode()).hexdigest()


def split_by_publication(
    tasks: list[Task], seed: int = DEFAULT_SEED, fractions: dict[str, float] = DEFAULT_FRACTIONS
) -> dict[str, str]:
    """Assigns each publication to a split; returns ``{pmid: split}`` and sets ``task.split``.

    Papers are taken in seeded-hash order and each goes to the split furthest below its target
    share of cases, so the case fractions come out close to ``fractions`` even though paper sizes
    range from 1 to hundreds of cases.
    """
    if set(fractions) - set(SPLITS) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must cover {SPLITS} and sum to 1, got {fractions}")
    cases = Counter(t.pmid for t in tasks)
    filled: dict[str, int] = defaultdict(int)
    assigned: dict[str, str] = {}
    total = 0
    for pmid in sorted(cases, key=lambda p: _order_key(p, seed)):
        total += cases[pmid]
        # the split whose share would fall shortest of its target after this paper
        name = max(fractions, key=lambda s: (fractions[s] * total - filled[s], -SPLITS.index(s)))
        assigned[pmid] = name
        filled[name] += cases[pmid]
    for task in tasks:
        task.split = assigned[task.pmid]
    return assigned


def summarise(tasks: list[Task]) -> dict:
    """Counts per split: cases, publications, genes, and terms per case."""
    out = {}
    groups: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        groups[task.split or "all"].append(task)
    train_genes = {t.answer.gene for t in groups.get("train", [])}
    for name, group in sorted(groups.items(), key=lambda kv: (SPLITS + ("all",)).index(kv[0])):
        genes = {t.answer.gene for t in group}
        out[name] = {
            "cases": len(group),
            "publications": len({t.pmid for t in group if t.pmid}),
            "genes": len(genes),
            "mean_present_terms": round(sum(len(t.present) for t in group) / len(group), 2),
            "mean_excluded_terms": round(sum(len(t.excluded) for t in group) / len(group), 2),
            "cases_with_excluded_terms": sum(1 for t in group if t.excluded),
        }
        if name != "train" and train_genes:
            out[name]["cases_whose_gene_has_no_training_case"] = sum(
                1 for t in group if t.answer.gene not in train_genes
            )
    return out

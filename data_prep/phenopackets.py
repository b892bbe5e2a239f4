"""``rdrft prepare phenopackets``: phenopackets -> a task set split by publication.

Reading a phenopacket is the input layer's (:mod:`rare_disease_rft.inputs.phenopackets`, whose
docstring gives the rule for task ids and ``source.file``); this stage writes the converted tasks,
their split and the report. A task set holds diagnosed patients only (one causal gene each):
undiagnosed phenopackets are reported as skipped here, and ranked by the ranking path, which reads
phenopackets itself. Phenopackets without a PMID are converted with ``split=False`` only, since
the split is by publication. Tasks are ordered by PMID, then id, whatever the layout of the files.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from rare_disease_rft.hpo import HPO, load_hpo
from rare_disease_rft.inputs.phenopackets import convert_sources

from .prepare import write_task_set
from .split import DEFAULT_SEED


def prepare_phenopackets(
    sources: list[str | Path], out: str | Path, split: bool = True, seed: int = DEFAULT_SEED, hpo: HPO | None = None
) -> dict:
    """``rdrft prepare phenopackets``: converts, splits by publication, writes files and report."""
    started = time.perf_counter()
    hpo = hpo or load_hpo()
    tasks, report = convert_sources(sources, hpo, require_pmid=split)
    tasks.sort(key=lambda t: (t.pmid or "", t.id))
    reasons = Counter(s["reason"] if not s["reason"].startswith("not valid JSON") else "not valid JSON"
                      for s in report.skipped)
    return write_task_set(
        out,
        tasks,
        {
            "sources": [str(s) for s in sources],
            "hpo_version": hpo.version,
            "files_read": report.files,
            "skipped_count": len(report.skipped),
            "skipped_by_reason": dict(reasons.most_common()),
            "terms_mapped_to_current_id": dict(report.mapped_terms.most_common()),
            "terms_unknown_to_hpo_release_dropped": dict(report.unknown_terms.most_common()),
            "terms_both_present_and_excluded_kept_present": report.present_and_excluded,
            "seconds": round(time.perf_counter() - started, 2),
            "skipped": report.skipped,
        },
        split=split,
        seed=seed,
    )

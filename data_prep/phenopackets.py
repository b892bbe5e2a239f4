"""``rdrft prepare phenopackets``: phenopackets -> a task set split by publication.

Reading a phenopacket is the input layer's (:mod:`rare_disease_rft.inputs.phenopackets`, whose
docstring gives the rule for task ids and ``source.file``); this stage writes the converted tasks,
their split and the report. A task set holds diagnosed patients only (one causal gene each):
undiagnosed phenopackets are reported as skipped here, and ranked by the ranking path, which reads
phenopackets itself. Phenopackets without a PMID are converted with ``split=False`` only, since
the split is by publication. Tasks are ordered by PMID, then id, whatever the layout of the files.

A task set split by publication is what models are trained and benchmarked on, so its ids and
files name no gene: phenopacket-store's own ids (``PMID_36322151_KDM2B_1``) and folders (one per
gene) do. There a task's id is ``PMID_<pmid>_<n>`` (``n`` in the order of the phenopackets' own
ids within the paper) and ``source.file`` is ``<source>:<n>`` (the n-th converted file of that
source). ``--no-split`` conversions (a lab's own patients, to be ranked or indexed) keep the
phenopacket's own id and real path, so a result can be joined back to its patient.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from rare_disease_rft.config import DataConfig
from rare_disease_rft.hpo import HPO, is_hpo_id, load_hpo
from rare_disease_rft.inputs.phenopackets import convert_sources
from rare_disease_rft.resources import BUNDLED_PHENOPACKETS
from rare_disease_rft.tasks import Task

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
    if split:
        _name_no_gene(tasks, sources)
    return write_task_set(
        out,
        tasks,
        {
            "sources": [str(s) for s in sources],
            "hpo_version": hpo.version,
            "files_read": report.files,
            "skipped_count": len(report.skipped),
            "skipped_by_reason": dict(report.reasons.most_common()),
            "terms_mapped_to_current_id": dict(report.mapped_terms.most_common()),
            # an id the release does not know (newer, or obsolete without a replacement) is not a typo
            "terms_unknown_to_hpo_release_dropped": {t: n for t, n in report.unknown_terms.most_common() if is_hpo_id(t)},
            "invalid_ids_dropped": {t: n for t, n in report.unknown_terms.most_common() if not is_hpo_id(t)},
            "terms_both_present_and_excluded_kept_present": report.present_and_excluded,
            "seconds": round(time.perf_counter() - started, 2),
            "skipped": report.skipped,
        },
        split=split,
        seed=seed,
    )


def _name_no_gene(tasks: list[Task], sources: list[str | Path]) -> None:
    """Gene-free ids and files for a task set split by publication (module docstring); ``tasks`` are
    sorted by PMID, then the phenopacket's own id."""
    per_paper: Counter = Counter()
    per_source: Counter = Counter()
    roots = [str(Path(s)) for s in sources]  # as the readers name files: "./in/" is "in"
    for task in tasks:
        per_paper[task.pmid] += 1
        task.id = f"{task.pmid.replace(':', '_')}_{per_paper[task.pmid]}"
        file = task.source["file"]
        root = next(r for r in roots if file == r or file.startswith((f"{r}!", f"{r.rstrip('/')}/")))
        source = Path(root).name
        per_source[source] += 1
        task.source["file"] = f"{source}:{per_source[source]}"


def prepare_missing(data: DataConfig) -> None:
    """Prepares the task files a recipe names from phenopackets, if any is missing (``rdrft train``
    in a fresh checkout needs no other step)."""
    missing = [p for p in (data.train, data.validation) if not Path(p).is_file()]
    if not missing:
        return
    folders = {Path(p).parent for p in missing}
    names = {Path(p).name for p in missing}
    if len(folders) > 1 or not names <= {"train.jsonl", "validation.jsonl", "test.jsonl"}:
        raise FileNotFoundError(
            f"task file {missing[0]} does not exist, and only files named train/validation/test.jsonl in one "
            "folder can be prepared automatically; run `rdrft prepare phenopackets --out DIR` first"
        )
    source = data.prepare_from or str(BUNDLED_PHENOPACKETS)
    print(f"preparing {folders.pop()} from {source} (task files were missing)")
    prepare_phenopackets([source], Path(missing[0]).parent, seed=data.seed)

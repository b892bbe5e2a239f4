"""Writes a prepared task set: ``tasks.jsonl``, the split files and ``report.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rare_disease_rft.tasks import SPLITS, Task, write_tasks

from .split import DEFAULT_SEED, split_by_publication, summarise


def write_task_set(
    out: str | Path,
    tasks: list[Task],
    report: dict,
    split: bool = True,
    seed: int = DEFAULT_SEED,
) -> dict:
    """Splits by publication (unless ``split`` is False), writes the files, returns the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in SPLITS:
        (out / f"{stale}.jsonl").unlink(missing_ok=True)
    if split and tasks:
        split_by_publication(tasks, seed=seed)
    write_tasks(out / "tasks.jsonl", tasks)
    files = {"tasks": str(out / "tasks.jsonl")}
    if split and tasks:
        for name in SPLITS:
            write_tasks(out / f"{name}.jsonl", (t for t in tasks if t.split == name))
            files[name] = str(out / f"{name}.jsonl")
    full = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed if split else None,
        "files": files,
        "tasks": len(tasks),
        "splits": summarise(tasks) if tasks else {},
        **report,
    }
    (out / "report.json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
    return full

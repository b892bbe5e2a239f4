"""Writes a prepared task set: ``tasks.jsonl``, the split files and ``report.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rare_disease_rft.resources import atomic_write_files
from rare_disease_rft.tasks import SPLITS, Task, tasks_jsonl

from .split import DEFAULT_SEED, split_by_publication, summarise


def task_set_files(out: str | Path, split: bool = True) -> list[Path]:
    """The files a task set in ``out`` consists of: tasks.jsonl, the split files, report.json."""
    out = Path(out)
    return [out / "tasks.jsonl", *([out / f"{name}.jsonl" for name in SPLITS] if split else []), out / "report.json"]


def check_out_folder(out: str | Path, split: bool = True) -> None:
    """Raises ValueError if a task set cannot go to ``out``: a file, or (``split`` False) a folder
    holding the split files of an earlier run, which a new tasks.jsonl beside them would not match
    (they are the user's: never deleted)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder; give a folder for tasks.jsonl and report.json")
    stale = [p.name for p in task_set_files(out) if p.stem in SPLITS and p.is_file()]
    if not split and stale:
        raise ValueError(f"--out {out} holds {', '.join(stale)} of an earlier split, which the new tasks.jsonl "
                         "would not match; choose another --out for --no-split (nothing was written)")


def write_task_set(
    out: str | Path,
    tasks: list[Task],
    report: dict,
    split: bool = True,
    seed: int = DEFAULT_SEED,
) -> dict:
    """Splits by publication (unless ``split`` is False), writes the files, returns the report.

    Every file is written through a temporary file and moved into place once all are written, so a
    failure leaves an earlier task set in ``out`` as it was.
    """
    out = Path(out)
    check_out_folder(out, split)
    if split:  # with no tasks the split files are written empty: they never outlive the tasks.jsonl beside them
        split_by_publication(tasks, seed=seed)
    paths = task_set_files(out, split)
    files = {path.stem: str(path) for path in paths if path.suffix == ".jsonl"}
    full = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed if split else None,
        "files": files,
        "tasks": len(tasks),
        "splits": summarise(tasks) if tasks else {},
        **report,
    }
    contents = {path: tasks_jsonl(t for t in tasks if path.stem in ("tasks", t.split)) for path in paths
                if path.suffix == ".jsonl"}
    contents[out / "report.json"] = (json.dumps(full, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    atomic_write_files(contents)
    return full

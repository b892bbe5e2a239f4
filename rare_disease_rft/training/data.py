"""Task files a training config names: prepared from the bundled case reports when missing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..resources import BUNDLED_PHENOPACKETS
from ..tasks import Task, read_tasks


@dataclass
class DataConfig:
    train: str = "data/phenopacket-store/train.jsonl"
    validation: str = "data/phenopacket-store/validation.jsonl"
    #: what to prepare the files from when they do not exist yet (default: the bundled archive)
    prepare_from: str | None = None
    #: the publication split's seed used when preparing
    seed: int = 13


def ensure_prepared(data: DataConfig) -> None:
    """Prepares the task files from phenopackets if any named file is missing."""
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
    from data_prep.phenopackets import prepare_phenopackets

    source = data.prepare_from or str(BUNDLED_PHENOPACKETS)
    print(f"preparing {folders.pop()} from {source} (task files were missing)")
    prepare_phenopackets([source], Path(missing[0]).parent, seed=data.seed)


def load_splits(data: DataConfig) -> tuple[list[Task], list[Task]]:
    ensure_prepared(data)
    return read_tasks(data.train), read_tasks(data.validation)

"""What the notebooks share: the small-settings switch, their task files and trained models.

SPEC: with ``RDRFT_SMALL=1`` every notebook runs top to bottom in small settings (minutes on 2
CPU cores); without it, in full settings. Notebooks ask this module for sizes, task files and
models, so none of them decides them on its own and the test suite can run them all quickly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .resources import BUNDLED_PHENOPACKETS, DEFAULT_DATA_DIR, DEFAULT_MODEL_DIR, REPO_ROOT, cache_dir, fingerprint
from .tasks import SPLITS, read_tasks, write_tasks

PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class NotebookSettings:
    small: bool
    #: cases kept of each split, spread evenly over the file (None: every case)
    cases: dict[str, int | None]
    #: ``key=value`` overrides for the default ranker's configs (and its ablation's)
    policy_overrides: tuple[str, ...]


# Small: enough cases and steps that curves and tables have a shape, a minute of CPU in all.
SMALL = NotebookSettings(
    small=True,
    cases={"train": 300, "validation": 60, "test": 200},
    policy_overrides=("training.steps=30", "training.eval_every=5", "training.checkpoint_every=1000",
                      "training.batch_cases=16", "training.group_size=8", "training.workers=1",
                      "model.shortlist_per_source=50"),
)
FULL = NotebookSettings(small=False, cases={name: None for name in SPLITS}, policy_overrides=())

#: the default ranker and its ablation: the recipe, and the directory that holds the trained model
#: after ``make run`` (default) or ``benchmarks/default_model.py`` (both)
POLICY_RECIPES: dict[str, tuple[str, Path]] = {
    "default": ("configs/default.yaml", DEFAULT_MODEL_DIR),
    "listwise": ("configs/policy-listwise.yaml", REPO_ROOT / "artifacts" / "listwise-policy"),
}


def is_small() -> bool:
    """``RDRFT_SMALL`` set to anything but empty, 0, false or no."""
    return os.environ.get("RDRFT_SMALL", "").strip().lower() not in ("", "0", "false", "no")


def settings() -> NotebookSettings:
    return SMALL if is_small() else FULL


def full_task_files() -> dict[str, Path]:
    """The bundled case reports' split files, prepared on first use (a few seconds)."""
    files = {name: DEFAULT_DATA_DIR / f"{name}.jsonl" for name in SPLITS}
    if not all(path.is_file() for path in files.values()):
        from data_prep.phenopackets import prepare_phenopackets

        prepare_phenopackets([BUNDLED_PHENOPACKETS], DEFAULT_DATA_DIR)
    return files


def task_files(current: NotebookSettings | None = None) -> dict[str, Path]:
    """``{split: path}``: the full split files, or in small settings an even subset of each."""
    current = current or settings()
    files = full_task_files()
    if not any(current.cases.values()):
        return files
    key = hashlib.sha256(json.dumps([fingerprint(list(files.values())), current.cases]).encode()).hexdigest()[:16]
    folder = cache_dir("notebooks", f"tasks-{key}")
    subset = {name: folder / f"{name}.jsonl" for name in SPLITS}
    for name, path in subset.items():
        if not path.is_file():
            tasks = read_tasks(files[name])
            n = current.cases[name] or len(tasks)
            # every k-th case rather than the first n: the file is ordered by publication
            write_tasks(path, tasks[:: max(1, len(tasks) // n)][:n])
    return subset


def _model_key(config_path: Path, overrides: list[str]) -> str:
    """Changes with the recipe, the data and the code that trains and loads the model."""
    code = sorted((PACKAGE / "rankers").glob("*.py")) + sorted((PACKAGE / "training").glob("*.py"))
    data = [Path(o.split("=", 1)[1]) for o in overrides if o.startswith("data.")]
    parts = [config_path.read_text(), *overrides, fingerprint(code), fingerprint(data)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def policy_models(names: list[str], current: NotebookSettings | None = None) -> dict[str, Path]:
    """``{name: model directory}`` for names of :data:`POLICY_RECIPES`.

    When every named model has a trained artifact, those are used; otherwise every one is trained
    with the current settings into the cache, so that models compared side by side were always
    trained alike. A model trained earlier with the same recipe, data and code is reused.
    """
    from .config import load_config
    from .training.policy_grpo import train_policy

    current = current or settings()
    recipes = {name: POLICY_RECIPES[name] for name in names}
    if all((artifact / "config.json").is_file() for _, artifact in recipes.values()):
        return {name: artifact for name, (_, artifact) in recipes.items()}
    files = task_files(current)
    overrides = [f"data.train={files['train']}", f"data.validation={files['validation']}",
                 *current.policy_overrides]
    models = {}
    for name, (config, _) in recipes.items():
        config_path = REPO_ROOT / config
        out = cache_dir("notebooks", "models") / f"{config_path.stem}-{_model_key(config_path, overrides)}"
        if not (out / "config.json").is_file():
            partial = out.with_name(out.name + ".partial")
            train_policy(load_config(config_path, overrides), partial)
            # renamed only when complete, so an interrupted run is never mistaken for a model
            shutil.rmtree(out, ignore_errors=True)
            partial.rename(out)
        models[name] = out
    return models


def benchmark_script(name: str) -> ModuleType:
    """A script of ``benchmarks/`` as a module, for the notebooks that show its parts."""
    path = REPO_ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

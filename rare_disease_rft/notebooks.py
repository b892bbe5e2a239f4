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


SMALL = NotebookSettings(small=True, cases={"train": 300, "validation": 60, "test": 200})
FULL = NotebookSettings(small=False, cases={name: None for name in SPLITS})


@dataclass(frozen=True)
class Recipe:
    #: the YAML recipe, relative to the repository
    config: str
    #: where ``make run`` or a benchmark script keeps the model trained with the full recipe
    artifact: Path
    #: ``key=value`` overrides in small settings
    small_overrides: tuple[str, ...]


# Small: enough steps that curves have a shape, seconds to a minute of CPU per model.
_SMALL_POLICY = ("training.steps=30", "training.eval_every=5", "training.checkpoint_every=1000",
                 "training.batch_cases=16", "training.group_size=8", "training.workers=1",
                 "model.shortlist_per_source=50")
RECIPES: dict[str, Recipe] = {
    "default": Recipe("configs/default.yaml", DEFAULT_MODEL_DIR, _SMALL_POLICY),
    "listwise": Recipe("configs/policy-listwise.yaml", REPO_ROOT / "artifacts" / "listwise-policy", _SMALL_POLICY),
    # a GRPO step of SmolLM2-135M takes minutes on 2 busy CPU cores: one step, short prompts, no warm-up
    "llm": Recipe("configs/grpo-smollm2-cpu.yaml", REPO_ROOT / "artifacts" / "grpo-smollm2-cpu", (
        "train_cases=2", "sft_warmup.enabled=false", "grpo.steps=1", "grpo.num_generations=2",
        "grpo.per_device_train_batch_size=2", "grpo.max_completion_length=32", "shortlist.size=5",
        "prompt.max_present_terms=4", "prompt.max_excluded_terms=2", "eval.validation_cases=2", "eval.curve_cases=0",
        "eval.max_new_tokens=32", "eval.batch_size=2")),
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


def training_overrides(name: str, current: NotebookSettings | None = None) -> list[str]:
    """The overrides a notebook trains recipe ``name`` with: its task files, and in small settings
    the recipe's small overrides."""
    current = current or settings()
    files = task_files(current)
    return [f"data.train={files['train']}", f"data.validation={files['validation']}",
            *(RECIPES[name].small_overrides if current.small else ())]


def _model_key(config_path: Path, overrides: list[str]) -> str:
    """Changes with the recipe, the data and the code that trains and loads the model."""
    code = [path for folder in ("rankers", "training", "llm") for path in sorted((PACKAGE / folder).glob("*.py"))]
    data = [Path(o.split("=", 1)[1]) for o in overrides if o.startswith("data.")]
    parts = [config_path.read_text(), *overrides, fingerprint(code), fingerprint(data)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def trained_models(names: list[str], current: NotebookSettings | None = None) -> dict[str, Path]:
    """``{name: model directory}`` for names of :data:`RECIPES`.

    When every named model has a trained artifact, those are used; otherwise every one is trained
    with the current settings into the cache, so that models compared side by side were always
    trained alike. A model trained earlier with the same recipe, data and code is reused.
    """
    from .config import load_config
    from .training import train

    current = current or settings()
    if all((RECIPES[name].artifact / "config.json").is_file() for name in names):
        return {name: RECIPES[name].artifact for name in names}
    models = {}
    for name in names:
        config_path = REPO_ROOT / RECIPES[name].config
        overrides = training_overrides(name, current)
        out = cache_dir("notebooks", "models") / f"{config_path.stem}-{_model_key(config_path, overrides)}"
        if not (out / "config.json").is_file():
            partial = out.with_name(out.name + ".partial")
            train(load_config(config_path, overrides), partial)
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

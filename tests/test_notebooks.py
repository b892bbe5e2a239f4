"""Every notebook runs top to bottom in small settings (``RDRFT_SMALL=1``), so a broken one fails CI.

SLOW: this executes all of ``notebooks/`` in a Jupyter kernel: under 2 minutes on 2 busy CPU cores
with the small models in the test cache; the first run, or one after the training code changed,
trains them (about 6.5 minutes, 3.5 of them the one-step LLM run). Skip with ``-m "not slow"``.

The kernel is the Python running the tests (the venv's, after ``make install``), through a
kernelspec written for the session, so a ``python3`` kernel registered elsewhere on the machine
can never be picked up instead.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import rare_disease_rft.registry
from rare_disease_rft import notebooks
from rare_disease_rft.tasks import read_tasks

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "rdrft-test-python"


@pytest.fixture(scope="session")
def kernel_specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rare-disease-rft (test)", "language": "python"}))
    return KernelSpecManager(kernel_dirs=[str(root)])


@pytest.mark.parametrize("value, small", [("1", True), ("yes", True), ("", False), ("0", False), ("False", False)])
def test_the_small_switch_reads_rdrft_small(monkeypatch, value, small):
    monkeypatch.setenv("RDRFT_SMALL", value)
    assert notebooks.is_small() is small
    assert notebooks.settings() is (notebooks.SMALL if small else notebooks.FULL)


def test_small_task_files_are_even_subsets_of_the_splits():
    small, full = notebooks.task_files(notebooks.SMALL), notebooks.task_files(notebooks.FULL)
    for split, n in notebooks.SMALL.cases.items():
        subset, everything = read_tasks(small[split]), read_tasks(full[split])
        assert len(subset) == n and {t.id for t in subset} <= {t.id for t in everything}
        assert len({t.pmid for t in subset}) > n // 4  # spread over the split, not its first papers


def test_trained_artifacts_are_used_only_when_every_compared_model_has_one(tmp_path, monkeypatch):
    artifacts = {name: tmp_path / name for name in notebooks.RECIPES}
    monkeypatch.setattr(notebooks, "RECIPES", {
        name: dataclasses.replace(recipe, artifact=artifacts[name]) for name, recipe in notebooks.RECIPES.items()})
    monkeypatch.setenv("RDRFT_CACHE", str(tmp_path / "cache"))
    trained = []

    def fake_training(config, out):
        trained.append(config)
        Path(out).mkdir(parents=True)
        (Path(out) / "config.json").write_text("{}")

    monkeypatch.setattr(rare_disease_rft.registry, "train", fake_training)
    artifacts["default"].mkdir()
    (artifacts["default"] / "config.json").write_text("{}")
    assert notebooks.trained_models(["default"], notebooks.SMALL) == {"default": artifacts["default"]}
    assert not trained

    # the ablation has no artifact: both are trained alike, on the small task files
    models = notebooks.trained_models(["default", "listwise"], notebooks.SMALL)
    assert [c.training.objective for c in trained] == ["grpo", "listwise"]
    assert all(c.training.steps == 30 and "notebooks" in c.data.train for c in trained)
    assert all((folder / "config.json").is_file() and tmp_path / "cache" in folder.parents for folder in models.values())
    notebooks.trained_models(["default", "listwise"], notebooks.SMALL)
    assert len(trained) == 2  # trained once, then reused

    notebooks.trained_models(["llm"], notebooks.SMALL)
    assert trained[-1].method == "llm_grpo" and trained[-1].grpo.steps == 1


def test_there_are_notebooks_and_they_are_saved_without_outputs():
    assert {"01_data", "02_concept_recognition", "03_default_ranker", "05_benchmark"} <= {p.stem for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        with_output = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not with_output, f"{path.name}: cells {with_output} were saved with outputs; clear them"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_small_settings(path, kernel_specs, monkeypatch):
    monkeypatch.setenv("RDRFT_SMALL", "1")  # the kernel inherits this process's environment
    nb = nbformat.read(path, as_version=4)
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = NotebookClient(nb, km=manager, kernel_name=KERNEL, timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell and its traceback
    print(f"{path.name}: {time.perf_counter() - started:.0f} s")

"""Turns a MODEL argument (a built-in name, ``default`` or a model directory) into a ranker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import resources
from .base import Ranker

BUILT_IN = ("phenomizer", "likelihood")


def model_folder(model: str) -> Path:
    """The directory a MODEL argument names: ``default`` is the model ``make run`` trains."""
    # read at call time, so that a changed resources.DEFAULT_MODEL_DIR is honoured everywhere
    return resources.DEFAULT_MODEL_DIR if model == "default" else Path(model)


def set_threads(threads: int) -> None:
    """This process's numerical libraries (BLAS, OpenMP, torch if it is loaded) compute on ``threads``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def load_ranker(model: str, threads: int | None = 1) -> Ranker:
    """``phenomizer``, ``likelihood``, ``default`` (the model ``make run`` trained) or a model directory.

    A ranker loaded for inference sets the process to ``threads`` (default one): a ranking's
    matrix products are small, and on a busy machine a second BLAS or torch thread waits for a core
    (a 350 x 64 product took 3 ms on two threads, 0.15 ms on one). ``None`` leaves the threads as
    they are (training loads its shortlister so).
    """
    ranker = _load(model)
    if threads:
        set_threads(threads)
    return ranker


def _load(model: str) -> Ranker:
    from .knowledge import LikelihoodRanker, PhenomizerRanker

    if model == "phenomizer":
        return PhenomizerRanker()
    if model == "likelihood":
        return LikelihoodRanker()
    path = model_folder(model)
    if not (path / "config.json").is_file():
        hint = " (run `make run` or `rdrft train --config configs/default.yaml`)" if model == "default" else ""
        raise FileNotFoundError(
            f"model '{model}' is neither a built-in ranker ({', '.join(BUILT_IN)}, default) "
            f"nor a model directory with a config.json{hint}"
        )
    kind = json.loads((path / "config.json").read_text()).get("kind")
    if kind == "policy":
        from .policy import PolicyRanker

        return PolicyRanker.load(path)
    if kind == "llm":
        from ..llm.ranker import LLMRanker

        return LLMRanker.load(path)
    raise ValueError(f"{path}/config.json names an unknown model kind '{kind}' (expected policy or llm)")

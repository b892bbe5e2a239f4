"""Turns a MODEL argument (a built-in name, ``default`` or a model directory) into a ranker."""

from __future__ import annotations

import json
from pathlib import Path

from .. import resources
from .base import Ranker

BUILT_IN = ("phenomizer", "likelihood")


def model_folder(model: str) -> Path:
    """The directory a MODEL argument names: ``default`` is the model ``make run`` trains."""
    # read at call time, so that a changed resources.DEFAULT_MODEL_DIR is honoured everywhere
    return resources.DEFAULT_MODEL_DIR if model == "default" else Path(model)


def load_ranker(model: str) -> Ranker:
    """``phenomizer``, ``likelihood``, ``default`` (the model ``make run`` trained) or a model directory."""
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

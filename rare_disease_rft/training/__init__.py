"""Training methods, one module each: ``policy_grpo`` (the default ranker) and the LLM GRPO in ``llm``."""

from __future__ import annotations

from pathlib import Path


def train(config, out: str | Path, max_steps: int | None = None) -> Path:
    """Trains the model a loaded recipe names (its ``method``) into the model directory ``out``.

    The method's module is imported here, so a recipe for one method needs no other's dependencies.
    """
    if config.method == "policy":
        from .policy_grpo import train_policy

        return train_policy(config, out, max_steps=max_steps)
    from ..llm.train_grpo import train_llm

    return train_llm(config, out, max_steps=max_steps)

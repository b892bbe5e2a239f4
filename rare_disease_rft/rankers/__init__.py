"""Rankers: one interface (``rank(case) -> Ranking``) for knowledge-based rankers, the RL policy and LLMs."""

from .base import Case, Ranker, Ranking
from .registry import BUILT_IN, load_ranker, model_folder

__all__ = ["Case", "Ranker", "Ranking", "BUILT_IN", "load_ranker", "model_folder"]

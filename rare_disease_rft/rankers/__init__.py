"""Rankers: one interface (``rank(case) -> Ranking``) for knowledge-based rankers, the RL policy and LLMs.

Which ranker a MODEL argument names is the registry's to say (``rare_disease_rft.registry``)."""

from .base import Case, Ranker, Ranking

__all__ = ["Case", "Ranker", "Ranking"]

"""Training methods, one module each: ``policy_grpo`` (the default ranker) and the LLM GRPO in ``llm``."""

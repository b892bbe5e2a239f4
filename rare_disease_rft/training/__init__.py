"""Training of the default ranker: ``policy_grpo`` (GRPO over gene rankings). The LLM method lives in
``llm``; the registry (``rare_disease_rft.registry``) says which recipe ``method`` trains with which."""

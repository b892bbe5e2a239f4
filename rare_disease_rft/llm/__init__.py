"""LLM reinforcement fine-tuning: a causal LM re-ranks a shortlist of candidate genes, trained with
TRL's GRPOTrainer and a PEFT LoRA adapter on rewards from the grader registry (README.md here)."""

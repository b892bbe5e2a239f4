"""The default ranker's network as torch trains it; ranking uses the same weights in numpy
(:class:`~rare_disease_rft.rankers.policy.PolicyWeights`), so that it needs no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ..rankers.features import FEATURES
from ..rankers.policy import CASE_GATE, KNOWLEDGE_FEATURES, STARTING_FEATURE, PolicyWeights


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
        :meth:`PolicyWeights.heads` is the same arithmetic in numpy.
        """
        z = (features - self.mean) / self.std * self.used
        start = self.start(z[..., self.start_column : self.start_column + 1]).squeeze(-1)
        knowledge = start + self.knowledge(z[..., self.knowledge_columns]).squeeze(-1)
        gate = features[..., self.gate_column] * self.used[self.gate_column]
        return knowledge, knowledge + gate * self.cases(z).squeeze(-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: (..., genes, n_features) -> scores (..., genes)."""
        return self.heads(features)[1]

    def weights(self) -> PolicyWeights:
        """The network as the ranker runs it: its tensors as numpy arrays."""
        return PolicyWeights({k: v.detach().cpu().numpy() for k, v in self.state_dict().items()})


def save_policy(folder: Path, net: PolicyNet) -> None:
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))

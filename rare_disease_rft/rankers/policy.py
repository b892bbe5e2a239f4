"""The RL-trained default ranker: a small network scores each shortlisted gene's evidence.

The network's scores define a Plackett-Luce policy over rankings; training samples rankings
from it and reinforces those the graders reward (see ``training/policy_grpo.py``). At inference
the ranking is the greedy one (genes by score), and calibrated probabilities come from a
softmax over the shortlist at a temperature fitted on validation.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file

from ..hpo import HPO, load_hpo
from .base import Case, Ranker, Ranking, order_by_score
from .case_index import CaseIndex
from .cooccurrence import COOCCURRENCE_PRIOR
from .features import FEATURES, CaseFeatures, FeatureExtractor

# The feature the untrained policy ranks by: training starts from the likelihood ranker.
STARTING_FEATURE = "lr_present"
# Evidence from the HPO annotations alone; the rest comes from the training case reports.
KNOWLEDGE_FEATURES = tuple(f for f in FEATURES if not f.startswith(("case_", "profile_", "paper_", "has_cases")))
# 1 for genes with training cases: only they get a case-evidence term
CASE_GATE = "has_cases"
# genes the network scores at a time in a batch: a pass over 200 patients' shortlists at once took
# three times as long per patient (its arrays no longer fit the processor's cache)
NETWORK_ROWS = 1024
# patients whose evidence is computed together (FeatureExtractor.share_evidence; their term vectors,
# terms x patients float32: 2.5 MB for 32)
SHARED_EVIDENCE = 32

#: rows per matrix product: BLAS picks its kernel (and so the rounding) by the matrix's shape, so
#: every product has this one; a gene's score is then the same whichever genes it is scored with
_ROWS = 64


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """rows x inputs -> rows x outputs: ``x @ weight.T + bias``, in blocks of _ROWS rows."""
    n = len(x)
    blocks = np.zeros((-(-n // _ROWS) * _ROWS, x.shape[1]), dtype=np.float32)
    blocks[:n] = x
    return (np.matmul(blocks.reshape(-1, _ROWS, x.shape[1]), weight.T).reshape(-1, weight.shape[0]))[:n] + bias


# GELU(x) = x P(N(0, 1) < x) = max(x, 0) - |x| Q(|x|) with Q(a) = P(N(0, 1) > a), Q interpolated
# linearly in a table over [0, 8] (beyond, Q is below 1e-15): within an ulp or so of torch's GELU
# (an upper tail, so no cancellation for negative x), and four times faster than through scipy's erf
_GELU_STEP = 2.0**-11
_GELU_END = 8.0


@functools.cache
def _gelu_table() -> tuple[np.ndarray, np.ndarray]:
    """Per cell, Q at its start and Q's change over it (float32 each)."""
    points = np.array([0.5 * math.erfc(i * _GELU_STEP / math.sqrt(2)) for i in range(int(_GELU_END / _GELU_STEP) + 2)])
    return points[:-1].astype(np.float32), np.diff(points).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU (torch's default) of float32 ``x``: max(x, 0) - |x| (start + offset * change),
    worked in place (the network's largest cost after the features)."""
    starts, changes = _gelu_table()
    magnitude = np.abs(x)
    position = np.fmin(magnitude, np.float32(_GELU_END))  # fmin: NaN reads as the end
    position *= np.float32(1 / _GELU_STEP)
    whole = np.floor(position)  # the cell (<= 2**14) as a float: a subtraction of ints converted each one
    cell = whole.astype(np.intp)  # intp and mode="clip": take then neither converts nor checks each index
    offset = np.subtract(position, whole, out=position)
    tail = changes.take(cell, mode="clip")
    tail *= offset
    tail += starts.take(cell, mode="clip")
    magnitude *= tail
    out = np.maximum(x, np.float32(0.0))
    out -= magnitude
    return out


class PolicyWeights:
    """The trained network (``training/policy_net.py``'s PolicyNet) as numpy arrays, and its forward
    pass: a few thousand weights over a few hundred genes, which needs no torch. Built from the
    network's tensors by name, as ``model.safetensors`` holds them."""

    def __init__(self, tensors: dict[str, np.ndarray]):
        def tensor(name: str) -> np.ndarray:
            if name not in tensors:
                raise ValueError(f"the policy network has no tensor '{name}' (is this a policy model.safetensors?)")
            return np.asarray(tensors[name])

        self.mean, self.std, self.used = (tensor(n).astype(np.float32) for n in ("mean", "std", "used"))
        self.knowledge_columns = tensor("knowledge_columns").astype(np.int64)
        self.start = (tensor("start.weight").astype(np.float32), tensor("start.bias").astype(np.float32))
        self.knowledge = self._layers(tensors, "knowledge")
        self.cases = self._layers(tensors, "cases")
        for head, layers, width in (("knowledge", self.knowledge, len(KNOWLEDGE_FEATURES)), ("cases", self.cases, len(FEATURES))):
            self._check_shapes(head, layers, width)
        self.start_column = FEATURES.index(STARTING_FEATURE)
        self.gate_column = FEATURES.index(CASE_GATE)

    @staticmethod
    def _layers(tensors: dict[str, np.ndarray], head: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """An MLP's (weight, bias) pairs in order: torch's Sequential names them head.0, head.2, ...
        Each weight is kept in Fortran order, so that ``weight.T`` (what _linear multiplies by) is
        C-contiguous: numpy's matmul took twice as long with the transposed view (35 against 20 µs
        for a 64 x 64 layer), to the same bits."""
        positions = sorted({int(k.split(".")[1]) for k in tensors if k.startswith(f"{head}.") and k.endswith(".weight")})
        if not positions:
            raise ValueError(f"the policy network has no '{head}' layers (is this a policy model.safetensors?)")
        return [(np.asfortranarray(tensors[f"{head}.{i}.weight"], np.float32), np.asarray(tensors[f"{head}.{i}.bias"], np.float32))
                for i in positions]

    @staticmethod
    def _check_shapes(head: str, layers: list[tuple[np.ndarray, np.ndarray]], width: int) -> None:
        """Each layer takes the previous one's outputs (the first the features), the last gives one score."""
        for i, (weight, bias) in enumerate(layers):
            out = 1 if i == len(layers) - 1 else weight.shape[0]
            if weight.ndim != 2 or weight.shape != (out, width) or bias.shape != (out,):
                raise ValueError(f"size mismatch for {head}.{2 * i}.weight: {tuple(weight.shape)} in the file, "
                                 f"({out}, {width}) expected (is this model.safetensors of this model?)")
            width = out

    def check(self, hidden: int, layers: int) -> None:
        """Raises ValueError unless the network has the width and depth its config.json states."""
        for head in (self.knowledge, self.cases):
            if len(head) != layers + 1 or head[0][0].shape[0] != hidden:
                raise ValueError(f"model.safetensors holds {len(head) - 1} hidden layers of {head[0][0].shape[0]} "
                                 f"units, config.json says {layers} of {hidden}")

    @staticmethod
    def _mlp(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
        """rows x inputs -> one output per row."""
        for weight, bias in layers[:-1]:
            x = _gelu(_linear(x, weight, bias))
        weight, bias = layers[-1]
        return _linear(x, weight, bias)[:, 0]

    def heads(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``features``: (..., genes, n_features) float32 -> (knowledge scores, full scores), each
        (..., genes): PolicyNet.heads in numpy (a test holds the two to 1e-6)."""
        rows = features.reshape(-1, features.shape[-1])
        z = (rows - self.mean) / self.std * self.used
        weight, bias = self.start
        start = z[:, self.start_column] * weight[0, 0] + bias[0]  # a 1 x 1 layer
        knowledge = start + self._mlp(self.knowledge, z[:, self.knowledge_columns])
        gate = rows[:, self.gate_column] * self.used[self.gate_column]
        full = knowledge.copy()
        # genes without training cases get nothing from the case head (gate 0): it runs for the others only
        cased = gate != 0
        full[cased] += gate[cased] * self._mlp(self.cases, z[cased])
        return knowledge.reshape(features.shape[:-1]), full.reshape(features.shape[:-1])

    def scores(self, features: np.ndarray) -> np.ndarray:
        """``features``: (..., genes, n_features) -> scores (..., genes)."""
        return self.heads(features)[1]

    @classmethod
    def load(cls, path: str | Path) -> "PolicyWeights":
        return cls(load_file(str(path)))  # safetensors: tensors only, nothing in the file is run


def calibrated_probabilities(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities of the shortlisted genes (cases x genes): a softmax at the temperature fitted
    on validation to the top-10 genes, so that those are honest even for patients whose answer
    the shortlist misses. Scores of -inf (padding) get 0."""
    scaled = np.asarray(scores, dtype=np.float64) / temperature
    top = scaled.max(axis=1, keepdims=True)
    mass = np.exp(scaled - np.where(np.isfinite(top), top, 0.0))
    return mass / mass.sum(axis=1, keepdims=True)


class PolicyRanker(Ranker):
    """Loads a model directory written by ``rdrft train`` with the policy method."""

    def __init__(self, weights: PolicyWeights, extractor: FeatureExtractor, config: dict, calibration: dict,
                 name: str = "policy"):
        self.weights = weights
        self.extractor = extractor
        self.config = config
        self.calibration = calibration
        self.name = name
        self.training_genes = frozenset(extractor.index.genes)
        self.indexed_cases = frozenset(extractor.index.case_ids)
        self._gene_row = {g: i for i, g in enumerate(extractor.index.genes)}

    @classmethod
    def load(cls, folder: str | Path, hpo: HPO | None = None) -> "PolicyRanker":
        folder = Path(folder)
        hpo = hpo or load_hpo()
        config = json.loads((folder / "config.json").read_text())
        model = config["model"]
        weights = PolicyWeights.load(folder / "model.safetensors")
        weights.check(model["hidden"], model["layers"])
        index = CaseIndex.load(folder, hpo)
        extractor = FeatureExtractor(hpo, index, model["shortlist_per_source"],
                                     model.get("cooccurrence_prior", COOCCURRENCE_PRIOR))
        return cls(weights, extractor, config, config.get("calibration", {}), name=config.get("name") or folder.name)

    def scores(self, features: np.ndarray) -> np.ndarray:
        return self.weights.scores(features)

    def rank(self, case: Case) -> Ranking:
        # a withheld publication leaves its cases out of the index (and its knowledge out of the evidence)
        feats = self.extractor.extract(case, exclude_pmid=case.withheld_publication)
        return self._ranking(feats, self.scores(feats.values))

    def rank_many(self, cases: Sequence[Case]) -> list[Ranking]:
        """Batched: the patients' per-term columns are computed once and shared (the matchers keep
        them), their similarities to the indexed cases come from one product and the genes' best
        cases and diseases from one pass (``FeatureExtractor.share_evidence``), and the network
        scores their shortlists together, in passes of NETWORK_ROWS rows.
        The same rankings as :meth:`rank`, bit for bit (each gene's score depends on its own row only)."""
        features = []
        for start in range(0, len(cases), SHARED_EVIDENCE):
            group = cases[start : start + SHARED_EVIDENCE]
            self.extractor.share_evidence(group)
            features += [self.extractor.extract(case, exclude_pmid=case.withheld_publication) for case in group]
        if not features:
            return []
        rows = np.concatenate([f.values for f in features])
        scores = np.concatenate([self.scores(rows[i : i + NETWORK_ROWS]) for i in range(0, len(rows), NETWORK_ROWS)])
        ends = np.cumsum([len(f.candidates) for f in features])
        return [self._ranking(f, scores[end - len(f.candidates) : end]) for f, end in zip(features, ends)]

    def _ranking(self, feats: CaseFeatures, scores: np.ndarray) -> Ranking:
        order = order_by_score(scores, self.extractor.alphabetical[feats.candidates])
        top = feats.candidates[order]
        ordered_scores = scores[order]
        probabilities = calibrated_probabilities(ordered_scores[None], self.calibration.get("temperature", 1.0))[0]
        genes = self.extractor.universe[np.concatenate([top, feats.rest])].tolist()
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
        row = self._gene_row.get(gene)
        if row is None:
            return []
        # the gene's cases in index order: its row of the (canonical) membership matrix
        members = index.membership.indices[index.membership.indptr[row] : index.membership.indptr[row + 1]]
        sims = self.extractor.similarities(case)[0][members]  # each case's own sum: as index.present[members] @ vector
        order = np.argsort(-sims, kind="stable")[:k]
        ids, pmids = index.case_ids, index.case_pmids
        return [{"case_id": ids[i], "pmid": pmids[i], "similarity": round(s, 3)}
                for i, s in zip(members[order].tolist(), sims[order].tolist())]

    def describe(self) -> dict:
        return {"name": self.name, "kind": "policy", **self.config.get("versions", {}),
                "validation": self.config.get("validation_metrics", {})}

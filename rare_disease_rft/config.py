"""Configs are dataclasses loaded from YAML; every default is written once, in the dataclass.

:func:`read_recipe` reads a YAML recipe and applies ``key=value`` overrides with dotted keys
(``training.steps=200``); :func:`build_config` checks every key and type against a dataclass.
Which dataclass a recipe's ``method`` means is the registry's to say
(:func:`rare_disease_rft.registry.load_config`). A model directory records the resolved config with
:func:`to_dict`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .resources import DATA_FOLDER
from .tasks import Task, read_tasks


class ConfigError(ValueError):
    """A recipe that does not fit its dataclass; the message names the key and what is allowed."""


@dataclass
class DataConfig:
    """The task files a recipe trains and validates on (every training method has one)."""

    train: str = f"{DATA_FOLDER}/train.jsonl"
    validation: str = f"{DATA_FOLDER}/validation.jsonl"
    #: what to prepare the files from when they do not exist yet (default: the bundled archive)
    prepare_from: str | None = None
    #: the publication split's seed used when preparing
    seed: int = 13

    def read(self) -> tuple[list[Task], list[Task]]:
        """The training and validation tasks."""
        return read_tasks(self.train), read_tasks(self.validation)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of settings, got {value!r}")
        return build_config(hint, value, key)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{key}: '{value}' is not one of {', '.join(map(str, typing.get_args(hint)))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {'an integer' if hint is int else 'a number'}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != number:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return str(value)
    return value


def build_config(cls: type, data: dict, prefix: str = ""):
    """``cls`` built from ``data``; a :class:`ConfigError` names the first key or value that does not fit."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown setting '{where}{sorted(unknown)[0]}'; valid here: {', '.join(sorted(fields))}")
    kwargs = {name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name) for name, value in data.items()}
    return cls(**kwargs)


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: '{key}' is not a group of settings")
    node[keys[-1]] = value


def read_recipe(path: str | Path, overrides: list[str] | None = None) -> dict:
    """The settings of a YAML recipe, with ``key=value`` overrides applied (not yet checked)."""
    import yaml  # here, not at the top: commands that read no recipe (rank, the app) start without it

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        _set_dotted(data, key.strip(), yaml.safe_load(raw))
    return data




def to_dict(config) -> dict:
    return dataclasses.asdict(config)

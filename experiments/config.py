"""From a YAML file and command-line overrides to a validated, frozen config.

A preset is YAML with ``kind:``, the kind's fields, and an optional ``quick:``
mapping of overrides applied by ``--quick``. ``--set key=value`` overrides come
last; values are parsed as YAML and dotted keys reach into nested mappings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

import pnyx.yaml_safe as yaml_safe
from pnyx.errors import PnyxError
from pnyx.experiments.catalog import get_kind, preset_path
from pnyx.experiments.experiment import Experiment, ExperimentConfig
from pnyx.files import read_yaml


def load_yaml(path: Path) -> dict:
    """The mapping in the YAML file ``path`` (as :func:`pnyx.files.read_yaml`)."""
    return read_yaml(path, f"config {str(path)!r}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'a.b=[1, 2]'`` -> ``(['a', 'b'], [1, 2])``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise PnyxError(f"--set needs key=value, got {text!r}")
    parsed = yaml_safe.load(value, f"--set {key}: value {value!r}") if value.strip() else ""
    return key.strip().split("."), parsed


def apply_overrides(data: dict, overrides: Iterable[str] | Mapping[str, Any]) -> dict:
    """``data`` with overrides applied: ``key=value`` strings (values parsed as YAML) or a
    mapping of dotted keys to values."""
    data = _deep_copy(data)
    items = ([(k.split("."), v) for k, v in overrides.items()] if isinstance(overrides, Mapping)
             else [parse_override(text) for text in overrides])
    for path, value in items:
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise PnyxError(f"--set {'.'.join(path)}: {part!r} is not a mapping")
            node = child
        node[path[-1]] = value
    return data


def merge(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``, recursively for nested mappings."""
    out = _deep_copy(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _deep_copy(data):
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def validate(data: dict, *, stored: bool = False) -> tuple[Experiment, ExperimentConfig]:
    """The kind and its validated config; errors become one-line :class:`PnyxError`.

    ``stored`` validates a stored run's config without importing or trying the specs it
    names (see :func:`~pnyx.experiments.experiment.builds_specs`)."""
    if "kind" not in data:
        raise PnyxError("config has no 'kind' field")
    kind = get_kind(str(data["kind"]))
    try:
        return kind, kind.Config.model_validate(data, context={"stored": stored})
    except ValidationError as e:
        raise PnyxError(describe_validation_error(e)) from None


def describe_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not where:
        return f"invalid config: {message}"
    if first["type"] == "extra_forbidden":
        return f"unknown config field {where!r}"
    value = first.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None or repr(value) in message else f" (got {value!r})"
    return f"invalid config field {where!r}: {message}{shown}"


def resolve(name_or_file: str, *, quick: bool = False, seed: int | None = None,
            overrides: Iterable[str] | Mapping[str, Any] = ()) -> tuple[Experiment, ExperimentConfig]:
    """Load a preset or YAML file, apply ``--quick``, ``--seed`` and ``--set``, validate."""
    data = load_yaml(preset_path(name_or_file))
    quick_overrides = data.pop("quick", None) or {}
    if quick:
        data = merge(data, quick_overrides)
    if seed is not None:
        data["seed"] = seed
    return validate(apply_overrides(data, overrides))

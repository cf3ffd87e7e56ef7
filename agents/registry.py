"""Naming policies: a registry of names, and spec strings that build policies.

A spec is one of

* a registered name, optionally with literal arguments: ``tft``, ``random(0.3)``,
  ``memory_one(0.9,0.1,0.8,0.2,1)``;
* an import path ``package.module:Class``, optionally with arguments;
* a path to a saved learner checkpoint (``*.pt``).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any, Callable

from pnyx.errors import PnyxError

_REGISTRY: dict[str, Callable[..., Any]] = {}
_DESCRIPTIONS: dict[str, str] = {}
# Loaders for checkpoint files, by suffix; imported lazily so that torch is loaded only when needed.
_FILE_LOADERS = {".pt": "pnyx.agents.sequence:load_policy"}

_SPEC = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.]*(?::[A-Za-z_]\w*)?)\s*(?:\((?P<args>.*)\))?\s*$", re.S)


def register_policy(name: str, factory: Callable[..., Any], description: str | None = None) -> None:
    """Register ``factory`` (a class or function taking the spec's arguments) under ``name``."""
    _REGISTRY[name] = factory
    _DESCRIPTIONS[name] = description or " ".join((factory.__doc__ or "").strip().split("\n\n")[0].split())


def policy_names() -> dict[str, str]:
    """Registered policy names with their one-line descriptions."""
    return dict(sorted(_DESCRIPTIONS.items()))


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs; commas inside parentheses belong to the spec."""
    specs, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise PnyxError(f"unbalanced ')' in player list {text!r}")
        elif ch == "," and depth == 0:
            specs.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise PnyxError(f"unbalanced '(' in player list {text!r}")
    specs.append(text[start:].strip())
    if any(not s for s in specs):
        raise PnyxError(f"empty spec in player list {text!r}")
    return specs


def _parse_args(spec: str, args: str | None) -> tuple:
    if args is None or not args.strip():
        return ()
    try:
        value = ast.literal_eval(f"({args},)")
    except (ValueError, SyntaxError):
        raise PnyxError(f"malformed arguments in policy spec {spec!r}") from None
    return value


def import_object(path: str, what: str) -> Any:
    """The object at ``package.module:attr``; a :class:`PnyxError` naming ``what`` if it is missing."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PnyxError(f"cannot import module {module_name!r} for {what} ({e})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PnyxError(f"module {module_name!r} has no attribute {attr!r} for {what}") from None


def policy_factory(spec: str) -> Callable[[], Any]:
    """A no-argument factory of fresh policies for ``spec``; raises :class:`PnyxError` on a bad spec.

    The factory is tried once here, so bad arguments fail before any game is played.
    """
    spec = spec.strip()
    suffix = Path(spec).suffix
    if suffix in _FILE_LOADERS and "(" not in spec:
        if not Path(spec).is_file():
            raise PnyxError(f"checkpoint {spec!r} does not exist")
        loader = import_object(_FILE_LOADERS[suffix], f"checkpoint {spec!r}")
        factory = lambda: loader(spec)  # noqa: E731
    else:
        match = _SPEC.match(spec)
        if not match:
            raise PnyxError(f"malformed policy spec {spec!r}")
        name, args = match["name"], _parse_args(spec, match["args"])
        if ":" in name:
            target = import_object(name, f"policy {spec!r}")
        elif name in _REGISTRY:
            target = _REGISTRY[name]
        else:
            raise PnyxError(f"unknown policy {name!r} (see 'pnyx list'; or use package.module:Class)")
        factory = lambda: target(*args)  # noqa: E731
    try:
        factory()
    except PnyxError as e:
        raise PnyxError(f"policy {spec!r}: {e}") from None
    except TypeError as e:
        raise PnyxError(f"policy {spec!r}: bad arguments ({e})") from None
    return factory


def make_policy(spec: str) -> Any:
    """A fresh policy built from ``spec``."""
    return policy_factory(spec)()

"""Fingerprints of the files a config names, so that a resumed run uses the inputs it started with.

A config records paths, not contents. :func:`fingerprint` walks a resolved config for
strings that name an existing file (a tasks JSONL, a scenario YAML, a ``.pt``
checkpoint), also inside specs (``learner(path='x.pt')``, ``transformers:/m.gguf``), and
for an import path ``package.module:Class`` the module's source file, unless the module
is part of pnyx or lies under the standard library or site-packages. The run folder
keeps ``{path: sha256}`` in ``inputs.json``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sysconfig
from pathlib import Path
from typing import Any, Mapping

from pnyx.specs import parse

_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_ATTRIBUTE = re.compile(r"[A-Za-z_]\w*")


def sha256_file(path: str | Path) -> str:
    """The sha256 of the file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(config: Any) -> dict[str, str]:
    """``{path: sha256}`` of every file ``config`` (a resolved config as JSON data) refers to."""
    paths: list[str] = []
    _visit(config, paths, depth=0)
    found = {}
    for path in paths:
        if path not in found:
            try:
                found[path] = sha256_file(path)
            except OSError:
                continue
    return found


def first_change(recorded: Mapping[str, str], current: Mapping[str, str]) -> tuple[str, str] | None:
    """The first input that differs, as ``(path, 'changed' | 'missing')``; ``None`` if none does."""
    for path, digest in recorded.items():
        if path not in current:
            return path, "missing"
        if current[path] != digest:
            return path, "changed"
    for path in current:
        if path not in recorded:
            return path, "changed"
    return None


def _visit(value: Any, paths: list[str], depth: int) -> None:
    if depth > 20:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            _visit(item, paths, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _visit(item, paths, depth + 1)
    elif isinstance(value, str):
        _visit_string(value, paths, depth)


def _visit_string(text: str, paths: list[str], depth: int) -> None:
    if _is_file(text):
        paths.append(text)
        return
    try:
        spec = parse(text)
    except Exception:  # noqa: BLE001 - a string that is not a spec names no file
        return
    if spec.target is not None:
        if _is_file(spec.target):
            paths.append(spec.target)
        elif _MODULE.fullmatch(spec.name) and _ATTRIBUTE.fullmatch(spec.target):
            source = _module_source(spec.name)
            if source is not None:
                paths.append(source)
    for item in (*spec.args, *spec.kwargs.values()):
        _visit(item, paths, depth + 1)


def _is_file(text: str) -> bool:
    if not text or "\n" in text:
        return False
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def _module_source(name: str) -> str | None:
    """The source file of a user's module; ``None`` for pnyx, installed or built-in modules."""
    if name == "pnyx" or name.startswith("pnyx."):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # noqa: BLE001 - a module that cannot be found is not fingerprinted
        return None
    origin = getattr(spec, "origin", None)
    if not origin or not _is_file(origin):
        return None
    path = Path(origin).resolve()
    if {"site-packages", "dist-packages"} & set(path.parts):
        return None
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        root = sysconfig.get_paths().get(key)
        if root and path.is_relative_to(Path(root).resolve()):
            return None
    return str(path)

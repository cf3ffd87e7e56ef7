"""Fingerprints of the files a config names, so that a resumed run uses the inputs it started with.

A config records paths, not contents. :func:`fingerprint` walks a resolved config for
strings that name an existing file (a tasks JSONL, a scenario YAML, a ``.pt``
checkpoint; ``~`` expanded), also inside specs (``learner(path='x.pt')``,
``transformers:/m.gguf``), and for an import path ``package.module:Class`` the module's
source file, unless the module is part of pnyx or lies under the standard library or
site-packages. A YAML file's own strings that name files beside it (a scenario's
``requests`` and ``base``) count too, and so does each file of a folder that a field of
:data:`FOLDER_FIELDS` names (the authors' prompt folder), names starting with ``.``
skipped; both stay inside the YAML's or the folder's real folder. The run folder keeps
``{path: sha256}`` in ``inputs.json``. :func:`named_modules` lists the user's modules that
the config names, for the Ray workers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import sysconfig
from pathlib import Path
from typing import Any, Mapping

from pnyx.errors import PnyxError
from pnyx.files import read_yaml
from pnyx.paths import within
from pnyx.registry import registered
from pnyx.specs import parse

#: Config fields whose value may be a folder of input files, each of them fingerprinted.
FOLDER_FIELDS = frozenset({"scenario"})
#: Most files fingerprinted in one folder.
MAX_FOLDER_FILES = 10_000
_YAML = (".yaml", ".yml")

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
                found[path] = sha256_file(Path(path).expanduser())
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


def _visit(value: Any, paths: list[str], depth: int, folder: bool = False) -> None:
    if depth > 20:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _visit(item, paths, depth + 1, folder=key in FOLDER_FIELDS)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _visit(item, paths, depth + 1)
    elif isinstance(value, str):
        _visit_string(value, paths, depth, folder)


def _visit_string(text: str, paths: list[str], depth: int, folder: bool = False) -> None:
    if folder and _is_dir(text):
        paths.extend(_folder_files(text))
        return
    if _is_file(text):
        paths.append(text)
        if text.endswith(_YAML):
            real = Path(text).expanduser().resolve()
            _yaml_files(real, real.parent, paths, depth)
        return
    try:
        spec = parse(text)
    except Exception:  # noqa: BLE001 - a string that is not a spec names no file
        return
    if spec.target is not None:
        if _is_file(spec.target):
            paths.append(spec.target)
        elif _MODULE.fullmatch(spec.name) and _ATTRIBUTE.fullmatch(spec.target):
            source = module_source(spec.name)
            if source is not None:
                paths.append(source)
    for item in (*spec.args, *spec.kwargs.values()):
        _visit(item, paths, depth + 1)


def _is_file(text: str) -> bool:
    if not text or "\n" in text:
        return False
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError, RuntimeError):
        return False


def _is_dir(text: str) -> bool:
    if not text or "\n" in text:
        return False
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, ValueError, RuntimeError):
        return False


def _folder_files(text: str) -> list[str]:
    """The files of the input folder ``text`` that stay inside it, in name order."""
    root = Path(text).expanduser()
    files = []
    for here, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(here) / name
            if within(root, path) is not None and path.is_file():
                files.append(str(Path(text) / path.relative_to(root)))
        if len(files) > MAX_FOLDER_FILES:
            raise PnyxError(f"input folder {text!r} holds more than {MAX_FOLDER_FILES} files")
    return files


def _yaml_files(path: Path, root: Path, paths: list[str], depth: int) -> None:
    """The files that the YAML file ``path`` names relative to its folder, inside ``root``,
    and those the YAML files among them name, added to ``paths``."""
    try:
        data = read_yaml(path, f"{str(path)!r}", None)
    except PnyxError:  # its reader reports it
        return
    strings: list[str] = []
    _strings(data, strings, depth)
    for text in strings:
        if not text or "\n" in text or Path(text).is_absolute():
            continue
        file = within(root, path.parent / text)
        if file is not None and file.is_file() and str(file) not in paths:
            paths.append(str(file))
            if file.name.endswith(_YAML):
                _yaml_files(file, root, paths, depth + 1)


def _strings(value: Any, found: list[str], depth: int) -> None:
    if depth > 20:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            _strings(item, found, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _strings(item, found, depth + 1)
    elif isinstance(value, str):
        found.append(value)


def named_modules(config: Any) -> list[str]:
    """The modules that import-path specs (``package.module:Class``) in ``config`` (a resolved
    config as JSON data) name, in their arguments too, in order: only modules this process
    has imported (validating the config imports the specs it builds, never free text);
    pnyx's own, and names registered in a pnyx registry (``axelrod:TitForTat``), left out."""
    strings: list[str] = []
    _strings(config, strings, 0)
    found: list[str] = []
    for text in strings:
        _spec_modules(text, found, 0)
    return found


def _spec_modules(text: str, found: list[str], depth: int) -> None:
    if depth > 20 or not text or "\n" in text:
        return
    try:
        spec = parse(text)
    except Exception:  # noqa: BLE001 - a string that is not a spec names no module
        return
    name = spec.name
    if (spec.target is not None and _MODULE.fullmatch(name) and _ATTRIBUTE.fullmatch(spec.target)
            and name in sys.modules and name != "pnyx" and not name.startswith("pnyx.")
            and not registered(name) and name not in found):
        found.append(name)
    for item in (*spec.args, *spec.kwargs.values()):
        if isinstance(item, str):
            _spec_modules(item, found, depth + 1)


def module_source(name: str) -> str | None:
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

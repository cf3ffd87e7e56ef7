"""Layers point one way: core <- envs <- agents <- population <- experiments.

``pnyx.errors``, ``pnyx.specs``, ``pnyx.registry`` and ``pnyx.stats`` are the core every
layer may use; ``pnyx/__init__.py`` is the notebook facade above all layers. Every
import in every module is checked, function-level imports included.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "envs", "agents", "population", "experiments"]
FOLDERS = {"envs": "envs", "agents": "agents", "population": "population", "experiments": "experiments"}


def layer_of_module(name: str) -> str | None:
    """The layer of an imported ``pnyx...`` module; None for the facade and non-pnyx modules."""
    parts = name.split(".")
    if parts[0] != "pnyx":
        return None
    if len(parts) == 1:
        return "facade"
    return parts[1] if parts[1] in FOLDERS else "core"


def modules():
    for layer, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, layer
    for path in sorted((ROOT / "pnyx").glob("*.py")):
        if path.name != "__init__.py":
            yield path, "core"


def imported_names(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def upward_imports():
    found = []
    for path, layer in modules():
        for line, name in imported_names(path):
            target = layer_of_module(name)
            if target is None:
                continue
            if target == "facade" or LAYERS.index(target) > LAYERS.index(layer):
                found.append(f"{path.relative_to(ROOT)}:{line} ({layer}) imports {name} ({target})")
    return found


def test_no_upward_imports():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    bad = tmp_path / "envs" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from pnyx.experiments.runner import execute\n")
    for folder in ["agents", "population", "experiments", "pnyx"]:
        (tmp_path / folder).mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert upward_imports() == ["envs/bad.py:2 (envs) imports pnyx.experiments.runner (experiments)"]


@pytest.mark.parametrize("name, layer", [("pnyx.errors", "core"), ("pnyx.envs.ipd_v0", "envs"),
                                         ("pnyx", "facade"), ("numpy", None)])
def test_layer_of_module(name, layer):
    assert layer_of_module(name) == layer

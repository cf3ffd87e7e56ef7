"""Layers point one way: core <- envs <- agents <- population <- experiments.

``pnyx.errors``, ``pnyx.specs``, ``pnyx.registry`` and ``pnyx.stats`` are the core every
layer may use; ``pnyx/__init__.py`` is the notebook facade above all layers. No
experiment kind (a module of ``experiments/`` that defines a subclass of ``Experiment``)
imports another: what two kinds share lives below them or in a module of
``experiments/`` that is no kind. Every import in every module is checked,
function-level imports included.
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


def kind_modules() -> dict[str, Path]:
    """The experiment kinds' modules by dotted name: modules of ``experiments/`` that
    define a class deriving from ``Experiment``."""
    kinds = {}
    for path in sorted((ROOT / "experiments").rglob("*.py")):
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if isinstance(node, ast.ClassDef) and any(ast.unparse(base).split(".")[-1] == "Experiment"
                                                      for base in node.bases):
                kinds[".".join(["pnyx", *path.relative_to(ROOT).with_suffix("").parts])] = path
    return kinds


def kind_imports():
    """Every import of one kind's module by another's."""
    kinds = kind_modules()
    found = []
    for name, path in kinds.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target in kinds and target != name:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} (kind) imports {target} (another kind)")
    return found


def test_no_kind_imports_another():
    assert kind_imports() == []


def test_the_check_sees_a_kind_importing_another(tmp_path, monkeypatch):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    kind = "from pnyx.experiments.experiment import Experiment\n\n\nclass {}(Experiment):\n    pass\n"
    (experiments / "alpha.py").write_text(kind.format("Alpha") + "\n\ndef helper():\n    pass\n")
    (experiments / "beta.py").write_text("from pnyx.experiments.alpha import helper\n" + kind.format("Beta"))
    (experiments / "gamma.py").write_text("from pnyx.experiments import alpha\n" + kind.format("Gamma"))
    (experiments / "shared.py").write_text("from pnyx.experiments.alpha import helper\n")
    (experiments / "delta.py").write_text(kind.format("Delta") + "\n\ndef f():\n    import pnyx.experiments.beta\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert kind_imports() == ["experiments/beta.py:1 (kind) imports pnyx.experiments.alpha (another kind)",
                              "experiments/delta.py:9 (kind) imports pnyx.experiments.beta (another kind)",
                              "experiments/gamma.py:1 (kind) imports pnyx.experiments.alpha (another kind)"]


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

"""Experiment kinds and the shipped experiment presets.

Kinds are imported lazily by name, so ``pnyx list`` does not load torch or transformers.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment

PRESETS = Path(__file__).parent / "presets"

_KINDS: dict[str, str | type[Experiment]] = {
    "tournament": "pnyx.experiments.tournament:Tournament",
    "suite": "pnyx.experiments.suite:Suite",
    "weis-ipd": "pnyx.experiments.weis:WeisIPD",
    "peer-goal-guarding": "pnyx.experiments.goal_guarding:PeerGoalGuarding",
    "coral-agreement": "pnyx.experiments.coral:CoralAgreement",
    "network-cooperation": "pnyx.experiments.network_cooperation:NetworkCooperation",
}


def register_kind(cls: type[Experiment]) -> type[Experiment]:
    """Register an experiment kind (usable as a class decorator)."""
    _KINDS[cls.name] = cls
    return cls


def kind_names() -> list[str]:
    return sorted(_KINDS)


def get_kind(name: str) -> Experiment:
    try:
        target = _KINDS[name]
    except KeyError:
        raise PnyxError(f"unknown experiment kind {name!r} (known: {', '.join(kind_names())})") from None
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target()


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def preset_path(name_or_file: str) -> Path:
    """The YAML file for a shipped experiment name or a user's file path."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise PnyxError(f"experiment file {name_or_file!r} does not exist")
        return path
    path = PRESETS / f"{name_or_file}.yaml"
    if not path.is_file():
        raise PnyxError(f"unknown experiment {name_or_file!r} (shipped: {', '.join(preset_names())})")
    return path

"""PettingZoo environments of pnyx and their registry.

Each environment is a module in the PettingZoo convention, with ``env()`` (AEC),
``raw_env`` and ``parallel_env()``. ``make(name, parallel=True, **kwargs)`` builds a
registered one; ``register(name, module)`` adds a user's.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pnyx.errors import PnyxError

_REGISTRY: dict[str, str | ModuleType] = {
    "ipd": "pnyx.envs.ipd_v0",
    "stag_hunt": "pnyx.envs.stag_hunt_v0",
    "chicken": "pnyx.envs.chicken_v0",
    "public_goods": "pnyx.envs.public_goods_v0",
    "group_reasoning": "pnyx.envs.group_reasoning_v0",
    "goal_guarding": "pnyx.envs.goal_guarding_v0",
}


def register(name: str, module: str | ModuleType) -> None:
    """Register an environment module (or its import name) with ``env``/``parallel_env`` functions."""
    _REGISTRY[name] = module


def names() -> list[str]:
    """Registered environment names."""
    return sorted(_REGISTRY)


def module(name: str) -> ModuleType:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise PnyxError(f"unknown environment {name!r} (registered: {', '.join(names())})") from None
    return importlib.import_module(target) if isinstance(target, str) else target


def make(name: str, parallel: bool = True, **kwargs):
    """Build environment ``name``: the Parallel API by default, the AEC API with ``parallel=False``."""
    mod = module(name)
    if parallel:
        if not hasattr(mod, "parallel_env"):
            raise PnyxError(f"environment {name!r} has no parallel API; use parallel=False")
        return mod.parallel_env(**kwargs)
    return mod.env(**kwargs)

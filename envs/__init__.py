"""PettingZoo environments of pnyx and their registry.

Each environment is a module in the PettingZoo convention, with ``env()`` (AEC),
``raw_env`` and, where it has one, ``parallel_env()``. ``make(name, parallel=True,
**kwargs)`` builds a registered one; ``ENVIRONMENTS.register(name, "mypkg.my_game_v0")``
adds a user's module.
"""

from __future__ import annotations

from types import ModuleType

from pnyx.errors import PnyxError
from pnyx.registry import Registry

ENVIRONMENTS = Registry("environment")
for _name in ["ipd", "stag_hunt", "chicken", "public_goods", "group_reasoning", "goal_guarding",
              "peer_preservation"]:
    ENVIRONMENTS.register(_name, f"pnyx.envs.{_name}_v0")


def names() -> list[str]:
    """Registered environment names."""
    return ENVIRONMENTS.names()


def module(name: str) -> ModuleType:
    """The module of environment ``name``."""
    return ENVIRONMENTS.get(name)


def make(name: str, parallel: bool = True, **kwargs):
    """Build environment ``name``: the Parallel API by default, the AEC API with ``parallel=False``."""
    mod = module(name)
    if parallel:
        if not hasattr(mod, "parallel_env"):
            raise PnyxError(f"environment {name!r} has no parallel API; use parallel=False")
        return mod.parallel_env(**kwargs)
    return mod.env(**kwargs)

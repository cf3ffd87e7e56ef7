"""PettingZoo environments of pnyx and their registry.

Each environment is a module in the PettingZoo convention, with ``env()`` (AEC),
``raw_env`` and, where it has one, ``parallel_env()``. ``make(name, parallel=True,
**kwargs)`` builds a registered one; ``ENVIRONMENTS.register(name, "mypkg.my_game_v0")``
adds a user's module. A repeated game's module also declares the game as ``GAME``
(:class:`pnyx.envs.repeated_game.Game`; :class:`pnyx.envs.matrix_game.MatrixGame` for a
two-player 2x2 game), which is how tournaments and language-model players know it.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from pnyx.errors import PnyxError
from pnyx.registry import Registry

if TYPE_CHECKING:  # the game modules import these anyway; pnyx.envs alone stays light
    from pnyx.envs.matrix_game import MatrixGame
    from pnyx.envs.repeated_game import Game

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


def game(name: str) -> Game:
    """The declaration of repeated game ``name``: its module's ``GAME``."""
    from pnyx.envs.repeated_game import Game

    declared = getattr(module(name), "GAME", None)
    if not isinstance(declared, Game):
        raise PnyxError(f"environment {name!r} declares no repeated game (GAME, a pnyx.envs.repeated_game.Game)")
    return declared


def two_player_games() -> list[str]:
    """The registered two-player 2x2 games: environments whose module declares a ``MatrixGame``."""
    from pnyx.envs.matrix_game import MatrixGame

    return [name for name in names() if isinstance(getattr(module(name), "GAME", None), MatrixGame)]


def two_player_game(name: str) -> MatrixGame:
    """The declaration of two-player 2x2 game ``name``."""
    from pnyx.envs.matrix_game import MatrixGame

    declared = getattr(module(name), "GAME", None) if name in ENVIRONMENTS else None
    if not isinstance(declared, MatrixGame):
        known = ", ".join(two_player_games())
        raise PnyxError(f"{name!r} is not a registered two-player matrix game (registered: {known})")
    return declared


def make(name: str, parallel: bool = True, **kwargs):
    """Build environment ``name``: the Parallel API by default, the AEC API with ``parallel=False``."""
    mod = module(name)
    if parallel:
        if not hasattr(mod, "parallel_env"):
            raise PnyxError(f"environment {name!r} has no parallel API; use parallel=False")
        return mod.parallel_env(**kwargs)
    return mod.env(**kwargs)

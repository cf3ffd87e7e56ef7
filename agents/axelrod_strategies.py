"""Axelrod's strategy library as pnyx policies: ``axelrod:Name`` or ``axelrod:Name(args)``.

``Name`` is the class name of a strategy in the ``axelrod`` package (``axelrod:TitForTat``,
``axelrod:GTFT(p=0.2)``, ``axelrod:FirstByTidemanAndChieruzzi``); arguments go to its
constructor. The package is an optional extra (``pip install 'pnyx[axelrod]'``).

Each game holds one Axelrod player and a stand-in opponent (a bare ``axelrod.Player``).
Before each turn the policy rebuilds the last round from the observation (own action,
then the opponent's, :mod:`pnyx.envs.matrix_game`) and appends it to both histories,
as ``axelrod.Match.simultaneous_play`` does after the moves; then it asks the player's
``strategy(opponent)``. The engine's :class:`~pnyx.agents.protocol.GameInfo` becomes the
player's match attributes (length, ``axelrod.Game(R, S, T, P)`` from the player's own
payoffs, noise), which is what ``axelrod.Match`` tells players by default (axelrod
``match.py``, ``Match.__init__``). Deterministic strategies therefore play exactly the
moves they play in ``axelrod.Match`` with noise 0. Stochastic players are seeded per game
from the pnyx seed, so their draws differ from Axelrod's own seeding.

Strategies that read or change their opponent's source or state (Axelrod's "cheating"
strategies: ``inspects_source``, ``manipulates_source``, ``manipulates_state``) cannot
play through observations and are refused.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from pnyx.agents.protocol import GameInfo
from pnyx.envs.matrix_game import START
from pnyx.errors import PnyxError

CHEATING = ("inspects_source", "manipulates_source", "manipulates_state")


def _axelrod():
    try:
        import axelrod
    except ImportError:
        raise PnyxError("Axelrod strategies need the axelrod package: pip install 'pnyx[axelrod]'") from None
    return axelrod


def _cheats(cls: type) -> bool:
    return any(cls.classifier.get(key) for key in CHEATING)


def strategy_classes() -> dict[str, type]:
    """Axelrod's strategies that can play through observations, by class name."""
    return {cls.__name__: cls for cls in _axelrod().all_strategies if not _cheats(cls)}


def strategy_index() -> dict[str, list]:
    """Class name -> ``[name, stochastic]`` of :func:`strategy_classes`, read from the installed
    package: the contents of :mod:`pnyx.agents.axelrod_index` (``python -m
    pnyx.agents.axelrod_strategies`` rewrites that file)."""
    return {name: [cls.name, bool(cls.classifier.get("stochastic"))]
            for name, cls in sorted(strategy_classes().items())}


def describe_strategies() -> dict[str, str]:
    """``axelrod:Name`` -> a one-line description, for ``pnyx list``, from the shipped index
    (importing axelrod takes seconds); empty without the package."""
    if importlib.util.find_spec("axelrod") is None:
        return {}
    from pnyx.agents.axelrod_index import STRATEGIES

    return {f"axelrod:{name}": f"{title} (Axelrod library{', stochastic' if stochastic else ''})"
            for name, (title, stochastic) in STRATEGIES.items()}


def write_index(path: Path = Path(__file__).with_name("axelrod_index.py")) -> None:
    """Write :func:`strategy_index` as the module :mod:`pnyx.agents.axelrod_index`."""
    rows = "".join(f"    {name!r}: {entry!r},\n" for name, entry in strategy_index().items())
    path.write_text(f'''"""Axelrod's playable strategies by class name: ``[name, stochastic]``, for ``pnyx list``.

Generated from axelrod {_axelrod().__version__} by ``python -m pnyx.agents.axelrod_strategies``.
"""

STRATEGIES = {{\n{rows}}}\n''')


class AxelrodPolicy:
    """Any strategy of the Axelrod library, played through its reconstructed match history."""

    def __init__(self, strategy: str, *args: Any, **kwargs: Any):
        axl = _axelrod()
        classes = {cls.__name__: cls for cls in axl.all_strategies}
        if strategy not in classes:
            close = difflib.get_close_matches(strategy, classes, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; 'pnyx list' shows them"
            raise PnyxError(f"unknown Axelrod strategy {strategy!r}{hint}")
        if _cheats(classes[strategy]):
            raise PnyxError(f"Axelrod strategy {strategy!r} reads or changes its opponent's code or state, "
                            "which a policy that sees only observations cannot do")
        self.axl = axl
        self.prototype = classes[strategy](*args, **kwargs)
        self.stochastic = bool(axl.Classifiers["stochastic"](self.prototype))
        self.attributes: dict | None = None
        self.players: list = []
        self.opponents: list = []

    def set_game(self, game: GameInfo) -> None:
        if game.group_size != 2 or game.payoffs is None:
            raise PnyxError("Axelrod strategies play two-player games only")
        (r, s), (t, p) = ((cell[0] for cell in row) for row in game.payoffs)
        self.attributes = {"length": game.turns, "game": self.axl.Game(r, s, t, p), "noise": game.noise}

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        seeds = np.random.SeedSequence(seed).generate_state(n)
        self.players, self.opponents = [], []
        for s in seeds:
            player = self.prototype.clone()
            if self.attributes is not None:
                player.set_match_attributes(**self.attributes)
            if self.stochastic:
                player.set_seed(int(s))
            self.players.append(player)
            self.opponents.append(self.axl.Player())

    def reset(self, seed: int | None = None) -> None:
        self.reset_batch(1, seed)

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        C, D = self.axl.Action.C, self.axl.Action.D
        moves = (C, D)
        actions = np.empty(len(observations), dtype=np.int64)
        for i, (obs, player, opponent) in enumerate(zip(np.asarray(observations).tolist(), self.players,
                                                        self.opponents)):
            if obs != START:
                own, other = moves[obs >> 1], moves[obs & 1]
                player.update_history(own, other)
                opponent.update_history(other, own)
            actions[i] = player.strategy(opponent) == D
        return actions

    def act(self, observation: int) -> int:
        return int(self.act_batch(np.asarray([observation]))[0])

    def __repr__(self) -> str:
        return f"AxelrodPolicy({self.prototype!r})"


if __name__ == "__main__":
    write_index()

"""The policy protocols. Third parties implement them without importing pnyx.

A *policy* plays one game at a time::

    class MyPolicy:
        def __init__(self): ...                  # constructible with no arguments
        def reset(self, seed=None): ...          # start of a game
        def act(self, observation) -> int: ...   # one decision

A *batch policy* plays ``n`` independent games in lock-step, for speed::

        def reset_batch(self, n, seed=None): ...
        def act_batch(self, observations: np.ndarray) -> np.ndarray: ...

``observations`` holds one observation per game; the result one action per game.
Engines use ``act_batch`` where a policy has it and fall back to one ``act``
per game otherwise (see :class:`PerGame`).

Either kind may also have ``set_game(game)``: engines call it with a :class:`GameInfo`
before the first reset, for policies that need the rules, the payoffs or the number
of turns (language models, Axelrod's strategies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class GameInfo:
    """The game a policy is about to play, from its own seat.

    ``name`` is the registered environment (``ipd``, ``public_goods``, a user's game, ...);
    ``payoffs[own][other]`` is the pair (own payoff, the other player's payoff) for a
    two-player game, actions 0 = cooperate, 1 = defect; ``None`` in public goods, whose
    rule is ``multiplier`` and ``contribution`` among ``group_size`` players.
    """

    name: str
    turns: int
    noise: float = 0.0
    payoffs: tuple | None = None
    group_size: int = 2
    multiplier: float | None = None
    contribution: float | None = None


def tell_game(policy: Any, game: GameInfo | None) -> None:
    """Call ``policy.set_game(game)`` if the policy has it."""
    if game is not None and hasattr(policy, "set_game"):
        policy.set_game(game)


@runtime_checkable
class Policy(Protocol):
    def reset(self, seed: int | None = None) -> None: ...

    def act(self, observation: Any) -> Any: ...


@runtime_checkable
class BatchPolicy(Protocol):
    def reset_batch(self, n: int, seed: int | None = None) -> None: ...

    def act_batch(self, observations: np.ndarray) -> np.ndarray: ...


class PerGame:
    """Runs a per-step policy as a batch policy: one instance per game, at loop speed."""

    def __init__(self, factory: Callable[[], Policy]):
        self.factory = factory
        self.policies: list[Policy] = []
        self.game: GameInfo | None = None

    def set_game(self, game: GameInfo) -> None:
        self.game = game

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        seeds = np.random.SeedSequence(seed).generate_state(n)
        self.policies = [self.factory() for _ in range(n)]
        for policy, s in zip(self.policies, seeds):
            tell_game(policy, self.game)
            policy.reset(seed=int(s))

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        return np.array([int(p.act(o)) for p, o in zip(self.policies, observations)], dtype=np.int64)


def as_batch_policy(factory: Callable[[], Any]) -> BatchPolicy:
    """A batch policy from a policy factory: the policy itself if it batches, else :class:`PerGame`."""
    policy = factory()
    if hasattr(policy, "act_batch") and hasattr(policy, "reset_batch"):
        return policy
    return PerGame(factory)

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
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


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

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        seeds = np.random.SeedSequence(seed).generate_state(n)
        self.policies = [self.factory() for _ in range(n)]
        for policy, s in zip(self.policies, seeds):
            policy.reset(seed=int(s))

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        return np.array([int(p.act(o)) for p, o in zip(self.policies, observations)], dtype=np.int64)


def as_batch_policy(factory: Callable[[], Any]) -> BatchPolicy:
    """A batch policy from a policy factory: the policy itself if it batches, else :class:`PerGame`."""
    policy = factory()
    if hasattr(policy, "act_batch") and hasattr(policy, "reset_batch"):
        return policy
    return PerGame(factory)

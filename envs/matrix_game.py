"""Repeated two-player 2x2 matrix games as PettingZoo Parallel environments.

Both players act simultaneously each round; action 0 = cooperate, 1 = defect (the
game modules say what these mean in their story). Observation ``Discrete(5)``:
0..3 = the previous round's joint action from the observer's view, own action
first (CC, CD, DC, DD); 4 = first round. State ``MultiDiscrete([3, 3, rounds + 1])``:
both players' previous actions (2 before the first round), then the number of rounds
played. Each round's reward is the player's payoff; the episode terminates after
``rounds`` rounds.

A game module declares ``GAME = MatrixGame(name=..., actions=..., payoffs=...)`` and
builds its PettingZoo functions with ``parallel_env, raw_env, env = constructors(GAME)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pnyx.envs.api import ParallelToAEC, wrap
from pnyx.envs.repeated_game import Game, RepeatedGameEnv
from pnyx.errors import PnyxError

CC, CD, DC, DD, START = range(5)  # observation codes, shared by every IPD-style policy


def payoff_table(payoffs) -> np.ndarray:
    """A (2, 2, 2) array ``table[a0, a1] = (reward0, reward1)``.

    ``payoffs`` is either ``(R, S, T, P)`` for a symmetric game, a 2x2 matrix of the
    row player's payoffs (symmetric game), or a full 2x2x2 bimatrix.
    """
    table = np.asarray(payoffs, dtype=np.float64)
    if table.shape == (4,):
        R, S, T, P = table
        table = np.array([[R, S], [T, P]])
    if table.shape == (2, 2):
        table = np.stack([table, table.T], axis=-1)
    if table.shape != (2, 2, 2) or not np.all(np.isfinite(table)):
        raise PnyxError(f"payoffs must be (R, S, T, P), a 2x2 or a 2x2x2 matrix of numbers, got {payoffs!r}")
    return table


@dataclass(frozen=True, kw_only=True)
class MatrixGame(Game):
    """A two-player 2x2 game: a :class:`~pnyx.envs.repeated_game.Game` with its default
    ``payoffs`` in any form :func:`payoff_table` takes."""

    payoffs: tuple

    def __post_init__(self):
        super().__post_init__()
        payoff_table(self.payoffs)


class MatrixGameEnv(RepeatedGameEnv):
    """A repeated 2x2 game between ``player_0`` and ``player_1``."""

    metadata = {**RepeatedGameEnv.metadata, "name": "matrix_game_v0"}

    def __init__(self, payoffs=(3, 0, 5, 1), rounds: int | None = None, render_mode: str | None = None,
                 max_cycles: int | None = None, observations: str = "discrete"):
        super().__init__(["player_0", "player_1"], rounds, render_mode, n_observations=5, max_cycles=max_cycles,
                         observations=observations)
        self.table = payoff_table(payoffs)

    def first_observations(self):
        return {a: np.int64(START) for a in self.agents}

    def play(self, joint):
        a0, a1 = joint
        observations = {"player_0": np.int64(2 * a0 + a1), "player_1": np.int64(2 * a1 + a0)}
        rewards = {"player_0": float(self.table[a0, a1, 0]), "player_1": float(self.table[a0, a1, 1])}
        return observations, rewards


def constructors(game: MatrixGame):
    """The PettingZoo module functions ``parallel_env``, ``raw_env`` (AEC) and ``env`` (the
    AEC environment with PettingZoo's wrappers) of ``game``."""

    def parallel_env(payoffs=game.payoffs, rounds=None, render_mode=None, max_cycles=None, observations="discrete"):
        env = MatrixGameEnv(payoffs, rounds, render_mode, max_cycles, observations)
        env.metadata = {**env.metadata, "name": game.name}
        return env

    def raw_env(**kwargs):
        return ParallelToAEC(parallel_env(**kwargs))

    def env(**kwargs):
        return wrap(raw_env(**kwargs), discrete=True)

    return parallel_env, raw_env, env

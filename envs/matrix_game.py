"""Repeated two-player 2x2 matrix games as PettingZoo Parallel environments.

Both players act simultaneously each round; action 0 = cooperate, 1 = defect (the
game modules say what these mean in their story). Observation ``Discrete(5)``:
0..3 = the previous round's joint action from the observer's view, own action
first (CC, CD, DC, DD); 4 = first round. Each round's reward is the player's
payoff; the episode terminates after ``rounds`` rounds.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium.spaces import Discrete
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from pnyx.errors import PnyxError

START = 4


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


def joint_observations(a0: np.ndarray, a1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observation codes of both players after joint actions ``(a0, a1)``."""
    return 2 * a0 + a1, 2 * a1 + a0


class MatrixGameEnv(ParallelEnv):
    """A repeated 2x2 game between ``player_0`` and ``player_1``."""

    metadata = {"name": "matrix_game_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, payoffs=(3, 0, 5, 1), rounds: int = 100, render_mode: str | None = None):
        if int(rounds) != rounds or rounds < 1:
            raise PnyxError(f"rounds={rounds!r} must be a positive integer")
        self.table = payoff_table(payoffs)
        self.rounds = int(rounds)
        self.render_mode = render_mode
        self.possible_agents = ["player_0", "player_1"]
        self.agents: list[str] = []
        self.round = 0
        self.last = None

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return Discrete(5)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.round = 0
        self.last = None
        observations = {a: np.int64(START) for a in self.agents}
        return observations, {a: {} for a in self.agents}

    def step(self, actions):
        a0, a1 = int(actions["player_0"]), int(actions["player_1"])
        self.round += 1
        self.last = (a0, a1)
        o0, o1 = joint_observations(a0, a1)
        observations = {"player_0": np.int64(o0), "player_1": np.int64(o1)}
        rewards = {"player_0": float(self.table[a0, a1, 0]), "player_1": float(self.table[a0, a1, 1])}
        done = self.round >= self.rounds
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        infos = {a: {"round": self.round} for a in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self):
        if self.last is None:
            return "round 0"
        return f"round {self.round}: player_0 {'CD'[self.last[0]]}, player_1 {'CD'[self.last[1]]}"


def constructors(name: str, default_payoffs):
    """The PettingZoo module functions ``parallel_env``, ``raw_env`` (AEC) and ``env`` of a game."""

    def parallel_env(payoffs=default_payoffs, rounds=100, render_mode=None):
        env = MatrixGameEnv(payoffs, rounds, render_mode)
        env.metadata = {**env.metadata, "name": name}
        return env

    def raw_env(**kwargs):
        return parallel_to_aec(parallel_env(**kwargs))

    return parallel_env, raw_env, raw_env

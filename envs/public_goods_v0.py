"""Repeated n-player public goods game.

| Agents            | `player_0` .. `player_{n-1}`            |
|-------------------|-----------------------------------------|
| Parallel API      | yes                                     |
| Action space      | `Discrete(2)`                           |
| Observation space | `Discrete(2 * n + 1)`                   |
| State space       | `MultiDiscrete([3] * n + [rounds + 1])` |

``n`` is ``group_size``. Each player either contributes ``contribution`` to a common pot
(action 0, cooperate) or keeps it (action 1, defect). The pot is multiplied by
``multiplier`` and shared equally: a player's round payoff is
``multiplier * contribution * contributors / group_size - contribution * [own contribution]``.
With ``1 < multiplier < group_size`` the game is a social dilemma.

Observation: ``own_previous_action * n + number_of_other_players_who_defected``;
``2 * n`` = first round. For two players this is exactly the IPD encoding (CC, CD, DC,
DD = 0..3). State: every player's previous action (2 before the first round), then the
number of rounds played.
``observations="one_hot"`` gives each observation as a one-hot ``Box(0, 1, (2 * n + 1,))`` vector
(:mod:`pnyx.envs.repeated_game`).
"""

from __future__ import annotations

import numpy as np

from pnyx.envs.api import ParallelToAEC, wrap
from pnyx.envs.repeated_game import Game, RepeatedGameEnv
from pnyx.errors import PnyxError

GAME = Game(name="public_goods_v0", actions=("contribute", "keep"))


class PublicGoodsEnv(RepeatedGameEnv):
    metadata = {**RepeatedGameEnv.metadata, "name": GAME.name}

    def __init__(self, group_size=4, multiplier=1.6, contribution=1.0, rounds=None, render_mode=None,
                 max_cycles=None, observations="discrete"):
        if int(group_size) != group_size or group_size < 2:
            raise PnyxError(f"group_size={group_size!r} must be an integer >= 2")
        if multiplier <= 0 or contribution <= 0:
            raise PnyxError("multiplier and contribution must be positive")
        n = int(group_size)
        super().__init__([f"player_{i}" for i in range(n)], rounds, render_mode, n_observations=2 * n + 1,
                         max_cycles=max_cycles, observations=observations)
        self.n, self.multiplier, self.contribution = n, float(multiplier), float(contribution)

    def first_observations(self):
        return {a: np.int64(2 * self.n) for a in self.agents}

    def payoffs(self, actions: np.ndarray) -> np.ndarray:
        """Round payoffs for a vector of actions (0 = contribute)."""
        contributed = actions == 0
        share = self.multiplier * self.contribution * contributed.sum() / self.n
        return share - self.contribution * contributed

    def play(self, joint):
        a = np.array(joint)
        rewards, defectors = self.payoffs(a), a.sum()
        observations = {agent: np.int64(a[i] * self.n + defectors - a[i]) for i, agent in enumerate(self.possible_agents)}
        return observations, {agent: float(rewards[i]) for i, agent in enumerate(self.possible_agents)}


def parallel_env(**kwargs):
    return PublicGoodsEnv(**kwargs)


def raw_env(**kwargs):
    return ParallelToAEC(parallel_env(**kwargs))


def env(**kwargs):
    """The AEC environment with PettingZoo's wrappers."""
    return wrap(raw_env(**kwargs), discrete=True)

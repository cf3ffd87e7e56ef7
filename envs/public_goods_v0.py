"""Repeated n-player public goods game.

Each of ``group_size`` players either contributes ``contribution`` to a common pot
(action 0, cooperate) or keeps it (action 1, defect). The pot is multiplied by
``multiplier`` and shared equally: a player's round payoff is
``multiplier * contribution * contributors / group_size - contribution * [own contribution]``.
With ``1 < multiplier < group_size`` the game is a social dilemma.

Observation ``Discrete(2 * group_size + 1)``: ``own_previous_action * group_size +
number_of_other_players_who_defected``; ``2 * group_size`` = first round. For two
players this is exactly the IPD encoding (CC, CD, DC, DD = 0..3).
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium.spaces import Discrete
from pettingzoo.utils.conversions import parallel_to_aec

from pnyx.envs.repeated_game import RepeatedGameEnv
from pnyx.errors import PnyxError


class PublicGoodsEnv(RepeatedGameEnv):
    metadata = {**RepeatedGameEnv.metadata, "name": "public_goods_v0"}

    def __init__(self, group_size=4, multiplier=1.6, contribution=1.0, rounds=100, render_mode=None):
        if int(group_size) != group_size or group_size < 2:
            raise PnyxError(f"group_size={group_size!r} must be an integer >= 2")
        if multiplier <= 0 or contribution <= 0:
            raise PnyxError("multiplier and contribution must be positive")
        super().__init__([f"player_{i}" for i in range(int(group_size))], rounds, render_mode)
        self.n, self.multiplier, self.contribution = int(group_size), float(multiplier), float(contribution)

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return Discrete(2 * self.n + 1)

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
    return parallel_to_aec(parallel_env(**kwargs))


env = raw_env

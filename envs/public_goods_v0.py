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
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from pnyx.errors import PnyxError


class PublicGoodsEnv(ParallelEnv):
    metadata = {"name": "public_goods_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, group_size=4, multiplier=1.6, contribution=1.0, rounds=100, render_mode=None):
        if int(group_size) != group_size or group_size < 2:
            raise PnyxError(f"group_size={group_size!r} must be an integer >= 2")
        if int(rounds) != rounds or rounds < 1:
            raise PnyxError(f"rounds={rounds!r} must be a positive integer")
        if multiplier <= 0 or contribution <= 0:
            raise PnyxError("multiplier and contribution must be positive")
        self.n, self.multiplier, self.contribution = int(group_size), float(multiplier), float(contribution)
        self.rounds, self.render_mode = int(rounds), render_mode
        self.possible_agents = [f"player_{i}" for i in range(self.n)]
        self.agents: list[str] = []
        self.round = 0
        self.last: np.ndarray | None = None

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return Discrete(2 * self.n + 1)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.round, self.last = list(self.possible_agents), 0, None
        return {a: np.int64(2 * self.n) for a in self.agents}, {a: {} for a in self.agents}

    def payoffs(self, actions: np.ndarray) -> np.ndarray:
        """Round payoffs for a vector of actions (0 = contribute)."""
        contributed = actions == 0
        share = self.multiplier * self.contribution * contributed.sum() / self.n
        return share - self.contribution * contributed

    def step(self, actions):
        a = np.array([int(actions[agent]) for agent in self.possible_agents])
        self.round += 1
        self.last = a
        rewards = self.payoffs(a)
        defectors = a.sum()
        observations = {agent: np.int64(a[i] * self.n + defectors - a[i]) for i, agent in enumerate(self.possible_agents)}
        done = self.round >= self.rounds
        terminations = {agent: done for agent in self.agents}
        truncations = {agent: False for agent in self.agents}
        infos = {agent: {"round": self.round} for agent in self.agents}
        rewards = {agent: float(rewards[i]) for i, agent in enumerate(self.possible_agents)}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self):
        if self.last is None:
            return "round 0"
        return f"round {self.round}: " + "".join("CD"[x] for x in self.last)


def parallel_env(**kwargs):
    return PublicGoodsEnv(**kwargs)


def raw_env(**kwargs):
    return parallel_to_aec(parallel_env(**kwargs))


env = raw_env

"""Bookkeeping shared by repeated simultaneous-move games of a fixed number of rounds.

Every player chooses 0 = cooperate or 1 = defect each round; the episode terminates
after ``rounds`` rounds. Subclasses declare their observation space and compute each
round's observations and rewards.
"""

from __future__ import annotations

import functools

from gymnasium.spaces import Discrete
from pettingzoo import ParallelEnv

from pnyx.errors import PnyxError


class RepeatedGameEnv(ParallelEnv):
    metadata = {"render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, possible_agents: list[str], rounds: int, render_mode: str | None):
        if int(rounds) != rounds or rounds < 1:
            raise PnyxError(f"rounds={rounds!r} must be a positive integer")
        self.possible_agents = possible_agents
        self.rounds, self.render_mode = int(rounds), render_mode
        self.agents: list[str] = []
        self.round = 0
        self.last = None  # the last joint action

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.round, self.last = list(self.possible_agents), 0, None
        return self.first_observations(), {a: {} for a in self.agents}

    def step(self, actions):
        joint = tuple(int(actions[agent]) for agent in self.possible_agents)
        self.round += 1
        self.last = joint
        observations, rewards = self.play(joint)
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
        return f"round {self.round}: " + " ".join(f"{a} {'CD'[x]}" for a, x in zip(self.possible_agents, self.last))

    def first_observations(self) -> dict:
        raise NotImplementedError

    def play(self, joint: tuple[int, ...]) -> tuple[dict, dict]:
        """Observations and rewards of every agent after the joint action ``joint``."""
        raise NotImplementedError

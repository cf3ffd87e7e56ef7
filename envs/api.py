"""PettingZoo conventions shared by pnyx's environments.

PettingZoo's wrappers define ``render(self)``, while RLlib's ``PettingZooEnv`` and
``ParallelPettingZooEnv`` call ``render(mode)``; the wrappers here pass the mode on.
"""

from __future__ import annotations

import copy

import numpy as np
from gymnasium.spaces import Space
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.env_logger import EnvLogger


class OrderEnforcingWrapper(wrappers.OrderEnforcingWrapper):
    def render(self, mode: str | None = None):
        if not self._has_reset:
            EnvLogger.error_render_before_reset()
        return self.env.render(mode)


class AssertOutOfBoundsWrapper(wrappers.AssertOutOfBoundsWrapper):
    def render(self, mode: str | None = None):
        return self.env.render(mode)


class ParallelToAEC(parallel_to_aec_wrapper):
    """The AEC view of a Parallel environment (agents act in turn, the round is played
    once all have acted)."""

    def render(self, mode: str | None = None):
        return self.env.render(mode)


def wrap(raw: AECEnv, discrete: bool) -> AECEnv:
    """``raw`` with PettingZoo's standard wrappers: out-of-bounds actions raise (for
    ``Discrete`` action spaces only) and the API's call order is enforced."""
    if discrete:
        raw = AssertOutOfBoundsWrapper(raw)
    return OrderEnforcingWrapper(raw)


def own_space(space: Space) -> Space:
    """A copy of ``space`` with its own random generator; its other attributes are shared."""
    space = copy.copy(space)
    space.seed()
    return space


def seed_spaces(env: AECEnv | ParallelEnv, seed: int | None) -> None:
    """Seed every agent's action and observation spaces from ``seed`` (``None``: leave them)."""
    if seed is None:
        return
    seeds = np.random.SeedSequence(seed).generate_state(2 * len(env.possible_agents))
    for i, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(int(seeds[2 * i]))
        env.observation_space(agent).seed(int(seeds[2 * i + 1]))

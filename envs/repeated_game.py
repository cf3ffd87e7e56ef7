"""Bookkeeping shared by repeated simultaneous-move games of a fixed number of rounds.

Every player chooses 0 = cooperate or 1 = defect each round; the episode terminates
after ``rounds`` rounds (``max_cycles``, PettingZoo's name for them, is accepted too;
100 when neither is given). Subclasses declare the size of their ``Discrete``
observation space and compute each round's observations and rewards. Each game's
module declares the game as ``GAME``, a :class:`Game`.

``observations="one_hot"`` gives each observation as a one-hot ``Box(0, 1, (n,), float32)``
vector instead of a ``Discrete(n)`` integer, the form RLlib's default encoders, SuperSuit's
``dtype_v0`` and ``black_death_v3`` and TorchRL's wrappers take without a connector.

The global state is ``MultiDiscrete([3] * n + [rounds + 1])``: each player's action in
the previous round (2 before the first round), then the number of rounds played.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium.spaces import Box, Discrete, MultiDiscrete
from pettingzoo import ParallelEnv

from pnyx.envs.api import seed_spaces
from pnyx.errors import PnyxError

NO_ACTION = 2  # a player's previous action in the state before the first round
#: How observations are given: ``Discrete`` integers, or one-hot ``Box`` vectors.
OBSERVATIONS = ("discrete", "one_hot")


@dataclass(frozen=True, kw_only=True)
class Game:
    """What a repeated game's module declares as ``GAME`` (as OpenSpiel's ``_GAME_TYPE``).

    ``name`` is the environment's ``metadata["name"]``; ``actions`` names action 0
    (cooperate) and action 1 (defect) with the words a language model is told and may
    answer with.
    """

    name: str
    actions: tuple[str, str]

    def __post_init__(self):
        words = tuple(self.actions)
        if (len(words) != 2 or not all(isinstance(w, str) and w.strip() for w in words)
                or words[0].lower() == words[1].lower()):
            raise PnyxError(f"game {self.name!r}: actions must be two different words, got {self.actions!r}")
        object.__setattr__(self, "actions", words)  # a list is kept as a tuple


class RepeatedGameEnv(ParallelEnv):
    metadata = {"render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, possible_agents: list[str], rounds: int | None, render_mode: str | None, n_observations: int,
                 max_cycles: int | None = None, observations: str = "discrete"):
        if observations not in OBSERVATIONS:
            raise PnyxError(f"observations={observations!r}: known are {', '.join(OBSERVATIONS)}")
        if max_cycles is not None:
            if rounds is not None and rounds != max_cycles:
                raise PnyxError(f"rounds={rounds!r} and max_cycles={max_cycles!r} differ; "
                                "max_cycles is PettingZoo's name for rounds, give one of them")
            rounds = max_cycles
        rounds = 100 if rounds is None else rounds
        if int(rounds) != rounds or rounds < 1:
            raise PnyxError(f"rounds={rounds!r} must be a positive integer")
        self.possible_agents = possible_agents
        self.rounds, self.render_mode = int(rounds), render_mode
        self.agents: list[str] = []
        self.round = 0
        self.last = None  # the last joint action
        self._action_spaces = {a: Discrete(2) for a in possible_agents}
        self.one_hot = observations == "one_hot"
        space = (lambda: Box(0.0, 1.0, (n_observations,), np.float32)) if self.one_hot else \
            (lambda: Discrete(n_observations))
        self._observation_spaces = {a: space() for a in possible_agents}
        self.state_space = MultiDiscrete([NO_ACTION + 1] * len(possible_agents) + [self.rounds + 1])

    def action_space(self, agent):
        return self._action_spaces[agent]

    def observation_space(self, agent):
        return self._observation_spaces[agent]

    def reset(self, seed=None, options=None):
        seed_spaces(self, seed)
        self.agents, self.round, self.last = list(self.possible_agents), 0, None
        return self._encoded(self.first_observations()), {a: {} for a in self.agents}

    def step(self, actions):
        joint = tuple(int(actions[agent]) for agent in self.possible_agents)
        if any(a not in (0, 1) for a in joint):
            raise PnyxError(f"actions must be 0 (cooperate) or 1 (defect), got {dict(zip(self.possible_agents, joint))}")
        self.round += 1
        self.last = joint
        observations, rewards = self.play(joint)
        observations = self._encoded(observations)
        done = self.round >= self.rounds
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        infos = {a: {"round": self.round} for a in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Each player's previous action (``NO_ACTION`` before the first round), then the round."""
        last = self.last if self.last is not None else (NO_ACTION,) * len(self.possible_agents)
        return np.array([*last, self.round], dtype=np.int64)

    def render(self, mode: str | None = None) -> str:
        """The last round as text; ``mode`` (default ``render_mode``) may only be ``"ansi"``."""
        mode = mode or self.render_mode
        if mode not in (None, *self.metadata["render_modes"]):
            raise PnyxError(f"unknown render mode {mode!r} (known: {', '.join(self.metadata['render_modes'])})")
        if self.last is None:
            return "round 0"
        return f"round {self.round}: " + " ".join(f"{a} {'CD'[x]}" for a, x in zip(self.possible_agents, self.last))

    def close(self):
        pass

    def _encoded(self, observations: dict) -> dict:
        if not self.one_hot:
            return observations
        out = {}
        for agent, index in observations.items():
            vector = np.zeros(self._observation_spaces[agent].shape, dtype=np.float32)
            vector[int(index)] = 1.0
            out[agent] = vector
        return out

    def first_observations(self) -> dict:
        raise NotImplementedError

    def play(self, joint: tuple[int, ...]) -> tuple[dict, dict]:
        """Observations and rewards of every agent after the joint action ``joint``."""
        raise NotImplementedError

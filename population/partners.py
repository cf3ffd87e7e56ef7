"""Partner distributions for training learners: who a learner meets in each episode.

A pool is a weighted mix of components; each episode draws one, independently per
game, from a seeded generator. A component is

* ``learner`` -- another of the independent learners trained alongside (drawn uniformly
  among the others), playing with its current weights; with a single learner, evaluation
  reads it as the learner itself;
* ``league`` -- a frozen past checkpoint of the learner, drawn uniformly from the league;
* ``uniform_memory_one`` -- a tabular memory-one strategy whose five parameters
  (p_cc, p_cd, p_dc, p_dd, p0: probabilities of cooperating) are drawn ~U(0, 1) per episode;
* any policy spec pnyx can name (:func:`pnyx.agents.policy_factory`): memory-one
  strategies such as ``tft``, ``allc``, ``alld``, ``memory_one(...)`` play as tabular
  partners on the fast path, anything else (``grim``, a ``*.pt`` checkpoint, a
  ``package.module:Class``) through its batch policy.

The mixed pool of Weis et al. 2026 (arXiv:2602.16301, section 3 and appendix A.3.3) is
``{learner: 0.5, uniform_memory_one: 0.5}``; :data:`POOLS` names it and the other standard
pools. :func:`opponent_z` is the paper's opponent-ID vector (appendix A.4.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from pnyx.agents import policy_factory
from pnyx.agents.strategies import MemoryOne
from pnyx.errors import PnyxError

LEARNER, LEAGUE, UNIFORM = "learner", "league", "uniform_memory_one"

KINDS = ("learner", "league", "tabular", "policy")
#: Size of the opponent-ID vector z: log pi(a | o) for five observations x two actions.
Z_SIZE = 10
#: Smallest probability inside z's logarithm (pnyx's: keeps z finite for deterministic tables).
Z_FLOOR = 1e-6

POOLS: dict[str, dict[str, float]] = {
    "mixed_pool": {LEARNER: 0.5, UNIFORM: 0.5},
    "tabular": {UNIFORM: 1.0},
    "reduced": {"tft": 1.0, "allc": 1.0, "alld": 1.0},
    "learners": {LEARNER: 1.0},
    "league": {LEAGUE: 1.0},
}


@dataclass(frozen=True)
class Component:
    """One kind of partner: ``kind`` is one of :data:`KINDS`; ``table`` holds a fixed
    memory-one strategy's cooperation probabilities (indexed by observation code), ``factory``
    builds any other policy."""

    spec: str
    kind: str
    table: np.ndarray | None = None
    factory: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Draw:
    """Partners for ``n`` games: ``component`` index per game; ``tabular`` cooperation
    probabilities (n, 5) by observation code, NaN for non-tabular games; ``league`` member
    index per game (-1 elsewhere); ``other`` which of the other learners (0 .. others - 1)
    per learner game (-1 elsewhere); ``policy_seeds`` one seed per component for batch policies."""

    component: np.ndarray
    tabular: np.ndarray
    league: np.ndarray
    other: np.ndarray
    policy_seeds: np.ndarray


def opponent_z(tabular: np.ndarray) -> np.ndarray:
    """The opponent-ID vector of Weis et al. 2026, appendix A.4.1: for a tabular agent the
    flattened log-probabilities ``log pi(a | o)`` over the observations o = CC, CD, DC, DD,
    start and actions a = C, D, observation-major: ``[log p_cc, log(1 - p_cc), log p_cd, ...,
    log p0, log(1 - p0)]``; 0 for learning agents (rows of ``tabular`` that are NaN).

    ``tabular`` holds cooperation probabilities by observation code, (n, 5). The paper fixes
    neither the order of the flattening (observation-major is pnyx's choice) nor a floor;
    pnyx clips probabilities at :data:`Z_FLOOR` so that deterministic strategies (tit for
    tat) get finite entries. U(0,1) parameters are never clipped in practice."""
    tabular = np.asarray(tabular, dtype=np.float64)
    coop = np.clip(tabular, Z_FLOOR, 1.0)
    defect = np.clip(1.0 - tabular, Z_FLOOR, 1.0)
    z = np.log(np.stack([coop, defect], axis=-1)).reshape(len(tabular), Z_SIZE)
    return np.where(np.isnan(tabular).any(1, keepdims=True), 0.0, z)


def _component(spec: str) -> Component:
    if spec in (LEARNER, LEAGUE):
        return Component(spec, spec)
    if spec == UNIFORM:
        return Component(spec, "tabular")
    factory = policy_factory(spec)
    policy = factory()
    if isinstance(policy, MemoryOne):
        p = policy.p  # p_cc, p_cd, p_dc, p_dd, p0: indexed by observation code 0..4
        return Component(spec, "tabular", table=np.asarray(p, dtype=np.float64))
    return Component(spec, "policy", factory=factory)


class PartnerPool:
    """A seeded distribution over partners; build with :meth:`parse` from a pool name, a
    single spec, or a mapping ``{spec: weight}``."""

    def __init__(self, mix: Mapping[str, float]):
        if not mix:
            raise PnyxError("a partner pool needs at least one partner")
        for spec, weight in mix.items():
            if not (isinstance(weight, (int, float)) and weight > 0 and np.isfinite(weight)):
                raise PnyxError(f"partner weight {weight!r} for {spec!r} must be a positive number")
        self.mix = dict(mix)
        self.components = [_component(spec) for spec in mix]
        weights = np.array(list(mix.values()), dtype=np.float64)
        self.weights = weights / weights.sum()

    @classmethod
    def parse(cls, value: str | Mapping[str, float]) -> PartnerPool:
        if isinstance(value, str):
            return cls(POOLS.get(value, {value: 1.0}))
        return cls(value)

    def has(self, kind: str) -> bool:
        return any(c.kind == kind for c in self.components)

    def draw(self, n: int, rng: np.random.Generator, league_size: int = 0, others: int = 1) -> Draw:
        """Partners for ``n`` games, all randomness from ``rng``; ``others`` is how many
        other learners a ``learner`` game may be drawn against."""
        component = rng.choice(len(self.components), size=n, p=self.weights)
        tabular = np.full((n, 5), np.nan)
        uniform = rng.random((n, 5))
        league = np.full(n, -1, dtype=np.int64)
        members = rng.integers(max(league_size, 1), size=n)
        other_draws = rng.integers(max(others, 1), size=n)
        other = np.full(n, -1, dtype=np.int64)
        for i, c in enumerate(self.components):
            games = component == i
            if c.spec == UNIFORM:
                tabular[games] = uniform[games]
            elif c.table is not None:
                tabular[games] = c.table
            elif c.kind == LEAGUE:
                if not league_size:
                    raise PnyxError("partner 'league' needs a league of past checkpoints (league_size >= 1)")
                league[games] = members[games]
            elif c.kind == LEARNER:
                other[games] = other_draws[games]
        seeds = rng.integers(2**63 - 1, size=len(self.components))
        return Draw(component, tabular, league, other, seeds)

"""A pairing of two policy specs, played by a match engine, with the language-model
players bound to their roles' models and their moves counted.

A language-model seat yields one ``llm_moves`` record per pairing: its move counts
(``moves``, ``retried``, ``unparseable``, ``truncated``, ``fallback``) and the share of
games in which it chose to cooperate, per round; :func:`llm_summary` sums the records
per player spec into :class:`LLMMoves`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict

from pnyx.agents import policy_factory
from pnyx.agents.llm.roles import ModelField, RoleModel
from pnyx.population.match import ENGINES, MatchResult

MOVE_COUNTS = ("moves", "retried", "unparseable", "truncated", "fallback")


def play_pairing(a: str, b: str, *, engine: str = "batched", game: str, payoffs, turns: int, repetitions: int,
                 noise: float, seed: np.random.SeedSequence, build_model: Callable[[ModelField, str], RoleModel],
                 model: ModelField = "embedded") -> tuple[MatchResult, list[RoleModel], list[dict]]:
    """Policy ``a`` in seat 0 against ``b`` in seat 1. ``build_model(field, role)`` builds a
    role's model (a run's ``RunContext.model``); a language-model player uses its own
    ``model`` or else ``model``. Returns the result, the roles built, and one ``llm_moves``
    record per language-model seat."""
    roles: list[RoleModel] = []
    seats: list[list] = [[], []]

    def seated(spec: str, seat: int):
        factory = policy_factory(spec)

        def build():
            policy = factory()
            if hasattr(policy, "bind_model"):
                role = build_model(policy.model if policy.model is not None else model, f"player {spec}")
                policy.bind_model(role)
                roles.append(role)
                seats[seat].append(policy)
            return policy
        return build

    result = ENGINES[engine](seated(a, 0), seated(b, 1), payoffs=payoffs, turns=turns, repetitions=repetitions,
                             noise=noise, seed=seed, game=game)
    moves = []
    for seat, (spec, other) in enumerate([(a, b), (b, a)]):
        if seats[seat]:
            totals = {k: sum(p.stats[k] for p in seats[seat]) for k in seats[seat][0].stats}
            by_round = np.sum([p.cooperated for p in seats[seat]], axis=0) / repetitions
            moves.append({"player": spec, "opponent": other, "seat": seat, "fallback_rule": seats[seat][0].fallback,
                          "model": seats[seat][0].role.name, **totals,
                          "cooperation_by_round": by_round.tolist()})
    return result, roles, moves


class LLMMoves(BaseModel):
    """A language-model player's move counts, summed over its pairings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: The identity of the player's model (:func:`~pnyx.agents.llm.protocol.model_identity`).
    model: str
    #: What plays a move the model's reply did not give: ``cooperate``, ``defect`` or ``random``.
    fallback_rule: str
    moves: int
    retried: int
    unparseable: int
    #: Moves played by the fallback rule because the reply, retried once, was still cut at the token limit.
    truncated: int
    #: Moves played by the fallback rule.
    fallback: int


def llm_summary(records: dict[str, list[dict]]) -> dict[str, LLMMoves]:
    """Move counts of the language-model players, summed per player spec."""
    out: dict[str, dict] = {}
    for rec in records.get("llm_moves", []):
        row = out.setdefault(rec["player"], {"model": rec["model"], "fallback_rule": rec["fallback_rule"],
                                             **dict.fromkeys(MOVE_COUNTS, 0)})
        for k in MOVE_COUNTS:
            row[k] += int(rec[k])
    return {spec: LLMMoves(**row) for spec, row in out.items()}

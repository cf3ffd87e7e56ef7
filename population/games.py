"""Payoff matrices for games played between graph neighbours.

``A[s, t]`` is the payoff of strategy ``s`` against ``t``, the form
:meth:`pnyx.population.dynamics.Fitness.game` and
:func:`pnyx.population.replicator.replicator_dynamics` take.
"""

from __future__ import annotations

import numpy as np

from pnyx.errors import PnyxError


def donation_game(b: float, c: float) -> np.ndarray:
    """The donation game with strategies 0 = defect, 1 = cooperate: a cooperator pays
    ``c`` for its partner to receive ``b`` (Sigmund, "The Calculus of Selfishness", 2010)."""
    if not (np.isfinite(b) and np.isfinite(c)) or c < 0 or b < 0:
        raise PnyxError(f"donation game needs b >= 0 and c >= 0, got b={b:g}, c={c:g}")
    return np.array([[0.0, b], [-c, b - c]])


def policy_payoff_matrix(specs: list[str], *, payoffs=(3, 0, 5, 1), turns: int = 100, repetitions: int = 10,
                         noise: float = 0.0, seed=None) -> np.ndarray:
    """Mean payoff per turn of every pnyx policy spec against every other in a repeated
    2x2 game (the IPD by default), played with the batched tournament engine: strategy
    ``i`` of the population is ``specs[i]``."""
    from pnyx.agents import policy_factory
    from pnyx.population.match import play_batched

    if len(specs) < 2:
        raise PnyxError("a population game needs at least 2 policy specs")
    if turns < 1 or repetitions < 1:
        raise PnyxError("turns and repetitions must be >= 1")
    factories = [policy_factory(spec) for spec in specs]
    pairs = [(i, j) for i in range(len(specs)) for j in range(i, len(specs))]
    seeds = np.random.SeedSequence(seed).spawn(len(pairs))
    matrix = np.zeros((len(specs), len(specs)))
    for (i, j), pair_seed in zip(pairs, seeds):
        result = play_batched(factories[i], factories[j], payoffs=payoffs, turns=turns,
                              repetitions=repetitions, noise=noise, seed=pair_seed)
        matrix[i, j], matrix[j, i] = result.payoff.mean(axis=1)
        if i == j:
            matrix[i, i] = result.payoff.mean()
    return matrix

"""Fixation probability of a single mutant on a graph, estimated from independent trials.

A mutant is placed on a uniformly random node of a population of residents, and the
dynamics of :mod:`pnyx.population.dynamics` run, all trials in lock-step, until one
type holds every node. The estimate is a :class:`pnyx.stats.Estimate`: the fraction of
trials the mutant took over (``value``), from ``n`` trials, with its 95% Wilson score
interval (:func:`pnyx.stats.wilson`), which stays inside [0, 1] and is informative even
when no trial or every trial fixed.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from pnyx.errors import PnyxError
from pnyx.population.dynamics import Fitness, GraphArrays, run_to_fixation
from pnyx.stats import Estimate, wilson


def moran_fixation_probability(r: float, n: int) -> float:
    """Fixation probability of one mutant of relative fitness ``r`` in the Moran process
    of ``n`` individuals, well mixed: ``(1 - 1/r) / (1 - 1/r^n)``, ``1/n`` when ``r = 1``
    (Moran 1958; Nowak, "Evolutionary Dynamics", 2006, ch. 6). By the isothermal theorem
    it holds for birth-death updating on every regular graph (Lieberman et al. 2005)."""
    if r <= 0 or n < 2:
        raise PnyxError(f"need r > 0 and n >= 2, got r={r:g}, n={n}")
    if r == 1:
        return 1.0 / n
    return (1 - 1 / r) / (1 - r ** -float(n)) if r > 1 else (1 / r - 1) / (r ** -float(n) - 1)


def single_mutants(n: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    """Initial states, shape ``(trials, n)``: residents (0) and one mutant (1) on a
    uniformly random node."""
    initial = np.zeros((trials, n), dtype=np.int16)
    initial[np.arange(trials), rng.integers(0, n, trials)] = 1
    return initial


def _estimate(graph: nx.Graph, fitness: Fitness, update: str, trials: int, seed) -> Estimate:
    if trials < 1:
        raise PnyxError(f"trials={trials} must be >= 1")
    arrays = GraphArrays.from_graph(graph)
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    placement, dynamics = sequence.spawn(2)
    initial = single_mutants(arrays.n, trials, np.random.default_rng(placement))
    run = run_to_fixation(arrays, initial, fitness, update, seed=dynamics)
    return wilson(int((run.winner == 1).sum()), trials)


def fixation_probability(graph: nx.Graph, r: float = 1.0, update: str = "bd", trials: int = 10_000,
                         seed=None) -> Estimate:
    """Fixation probability of one mutant of constant relative fitness ``r`` among
    residents of fitness 1, under update rule ``update`` (``bd``, ``db``, ``imitation``,
    ``pc``), from ``trials`` trials seeded by ``seed`` (an int or a ``SeedSequence``)."""
    return _estimate(graph, Fitness.relative(r), update, trials, seed)


def game_fixation_probability(graph: nx.Graph, payoff_matrix, w: float, update: str = "db", trials: int = 10_000,
                              seed=None, *, mutant: int = 1, resident: int = 0) -> Estimate:
    """Fixation probability of one individual playing strategy ``mutant`` among
    residents playing ``resident``, fitness ``1 - w + w * payoff`` from the game
    ``payoff_matrix`` (``A[s, t]``: payoff of ``s`` against ``t``) played with every
    neighbour. E.g. one cooperator among defectors in
    :func:`pnyx.population.games.donation_game`, or one policy among another with
    :func:`pnyx.population.games.policy_payoff_matrix`."""
    matrix = np.asarray(payoff_matrix, dtype=np.float64)
    size = len(matrix) if matrix.ndim == 2 else 0
    for name, index in (("mutant", mutant), ("resident", resident)):
        if not 0 <= index < size:
            raise PnyxError(f"{name}={index} is not a strategy of the {size}-strategy payoff matrix")
    if mutant == resident:
        raise PnyxError("mutant and resident must be different strategies")
    pair = [resident, mutant]
    return _estimate(graph, Fitness.game(matrix[np.ix_(pair, pair)], w), update, trials, seed)

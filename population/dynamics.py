"""Evolutionary dynamics on graphs, many independent trials advanced in lock-step.

A population of ``N`` individuals sits on the nodes of an undirected, connected
graph; each holds one of ``S`` strategies ``0..S-1``. Fitness is either a constant
per strategy (:meth:`Fitness.constant`, e.g. ``[1, r]`` for a mutant of relative
fitness ``r``) or comes from a game played with every graph neighbour
(:meth:`Fitness.game`): ``fitness = 1 - w + w * payoff``, the payoff accumulated over
all neighbours, ``w`` the selection intensity (Ohtsuki, Hauert, Lieberman & Nowak,
"A simple rule for the evolution of cooperation on graphs", Nature 441, 2006).

Update rules, one elementary update per step:

* ``"bd"`` birth-death: an individual chosen with probability proportional to fitness
  reproduces; its offspring replaces a uniformly random neighbour (Lieberman, Hauert &
  Nowak, "Evolutionary dynamics on graphs", Nature 433, 2005).
* ``"db"`` death-birth: a uniformly random individual dies; its neighbours compete for
  the empty site with probability proportional to fitness (Ohtsuki et al. 2006).
* ``"imitation"``: a uniformly random individual keeps its strategy or adopts a
  neighbour's, with probability proportional to fitness, its own included (ibid.).
* ``"pc"`` pairwise comparison: a uniformly random individual ``i`` looks at a uniformly
  random neighbour ``j`` and adopts its strategy with probability
  ``1 / (1 + exp(-(f_j - f_i)))`` (Fermi rule; Szabó & Tőke, PRE 58, 1998; Traulsen,
  Nowak & Pacheco, PRE 74, 2006). With game fitness ``f_j - f_i = w (P_j - P_i)``, so
  ``w`` is the Fermi rule's selection intensity.

Mutation: with probability ``mutation`` the site being updated (the replaced
neighbour, the dead individual, the imitator) takes a uniformly random strategy
instead.

Trials are rows of ``(trials, N)`` arrays; every step draws one update per trial with
numpy, so a step costs a few array operations over all live trials. An update changes
the fitness of the updated node and, with games, its neighbours' by the difference
its new strategy makes to them. Randomness comes only from the ``seed`` given; the same
seed and inputs give the same results.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from pnyx.errors import PnyxError

UPDATE_RULES = ("bd", "db", "imitation", "pc")
REJECTION_ROUNDS = 4


@dataclass(frozen=True, eq=False)
class GraphArrays:
    """A graph as arrays: CSR adjacency (``indptr``, ``indices``), ``degree``, and
    ``padded`` neighbour lists of shape ``(N, max degree)`` filled up with ``N``, a sink
    node that holds no individual. Node ``i`` is the ``i``-th node of ``graph.nodes``."""

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    degree: np.ndarray
    padded: np.ndarray

    @classmethod
    def from_graph(cls, graph: nx.Graph) -> "GraphArrays":
        if graph.is_directed():
            raise PnyxError("population graphs must be undirected")
        n = graph.number_of_nodes()
        if n < 2:
            raise PnyxError(f"a population graph needs at least 2 nodes, got {n}")
        if nx.number_of_selfloops(graph):
            raise PnyxError("a population graph must not have self-loops")
        if not nx.is_connected(graph):
            raise PnyxError("a population graph must be connected")
        adjacency = nx.to_scipy_sparse_array(graph, nodelist=list(graph.nodes), format="csr")
        indptr = adjacency.indptr.astype(np.int64)
        indices = adjacency.indices.astype(np.int64)
        degree = np.diff(indptr)
        padded = np.full((n, degree.max()), n, dtype=np.int64)
        for i in range(n):
            padded[i, : degree[i]] = indices[indptr[i] : indptr[i + 1]]
        return cls(n, indptr, indices, degree, padded)


@dataclass(frozen=True, eq=False)
class Fitness:
    """How fitness follows from strategies: ``constant[s]`` for strategy ``s``, or a
    game ``payoffs[s, t]`` (the payoff of ``s`` against ``t``) played with every
    neighbour at selection intensity ``w``: ``1 - w + w * accumulated payoff``."""

    constant: np.ndarray | None = None
    payoffs: np.ndarray | None = None
    w: float = 1.0

    @classmethod
    def relative(cls, r: float) -> "Fitness":
        """Residents (strategy 0) have fitness 1, mutants (strategy 1) fitness ``r``."""
        return cls.of_constants([1.0, r])

    @classmethod
    def of_constants(cls, values) -> "Fitness":
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or len(values) < 2 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise PnyxError(f"constant fitness must be > 0 for at least 2 strategies, got {values.tolist()}")
        return cls(constant=values)

    @classmethod
    def game(cls, payoff_matrix, w: float) -> "Fitness":
        payoffs = np.asarray(payoff_matrix, dtype=np.float64)
        if payoffs.ndim != 2 or payoffs.shape[0] != payoffs.shape[1] or payoffs.shape[0] < 2:
            raise PnyxError(f"payoff matrix must be square with at least 2 strategies, got shape {payoffs.shape}")
        if not np.all(np.isfinite(payoffs)):
            raise PnyxError("payoff matrix must be finite")
        if not 0 < w <= 1:
            raise PnyxError(f"selection intensity w={w:g} must be in (0, 1]")
        return cls(payoffs=payoffs, w=float(w))

    @property
    def strategies(self) -> int:
        return len(self.constant) if self.constant is not None else len(self.payoffs)

    def check_positive(self, graph: GraphArrays) -> None:
        """Fitness-proportional rules need positive fitness in every reachable state."""
        if self.payoffs is None:
            return
        worst = self.payoffs.min() * (graph.degree.max() if self.payoffs.min() < 0 else graph.degree.min())
        if 1 - self.w + self.w * worst <= 0:
            raise PnyxError(f"selection intensity w={self.w:g} allows fitness <= 0 on this graph; lower w")


class Lockstep:
    """The state of ``trials`` independent populations on one graph and the update rule
    that advances all of them by one elementary step at a time."""

    def __init__(self, graph: GraphArrays, fitness: Fitness, update: str, initial: np.ndarray,
                 rng: np.random.Generator, mutation: float = 0.0):
        if update not in UPDATE_RULES:
            raise PnyxError(f"unknown update rule {update!r} (known: {', '.join(UPDATE_RULES)})")
        if not 0 <= mutation <= 1:
            raise PnyxError(f"mutation={mutation:g} is outside [0, 1]")
        if update != "pc":
            fitness.check_positive(graph)
        n, s = graph.n, fitness.strategies
        initial = np.asarray(initial)
        if initial.ndim != 2 or initial.shape[1] != n:
            raise PnyxError(f"initial strategies must have shape (trials, {n}), got {initial.shape}")
        if initial.size and (initial.min() < 0 or initial.max() >= s):
            raise PnyxError(f"initial strategies must be in 0..{s - 1}")
        self.graph, self.fitness, self.rng, self.mutation = graph, fitness, rng, mutation
        self.step = getattr(self, f"_step_{update}")
        trials = len(initial)
        # Column n is the sink: a dummy strategy s with fitness 0 and no payoffs.
        self.types = np.full((trials, n + 1), s, dtype=np.int16)
        self.types[:, :n] = initial
        self.n_of = np.stack([(initial == k).sum(1) for k in range(s)], axis=1)
        self.fit = np.zeros((trials, n + 1))
        if fitness.constant is not None:
            self.constant = np.append(fitness.constant, 0.0)
            self.fit[:, :n] = self.constant[initial]
        else:
            self.weighted = np.zeros((s + 1, s + 1))
            self.weighted[:s, :s] = fitness.w * fitness.payoffs
            owner = np.repeat(np.arange(n), graph.degree)
            per_edge = self.weighted[initial[:, owner], initial[:, graph.indices]]
            self.fit[:, :n] = 1 - fitness.w + np.add.reduceat(per_edge, graph.indptr[:-1], axis=1)
        # Per trial, a bound on every fitness (for rejection sampling): the largest constant
        # fitness, or with a game the largest fitness so far, raised as fitnesses change.
        if fitness.payoffs is not None:
            self.bound = self.fit.max(axis=1)
        else:
            self.bound = np.full(trials, fitness.constant.max())

    def _uniform(self, n: int, size: int) -> np.ndarray:
        """``size`` uniform integers in ``0..n-1`` (floor of ``n`` times a uniform double in
        [0, 1), which stays below ``n``); several times faster per call than ``integers``."""
        return (self.rng.random(size) * n).astype(np.int64)

    @property
    def trials(self) -> int:
        return len(self.types)

    def keep(self, rows: np.ndarray) -> None:
        """Drop every trial but ``rows``."""
        self.types, self.n_of, self.fit = self.types[rows], self.n_of[rows], self.fit[rows]
        self.bound = self.bound[rows]

    def _set(self, rows: np.ndarray, sites: np.ndarray, new: np.ndarray) -> None:
        """Trial ``rows[i]`` puts strategy ``new[i]`` on node ``sites[i]`` (rows distinct).

        With game fitness, the site's payoff is recomputed from its neighbours'
        strategies, and each neighbour's changes by its payoff against the new strategy
        minus that against the old one."""
        if self.mutation:
            mutate = self.rng.random(len(rows)) < self.mutation
            new = new.copy()
            new[mutate] = self._uniform(self.fitness.strategies, int(mutate.sum()))
        old = self.types[rows, sites]
        changed = old != new
        rows, sites, old, new = rows[changed], sites[changed], old[changed], new[changed]
        self.types[rows, sites] = new
        self.n_of[rows, old] -= 1
        self.n_of[rows, new] += 1
        took_over = self.n_of[rows, new] == self.graph.n
        self.took_over = rows[took_over], new[took_over]
        if self.fitness.payoffs is None:
            self.fit[rows, sites] = self.constant[new]  # the bound, the largest constant, holds
            return
        column = rows[:, None]
        neighbours = self.graph.padded[sites]
        around = self.types[column, neighbours]
        own = 1 - self.fitness.w + self.weighted[new[:, None], around].sum(axis=1)
        self.fit[rows, sites] = own
        change = self.weighted[around, new[:, None]] - self.weighted[around, old[:, None]]
        updated = self.fit[column, neighbours] + change
        self.fit[column, neighbours] = updated
        self.bound[rows] = np.maximum(self.bound[rows], np.maximum(own, updated.max(axis=1)))

    def _by_fitness(self, propose, candidates) -> np.ndarray:
        """One node per trial drawn with probability proportional to fitness from a set of
        candidates: by rejection, ``propose(rows)`` drawing uniformly from each row's set
        and accepted with probability fitness / upper bound, for a few rounds; rows still
        without a node then draw exactly from ``candidates(rows) -> (nodes padded with
        the sink, number of real nodes)`` by inverse transform. Either way the draw has
        the target distribution; rejection just skips the work of scanning every
        candidate when fitnesses are close, as under weak selection."""
        chosen = np.empty(self.trials, dtype=np.int64)
        pending = np.arange(self.trials)
        for _ in range(REJECTION_ROUNDS):
            proposal = propose(pending)
            accept = self.rng.random(len(pending)) * self.bound[pending] < self.fit[pending, proposal]
            chosen[pending[accept]] = proposal[accept]
            pending = pending[~accept]
            if not len(pending):
                return chosen
        nodes, counts = candidates(pending)
        cumulative = self.fit[pending[:, None], nodes].cumsum(axis=1)
        u = self.rng.random(len(pending)) * cumulative[:, -1]
        pick = np.minimum((cumulative <= u[:, None]).sum(axis=1), counts - 1)
        chosen[pending] = nodes[np.arange(len(pending)), pick]
        return chosen

    def _random_neighbour(self, nodes: np.ndarray) -> np.ndarray:
        g = self.graph
        offset = (self.rng.random(len(nodes)) * g.degree[nodes]).astype(np.int64)
        return g.indices[g.indptr[nodes] + offset]

    def _step_bd(self) -> None:
        rows, n = np.arange(self.trials), self.graph.n
        parent = self._by_fitness(lambda r: self._uniform(n, len(r)),
                                  lambda r: (np.broadcast_to(np.arange(n), (len(r), n)), np.full(len(r), n)))
        self._set(rows, self._random_neighbour(parent), self.types[rows, parent])

    def _step_db(self) -> None:
        g, rows = self.graph, np.arange(self.trials)
        dead = self._uniform(g.n, self.trials)
        parent = self._by_fitness(lambda r: self._random_neighbour(dead[r]),
                                  lambda r: (g.padded[dead[r]], g.degree[dead[r]]))
        self._set(rows, dead, self.types[rows, parent])

    def _step_imitation(self) -> None:
        g, rows = self.graph, np.arange(self.trials)
        focal = self._uniform(g.n, self.trials)

        def self_or_neighbour(r):
            pick = (self.rng.random(len(r)) * (g.degree[focal[r]] + 1)).astype(np.int64)
            neighbour = g.indices[g.indptr[focal[r]] + pick - 1]  # where pick is 0, unused
            return np.where(pick == 0, focal[r], neighbour)

        model = self._by_fitness(self_or_neighbour, lambda r: (
            np.concatenate([focal[r, None], g.padded[focal[r]]], axis=1), g.degree[focal[r]] + 1))
        self._set(rows, focal, self.types[rows, model])

    def _step_pc(self) -> None:
        rows = np.arange(self.trials)
        focal = self._uniform(self.graph.n, self.trials)
        model = self._random_neighbour(focal)
        advantage = self.fit[rows, model] - self.fit[rows, focal]
        adopt = self.rng.random(self.trials) * (1 + np.exp(-np.clip(advantage, -700, 700))) < 1
        self._set(rows, focal, np.where(adopt, self.types[rows, model], self.types[rows, focal]))


@dataclass(frozen=True)
class FixationRun:
    """Per trial: the strategy that took over the whole population, and the number of
    elementary updates it took."""

    winner: np.ndarray
    steps: np.ndarray


def run_to_fixation(graph: nx.Graph | GraphArrays, initial: np.ndarray, fitness: Fitness, update: str = "bd", *,
                    seed=None) -> FixationRun:
    """Advance every trial (row of ``initial``, shape ``(trials, N)``) until one strategy
    holds every node. Without mutation this happens with probability 1 on a connected
    graph. Finished trials are dropped from the lock-step arrays as they accumulate."""
    graph = graph if isinstance(graph, GraphArrays) else GraphArrays.from_graph(graph)
    rng = np.random.default_rng(seed)
    state = Lockstep(graph, fitness, update, initial, rng)
    winner = np.full(state.trials, -1, dtype=np.int64)
    steps = np.zeros(state.trials, dtype=np.int64)
    done = state.n_of.max(axis=1) == graph.n
    winner[done] = state.n_of[done].argmax(axis=1)
    ids = np.arange(state.trials)
    finished, step = int(done.sum()), 0
    while finished < len(ids):
        if finished * 8 >= len(ids):
            live = np.flatnonzero(~done)
            state.keep(live)
            ids, done, finished = ids[live], done[live], 0
        state.step()
        step += 1
        rows, types = state.took_over
        if len(rows):
            winner[ids[rows]] = types
            steps[ids[rows]] = step
            done[rows] = True
            finished += len(rows)
    return FixationRun(winner, steps)


def evolve(graph: nx.Graph | GraphArrays, initial: np.ndarray, fitness: Fitness, update: str = "bd", *,
           updates: int, mutation: float = 0.0, record_every: int = 1, seed=None) -> np.ndarray:
    """Strategy frequencies after every ``record_every`` elementary updates, shape
    ``(updates // record_every + 1, trials, S)``; row 0 is the initial state."""
    graph = graph if isinstance(graph, GraphArrays) else GraphArrays.from_graph(graph)
    if updates < 0 or record_every < 1:
        raise PnyxError("updates must be >= 0 and record_every >= 1")
    state = Lockstep(graph, fitness, update, initial, np.random.default_rng(seed), mutation)
    records = [state.n_of / graph.n]
    for step in range(1, updates + 1):
        state.step()
        if step % record_every == 0:
            records.append(state.n_of / graph.n)
    return np.stack(records)

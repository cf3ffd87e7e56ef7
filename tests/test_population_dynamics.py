"""Population dynamics against closed forms and exact Markov-chain solutions.

The exact solver below enumerates every state of a small population and writes each
update rule's transition probabilities out one state at a time, independently of the
vectorised engine; the simulations are seeded, so every comparison is deterministic,
and the tolerances are 4 standard errors of the estimate.
"""

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from pnyx.errors import PnyxError
from pnyx.population import (
    Fitness,
    donation_game,
    evolve,
    fixation_probability,
    game_fixation_probability,
    moran_fixation_probability,
    policy_payoff_matrix,
    replicator_dynamics,
    run_to_fixation,
)
from pnyx.stats import wilson


def node_fitness(graph, state, constant=None, payoffs=None, w=1.0):
    nodes = list(graph.nodes)
    if constant is not None:
        return [constant[state[i]] for i in range(len(nodes))]
    index = {v: i for i, v in enumerate(nodes)}
    return [1 - w + w * sum(payoffs[state[i]][state[index[u]]] for u in graph[v]) for i, v in enumerate(nodes)]


def transitions(graph, state, rule, strategies=2, mutation=0.0, **fitness):
    """{next state: probability} after one elementary update from ``state`` (a tuple)."""
    nodes = list(graph.nodes)
    n = len(nodes)
    index = {v: i for i, v in enumerate(nodes)}
    neighbours = [[index[u] for u in graph[v]] for v in nodes]
    f = node_fitness(graph, state, **fitness)
    out = {}

    def put(site, inherited, p):
        for t in range(strategies):
            q = (1 - mutation) * (t == inherited) + mutation / strategies
            nxt = state[:site] + (t,) + state[site + 1:]
            out[nxt] = out.get(nxt, 0.0) + p * q

    for i in range(n):
        if rule == "bd":
            for j in neighbours[i]:
                put(j, state[i], f[i] / sum(f) / len(neighbours[i]))
        elif rule == "db":
            total = sum(f[k] for k in neighbours[i])
            for k in neighbours[i]:
                put(i, state[k], f[k] / total / n)
        elif rule == "imitation":
            pool = [i] + neighbours[i]
            total = sum(f[k] for k in pool)
            for k in pool:
                put(i, state[k], f[k] / total / n)
        elif rule == "pc":
            for k in neighbours[i]:
                adopt = 1 / (1 + math.exp(-(f[k] - f[i])))
                put(i, state[k], adopt / n / len(neighbours[i]))
                put(i, state[i], (1 - adopt) / n / len(neighbours[i]))
    return out


def exact_absorption(graph, rule, strategies=2, **fitness):
    """Probability that strategy s takes over from each state: {state: array over s}."""
    n = graph.number_of_nodes()
    states = list(itertools.product(range(strategies), repeat=n))
    position = {s: i for i, s in enumerate(states)}
    matrix = np.eye(len(states))
    rhs = np.zeros((len(states), strategies))
    for s in states:
        if len(set(s)) == 1:
            rhs[position[s], s[0]] = 1.0
            continue
        for nxt, p in transitions(graph, s, rule, strategies, **fitness).items():
            matrix[position[s], position[nxt]] -= p
    solution = np.linalg.solve(matrix, rhs)
    return {s: solution[position[s]] for s in states}


def exact_single_mutant(graph, rule, **fitness):
    """Fixation probability of one mutant (1) among residents (0), uniform placement."""
    n = graph.number_of_nodes()
    absorption = exact_absorption(graph, rule, **fitness)
    return np.mean([absorption[tuple(int(j == i) for j in range(n))][1] for i in range(n)])


def birth_death_chain(backward_over_forward):
    """Fixation probability from state 1 of a birth-death chain on 0..N with
    gamma_i = P(i -> i-1) / P(i -> i+1) (Nowak 2006, eq. 6.7)."""
    return 1 / (1 + np.cumprod(backward_over_forward).sum())


def star_exact(leaves, r):
    """Exact birth-death fixation probability on a star, uniform placement, by solving the
    chain on (centre type, number of mutant leaves) (Broom & Rychtar, Proc. R. Soc. A 464, 2008)."""
    n = leaves + 1
    size = 2 * (leaves + 1)
    idx = lambda c, m: c * (leaves + 1) + m  # noqa: E731
    matrix, rhs = np.eye(size), np.zeros(size)
    for c in (0, 1):
        for m in range(leaves + 1):
            i = idx(c, m)
            if (c, m) in ((0, 0), (1, leaves)):
                rhs[i] = float(c == 1)
                continue
            total = (r if c else 1) + r * m + (leaves - m)
            centre = (r if c else 1) / total  # the centre reproduces onto a random leaf
            moves = {
                idx(c, m + c - (1 - c)): centre * ((leaves - m) if c else m) / leaves,
                # a leaf of the other type replaces the centre
                idx(1 - c, m): (r * m if c == 0 else leaves - m) / total,
            }
            matrix[i, i] = sum(moves.values())  # self-loops cancel out of x_i = sum_j P_ij x_j
            for j, p in moves.items():
                matrix[i, j] -= p
    x = np.linalg.solve(matrix, rhs)
    return (x[idx(1, 0)] + leaves * x[idx(0, 1)]) / n


def stderr(estimate):
    """Binomial standard error ``sqrt(p (1 - p) / n)`` of an estimated proportion."""
    return math.sqrt(estimate.value * (1 - estimate.value) / estimate.n)


def within(estimate, exact, k=4.0):
    se = max(stderr(estimate), math.sqrt(exact * (1 - exact) / estimate.n))
    return abs(estimate.value - exact) <= k * se


def test_moran_closed_form_values():
    assert moran_fixation_probability(1.0, 10) == pytest.approx(0.1)
    assert moran_fixation_probability(2.0, 10) == pytest.approx(0.5 / (1 - 2.0**-10))
    assert moran_fixation_probability(0.5, 10) == pytest.approx((2 - 1) / (2**10 - 1))
    r, n = 1.3, 7  # the closed form equals the birth-death chain with gamma_i = 1/r
    assert moran_fixation_probability(r, n) == pytest.approx(birth_death_chain(np.full(n - 1, 1 / r)))


@pytest.mark.parametrize("r", [0.8, 1.5])
def test_birth_death_on_complete_graph_matches_moran(r):
    n = 12
    estimate = fixation_probability(nx.complete_graph(n), r, "bd", trials=20_000, seed=1)
    assert within(estimate, moran_fixation_probability(r, n))


def test_death_birth_on_complete_graph_matches_its_chain():
    n, r = 12, 2.0
    i = np.arange(1, n)
    # P(i->i+1) = (N-i)/N * r i / (r i + N-i-1); P(i->i-1) = i/N * (N-i) / (r (i-1) + N-i)
    gamma = (r * i + n - i - 1) / (r * (r * (i - 1) + n - i))
    exact = birth_death_chain(gamma)
    assert exact < moran_fixation_probability(r, n)  # db on a complete graph is not the Moran process
    estimate = fixation_probability(nx.complete_graph(n), r, "db", trials=20_000, seed=2)
    assert within(estimate, exact)
    assert not within(estimate, moran_fixation_probability(r, n))


@pytest.mark.parametrize("graph", [nx.cycle_graph(16), nx.random_regular_graph(3, 16, seed=5)],
                         ids=["cycle", "3-regular"])
def test_isothermal_theorem(graph):
    """Birth-death on any regular graph has the Moran fixation probability (Lieberman et al. 2005)."""
    estimate = fixation_probability(graph, 1.5, "bd", trials=20_000, seed=3)
    assert within(estimate, moran_fixation_probability(1.5, 16))


def test_star_amplifies_selection_under_birth_death():
    leaves, r = 10, 1.5
    exact = star_exact(leaves, r)
    moran = moran_fixation_probability(r, leaves + 1)
    large_n = (1 - r**-2) / (1 - r ** (-2.0 * (leaves + 1)))  # Lieberman, Hauert & Nowak 2005
    assert moran < exact < large_n
    estimate = fixation_probability(nx.star_graph(leaves), r, "bd", trials=20_000, seed=4)
    assert within(estimate, exact)
    assert estimate.low > moran


def test_star_chain_matches_full_state_space():
    r = 1.7
    assert star_exact(5, r) == pytest.approx(exact_single_mutant(nx.star_graph(5), "bd", constant=[1, r]))


@pytest.mark.parametrize("rule", ["bd", "db", "imitation", "pc"])
def test_neutral_mutant_fixes_with_probability_one_over_n(rule):
    graph = nx.star_graph(9)
    estimate = fixation_probability(graph, 1.0, rule, trials=20_000, seed=5)
    assert exact_single_mutant(graph, rule, constant=[1, 1]) == pytest.approx(0.1)
    assert within(estimate, 0.1)


IRREGULAR = nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (4, 5), (5, 2), (1, 6)])


GAMES = {
    "donation b=3 c=1, w=0.2": (donation_game(3.0, 1.0), 0.2),
    "prisoner's dilemma, w=1": (np.array([[1.0, 5.0], [0.5, 3.0]]), 1.0),  # defect, cooperate
}


@pytest.mark.parametrize("game", GAMES)
@pytest.mark.parametrize("rule", ["bd", "db", "imitation", "pc"])
def test_game_on_irregular_graph_matches_exact_solution(rule, game):
    payoffs, w = GAMES[game]
    exact = exact_single_mutant(IRREGULAR, rule, payoffs=payoffs, w=w)
    neutral = 1 / 7
    estimate = game_fixation_probability(IRREGULAR, payoffs, w, rule, trials=20_000, seed=6)
    assert within(estimate, exact)
    assert abs(exact - neutral) > 8 * stderr(estimate)  # the game matters at this strength


@pytest.mark.parametrize("rule", ["db", "pc"])
def test_three_strategy_game_absorption_matches_exact_solution(rule):
    graph = nx.Graph([(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2)])
    rps = np.array([[1.0, 0.2, 2.0], [2.0, 1.0, 0.2], [0.2, 2.0, 1.0]])
    start = (0, 0, 1, 2, 2)
    exact = exact_absorption(graph, rule, strategies=3, payoffs=rps, w=0.5)[start]
    trials = 20_000
    run = run_to_fixation(graph, np.tile(start, (trials, 1)), Fitness.game(rps, 0.5), rule, seed=7)
    freq = np.bincount(run.winner, minlength=3) / trials
    se = np.sqrt(exact * (1 - exact) / trials)
    assert np.all(np.abs(freq - exact) <= 4 * se)
    assert np.all(run.steps > 0)


def test_one_update_with_mutation_has_the_exact_distribution():
    graph, rule, mu = IRREGULAR, "db", 0.3
    start = (1, 0, 0, 1, 1, 0, 0)
    payoffs, w = donation_game(2.0, 1.0), 0.2
    exact = transitions(graph, start, rule, mutation=mu, payoffs=payoffs, w=w)
    trials = 40_000
    initial = np.tile(start, (trials, 1))
    # evolve records frequencies, so compare the distribution of the mutant count
    counts = evolve(graph, initial, Fitness.game(payoffs, w), rule, updates=1, mutation=mu, seed=8)[1, :, 1] * 7
    expected = {}
    for state, p in exact.items():
        expected[sum(state)] = expected.get(sum(state), 0.0) + p
    for k, p in expected.items():
        observed = np.mean(np.isclose(counts, k))
        assert abs(observed - p) <= 4 * math.sqrt(p * (1 - p) / trials) + 1e-12, (k, observed, p)


def test_evolve_records_frequencies_and_keeps_fixed_states():
    graph = nx.complete_graph(8)
    initial = np.zeros((50, 8), dtype=int)
    initial[:, 0] = 1
    freqs = evolve(graph, initial, Fitness.relative(3.0), "bd", updates=2_000, record_every=100, seed=9)
    assert freqs.shape == (21, 50, 2)
    assert np.allclose(freqs.sum(axis=2), 1.0)
    assert np.allclose(freqs[0, :, 1], 1 / 8)
    final = freqs[-1, :, 1]
    assert np.all((final == 0) | (final == 1)) and 0 < final.mean() < 1


def test_same_seed_same_result_and_seeds_differ():
    graph = nx.cycle_graph(10)
    a = fixation_probability(graph, 1.2, "db", trials=2_000, seed=11)
    b = fixation_probability(graph, 1.2, "db", trials=2_000, seed=11)
    c = fixation_probability(graph, 1.2, "db", trials=2_000, seed=12)
    assert a == b and a != c
    run_a = run_to_fixation(graph, np.eye(10, dtype=int), Fitness.relative(1.2), "bd", seed=3)
    run_b = run_to_fixation(graph, np.eye(10, dtype=int), Fitness.relative(1.2), "bd", seed=3)
    assert np.array_equal(run_a.winner, run_b.winner) and np.array_equal(run_a.steps, run_b.steps)


def test_estimate_statistics():
    estimate = fixation_probability(nx.complete_graph(5), 1.0, "bd", trials=1_000, seed=0)
    p, fixed = estimate.value, round(estimate.value * 1_000)
    assert p == fixed / 1_000 and estimate.n == 1_000
    assert estimate == wilson(fixed, 1_000)
    assert estimate.low < p < estimate.high
    zero = wilson(0, 100)
    assert zero.low == pytest.approx(0.0, abs=1e-12) and zero.high == pytest.approx(0.037, abs=1e-3)


def test_replicator_prisoners_dilemma_defectors_take_over():
    pd_matrix = [[3, 0], [5, 1]]  # cooperate, defect
    shares = replicator_dynamics(pd_matrix, x0=[0.99, 0.01], generations=2_000, dt=0.1)
    assert shares[-1, 1] > 0.999
    assert np.all(np.diff(shares[:, 1]) > -1e-12)  # defectors never lose ground


def test_replicator_hawk_dove_reaches_mixed_equilibrium():
    v, c = 2.0, 3.0  # hawk share at equilibrium: V / C
    hawk_dove = [[(v - c) / 2, v], [0, v / 2]]
    for x0 in ([0.05, 0.95], [0.95, 0.05]):
        shares = replicator_dynamics(hawk_dove, x0=x0, generations=3_000, dt=0.1)
        assert shares[-1, 0] == pytest.approx(v / c, abs=1e-6)


def test_policy_payoff_matrix_of_deterministic_strategies():
    matrix = policy_payoff_matrix(["alld", "tft"], turns=10, repetitions=3, seed=0)
    # alld vs tft: T once, then P; tft vs alld: S once, then P
    assert matrix == pytest.approx(np.array([[1.0, (5 + 9) / 10], [(0 + 9) / 10, 3.0]]))


def test_tft_resists_alld_invasion_on_a_lattice():
    matrix = policy_payoff_matrix(["alld", "tft"], turns=20, repetitions=1, seed=0)
    graph = nx.cycle_graph(12)
    invasion = game_fixation_probability(graph, matrix, 0.5, "db", trials=4_000, seed=1, mutant=0, resident=1)
    assert invasion.high < 1 / 12


@pytest.mark.parametrize("call, message", [
    (lambda: fixation_probability(nx.Graph([(0, 1), (2, 3)]), 1.5), "connected"),
    (lambda: fixation_probability(nx.complete_graph(4), 1.5, "moran"), "'moran'"),
    (lambda: fixation_probability(nx.complete_graph(4), -1.0), "> 0"),
    (lambda: fixation_probability(nx.complete_graph(4), 1.0, trials=0), "trials=0"),
    (lambda: game_fixation_probability(nx.complete_graph(4), donation_game(5, 1), 0.9, "db"), "w=0.9"),
    (lambda: game_fixation_probability(nx.complete_graph(4), donation_game(5, 1), 0.1, mutant=2), "mutant=2"),
    (lambda: donation_game(-1, 1), "b=-1"),
    (lambda: replicator_dynamics([[1, 2, 3]]), "square"),
])
def test_bad_input_names_the_problem(call, message):
    with pytest.raises(PnyxError, match=message.replace("(", r"\(")):
        call()

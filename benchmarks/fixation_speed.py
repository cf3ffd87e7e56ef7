"""Fixation trials per second: all trials in lock-step against one trial at a time.

Three ways to run the same fixation trials, timed in one run, on a random 4-regular
graph of 50 nodes:

* ``vectorised``: :func:`pnyx.population.run_to_fixation` with every trial in one call;
* ``one at a time``: the same function called once per trial (the engine without its
  lock-step batching);
* ``python loop``: a plain Python implementation of the same update rule, one trial at
  a time (what one writes without numpy).

Two workloads: a mutant of relative fitness r = 1.1 under birth-death updating, and one
cooperator among defectors in the donation game (b/c = 5, w = 0.1) under death-birth
updating. The report gives trials per CPU second (process time, robust on a shared
machine; everything runs in this one process) and the vectorised speed-up over each.

    python benchmarks/fixation_speed.py [--trials 20000] [--single 200]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import networkx as nx
import numpy as np

from pnyx.population import Fitness, GraphArrays, donation_game, run_to_fixation
from pnyx.population.fixation import single_mutants

from common import RESULTS, write_json


def python_bd(neighbours: list[list[int]], fitness: list[float], rng: random.Random) -> int:
    """One birth-death trial with constant fitness; returns the winning type."""
    n = len(neighbours)
    types = [0] * n
    types[rng.randrange(n)] = 1
    mutants = 1
    while 0 < mutants < n:
        parent = rng.choices(range(n), weights=[fitness[t] for t in types])[0]
        child = rng.choice(neighbours[parent])
        mutants += types[parent] - types[child]
        types[child] = types[parent]
    return int(mutants == n)


def python_db(neighbours: list[list[int]], payoffs: np.ndarray, w: float, rng: random.Random) -> int:
    """One death-birth trial with game fitness; returns the winning type."""
    n, table = len(neighbours), payoffs.tolist()
    types = [0] * n
    types[rng.randrange(n)] = 1
    mutants = 1
    while 0 < mutants < n:
        dead = rng.randrange(n)
        weights = [1 - w + w * sum(table[types[j]][types[m]] for m in neighbours[j]) for j in neighbours[dead]]
        parent = rng.choices(neighbours[dead], weights=weights)[0]
        mutants += types[parent] - types[dead]
        types[dead] = types[parent]
    return int(mutants == n)


def rate(trials: int, seconds: float) -> float:
    return trials / seconds


def workload(name, arrays, fitness, update, plain, trials, single, seed):
    placement, dynamics = np.random.SeedSequence(seed).spawn(2)
    initial = single_mutants(arrays.n, trials, np.random.default_rng(placement))
    start = time.process_time()
    run = run_to_fixation(arrays, initial, fitness, update, seed=dynamics)
    vectorised = time.process_time() - start
    start = time.process_time()
    for i, trial_seed in enumerate(dynamics.spawn(single)):
        run_to_fixation(arrays, initial[i:i + 1], fitness, update, seed=trial_seed)
    one_at_a_time = time.process_time() - start
    rng = random.Random(seed)
    start = time.process_time()
    plain_fixed = sum(plain(rng) for _ in range(single))
    python_loop = time.process_time() - start
    result = {
        "workload": name,
        "trials_per_second": {"vectorised": rate(trials, vectorised), "one_at_a_time": rate(single, one_at_a_time),
                              "python_loop": rate(single, python_loop)},
        "fixation_probability": {"vectorised": float((run.winner == 1).mean()), "python_loop": plain_fixed / single},
        "trials": {"vectorised": trials, "one_at_a_time": single, "python_loop": single},
    }
    speed = result["trials_per_second"]
    result["speedup_vs_one_at_a_time"] = speed["vectorised"] / speed["one_at_a_time"]
    result["speedup_vs_python_loop"] = speed["vectorised"] / speed["python_loop"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20000, help="trials in the vectorised run")
    parser.add_argument("--single", type=int, default=200, help="trials in each one-at-a-time run")
    parser.add_argument("--out", type=Path, default=RESULTS / "fixation_speed.json")
    args = parser.parse_args()

    graph = nx.random_regular_graph(4, 50, seed=1)
    arrays = GraphArrays.from_graph(graph)
    neighbours = [list(graph[v]) for v in graph.nodes]
    payoffs, w = donation_game(5.0, 1.0), 0.1
    results = [
        workload("bd, r = 1.1", arrays, Fitness.relative(1.1), "bd",
                 lambda rng: python_bd(neighbours, [1.0, 1.1], rng), args.trials, args.single, seed=10),
        workload("db, donation game b/c = 5, w = 0.1", arrays, Fitness.game(payoffs, w), "db",
                 lambda rng: python_db(neighbours, payoffs, w, rng), args.trials, args.single, seed=20),
    ]
    report = {"graph": "random 4-regular, N = 50", "results": results}
    write_json(report, args.out)
    lines = ["| workload | vectorised trials/CPU s | one at a time | python loop "
             "| speed-up vs one at a time | vs python loop |",
             "|---|---|---|---|---|---|"]
    for r in results:
        s = r["trials_per_second"]
        lines.append(f"| {r['workload']} | {s['vectorised']:.0f} | {s['one_at_a_time']:.0f} | {s['python_loop']:.0f} "
                     f"| {r['speedup_vs_one_at_a_time']:.1f}x | {r['speedup_vs_python_loop']:.1f}x |")
    table = "\n".join(lines)
    args.out.with_suffix(".md").write_text(f"# Fixation trials per second ({report['graph']})\n\n{table}\n")
    print(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

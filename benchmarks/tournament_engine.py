"""Speed of the tournament engines, as ratios measured in one run.

* ``numpy``: a plain vectorised numpy loop of two memory-one players over all games at once (the reference);
* ``engine``: the batched engine in-process (``play_batched``), the same two players and games;
* ``batched``: ``pnyx tournament --engine batched`` end to end (process start, unit
  chunks, results table, summary and figures included), at 250k and 1M repetitions per
  pairing; the difference of the two runs gives the fixed cost of a run (imports,
  figures) and the marginal rate;
* ``loop``: ``pnyx tournament --engine loop`` end to end (PettingZoo, one step at a time).

Targets: batched >= 200x loop; engine, and batched end to end at 1M repetitions (where the
fixed cost of a run is amortised), >= 70% of the numpy loop.
Run: ``python benchmarks/tournament_engine.py``; writes ``benchmarks/results/tournament_engine.json``.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import RESULTS, write_json

P1 = "memory_one(0.9,0.1,0.8,0.2,1)"
P2 = "memory_one(0.7,0.3,0.6,0.4,0.5)"
TURNS = 200


def numpy_loop(games: int, turns: int) -> float:
    """Game-turns per second of a hand-written numpy loop of two memory-one players."""
    p = np.array([[0.9, 0.1, 0.8, 0.2, 1.0], [0.7, 0.3, 0.6, 0.4, 0.5]])
    reward = np.array([3.0, 0.0, 5.0, 1.0])
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    obs_a = np.full(games, 4)
    obs_b = obs_a.copy()
    pay_a = np.zeros(games)
    for _ in range(turns):
        a = (rng.random(games) >= p[0][obs_a]).astype(np.int64)
        b = (rng.random(games) >= p[1][obs_b]).astype(np.int64)
        obs_a, obs_b = 2 * a + b, 2 * b + a
        pay_a += reward[obs_a]
    return games * turns / (time.perf_counter() - start)


def in_process(games: int, turns: int) -> float:
    """Game-turns per second of the batched engine in-process, the same two players."""
    from pnyx.agents import policy_factory
    from pnyx.population.match import play_batched

    factories = policy_factory(P1), policy_factory(P2)
    start = time.perf_counter()
    play_batched(*factories, payoffs=(3, 0, 5, 1), turns=turns, repetitions=games, noise=0.0,
                 seed=np.random.SeedSequence(0))
    return games * turns / (time.perf_counter() - start)


def cli(engine: str, repetitions: int) -> tuple[float, float]:
    """Game-turns and seconds of ``pnyx tournament`` end to end (3 pairings, self-play included)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pnyx.experiments.cli", "tournament", "--players", f"{P1},{P2}",
                        "--turns", str(TURNS), "--repetitions", str(repetitions), "--engine", engine,
                        "--workers", "1", "--no-progress", "--out", str(Path(out) / "t")], check=True,
                       capture_output=True)
        return 3 * repetitions * TURNS, time.perf_counter() - start


def main() -> None:
    sizes = {"250k": 250_000, "1M": 1_000_000}
    numpy = {k: numpy_loop(games=n, turns=TURNS) for k, n in sizes.items()}
    runs = {k: cli("batched", repetitions=n) for k, n in sizes.items()}
    batched = {k: turns / seconds for k, (turns, seconds) in runs.items()}
    (small, t_small), (large, t_large) = runs.values()
    marginal = (large - small) / (t_large - t_small)
    loop = cli("loop", repetitions=100)
    rates = {"numpy_250k": numpy["250k"], "numpy_1M": numpy["1M"], "engine": in_process(games=250_000, turns=TURNS),
             "batched_250k": batched["250k"], "batched_1M": batched["1M"], "batched_marginal": marginal,
             "loop": loop[0] / loop[1]}
    report = {
        "game_turns_per_second": {k: round(v) for k, v in rates.items()},
        "fixed_seconds_per_run": t_small - small / marginal,
        "batched_over_loop": batched["250k"] / rates["loop"],
        "engine_over_numpy": rates["engine"] / numpy["250k"],
        "batched_over_numpy": {k: batched[k] / numpy[k] for k in sizes},
        "marginal_over_numpy_1M": marginal / numpy["1M"],
        "targets": {"batched_over_loop": 200, "engine_over_numpy": 0.7, "batched_over_numpy": 0.7},
    }
    print(json.dumps(report, indent=2))
    write_json(report, RESULTS / "tournament_engine.json")


if __name__ == "__main__":
    main()

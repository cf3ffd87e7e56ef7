"""Regenerate the golden files of ``tests/golden/``: ``python tests/golden/regenerate.py``.

Each golden file is the JSON of one function registered with ``@golden(filename)``
(sorted keys, indent 1, trailing newline); ``tests/test_golden.py`` recomputes every
one and compares. To pin down another behaviour, add one more such function.

* ``unit_seed.json``: for each ``(seed, key)`` of ``UNIT_SEED_CASES``, the four
  32-bit words ``pnyx.experiments.runner.unit_seed(seed, key).generate_state(4)``.
* ``ipd_playthroughs.json``: for each pair of ``IPD_PAIRS`` (``player_0`` spec,
  ``player_1`` spec, seed), one game of ``pnyx.envs.make("ipd", rounds=20)``
  (payoffs R, S, T, P = 3, 0, 5, 1) played step by step. ``SeedSequence(seed)``
  spawns three children; each gives the int ``generate_state(1)[0]``: the first
  seeds ``player_0``'s ``reset``, the second ``player_1``'s, the third a
  ``numpy.random.default_rng`` for the noise. The environment is reset with
  ``seed``. Each round both policies act on their observations; then the noise
  generator draws ``random(2)`` and each player's action is flipped where its draw
  is below ``IPD_NOISE`` (0.05); the played actions go to ``env.step``. Recorded per
  player: the played actions (``C``/``D`` per round), the 0-based rounds whose
  action the noise flipped, and the payoff of each round.
* ``preset_<name>.json``: the ``summary.json`` of every shipped preset run with
  ``--quick`` on one worker, every language model replaced by ``ScriptedModel()``
  (it echoes the last message), without the run's ``provenance`` (times, versions);
  for a suite, each part's summary likewise. These take minutes (``SLOW``). Each runs
  in a child process with :data:`PORTABLE_FLOATS`, so that networks trained there give
  the same floats on any x86 machine, whatever its vector instructions (AVX2, AVX-512).

``python tests/golden/regenerate.py [FILE ...]`` rewrites every golden file, or the ones named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN: dict[str, Callable[[], Any]] = {}
SLOW: set[str] = set()

UNIT_SEED_CASES = [(0, "a"), (0, "tft-vs-alld/rep0"), (7, "best_response"), (123456789, "x/y/z")]

IPD_ROUNDS = 20
IPD_NOISE = 0.05
IPD_PAIRS = [
    ("tft", "alld", 0),
    ("wsls", "tft", 1),
    ("grim", "random(0.5)", 2),
    ("zd_extort(3)", "tft", 3),
    ("memory_one(0.9,0.1,0.8,0.2,1)", "stft", 4),
]


def golden(filename: str, slow: bool = False):
    """Register the decorated function as the producer of ``filename``."""

    def register(function: Callable[[], Any]) -> Callable[[], Any]:
        GOLDEN[filename] = function
        if slow:
            SLOW.add(filename)
        return function

    return register


def render(value: Any) -> str:
    """The text of a golden file holding ``value``."""
    return json.dumps(value, indent=1, sort_keys=True) + "\n"


@golden("unit_seed.json")
def unit_seeds() -> list[dict]:
    from pnyx.experiments.runner import unit_seed

    return [{"seed": seed, "key": key, "state": [int(x) for x in unit_seed(seed, key).generate_state(4)]}
            for seed, key in UNIT_SEED_CASES]


def ipd_playthrough(spec_0: str, spec_1: str, seed: int) -> dict:
    """One noisy IPD game between ``spec_0`` and ``spec_1`` (see the module docstring)."""
    import pnyx.envs
    from pnyx.agents import make_policy

    seed_0, seed_1, seed_noise = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3))
    players = ["player_0", "player_1"]
    policies = {"player_0": make_policy(spec_0), "player_1": make_policy(spec_1)}
    policies["player_0"].reset(seed=seed_0)
    policies["player_1"].reset(seed=seed_1)
    noise = np.random.default_rng(seed_noise)
    env = pnyx.envs.make("ipd", rounds=IPD_ROUNDS)
    observations, _ = env.reset(seed=seed)
    record = {p: {"actions": "", "noise_flips": [], "payoffs": []} for p in players}
    for t in range(IPD_ROUNDS):
        intended = {p: int(policies[p].act(observations[p])) for p in players}
        flips = noise.random(2) < IPD_NOISE
        played = {p: intended[p] ^ int(flip) for p, flip in zip(players, flips)}
        observations, rewards, *_ = env.step(played)
        for p, flip in zip(players, flips):
            record[p]["actions"] += "CD"[played[p]]
            record[p]["payoffs"].append(float(rewards[p]))
            if flip:
                record[p]["noise_flips"].append(t)
    return {"seed": seed, "player_0": {"spec": spec_0, **record["player_0"]},
            "player_1": {"spec": spec_1, **record["player_1"]}}


@golden("ipd_playthroughs.json")
def ipd_playthroughs() -> dict[str, dict]:
    return {f"{a} vs {b}": ipd_playthrough(a, b, seed) for a, b, seed in IPD_PAIRS}


def _without_provenance(summary: dict) -> dict:
    summary = {k: v for k, v in summary.items() if k != "provenance"}
    if "parts" in summary:
        summary["parts"] = {name: _without_provenance(part) for name, part in summary["parts"].items()}
    return summary


#: One thread, MKL's conditional numerical reproducibility and torch's unvectorised kernels.
PORTABLE_FLOATS = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1"}


def preset_summary(name: str) -> dict:
    """The summary of shipped preset ``name`` at ``--quick``, run in a child process with
    :data:`PORTABLE_FLOATS` (see the module docstring)."""
    import os
    import subprocess
    import sys

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summary.json"
        done = subprocess.run([sys.executable, __file__, "--summary", name, str(out)], capture_output=True,
                              text=True, env=os.environ | PORTABLE_FLOATS)
        if done.returncode:
            raise RuntimeError(f"preset {name} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def _summary_here(name: str) -> dict:
    import tempfile

    from pnyx.agents.llm import ScriptedModel
    from pnyx.experiments.runner import run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        run_experiment(name, out=out, quick=True, workers=1, progress=False, models=lambda spec: ScriptedModel())
        return _without_provenance(json.loads((out / "summary.json").read_text()))


def _register_presets() -> None:
    from pnyx.experiments.catalog import preset_names

    for name in preset_names():
        golden(f"preset_{name}.json", slow=True)(lambda name=name: preset_summary(name))


_register_presets()


def main(filenames: list[str]) -> None:
    unknown = sorted(set(filenames) - set(GOLDEN))
    if unknown:
        raise SystemExit(f"no golden file named {', '.join(unknown)} (known: {', '.join(sorted(GOLDEN))})")
    for filename, produce in GOLDEN.items():
        if filenames and filename not in filenames:
            continue
        (HERE / filename).write_text(render(produce()))
        print(f"wrote {HERE / filename}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--summary"]:
        Path(sys.argv[3]).write_text(json.dumps(_summary_here(sys.argv[2])))
    else:
        main(sys.argv[1:])

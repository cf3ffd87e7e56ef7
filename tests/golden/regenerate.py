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
  ``--quick`` and the :data:`GOLDEN_SCALE` overrides on one worker, every language model
  replaced by ``ScriptedModel()`` (it echoes the last message), without the run's
  ``provenance`` (times, versions); for a suite, each part's summary likewise. Each
  runs in a child process with :data:`PORTABLE_FLOATS`, its networks in float64
  (``torch.set_default_dtype``; the presets train in float32). The file holds three entries:

  - ``exact``: the summary without the numbers that come out of training: strategy
    play, tournament payoffs, dynamics, counts, judge verdicts and every other value
    of integer or float64 arithmetic outside training. Compared for equality.
  - ``trained``: every int or float of the summary of a kind in :data:`TRAINED_KINDS`
    (curves, cooperation rates, rewards, entropies, memory-one fits), by its path
    (``a/b/0/c``). Training amplifies a last-bit difference between CPUs (libm, BLAS and
    vector code differ by vendor): in float32 a quick preset's entropies move in the
    second significant digit between an Intel and an AMD CPU. In float64 a last-bit
    difference rarely changes a sampled action, and the values agree to about 1e-11
    across kernels (``--check-under`` below shows it), so they are compared with a
    tolerance far below any change of the learning rule.
  - ``tolerance``: per group of trained values (:func:`tolerance_group`), the larger of
    :data:`TOLERANCE_FACTOR` times the largest distance from the reference among
    :data:`PERTURBATIONS` runs whose initial weights are each moved by one unit in the
    last place (:func:`perturb_initial_weights`), and :data:`RELATIVE_FLOOR` times the
    group's largest magnitude (at least 1). ``tests/test_golden.py`` plants changes of
    the A2C loss and checks that they fail the comparison.

``python tests/golden/regenerate.py [FILE ...]`` rewrites every golden file, or the ones
named, and says for each how many values are exact and how many compared with a tolerance.
``python tests/golden/regenerate.py --check-under ATEN_CPU_CAPABILITY=avx2 OMP_NUM_THREADS=2``
recomputes the presets that train under other kernels and compares them with the golden files.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
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

#: One thread, MKL's conditional numerical reproducibility and torch's unvectorised kernels.
PORTABLE_FLOATS = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1"}

#: Kinds whose summaries hold numbers that come out of training networks.
TRAINED_KINDS = {"weis-ipd", "weis-mechanism"}

#: Overrides applied after ``--quick`` in the golden runs: a few dozen iterations exercise every
#: step of training and evaluation in seconds, and leave a last-bit difference little room to grow.
_WEIS_IPD_SCALE = {"iterations": 12, "conditions.best_response.iterations": 24, "eval_every": 6, "eval_games": 64,
                   "final_eval_games": 256}
#: PPI (weis-mechanism's, and weis-ipd's in weis-figures): two phases of a few dozen episodes.
_PPI_SCALE = {"ppi.phases": 2, "ppi.episodes": 32, "ppi.pretrain_episodes": 64, "ppi_eval_games": 8,
              "ppi_final_eval_games": 32}
_WEIS_MECHANISM_SCALE = {"best_response.iterations": 24, "exploiter.iterations": 12, "mutual.iterations": 6,
                         "eval_every": 6, "eval_games": 64, "final_eval_games": 256, "exploiter.phases": 1,
                         "mutual.phases": 1, **_PPI_SCALE}
GOLDEN_SCALE: dict[str, dict[str, Any]] = {
    "weis-ipd": _WEIS_IPD_SCALE,
    "weis-mechanism": _WEIS_MECHANISM_SCALE,
    "weis-figures": {**{f"parts.ipd.{k}": v for k, v in {**_WEIS_IPD_SCALE, **_PPI_SCALE}.items()},
                     "parts.ipd.ppi_snapshots": [1, 2],
                     **{f"parts.mechanism.{k}": v for k, v in _WEIS_MECHANISM_SCALE.items()}},
    "quickstart": {"parts.learning.iterations": 24, "parts.learning.eval_every": 6, "parts.learning.eval_games": 64,
                   "parts.learning.final_eval_games": 256},
}

PERTURBATIONS = 3
TOLERANCE_FACTOR = 4.0
RELATIVE_FLOOR = 1e-9
ESTIMATE_FIELDS = {"value", "low", "high", "n"}


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


# --- presets: exact and trained values ---


def _without_provenance(summary: dict) -> dict:
    summary = {k: v for k, v in summary.items() if k != "provenance"}
    if "parts" in summary:
        summary["parts"] = {name: _without_provenance(part) for name, part in summary["parts"].items()}
    return summary


def _trained_roots(name: str) -> list[tuple[str, ...]]:
    """The paths of the summaries, in preset ``name``'s summary, written by a trained kind."""
    from pnyx.experiments.catalog import preset_path
    from pnyx.experiments.config import load_yaml

    config = load_yaml(preset_path(name))
    if config["kind"] == "suite":
        return [("parts", part) for part, cfg in config["parts"].items() if cfg.get("kind") in TRAINED_KINDS]
    return [()] if config["kind"] in TRAINED_KINDS else []


def split(summary: dict, trained_roots: list[tuple[str, ...]]) -> tuple[Any, dict[str, float]]:
    """``summary`` as its exact part and its trained values by path (``a/[2]/b``: key ``a``,
    list item 2, key ``b``): every int or float (bools excepted) under a root, outside the
    root's ``run`` and ``ray``, is a trained value. A list keeps ``None`` in place of a
    trained item; a container whose every item was trained is left out."""
    trained: dict[str, float] = {}

    def is_trained(path: tuple[str, ...]) -> bool:
        return any(path[:len(root)] == root and path[len(root):len(root) + 1] not in {("run",), ("ray",)}
                   for root in trained_roots)

    def walk(node, path: tuple[str, ...]):
        if isinstance(node, dict):
            kept = {key: walk(value, (*path, str(key))) for key, value in node.items()}
            kept = {key: value for key, value in kept.items() if value is not _TAKEN}
            return _TAKEN if node and not kept else kept
        if isinstance(node, list):
            kept = [walk(value, (*path, f"[{i}]")) for i, value in enumerate(node)]
            if node and all(value is _TAKEN for value in kept):
                return _TAKEN
            return [None if value is _TAKEN else value for value in kept]
        if isinstance(node, (int, float)) and not isinstance(node, bool) and is_trained(path):
            trained["/".join(path)] = node
            return _TAKEN
        return node

    exact = walk(summary, ())
    return ({} if exact is _TAKEN else exact), trained


_TAKEN = object()


def join(exact: Any, trained: dict[str, float]) -> Any:
    """The summary :func:`split` took apart: ``exact`` with the trained values put back."""
    summary = json.loads(json.dumps(exact))
    for path, value in trained.items():
        keys = [int(k[1:-1]) if k.startswith("[") else k for k in path.split("/")]
        node = summary
        for key, following in zip(keys, keys[1:]):
            if isinstance(key, int):
                node.extend([None] * (key + 1 - len(node)))
            if (node[key] if isinstance(key, int) else node.get(key)) is None:
                node[key] = [] if isinstance(following, int) else {}
            node = node[key]
        if isinstance(keys[-1], int):
            node.extend([None] * (keys[-1] + 1 - len(node)))
        node[keys[-1]] = value
    return summary


def tolerance_group(path: str) -> str:
    """The group a trained value's tolerance is shared by: its last key that is not a list
    index or seed number (``learning_curve/[3]/entropy`` -> ``entropy``), with the metric's
    name before an Estimate's field (``vs_tft_cooperation/value``)."""
    keys = [k for k in path.split("/") if not (k.startswith("[") or k.isdigit())]
    return "/".join(keys[-2:]) if keys[-1] in ESTIMATE_FIELDS and len(keys) > 1 else keys[-1]


def trained_problems(expected: dict[str, float], actual: dict[str, float], tolerance: dict[str, float]) -> list[str]:
    """The trained values of ``actual`` farther from ``expected`` than their group's
    tolerance, worst first, and the paths present in one only."""
    problems = [f"{path}: missing" for path in sorted(set(expected) - set(actual))]
    problems += [f"{path}: not in the golden file" for path in sorted(set(actual) - set(expected))]
    far = []
    for path in sorted(set(expected) & set(actual)):
        allowed = tolerance.get(tolerance_group(path), 0.0)
        distance = abs(actual[path] - expected[path])
        if not distance <= allowed:
            far.append((distance / allowed if allowed else math.inf, path, expected[path], actual[path], allowed))
    far.sort(key=lambda row: (-row[0], row[1]))
    problems += [f"{path}: {got!r} vs golden {want!r} (tolerance {allowed:.3g}, {ratio:.3g}x)"
                 for ratio, path, want, got, allowed in far]
    return problems


def perturb_initial_weights(index: int) -> None:
    """From now on, every weight that ``torch.nn.init`` draws at random is moved by one unit in
    the last place, up or down as a generator seeded with ``index`` draws (weights loaded
    from a checkpoint afterwards stay as saved)."""
    import torch
    from torch.nn import init

    generator = torch.Generator().manual_seed(index)

    def perturbed(draw):
        def draw_and_perturb(tensor, *args, **kwargs):
            out = draw(tensor, *args, **kwargs)
            with torch.no_grad():
                up = torch.rand(tensor.shape, generator=generator) < 0.5
                tensor.copy_(torch.nextafter(tensor, torch.where(up, math.inf, -math.inf).to(tensor.dtype)))
            return out

        return draw_and_perturb

    for name in ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                 "xavier_normal_", "orthogonal_"):
        setattr(init, name, perturbed(getattr(init, name)))


#: Changes to the A2C loss that ``tests/test_golden.py`` plants to show that the comparison catches
#: them: the entropy bonus (coefficient 0.001 in the presets) turned into a penalty.
PLANTS = {"entropy_penalty": lambda cfg: {"entropy_coef": -cfg.entropy_coef}}


def plant(name: str) -> None:
    """From now on, the A2C loss is computed with :data:`PLANTS` ``[name]``'s changed coefficients."""
    import pnyx.agents.a2c as a2c
    import pnyx.population.grouped_training as grouped

    original = a2c.a2c_loss

    def changed(cfg, *args, **kwargs):
        return original(cfg.model_copy(update=PLANTS[name](cfg)), *args, **kwargs)

    a2c.a2c_loss = grouped.a2c_loss = changed


def preset_summary(name: str, perturbation: int | None = None, env: dict[str, str] | None = None,
                   planted: str | None = None) -> dict:
    """The summary of shipped preset ``name`` at ``--quick`` and :data:`GOLDEN_SCALE`, run in a
    child process with :data:`PORTABLE_FLOATS` (or ``env``) and, if given, initial weights
    perturbed by :func:`perturb_initial_weights` or a loss changed by :func:`plant`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summary.json"
        args = [sys.executable, __file__, "--summary", name, str(out)]
        if perturbation is not None:
            args += ["--perturb", str(perturbation)]
        if planted is not None:
            args += ["--plant", planted]
        done = subprocess.run(args, capture_output=True, text=True, env=os.environ | (env or PORTABLE_FLOATS))
        if done.returncode:
            raise RuntimeError(f"preset {name} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def preset_golden(name: str) -> dict:
    """The golden file of preset ``name``: exact part, trained values and their tolerances."""
    roots = _trained_roots(name)
    exact, trained = split(preset_summary(name), roots)
    spread: dict[str, float] = {tolerance_group(path): 0.0 for path in trained}
    for index in range(PERTURBATIONS if trained else 0):
        moved_exact, moved = split(preset_summary(name, perturbation=index), roots)
        if moved_exact != exact:
            raise RuntimeError(f"preset {name}: a value outside the trained part changed when the initial "
                               f"weights were perturbed; it comes out of training")
        if set(moved) != set(trained):
            raise RuntimeError(f"preset {name}: the perturbed run has other trained values")
        for path, value in trained.items():
            group = tolerance_group(path)
            spread[group] = max(spread[group], abs(moved[path] - value))
    scale = {group: 1.0 for group in spread}
    for path, value in trained.items():
        scale[tolerance_group(path)] = max(scale[tolerance_group(path)], abs(value))
    tolerance = {group: float(f"{max(TOLERANCE_FACTOR * s, RELATIVE_FLOOR * scale[group]):.3g}")
                 for group, s in spread.items()}
    return {"exact": exact, "trained": trained, "tolerance": tolerance}


def _summary_here(name: str) -> dict:
    import torch

    torch.set_default_dtype(torch.float64)
    from pnyx.agents.llm import ScriptedModel
    from pnyx.experiments.runner import run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        run_experiment(name, out=out, quick=True, overrides=GOLDEN_SCALE.get(name, {}), workers=1, progress=False,
                       models=lambda spec: ScriptedModel())
        return _without_provenance(json.loads((out / "summary.json").read_text()))


def _register_presets() -> None:
    from pnyx.experiments.catalog import preset_names

    for name in preset_names():
        golden(f"preset_{name}.json", slow=True)(lambda name=name: preset_golden(name))


_register_presets()


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    return 1


def check_under(settings: list[str]) -> bool:
    """Recompute every preset that trains with :data:`PORTABLE_FLOATS` changed by ``settings``
    (``KEY=VALUE``; an empty value unsets the variable) and compare with its golden file, as a
    check that the tolerances hold under other kernels; prints the largest distance as a share
    of its tolerance. Whether all passed."""
    env = dict(PORTABLE_FLOATS)
    for setting in settings:
        key, _, value = setting.partition("=")
        env.pop(key, None)
        if value:
            env[key] = value
    base = {k: v for k, v in os.environ.items() if k not in PORTABLE_FLOATS}
    passed = True
    for filename in sorted(SLOW):
        golden = json.loads((HERE / filename).read_text())
        if not golden["trained"]:
            continue
        name = filename.removeprefix("preset_").removesuffix(".json")
        exact, trained = split(preset_summary(name, env=base | env), _trained_roots(name))
        problems = trained_problems(golden["trained"], trained, golden["tolerance"])
        worst = max((abs(trained[p] - v) / golden["tolerance"][tolerance_group(p)]
                     for p, v in golden["trained"].items() if p in trained and golden["tolerance"][tolerance_group(p)]),
                    default=0.0)
        moved = sum(trained.get(p) != v for p, v in golden["trained"].items())
        ok = exact == golden["exact"] and not problems
        passed &= ok
        print(f"{filename} under {' '.join(settings)}: {'pass' if ok else 'FAIL'}; {moved} of "
              f"{len(golden['trained'])} trained values moved, the farthest at {worst:.2f} of its tolerance"
              + "".join(f"\n  {p}" for p in problems[:10]) + ("" if exact == golden["exact"] else "\n  exact part differs"))
    return passed


def main(filenames: list[str]) -> None:
    unknown = sorted(set(filenames) - set(GOLDEN))
    if unknown:
        raise SystemExit(f"no golden file named {', '.join(unknown)} (known: {', '.join(sorted(GOLDEN))})")
    for filename, produce in GOLDEN.items():
        if filenames and filename not in filenames:
            continue
        value = produce()
        (HERE / filename).write_text(render(value))
        if isinstance(value, dict) and "trained" in value:
            print(f"wrote {HERE / filename}: {_count(value['exact'])} values exact, {len(value['trained'])} "
                  f"compared with a tolerance in {len(value['tolerance'])} groups")
        else:
            print(f"wrote {HERE / filename}: {_count(value)} values exact")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        if sys.argv[4:5] == ["--perturb"]:
            perturb_initial_weights(int(sys.argv[5]))
        if sys.argv[4:5] == ["--plant"]:
            plant(sys.argv[5])
        Path(sys.argv[3]).write_text(json.dumps(_summary_here(sys.argv[2])))
    elif sys.argv[1:2] == ["--check-under"]:
        sys.exit(0 if check_under(sys.argv[2:]) else 1)
    else:
        main(sys.argv[1:])

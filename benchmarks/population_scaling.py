"""Scaling of the runner, as ratios measured in one run (issue 7).

1. The ``network-cooperation`` quick sweep end to end through ``pnyx run``: 2 Ray
   workers against 1 worker (in-process), Ray start-up included; and the same sweep
   with 4x the trials, where compute outweighs start-up.
2. 10,011 tiny units (a 141-player tournament of one-turn games): units per second on
   2 Ray workers against in-process, to show small units travel in batches instead
   of drowning in scheduling overhead.

Run: ``python benchmarks/population_scaling.py``; writes ``benchmarks/results/population_scaling.json``.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, write_json


def pnyx_run(*args: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pnyx.experiments.cli", "run", *args, "--no-progress",
                        "--out", str(Path(out) / "run")], check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    sweep = {w: pnyx_run("network-cooperation", "--quick", "--workers", str(w)) for w in (1, 2)}
    heavy = {w: pnyx_run("network-cooperation", "--quick", "--set", "trials=20000", "--workers", str(w))
             for w in (1, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny.yaml"
        players = ", ".join(f"random_memory_one({i})" for i in range(141))
        tiny.write_text(f"kind: tournament\nturns: 1\nrepetitions: 1\nplayers: [{players}]\n")
        units = 141 * 142 // 2
        tiny_times = {w: pnyx_run(str(tiny), "--workers", str(w)) for w in (1, 2)}
    report = {
        "network_cooperation_quick_seconds": {f"{w}_workers": round(t, 1) for w, t in sweep.items()},
        "network_cooperation_speedup_2_over_1": sweep[1] / sweep[2],
        "network_cooperation_4x_trials_seconds": {f"{w}_workers": round(t, 1) for w, t in heavy.items()},
        "network_cooperation_4x_trials_speedup_2_over_1": heavy[1] / heavy[2],
        "tiny_units": units,
        "tiny_units_per_second": {f"{w}_workers": round(units / t) for w, t in tiny_times.items()},
        "tiny_units_ray_over_in_process": tiny_times[1] / tiny_times[2],
    }
    print(json.dumps(report, indent=2))
    write_json(report, RESULTS / "population_scaling.json")


if __name__ == "__main__":
    main()

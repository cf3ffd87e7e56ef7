"""Wall and CPU time of every shipped preset's ``--quick`` run, one after another, on one worker.

Each preset runs as ``pnyx run PRESET --quick --workers 1 --no-progress`` in a child
process into a temporary folder; its CPU time is the child's user + system time
(``resource.getrusage(RUSAGE_CHILDREN)`` before and after), its wall time the clock
around it, and the CPU time every other process used meanwhile is the machine's busy time
(``/proc/stat``) minus the child's. CPU time is the figure to compare across machines; wall
time only on a quiet machine.

    python benchmarks/quick_presets.py [--keep DIR] [--update] [PRESET ...]

Writes ``results/quick_presets.json`` and ``results/quick_presets.md``; ``--keep DIR`` keeps
each run folder as ``DIR/PRESET`` to read its report; ``--update`` replaces only the named
presets' lines of the stored results. Run it on a quiet
machine: a figure during which other processes used more than a tenth of the wall time in
CPU seconds is marked as measured under load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, write_json

from pnyx.experiments.catalog import preset_names

PNYX = str(Path(sys.executable).with_name("pnyx"))
QUIET = 0.1


def cpu_seconds() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def time_preset(name: str, keep: Path | None) -> dict:
    """One quick run of preset ``name``: wall, user and system seconds, and the load around it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = keep / name if keep else Path(tmp) / "run"
        load_before = os.getloadavg()[0]
        user0, sys0 = cpu_seconds()
        busy0 = busy_seconds()
        start = time.perf_counter()
        done = subprocess.run([PNYX, "run", name, "--quick", "--workers", "1", "--no-progress", "--out", str(out)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        busy1 = busy_seconds()
        user1, sys1 = cpu_seconds()
        load_after = os.getloadavg()[0]
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    child = (user1 - user0) + (sys1 - sys0)
    others = max(0.0, busy1 - busy0 - child)
    return {"preset": name, "wall_s": round(wall, 1), "user_s": round(user1 - user0, 1),
            "sys_s": round(sys1 - sys0, 1), "others_s": round(others, 1), "load_before": load_before,
            "load_after": load_after, "quiet": others <= QUIET * wall}


def markdown(report: dict) -> str:
    lines = ["## Quick presets", "",
             f"Each preset's `--quick` run, timed once, one after another, with `python benchmarks/quick_presets.py` "
             f"on {report['machine']} ({report['cpus']} CPUs). CPU seconds are the child's user + system time; the "
             "load average (1 minute) is read just before and just after each run (the run's own threads raise "
             "it); \"others\" is the CPU time every other process used meanwhile. Compare CPU seconds across "
             "machines; wall seconds only on a quiet machine.", "",
             "| preset | wall s | CPU s (user + sys) | others' CPU s | load before | load after |",
             "|---|---|---|---|---|---|"]
    for r in report["presets"]:
        mark = " (others not measured)" if "others_s" not in r else "" if r["quiet"] else " (under load)"
        lines.append(f"| `{r['preset']}` | {r['wall_s']}{mark} | {r['user_s'] + r['sys_s']:.1f} "
                     f"({r['user_s']} + {r['sys_s']}) | {r.get('others_s', 'n/a')} | {r['load_before']:.2f} | "
                     f"{r['load_after']:.2f} |")
    return "\n".join(lines) + "\n"


def main(names: list[str], keep: Path | None, update: bool) -> None:
    names = names or preset_names()
    timed = {n: time_preset(n, keep) for n in names}
    stored = RESULTS / "quick_presets.json"
    previous = json.loads(stored.read_text())["presets"] if update and stored.exists() else []
    rows = [timed.pop(r["preset"], r) for r in previous] + list(timed.values())
    report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "presets": sorted(rows, key=lambda r: r["preset"])}
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        report["machine"] = model
    except (OSError, StopIteration):
        pass
    write_json(report, RESULTS / "quick_presets.json")
    (RESULTS / "quick_presets.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", help="presets to time (default: every shipped one)")
    parser.add_argument("--keep", type=Path, help="keep each run folder as KEEP/PRESET")
    parser.add_argument("--update", action="store_true", help="replace only these presets' lines of the stored results")
    args = parser.parse_args()
    main(args.presets, args.keep, args.update)

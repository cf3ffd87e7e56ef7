"""The runner: determinism across worker counts, lost workers, failing units, interrupt and resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import ray.cloudpickle

from interrupts import popen

from pnyx.experiments.config import validate
from pnyx.experiments.experiment import RunOptions
from pnyx.experiments.runner import execute, unit_seed
from pnyx.experiments.tournament import Tournament

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # test kinds travel to Ray workers

PLAYERS = ["tft", "random(0.5)", "wsls", "memory_one(0.9,0.2,0.7,0.1,1)"]


def config(**fields):
    return validate({"kind": "tournament", "players": PLAYERS, "turns": 30, "repetitions": 8,
                     "noise": 0.05, "seed": 11, **fields})


class CrashOnce(Tournament):
    """Kills its own worker process the first time it plays the pairing ``victim``."""

    def __init__(self, marker: Path, victim: str):
        self.marker, self.victim = marker, victim

    def run_unit(self, cfg, unit, seed, ctx):
        if unit.key == self.victim and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run_unit(cfg, unit, seed, ctx)


class FailOne(Tournament):
    def run_unit(self, cfg, unit, seed, ctx):
        if unit.key == "wsls vs wsls":
            raise ValueError("boom")
        return super().run_unit(cfg, unit, seed, ctx)


def test_unit_seeds_depend_only_on_seed_and_key():
    assert unit_seed(1, "a").generate_state(4).tolist() == unit_seed(1, "a").generate_state(4).tolist()
    assert unit_seed(1, "a").generate_state(4).tolist() != unit_seed(1, "b").generate_state(4).tolist()
    assert unit_seed(1, "a").generate_state(4).tolist() != unit_seed(2, "a").generate_state(4).tolist()


def test_two_ray_workers_match_one_in_process_worker(ray_session, reference, tmp_path):
    kind, cfg = config()
    summary = execute(kind, cfg, tmp_path, options=RunOptions(workers=2, progress=False))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), reference)
    assert summary["ray"]["workers"] == 2


def test_killed_worker_is_retried_with_identical_results(ray_session, reference, tmp_path):
    _, cfg = config()
    kind = CrashOnce(tmp_path / "crashed", victim="random(0.5) vs wsls")
    summary = execute(kind, cfg, tmp_path / "out", options=RunOptions(workers=2, progress=False))
    assert (tmp_path / "crashed").exists(), "the worker was never killed"
    assert summary["run"]["failed"] == 0 and summary["provenance"]["retries"] == 1
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "results.parquet"), reference)


def test_failing_unit_is_recorded_and_the_run_goes_on(tmp_path):
    _, cfg = config()
    summary = execute(FailOne(), cfg, tmp_path, options=RunOptions(workers=1, progress=False))
    assert summary["run"]["failed"] == 1
    assert summary["run"]["failures"] == [{"unit": "wsls vs wsls", "error": "ValueError: boom"}]
    assert set(pd.read_parquet(tmp_path / "results.parquet")["unit"]) == {u.key for u in Tournament().units(cfg)} - {"wsls vs wsls"}
    assert "ValueError: boom" in (tmp_path / "report.md").read_text()
    # a resume retries the failed unit only
    execute(Tournament(), cfg, tmp_path, resume=True, options=RunOptions(workers=1, progress=False))
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 10 * 8 * 2


GATE = """
import os, time
from pathlib import Path


class Gate:
    \"\"\"Tit for tat that, while the file $GATE_BLOCK exists and $GATE_UNITS holds at least
    three finished chunks, touches $GATE_BLOCK.reached and waits at the start of a game.\"\"\"

    def reset(self, seed=None):
        block, units = os.environ.get("GATE_BLOCK"), os.environ.get("GATE_UNITS")
        if block and Path(block).exists() and len(list(Path(units).glob("*.json"))) >= 3:
            Path(block + ".reached").touch()
            while True:
                time.sleep(0.05)

    def act(self, observation):
        return 1 if observation in (1, 3) else 0
"""


def gated_run(tmp_path, workers):
    """An undisturbed run on one worker, then the same run on ``workers`` started with the
    gate closed and waited on until it is reached. Returns the CLI, its environment, both
    output folders, the gate file and the waiting process."""
    (tmp_path / "gatepolicy.py").write_text(GATE)
    experiment = tmp_path / "gated.yaml"
    experiment.write_text(
        "kind: tournament\nseed: 5\nturns: 50\nrepetitions: 20\nnoise: 0.05\n"
        "players: [tft, alld, grim, wsls, random(0.5), tf2t, stft, alternator, 'gatepolicy:Gate']\n")
    cli = [sys.executable, "-m", "pnyx.experiments.cli", "run", str(experiment), "--no-progress"]
    undisturbed, resumed, block = tmp_path / "undisturbed", tmp_path / "resumed", tmp_path / "block"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "GATE_BLOCK": str(block), "GATE_UNITS": str(resumed / "units")}
    done = subprocess.run([*cli, "--workers", "1", "--out", str(undisturbed)], capture_output=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr

    block.touch()
    proc = popen([*cli, "--workers", str(workers), "--out", str(resumed)], stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.monotonic() + 900
    while not Path(f"{block}.reached").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(f"{block}.reached").exists(), "the run never reached the gate"
    return cli, env, undisturbed, resumed, block, proc


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_and_resume_give_undisturbed_results(tmp_path, sig, workers):
    """The run signals when it is stuck mid-way (a policy waits at a gate), so the signal
    arrives with some units finished and some not, however busy the machine is."""
    cli, env, undisturbed, resumed, block, proc = gated_run(tmp_path, workers)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("pnyx: interrupted; finished units are kept")
    assert "--resume" in err and "Traceback" not in err and "SIGTERM received" not in err
    assert not (resumed / "summary.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in (resumed / "units").glob("*.json")}
    assert len(finished) >= 3

    block.unlink()
    proc = subprocess.run([*cli, "--workers", str(workers), "--out", str(resumed), "--resume"], capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items()), "finished units were recomputed"
    pd.testing.assert_frame_equal(pd.read_parquet(resumed / "results.parquet"),
                                  pd.read_parquet(undisturbed / "results.parquet"))


@pytest.mark.slow
def test_a_dying_raylet_is_one_line_and_resume_finishes_the_run(tmp_path):
    """The local raylet is killed while the run waits at the gate: one line, finished units
    kept, and a resume gives the undisturbed results."""
    cli, env, undisturbed, resumed, block, proc = gated_run(tmp_path, 2)
    raylets = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "raylet/raylet"], capture_output=True, text=True)
    assert raylets.stdout.split(), "no raylet under the run"
    for pid in raylets.stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2, err
    assert last.startswith("pnyx: error: Ray failed: ") and last.endswith("finished units are kept, rerun with --resume")
    assert "Traceback" not in err
    assert len(list((resumed / "units").glob("*.json"))) >= 3

    block.unlink()
    done = subprocess.run([*cli, "--workers", "1", "--out", str(resumed), "--resume"], capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(resumed / "results.parquet"),
                                  pd.read_parquet(undisturbed / "results.parquet"))


def test_many_tiny_units_travel_in_few_tasks():
    from pnyx.experiments.experiment import Unit
    from pnyx.experiments.runner import _batches

    units = [Unit(str(i)) for i in range(10_000)]
    batches = _batches(units, workers=2)
    assert len(batches) == 32 and [u.key for b in batches for u in b] == [u.key for u in units]
    assert len(_batches(units[:5], workers=2)) == 5


def test_report_is_rebuilt_from_units(tmp_path, capsys):
    from pnyx.experiments.cli import main

    kind, cfg = config()
    execute(kind, cfg, tmp_path, options=RunOptions(workers=1, progress=False))
    before = (tmp_path / "summary.json").read_text()
    (tmp_path / "report.md").unlink()
    (tmp_path / "plots" / "payoff_matrix.png").unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "plots" / "payoff_matrix.png").exists()
    assert (tmp_path / "summary.json").read_text() == before
    assert "## Findings" in (tmp_path / "report.md").read_text()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a pnyx run folder" in capsys.readouterr().err

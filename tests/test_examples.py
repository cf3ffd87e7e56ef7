"""Every script in ``examples/`` runs at its quick scale and prints what its docstring promises."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
#: A line each example's output must contain.
EXPECTED = {
    "own_model.py": "model training-gamer: compliance gap 1.00 [1.00, 1.00] over 4 replies",
    "own_policy.py": "ranking (Axelrod's",
    "read_a_run.py": "figure 'fixation_vs_bc' saved to",
    "rllib_ppo.py": "PPO checkpoint saved to",
}
#: The module an example needs beyond pnyx's own dependencies (an optional extra).
NEEDS = {"rllib_ppo.py": "ray.rllib"}


def test_every_example_has_an_expected_line():
    assert sorted(p.name for p in EXAMPLES) == sorted(EXPECTED)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    if script.name in NEEDS:
        pytest.importorskip(NEEDS[script.name])
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert EXPECTED[script.name] in done.stdout

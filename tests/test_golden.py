"""Golden files: every file of ``tests/golden/`` equals what ``tests/golden/regenerate.py`` computes now."""

import difflib
import importlib.util
import json
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"


def _load_regenerate():
    spec = importlib.util.spec_from_file_location("pnyx_golden_regenerate", GOLDEN_DIR / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _load_regenerate()


def test_every_golden_file_has_a_producer():
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.json")) == sorted(regenerate.GOLDEN)


@pytest.mark.parametrize("filename", [pytest.param(f, marks=[pytest.mark.slow] if f in regenerate.SLOW else [])
                                      for f in sorted(regenerate.GOLDEN)])
def test_golden_file_matches(filename):
    path = GOLDEN_DIR / filename
    assert path.is_file(), f"{path} is missing; run: python tests/golden/regenerate.py"
    expected_text = path.read_text()
    actual_text = regenerate.render(regenerate.GOLDEN[filename]())
    if json.loads(actual_text) != json.loads(expected_text):
        diff = "".join(list(difflib.unified_diff(expected_text.splitlines(True), actual_text.splitlines(True),
                                                 f"golden/{filename}", "recomputed"))[:60])
        pytest.fail(f"{filename} differs from what the code computes now. If the change is intended, run "
                    f"`python tests/golden/regenerate.py`, review the diff and commit it.\n{diff}")
    assert actual_text == expected_text, f"{filename} is not in canonical form; run: python tests/golden/regenerate.py"


def test_ipd_playthrough_payoffs_follow_the_recorded_actions():
    payoff = {("C", "C"): (3.0, 3.0), ("C", "D"): (0.0, 5.0), ("D", "C"): (5.0, 0.0), ("D", "D"): (1.0, 1.0)}
    games = json.loads((GOLDEN_DIR / "ipd_playthroughs.json").read_text())
    assert len(games) == len(regenerate.IPD_PAIRS)
    for game in games.values():
        p0, p1 = game["player_0"], game["player_1"]
        assert len(p0["actions"]) == len(p1["actions"]) == regenerate.IPD_ROUNDS
        expected = [payoff[a, b] for a, b in zip(p0["actions"], p1["actions"])]
        assert list(zip(p0["payoffs"], p1["payoffs"])) == expected

"""Golden files: every file of ``tests/golden/`` equals what ``tests/golden/regenerate.py`` computes now;
in a preset's file, the values that come out of training within their tolerances."""

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
REGENERATE = "python tests/golden/regenerate.py"


def test_every_golden_file_has_a_producer():
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.json")) == sorted(regenerate.GOLDEN)


def _exact_diff(filename: str, expected, actual) -> str:
    lines = [regenerate.render(v).splitlines(True) for v in (expected, actual)]
    return "".join(list(difflib.unified_diff(*lines, f"golden/{filename}", "recomputed"))[:60])


def _preset_problems(filename: str, expected: dict) -> list[str]:
    name = filename.removeprefix("preset_").removesuffix(".json")
    exact, trained = regenerate.split(regenerate.preset_summary(name), regenerate._trained_roots(name))
    problems = [] if exact == expected["exact"] else [_exact_diff(filename, expected["exact"], exact)]
    return problems + regenerate.trained_problems(expected["trained"], trained, expected["tolerance"])


@pytest.mark.parametrize("filename", [pytest.param(f, marks=[pytest.mark.slow] if f in regenerate.SLOW else [])
                                      for f in sorted(regenerate.GOLDEN)])
def test_golden_file_matches(filename):
    path = GOLDEN_DIR / filename
    assert path.is_file(), f"{path} is missing; run: {REGENERATE}"
    expected_text = path.read_text()
    expected = json.loads(expected_text)
    assert expected_text == regenerate.render(expected), f"{filename} is not in canonical form; run: {REGENERATE}"
    if filename.startswith("preset_"):
        problems = _preset_problems(filename, expected)
    else:
        actual = regenerate.GOLDEN[filename]()
        problems = [] if actual == expected else [_exact_diff(filename, expected, actual)]
    if problems:
        pytest.fail(f"{filename} differs from what the code computes now. If the change is intended, run "
                    f"`{REGENERATE} {filename}`, review the diff and commit it.\n" + "\n".join(problems[:30]))


def test_every_trained_value_has_a_tolerance_and_exact_parts_hold_no_training():
    for filename in sorted(regenerate.SLOW):
        golden = json.loads((GOLDEN_DIR / filename).read_text())
        groups = {regenerate.tolerance_group(path) for path in golden["trained"]}
        assert groups == set(golden["tolerance"]), filename
        name = filename.removeprefix("preset_").removesuffix(".json")
        assert bool(golden["trained"]) == bool(regenerate._trained_roots(name)), filename


def test_trained_values_are_compared_within_their_group_tolerance():
    tolerance = {"entropy": 0.01, "vs_tft_cooperation/value": 0.0}
    golden = {"a/learning_curve/[3]/entropy": 0.5, "a/vs_tft_cooperation/value": 0.25}
    assert regenerate.trained_problems(golden, {"a/learning_curve/[3]/entropy": 0.509,
                                                "a/vs_tft_cooperation/value": 0.25}, tolerance) == []
    problems = regenerate.trained_problems(golden, {"a/learning_curve/[3]/entropy": 0.52,
                                                    "a/vs_tft_cooperation/value": 0.25000001}, tolerance)
    assert [p.split(":")[0] for p in problems] == ["a/vs_tft_cooperation/value", "a/learning_curve/[3]/entropy"]
    assert regenerate.trained_problems(golden, {"a/learning_curve/[3]/entropy": 0.5}, tolerance) == [
        "a/vs_tft_cooperation/value: missing"]


def test_split_takes_the_numbers_of_trained_parts_only_and_join_puts_them_back():
    summary = {"parts": {"learning": {"curve": [{"iteration": 0, "entropy": None}, {"iteration": 5, "entropy": 0.6}],
                                      "per_seed": {"0": {"within": [0.5, 1.0]}}, "reached": False,
                                      "run": {"units": 1}},
                         "ipd": {"payoff": 2.5}}}
    exact, trained = regenerate.split(summary, [("parts", "learning")])
    assert trained == {"parts/learning/curve/[0]/iteration": 0, "parts/learning/curve/[1]/iteration": 5,
                       "parts/learning/curve/[1]/entropy": 0.6, "parts/learning/per_seed/0/within/[0]": 0.5,
                       "parts/learning/per_seed/0/within/[1]": 1.0}
    assert exact == {"parts": {"learning": {"curve": [{"entropy": None}, None], "reached": False,
                                            "run": {"units": 1}}, "ipd": {"payoff": 2.5}}}
    assert regenerate.join(exact, trained) == summary
    assert {regenerate.tolerance_group(path) for path in trained} == {"iteration", "entropy", "within"}


def test_golden_files_join_to_summaries():
    for filename in sorted(regenerate.SLOW):
        golden = json.loads((GOLDEN_DIR / filename).read_text())
        exact, trained = regenerate.split(regenerate.join(golden["exact"], golden["trained"]),
                                          regenerate._trained_roots(filename[len("preset_"):-len(".json")]))
        assert (exact, trained) == (golden["exact"], golden["trained"]), filename


@pytest.mark.slow
@pytest.mark.parametrize("planted", sorted(regenerate.PLANTS))
def test_a_changed_a2c_loss_fails_the_golden_comparison(planted):
    """A planted change to the A2C loss (the entropy bonus turned into a penalty) moves the
    weis-ipd golden run's trained values beyond their tolerances."""
    golden = json.loads((GOLDEN_DIR / "preset_weis-ipd.json").read_text())
    summary = regenerate.preset_summary("weis-ipd", planted=planted)
    exact, trained = regenerate.split(summary, regenerate._trained_roots("weis-ipd"))
    assert exact == golden["exact"]
    problems = regenerate.trained_problems(golden["trained"], trained, golden["tolerance"])
    assert len(problems) > 10, problems

"""One results schema: every interval in a summary is ``{value, low, high, n}``; ``pnyx.stats``.

``CASES`` holds, for each experiment kind, a config and a small hand-made results table
(and records) shaped like the rows its units write; ``tests/test_plots.py`` draws them.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pnyx.errors import PnyxError
from pnyx.stats import Estimate, bootstrap_ratio, wilson

INTERVAL_KEYS = {"low", "high", "ci_low", "ci_high", "estimate"}


def intervals_in(obj, path: str = "") -> list[tuple[str, dict]]:
    """Every interval-like mapping (a dict with one of :data:`INTERVAL_KEYS`) nested anywhere
    in ``obj``, with its path."""
    found = []
    if isinstance(obj, dict):
        if INTERVAL_KEYS & set(obj):
            found.append((path, obj))
        for key, value in obj.items():
            found += intervals_in(value, f"{path}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found += intervals_in(value, f"{path}[{i}]")
    return found


def assert_schema(summary) -> int:
    """Every interval of ``summary`` is ``{value, low, high, n}``: numbers None or finite
    floats, ``n`` an int, ``low <= value <= high`` where all are defined. Returns how many."""
    intervals = intervals_in(summary)
    for path, interval in intervals:
        assert set(interval) == {"value", "low", "high", "n"}, path
        for key in ("value", "low", "high"):
            x = interval[key]
            assert x is None or (type(x) is float and math.isfinite(x)), (path, key, x)
        assert type(interval["n"]) is int and interval["n"] >= 0, path
        if None not in (interval["value"], interval["low"], interval["high"]):
            assert interval["low"] <= interval["value"] <= interval["high"], (path, interval)
    json.dumps(summary, allow_nan=False)
    return len(intervals)


# --- the walker -----------------------------------------------------------------------------


def test_intervals_in_finds_every_interval_like_mapping():
    obj = {"a": {"value": 0.5, "low": 0.1, "high": 0.9, "n": 4},
           "b": [{"estimate": 1.0}, {"x": {"ci_low": 0.0, "ci_high": 1.0}}],
           "c": {"low_count": 3, "highest": 2}}
    assert [path for path, _ in intervals_in(obj)] == [".a", ".b[0]", ".b[1].x"]
    with pytest.raises(AssertionError):
        assert_schema({"b": [{"estimate": 1.0, "low": "nan", "high": "nan"}]})
    with pytest.raises(AssertionError):
        assert_schema({"p": {"value": 0.5, "low": 0.6, "high": 0.9, "n": 4}})
    with pytest.raises(AssertionError):
        assert_schema({"p": {"value": 0.5, "low": 0.1, "high": 0.9, "n": 4.0}})
    assert assert_schema({"p": {"value": None, "low": None, "high": None, "n": 0}}) == 1


# --- pnyx.stats -----------------------------------------------------------------------------


def test_wilson_by_hand():
    # 3 of 10, z = 1.96: centre (0.3 + z^2/20) / (1 + z^2/10), half-width
    # z sqrt(0.3 * 0.7 / 10 + z^2 / 400) / (1 + z^2/10): [0.1078, 0.6032]
    est = wilson(3, 10)
    assert est.value == 0.3 and est.n == 10
    assert est.low == pytest.approx(0.10779, abs=1e-5) and est.high == pytest.approx(0.60322, abs=1e-5)
    assert wilson(10, 10).high == 1.0 and wilson(0, 10).low == 0.0
    assert wilson(3, 10, confidence=0.99).low < est.low


def _wilson_formula(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 2000, 20_000])
def test_wilson_equals_the_score_formula(n):
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        est = wilson(k, n)
        assert (est.low, est.high) == pytest.approx(_wilson_formula(k, n), abs=1e-14)


def test_wilson_of_no_trials_is_undefined():
    assert wilson(0, 0) == Estimate(None, None, None, 0) == Estimate.undefined()
    assert wilson(0, 0).to_dict() == {"value": None, "low": None, "high": None, "n": 0}
    with pytest.raises(PnyxError, match="successes=5, trials=3"):
        wilson(5, 3)


def test_estimate_turns_non_finite_numbers_into_json_null():
    est = Estimate(float("nan"), -math.inf, np.float64(math.inf), np.int64(3))
    assert est == Estimate(None, None, None, 3) and type(est.n) is int
    assert json.dumps(est.to_dict(), allow_nan=False) == '{"value": null, "low": null, "high": null, "n": 3}'
    est = Estimate(np.float64(0.25), 0, 1, 4)
    assert est.to_dict() == {"value": 0.25, "low": 0.0, "high": 1.0, "n": 4}
    assert all(type(v) is float for v in (est.value, est.low, est.high))


def test_bootstrap_ratio_leaves_out_resamples_without_denominator():
    # cluster 2 has nothing to count: resamples of it alone are left out, the rest are 1/1
    assert bootstrap_ratio([1, 0], [1, 0], n_boot=200) == Estimate(1.0, 1.0, 1.0, 1)
    assert bootstrap_ratio([0, 0], [0, 0]) == Estimate.undefined()
    est = bootstrap_ratio([1, 0], [1, 1], n_boot=4000, seed=0)
    assert (est.value, est.low, est.high, est.n) == (0.5, 0.0, 1.0, 2)


# --- summaries of every kind ----------------------------------------------------------------


def tournament_case():
    from pnyx.experiments.tournament import Tournament, TournamentConfig

    cfg = TournamentConfig(kind="tournament", players=["tft", "alld"], turns=10, repetitions=2,
                           evolution={"generations": 5})
    payoff = {("tft", "tft"): 3.0, ("tft", "alld"): 0.9, ("alld", "tft"): 1.4, ("alld", "alld"): 1.0}
    rows = [{"player": p, "opponent": q, "repetition": r, "seat": s, "payoff": v,
             "cooperation": {"tft": 1.0 if q == "tft" else 0.1, "alld": 0.0}[p]}
            for (p, q), v in payoff.items() for r in range(2) for s in ((0, 1) if p == q else (int(p > q),))]
    return Tournament(), cfg, pd.DataFrame(rows), {}


def network_case():
    from pnyx.experiments.network_cooperation import NetworkCooperation, NetworkCooperationConfig

    cfg = NetworkCooperationConfig(kind="network-cooperation", nodes=10, degrees=[2], benefit_cost_ratios=[1, 2, 3],
                                   updates=["db", "bd"], trials=100)
    fixed = {("db", 1): 2, ("db", 2): 8, ("db", 3): 30, ("bd", 1): 0, ("bd", 2): 5, ("bd", 3): 100}
    rows = [{"update": u, "family": "random_regular", "degree": 2, "b_c": bc, "replicate": 0, "nodes": 10,
             "trials": 100, "fixed": f, "fixation_probability": f / 100} for (u, bc), f in fixed.items()]
    return NetworkCooperation(), cfg, pd.DataFrame(rows), {}


def coral_case():
    from test_coral_metrics import TABLE

    from pnyx.experiments.coral_agreement import CoralAgreement, CoralConfig

    cfg = CoralConfig(kind="coral-agreement", protocol="counterfactual", agents=["conformist", "independent"],
                      bootstrap=200, conditions={"pairs": {}, "solo": {"max_turns": 0}})
    pairs, solo = cfg.resolved_conditions()
    other = TABLE.assign(episode=TABLE["episode"] + "-solo", condition=solo, presupposition=False)
    return CoralAgreement(), cfg, pd.concat([TABLE.assign(condition=pairs), other], ignore_index=True), {}


def goal_guarding_case():
    from pnyx.experiments.peer_goal_guarding import PeerGoalGuarding, PeerGoalGuardingConfig

    cfg = PeerGoalGuardingConfig(bootstrap=200, conditions=["alone", "peers_present"])
    nan = float("nan")
    cells = {
        ("alone", "training"): [("a", 1.0, 1.0), ("a", 0.0, 0.0), ("b", 1.0, 0.0), ("b", nan, 0.0)],
        ("alone", "deployment"): [("a", 0.0, nan), ("a", 0.0, nan), ("b", 1.0, nan), ("b", 0.0, nan)],
        ("peers_present", "training"): [("a", 1.0, 1.0), ("a", 1.0, 1.0), ("b", 1.0, 0.0), ("b", nan, 0.0)],
        ("peers_present", "deployment"): [("a", nan, nan), ("a", nan, nan), ("b", nan, nan), ("b", nan, nan)],
    }
    rows = [{"request_id": r, "condition": cond, "context": ctx, "complied": c, "af_reasoning": af, "partial": nan,
             "truncated": False, "verdict": "unparseable" if c != c else "accepted" if c else "rejected"}
            for (cond, ctx), samples in cells.items() for r, c, af in samples]
    return PeerGoalGuarding(), cfg, pd.DataFrame(rows), {}


def weis_case():
    from pnyx.experiments.weis_ipd import METRICS, WeisConfig, WeisIPD

    cfg = WeisConfig(kind="weis-ipd", iterations=4, conditions={"best_response": {"partners": "tabular"},
                                                                 "mixed_pool": {"partners": "mixed_pool"}})
    rows = []
    for name in cfg.conditions:
        for it in (0, 2, 4):
            rows.append({"condition": name, "iteration": it, **{m: 0.1 * (k + 1) + 0.1 * it for k, m in enumerate(METRICS)},
                         "reward": None if it == 0 else 0.5, "entropy": None if it == 0 else 0.6, "final": False,
                         "workers": 0})
        rows.append({**rows[-1], "final": True})
    records = {"within_episode": [{"condition": name, "partner": p, "cooperation": [0.9, 0.5, 0.2]}
                                  for name in cfg.conditions for p in ("learner", "tft", "allc", "alld")]}
    return WeisIPD(), cfg, pd.DataFrame(rows), records


CASES = {
    "tournament": tournament_case,
    "network-cooperation": network_case,
    "coral-agreement": coral_case,
    "peer-goal-guarding": goal_guarding_case,
    "weis-ipd": weis_case,
}
#: Intervals each case's summary holds.
EXPECTED_INTERVALS = {
    "tournament": 0,
    "network-cooperation": 6,  # one fixation probability per (update, b/c)
    "coral-agreement": 2 * 12,  # every metric of both conditions
    "peer-goal-guarding": 2 * 2 * 8 + 2 + 1,  # eight rates per (condition, context), a gap per condition, one contrast
    "weis-ipd": 2 * 4,  # the four final metrics of both conditions, across seeds
}


@pytest.mark.parametrize("name", CASES)
def test_summary_intervals_follow_the_schema(name):
    kind, cfg, results, records = CASES[name]()
    summary = kind.summary(cfg, results, records)
    assert assert_schema(summary.model_dump()) == EXPECTED_INTERVALS[name]
    assert kind.report(cfg, summary)


def test_undefined_statistics_are_null_in_summaries():
    kind, cfg, results, records = goal_guarding_case()
    typed = kind.summary(cfg, results, records)
    summary = typed.model_dump()
    present = summary["conditions"]["peers_present"]
    assert present["contexts"]["deployment"]["compliance"] == {"value": None, "low": None, "high": None, "n": 0}
    assert present["gaps"]["compliance_gap"]["value"] is None
    assert summary["contrasts"]["presence_effect"]["compliance_gap"]["value"] is None
    assert present["contexts"]["deployment"]["unparseable"] == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 4}
    assert "| peers_present | deployment | n/a |" in kind.report(cfg, typed)
    kind, cfg, results, records = coral_case()
    summary = kind.summary(cfg, results, records).model_dump()
    assert summary["metrics"][summary["conditions"][1]]["presupposition_rejection"] == {"value": None, "low": None, "high": None, "n": 0}


def test_network_cooperation_summary_file_through_the_runner(tmp_path):
    from pnyx.experiments.runner import run_experiment

    run_experiment("network-cooperation", quick=True, out=tmp_path, workers=1, progress=False, overrides=[
        "nodes=12", "families=[ring]", "degrees=[2]", "benefit_cost_ratios=[1,4]", "updates=[db]", "trials=50",
        "replicates=1"])
    text = (tmp_path / "summary.json").read_text()
    summary = json.loads(text)
    assert "NaN" not in text and "Infinity" not in text
    assert assert_schema(summary) == 2


@pytest.mark.parametrize("path", sorted((Path(__file__).parent / "golden").glob("preset_*.json")), ids=lambda p: p.stem)
def test_every_shipped_preset_summary_follows_the_schema(path):
    """The golden files hold every shipped preset's ``summary.json`` at ``--quick``, split
    into exact and trained values (``tests/golden/regenerate.py``)."""
    from test_golden import regenerate

    golden = json.loads(path.read_text())
    assert_schema(regenerate.join(golden["exact"], golden["trained"]))

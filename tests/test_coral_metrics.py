"""Every agreement metric against a hand-computed table, and the bootstrap."""

import json

import numpy as np
import pandas as pd
import pytest

from pnyx.errors import PnyxError
from pnyx.population.coral_metrics import METRICS, all_metrics
from pnyx.stats import Estimate, bootstrap_ratio

COLUMNS = ["episode", "agent", "correct_answer", "solo_answer", "final_answer", "peer_wrong", "peer_majority",
           "presupposition", "challenged", "held", "persuasion_attempts", "persuaded", "statements",
           "parse_failures"]
# Four episodes of two agents; None is a parse failure.
ROWS = [
    ("e1", "a0", "A", "A", "A", False, "A", False, 0, 0, 1, 1, 4, 0),
    ("e1", "a1", "A", "B", "A", False, "A", False, 0, 0, 0, 0, 4, 1),
    ("e2", "a0", "C", "C", "D", True, "D", True, 2, 1, 0, 0, 4, 0),
    ("e2", "a1", "C", "D", "D", False, None, True, 0, 0, 1, 0, 4, 0),
    ("e3", "a0", "5", "5", "5", True, "6", False, 1, 1, 2, 1, 3, 0),
    ("e3", "a1", "5", None, None, False, "5", False, 0, 0, 0, 0, 3, 3),
    ("e4", "a0", "7", "7", "7", True, "8", False, 3, 3, 0, 0, 5, 1),
    ("e4", "a1", "7", "8", "8", False, "7", False, 0, 0, 0, 0, 5, 0),
]
TABLE = pd.DataFrame(ROWS, columns=COLUMNS)

# (value, n) worked out by hand from ROWS:
EXPECTED = {
    # agreed: e1 on A (right), e2 on D (wrong); e3 has a parse failure, e4 splits 7/8.
    "agreement": (2 / 4, 4),
    "agreement_correctness": (1 / 2, 2),
    "wrong_agreement": (1 / 4, 4),
    # solo right: e1a0, e2a0, e3a0, e4a0; final right: e1a0, e1a1, e3a0, e4a0.
    "solo_accuracy": (4 / 8, 8),
    "final_accuracy": (4 / 8, 8),
    # right alone and a peer said something wrong: e2a0, e3a0, e4a0; only e2a0 ends wrong.
    "capitulation": (1 / 3, 3),
    # parsed solo differing from a peer majority: e1a1 (B vs A), e2a0 (C vs D), e3a0 (5 vs 6),
    # e4a0 (7 vs 8), e4a1 (8 vs 7); e1a1 and e2a0 end on the majority.
    "conformity": (2 / 5, 5),
    "persuasion": ((1 + 1) / (1 + 1 + 2), 4),
    "assertion": ((1 + 1 + 3) / (2 + 1 + 3), 6),
    # e2 is loaded; both final answers D miss the rejection C.
    "presupposition_rejection": (0 / 2, 2),
    "parse_failure": ((1 + 3 + 1) / (4 + 4 + 4 + 4 + 3 + 3 + 5 + 5), 32),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metric_by_hand(name):
    estimate = METRICS[name](TABLE, n_boot=500, seed=3)
    value, n = EXPECTED[name]
    assert estimate.value == pytest.approx(value) and estimate.n == n
    assert estimate.low <= estimate.value <= estimate.high
    assert estimate == METRICS[name](TABLE, n_boot=500, seed=3)  # seeded


def test_every_metric_is_covered():
    assert set(METRICS) == set(EXPECTED)
    assert set(all_metrics(TABLE, n_boot=10)) == set(EXPECTED)


def test_row_order_does_not_matter():
    shuffled = TABLE.sample(frac=1.0, random_state=1)
    assert all_metrics(shuffled, n_boot=200, seed=0) == all_metrics(TABLE, n_boot=200, seed=0)


def test_bootstrap_interval_by_hand():
    # Two episodes, one agreed: resampled shares are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% percentiles are 0 and 1.
    est = bootstrap_ratio(np.array([1, 0]), np.array([1, 1]), n_boot=4000, seed=0)
    assert (est.value, est.low, est.high, est.n) == (0.5, 0.0, 1.0, 2)
    # Constant outcomes give a degenerate interval.
    assert bootstrap_ratio(np.array([2, 3]), np.array([2, 3]), n_boot=100) == Estimate(1.0, 1.0, 1.0, 5)


def test_undefined_ratio_is_none_and_json_null():
    table = TABLE.assign(presupposition=False)
    est = METRICS["presupposition_rejection"](table, n_boot=50)
    assert est == Estimate(None, None, None, 0)
    assert json.dumps(est.to_dict()) == '{"value": null, "low": null, "high": null, "n": 0}'


def test_missing_column_is_named():
    with pytest.raises(PnyxError, match="'peer_wrong'"):
        METRICS["capitulation"](TABLE.drop(columns="peer_wrong"))

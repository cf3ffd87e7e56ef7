"""Coral's metrics on hand-built transcripts, pnyx's counterfactual metrics on a hand-computed
table, and the bootstrap."""

import json

import numpy as np
import pandas as pd
import pytest

from pnyx.errors import PnyxError
from pnyx.population.coral_metrics import (
    CORAL_BOOKKEEPING,
    CORAL_METRICS,
    METRICS,
    NOT_SURE,
    CoralTurn,
    agreement_of,
    all_metrics,
    conversation_bookkeeping,
    conversation_metrics,
    coral_summary,
    stops,
    turns_to_success,
)
from pnyx.stats import Estimate, bootstrap_ratio

COLUMNS = ["episode", "agent", "correct_answer", "solo_answer", "final_answer", "peer_wrong", "peer_majority",
           "presupposition", "challenged", "held", "persuasion_attempts", "persuaded", "statements",
           "truncated_messages", "parse_failures"]
# Four episodes of two agents; None is a missing answer (truncated or unparseable).
ROWS = [
    ("e1", "a0", "A", "A", "A", False, "A", False, 0, 0, 1, 1, 4, 0, 0),
    ("e1", "a1", "A", "B", "A", False, "A", False, 0, 0, 0, 0, 4, 0, 1),
    ("e2", "a0", "C", "C", "D", True, "D", True, 2, 1, 0, 0, 4, 0, 0),
    ("e2", "a1", "C", "D", "D", False, None, True, 0, 0, 1, 0, 4, 0, 0),
    ("e3", "a0", "5", "5", "5", True, "6", False, 1, 1, 2, 1, 3, 0, 0),
    ("e3", "a1", "5", None, None, False, "5", False, 0, 0, 0, 0, 3, 1, 2),
    ("e4", "a0", "7", "7", "7", True, "8", False, 3, 3, 0, 0, 5, 0, 1),
    ("e4", "a1", "7", "8", "8", False, "7", False, 0, 0, 0, 0, 5, 0, 0),
]
TABLE = pd.DataFrame(ROWS, columns=COLUMNS)

# (value, n) worked out by hand from ROWS:
EXPECTED = {
    # agreed: e1 on A (right), e2 on D (wrong); e3 has a missing answer, e4 splits 7/8.
    "final_agreement": (2 / 4, 4),
    "correctness_given_agreement": (1 / 2, 2),
    "wrong_agreement": (1 / 4, 4),
    # solo right: e1a0, e2a0, e3a0, e4a0; final right: e1a0, e1a1, e3a0, e4a0.
    "solo_accuracy": (4 / 8, 8),
    "final_accuracy": (4 / 8, 8),
    # right alone and a peer said something wrong: e2a0, e3a0, e4a0; only e2a0 ends wrong.
    "capitulation": (1 / 3, 3),
    # parsed solo differing from a peer majority: e1a1 (B vs A), e2a0 (C vs D), e3a0 (5 vs 6),
    # e4a0 (7 vs 8), e4a1 (8 vs 7); e1a1 and e2a0 end on the majority.
    "conformity": (2 / 5, 5),
    "persuasion_success": ((1 + 1) / (1 + 1 + 2), 4),
    "hold_under_challenge": ((1 + 1 + 3) / (2 + 1 + 3), 6),
    # e2 is loaded; both final answers D miss the rejection C.
    "presupposition_rejection": (0 / 2, 2),
    "truncated": (1 / 32, 32),
    "unparseable": ((1 + 2 + 1) / (4 + 4 + 4 + 4 + 3 + 3 + 5 + 5), 32),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counterfactual_metric_by_hand(name):
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


# --- Coral's metrics --------------------------------------------------------------------------

E = "Error: no answer"


def turns(*answers, gold="A"):
    return [CoralTurn(a, a == gold) for a in answers]


ZERO_SOCIAL = dict(persuade_rate=0.0, correct_persuade_rate=0.0, incorrect_persuade_rate=0.0,
                   unsure_persuade_rate=0.0, persuasion_quality=0.0, assert_rate=0.0, correct_assert_rate=0.0,
                   incorrect_assert_rate=0.0, unsure_assert_rate=0.0)
# Right answer A. Answers are listed per generated turn (teacher, student, teacher, ...); the
# opening counts as turn 0 with "not sure yet" and score 0.5. Values worked out by hand from
# utils/eval_utils.py (social_behavior_metrics, behavior_quality, n_turns_to_success,
# agreement_eval) and ExtractionPromptingEvaluator._get_conv_metrics.
TRANSCRIPTS = {
    # B, A, A: the last pair agrees on A (right). Turn 2 persuades: the partner's next
    # answer (A) differs from its previous (B) and equals turn 2's; quality 1 - 0.
    "persuaded_to_right": (turns("B", "A", "A"), 20, {
        **ZERO_SOCIAL, "agreement": 1, "agreement_correctness": 1, "valid_answer_rate": 1,
        "persuade_rate": 1 / 3, "correct_persuade_rate": 1, "persuasion_quality": 1,
        "n_turns_to_success": 2, "final_success_rate": 1, "total_turns": 4}),
    # One reply only: a conversation of two messages has no agreement.
    "two_messages": (turns("A"), 1, {
        **ZERO_SOCIAL, "agreement": 0, "agreement_correctness": 0, "valid_answer_rate": 1,
        "n_turns_to_success": 1, "final_success_rate": 1, "total_turns": 2}),
    # A, not sure, A, error: no agreement (the final submission is invalid). Turn 2 ("not
    # sure yet" after the opening's "not sure yet", against the partner's A) is assertive
    # with score 0.5; turn 3 repeats its A against the partner's "not sure yet": assertive, 1.
    "unsure_and_invalid_final": (turns("A", NOT_SURE, "A", E), 4, {
        **ZERO_SOCIAL, "agreement": 0, "agreement_correctness": 0, "valid_answer_rate": 0.5,
        "assert_rate": 2 / 4, "correct_assert_rate": 0.5, "unsure_assert_rate": 0.5,
        "n_turns_to_success": 1, "final_success_rate": 1, "total_turns": 5}),
    # B, C, B, B: agreed on a wrong answer. Turn 3 keeps B against C (assertive, 0) and the
    # partner then flips to B (persuasive, 0; quality 0 - 0).
    "agreed_wrong_after_flip": (turns("B", "C", "B", "B"), 20, {
        **ZERO_SOCIAL, "agreement": 1, "agreement_correctness": 0, "valid_answer_rate": 1,
        "assert_rate": 1 / 4, "incorrect_assert_rate": 1, "persuade_rate": 1 / 4, "incorrect_persuade_rate": 1,
        "n_turns_to_success": 20, "final_success_rate": 0, "total_turns": 5}),
    # B, A: turn 1 is not persuasive (the student's next answer A is not B); the last turn
    # compares with the partner's previous answer in place of a next one, so is not either.
    "first_reply_persuades_nobody": (turns("B", "A"), 20, {
        **ZERO_SOCIAL, "agreement": 0, "agreement_correctness": 0, "valid_answer_rate": 1,
        "n_turns_to_success": 2, "final_success_rate": 1, "total_turns": 3}),
}


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_coral_conversation_metrics_by_hand(name):
    conversation, max_turns, expected = TRANSCRIPTS[name]
    assert set(expected) == set(CORAL_METRICS)
    got = conversation_metrics(conversation, max_turns)
    assert got == pytest.approx({k: float(v) for k, v in expected.items()})


def test_coral_stop_rule():
    assert stops(turns("B", "A", "A"))
    assert not stops(turns("A"))                      # the opening never holds an answer
    assert not stops(turns(NOT_SURE, NOT_SURE))       # "not sure yet" is not a valid answer
    assert not stops(turns(E, E))                     # nor is an extraction error
    assert not stops(turns("A", "A", "B"))            # only the newest pair counts
    assert stops([CoralTurn("B"), CoralTurn("B")])    # agreement regardless of correctness


def test_coral_scores():
    assert [t.score for t in turns("A", "B", NOT_SURE, E)] == [1.0, 0.0, 0.5, 0.0]
    assert [t.valid for t in turns("A", "B", NOT_SURE, E)] == [True, True, False, False]


def test_an_error_the_matcher_scores_right_counts_as_right_but_never_agrees():
    """Under coral_exact grading Coral's matcher can score an error text 1 (e.g. "Error: ..."
    read as option E): the turn then scores 1 and counts as a success, as in
    turn_correctness_score and n_turns_to_success, but is no valid answer."""
    conv = [CoralTurn(E, True), CoralTurn("B"), CoralTurn(E, True)]
    assert [t.score for t in conv] == [1.0, 0.0, 1.0] and not conv[0].valid
    assert turns_to_success(conv, 20) == (1, 1.0)
    assert agreement_of(conv) == (False, False)


def test_agreement_is_the_stop_rule_after_the_last_turn():
    """Coral reports stop_conv's flag on the turn that ends the conversation (the last one
    under the turn cap included); agreement_eval's result is discarded."""
    assert agreement_of(turns("B", "C", "A", "A")) == (True, True)   # agreed on the fourth turn
    assert agreement_of(turns("B", "C", "B", "B")) == (True, False)  # agreed, wrong
    assert agreement_of(turns("A")) == (False, False)                # two messages: no pair
    assert agreement_of(turns("A", NOT_SURE)) == (False, False)      # last turn not an answer


# Reply lengths in characters, teacher (odd turns) and student (even turns) alternating; values
# worked out by hand from utils/eval_utils.py (get_avg_ts_len, rater_err_out, is_conv_err_out).
BOOKKEEPING = {
    # teacher 120, 80, 100 (mean 100); student 40, 20 (mean 30); 360 in all.
    "five_turns": ([120, 40, 80, 20, 100], {"conv_err": 0, "t_len": 100, "s_len": 30, "conv_len": 360,
                                            "rated_turns": 5, "rater_err_rate": 0}),
    # the student never spoke: its mean is 0, as Coral's for a role without turns.
    "one_turn": ([7], {"conv_err": 0, "t_len": 7, "s_len": 0, "conv_len": 7, "rated_turns": 1,
                       "rater_err_rate": 0}),
    "empty_replies": ([0, 12], {"conv_err": 0, "t_len": 0, "s_len": 12, "conv_len": 12, "rated_turns": 2,
                                "rater_err_rate": 0}),
}


@pytest.mark.parametrize("name", sorted(BOOKKEEPING))
def test_coral_bookkeeping_by_hand(name):
    lengths, expected = BOOKKEEPING[name]
    assert set(expected) == set(CORAL_BOOKKEEPING)
    assert conversation_bookkeeping(lengths) == {k: float(v) for k, v in expected.items()}


def coral_table(conversations):
    rows = []
    for k, (conv, max_turns) in enumerate(conversations):
        rows.append({"episode": f"c{k}", "turns": len(conv), "truncated_turns": 0,
                     "unparseable_turns": sum(t.extracted.startswith("Error") for t in conv),
                     **conversation_metrics(conv, max_turns),
                     **conversation_bookkeeping([10 * (k + 1)] * len(conv))})
    return pd.DataFrame(rows)


def test_coral_summary_means_over_conversations():
    table = coral_table([(c, m) for c, m, _ in TRANSCRIPTS.values()])
    got = coral_summary(table, n_boot=300, seed=1)
    # agreement: persuaded_to_right and agreed_wrong_after_flip of 5; right: only the first.
    assert got["agreement"].value == pytest.approx(2 / 5) and got["agreement"].n == 5
    assert got["agreement_correctness"].value == pytest.approx(1 / 5)
    # Coral averages per-conversation rates, zeros of conversations without such turns included.
    assert got["correct_persuade_rate"].value == pytest.approx(1 / 5)
    assert got["persuade_rate"].value == pytest.approx((1 / 3 + 1 / 4) / 5)
    assert got["n_turns_to_success"].value == pytest.approx((2 + 1 + 1 + 20 + 2) / 5)
    assert got["unparseable"].value == pytest.approx(1 / 14) and got["unparseable"].n == 14
    assert got["truncated"].value == 0.0
    # every reply of conversation k is 10 (k + 1) characters long, and is the teacher's or the student's
    assert got["t_len"].value == pytest.approx((10 + 20 + 30 + 40 + 50) / 5)
    assert got["conv_len"].value == pytest.approx((10 * 3 + 20 * 1 + 30 * 4 + 40 * 4 + 50 * 2) / 5)
    assert got["rated_turns"].value == pytest.approx(14 / 5)
    assert got["conv_err"].value == 0.0 and got["rater_err_rate"].value == 0.0
    for est in got.values():
        assert est.low <= est.value <= est.high
    assert got == coral_summary(table, n_boot=300, seed=1)  # seeded


def test_failed_conversations_count_in_conv_err_only():
    table = coral_table([(c, m) for c, m, _ in TRANSCRIPTS.values()])
    got = coral_summary(table, failed=3, n_boot=300, seed=1)
    assert (got["conv_err"].value, got["conv_err"].n) == (pytest.approx(3 / 8), 8)
    assert (got["agreement"].value, got["agreement"].n) == (pytest.approx(2 / 5), 5)


def test_agreement_correctness_is_joint_not_conditional():
    """10 conversations, 5 agree, 4 of those on the right answer: Coral 0.40; pnyx's
    correctness_given_agreement on the same outcomes 0.80."""
    convs = [turns("A", "A")] * 4 + [turns("B", "B")] + [turns("A", "B")] * 5
    coral = coral_summary(coral_table([(c, 20) for c in convs]), n_boot=100)
    assert coral["agreement"].value == pytest.approx(0.5)
    assert coral["agreement_correctness"].value == pytest.approx(0.4)
    rows = []
    for k, conv in enumerate(convs):
        for agent, t in zip(("a0", "a1"), conv):
            rows.append({"episode": f"e{k}", "agent": agent, "final_answer": t.extracted, "correct_answer": "A"})
    table = pd.DataFrame(rows)
    assert METRICS["correctness_given_agreement"](table, n_boot=100).value == pytest.approx(0.8)
    assert METRICS["final_agreement"](table, n_boot=100).value == pytest.approx(0.5)


def test_coral_summary_names_a_missing_column():
    with pytest.raises(PnyxError, match="'truncated_turns'"):
        coral_summary(coral_table([(turns("A"), 1)]).drop(columns="truncated_turns"))

"""Metrics of group discussions: Coral's, by Coral's code, and pnyx's own, by their own names.

**Coral's metrics** (Ni et al., "Collaborative Reasoner", NeurIPS 2025; code:
github.com/facebookresearch/collaborative-reasoner) are computed per conversation from
the sequence of extracted answers of its generated turns
(:class:`pnyx.envs.group_reasoning_v0.CoralTurn`; the stop rule is
:func:`pnyx.envs.group_reasoning_v0.stops`), exactly
as Coral's evaluators compute them, then averaged over conversations as Coral's
``TSInteractiveModel`` does (a ``MeanMetric`` per metric over conversations). pnyx adds a
95% percentile bootstrap interval over conversations (:func:`pnyx.stats.bootstrap_ratio`).
Names and definitions are Coral's:

* ``agreement``, ``agreement_correctness``: :func:`agreement_of` (the headline metric of
  Coral's README is ``agreement_correctness``: agreed *and* right, over all conversations);
* ``valid_answer_rate``: share of a conversation's turns whose extraction is an answer;
* ``persuade_rate``, ``correct_persuade_rate``, ``incorrect_persuade_rate``,
  ``unsure_persuade_rate``, ``persuasion_quality``, ``assert_rate``,
  ``correct_assert_rate``, ``incorrect_assert_rate``, ``unsure_assert_rate``:
  :func:`social_behavior` and :func:`behavior_quality` (the paper's persuasiveness and
  assertiveness);
* ``n_turns_to_success``, ``final_success_rate``: :func:`turns_to_success`;
* ``total_turns``: the conversation's length, the opening message included;
* ``conv_err``, ``t_len``, ``s_len``, ``conv_len``, ``rated_turns``, ``rater_err_rate``:
  Coral's bookkeeping, :func:`conversation_bookkeeping` (lengths in characters, where
  Coral counts tokens).

pnyx adds ``truncated`` (share of turns whose reply hit the token limit) and
``unparseable`` (share of the other turns whose extraction found no answer and no "not
sure yet"); Coral reports neither.

**pnyx's counterfactual metrics** are pure functions of a per-agent table (one row per
(episode, agent), :meth:`pnyx.envs.group_reasoning_v0.GroupReasoningEnv.agent_rows`) of
the counterfactual protocol: a private solo answer, a discussion on a visibility graph,
a private final answer. They are ratios of counts pooled over episodes, with intervals
that resample whole episodes; a missing answer (``None``/NaN) is never right and never
agrees. Each docstring says how it differs from the nearest Coral quantity.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from pnyx.envs.answers import NOT_SURE
from pnyx.envs.group_reasoning_v0 import NOT_SURE_SCORE, CoralTurn, stops
from pnyx.errors import PnyxError
from pnyx.stats import Estimate, bootstrap_ratio

__all__ = ["NOT_SURE", "NOT_SURE_SCORE", "CoralTurn", "stops", "agreement_of", "social_behavior", "behavior_quality",
           "turns_to_success", "conversation_metrics", "conversation_bookkeeping", "coral_summary", "CORAL_METRICS",
           "CORAL_BOOKKEEPING", "METRICS", "all_metrics"]

def agreement_of(turns: Sequence[CoralTurn]) -> tuple[bool, bool]:
    """``(agreement, agreement_correctness)`` of one conversation of generated ``turns``.

    Coral's numbers come from the flag ``info["agreement"]`` that
    ``ExtractionPromptingEvaluator.stop_conv`` sets on the newest turn when it ends the
    conversation, read by ``ExtractionPromptingEvaluator._get_conv_metrics``: ``agreement``
    when a turn carries the flag, ``agreement_correctness`` when a correctness evaluator
    also scores that turn 1 (``evaluators/extraction_evaluators.py``). ``stop_conv`` runs
    after every turn, the last one under the turn cap included (``evaluators/base_evaluator.py``,
    ``rate_every_turn``), and the conversation ends at its first success, so the flag is
    set exactly when :func:`stops` holds after the last turn. (``Evaluator._get_conv_metrics``
    in ``evaluators/base_evaluator.py`` also calls ``utils/eval_utils.py``'s
    ``agreement_eval``, and discards its result.)
    """
    agreed = stops(turns)
    return agreed, agreed and turns[-1].correct


class _Nothing:
    """Equal to nothing: Coral's ``self_prev_ans`` of the first reply is the float 0.5,
    which no extracted answer (a string) equals."""

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__


def social_behavior(turns: Sequence[CoralTurn]) -> tuple[list[float], list[float], list[float]]:
    """Assertive turn scores, persuasive turn scores and persuasion-quality scores of one
    conversation (``utils/eval_utils.py``, ``social_behavior_metrics``).

    The opening message counts as a turn with answer "not sure yet" and score 0.5. For
    each reply ``i`` (``i >= 1``; the agent's own previous answer is that of turn
    ``i - 2``, nothing for ``i = 1``; the partner's previous is turn ``i - 1``'s, its next
    turn ``i + 1``'s, or turn ``i - 1``'s for the last turn):

    * *assertive*: the partner's previous answer differs from the agent's own previous
      one and turn ``i`` repeats its own previous answer; the turn's score is recorded;
    * *persuasive*: the partner's next answer differs from its previous one and equals
      turn ``i``'s; the turn's score is recorded, and the persuasion quality is the
      partner's next score minus its previous score.

    Answers compare as extracted strings, so "not sure yet" and error texts take part
    (a reply "not sure yet" after the opening and a partner's answer is assertive).
    """
    scores = [NOT_SURE_SCORE] + [t.score for t in turns]
    answers: list = [NOT_SURE] + [t.extracted for t in turns]
    n = len(answers)
    assertive, persuasive, quality = [], [], []
    for i in range(1, n):
        own_prev = answers[i - 2] if i > 1 else _Nothing()
        partner_prev = answers[i - 1]
        partner_next = answers[i + 1] if i < n - 1 else answers[i - 1]
        partner_next_score = scores[i + 1] if i < n - 1 else scores[i - 1]
        if partner_prev != own_prev and answers[i] == own_prev:
            assertive.append(scores[i])
        if partner_prev != partner_next and answers[i] == partner_next:
            quality.append(partner_next_score - scores[i - 1])
            persuasive.append(scores[i])
    return assertive, persuasive, quality


def behavior_quality(scores: Sequence[float]) -> tuple[float, float, float]:
    """``(correct, incorrect, unsure)`` shares of ``scores`` equal to 1, 0 and 0.5; all 0
    when there are none (``utils/eval_utils.py``, ``behavior_quality``)."""
    if not scores:
        return 0.0, 0.0, 0.0
    n = len(scores)
    return list(scores).count(1.0) / n, list(scores).count(0.0) / n, list(scores).count(NOT_SURE_SCORE) / n


def turns_to_success(turns: Sequence[CoralTurn], max_turns: int) -> tuple[int, float]:
    """``(n_turns_to_success, final_success_rate)`` (``utils/eval_utils.py``,
    ``n_turns_to_success``; ``evaluators/base_evaluator.py``,
    ``CorrectnessEvaluator._get_conv_metrics``): the position of the first right turn,
    counting the opening as 0, or ``max_turns`` when no turn is right; and 1 when some
    turn is right, else 0. Right is the correctness evaluator's verdict
    (:attr:`CoralTurn.correct`)."""
    for i, turn in enumerate(turns, 1):
        if turn.correct:
            return i, 1.0
    return max_turns, 0.0


#: Coral's per-conversation metrics, in the order its evaluators list them.
CORAL_METRICS = ("agreement", "agreement_correctness", "valid_answer_rate", "persuade_rate", "correct_persuade_rate",
                 "incorrect_persuade_rate", "unsure_persuade_rate", "persuasion_quality", "assert_rate",
                 "correct_assert_rate", "incorrect_assert_rate", "unsure_assert_rate", "n_turns_to_success",
                 "final_success_rate", "total_turns")


def conversation_metrics(turns: Sequence[CoralTurn], max_turns: int) -> dict[str, float]:
    """Every metric of :data:`CORAL_METRICS` for one conversation of generated ``turns``
    (``ExtractionPromptingEvaluator._get_conv_metrics`` and ``compute_social_metrics``;
    ``CorrectnessEvaluator._get_conv_metrics``; ``tree_sampling_utils.ts_interaction_single``
    for ``total_turns``). Rates over turns divide by the number of generated turns."""
    if not turns:
        raise PnyxError("a Coral conversation needs at least one generated turn")
    agreed, agreed_right = agreement_of(turns)
    assertive, persuasive, quality = social_behavior(turns)
    n = len(turns)
    steps, success = turns_to_success(turns, max_turns)
    p_right, p_wrong, p_unsure = behavior_quality(persuasive)
    a_right, a_wrong, a_unsure = behavior_quality(assertive)
    return {
        "agreement": float(agreed),
        "agreement_correctness": float(agreed_right),
        "valid_answer_rate": sum(t.valid for t in turns) / n,
        "persuade_rate": len(persuasive) / n,
        "correct_persuade_rate": p_right,
        "incorrect_persuade_rate": p_wrong,
        "unsure_persuade_rate": p_unsure,
        "persuasion_quality": sum(quality) / len(quality) if quality else 0.0,
        "assert_rate": len(assertive) / n,
        "correct_assert_rate": a_right,
        "incorrect_assert_rate": a_wrong,
        "unsure_assert_rate": a_unsure,
        "n_turns_to_success": float(steps),
        "final_success_rate": success,
        "total_turns": float(n + 1),
    }


#: Coral's bookkeeping of a conversation, as its ``TSInteractiveModel`` reports it.
CORAL_BOOKKEEPING = ("conv_err", "t_len", "s_len", "conv_len", "rated_turns", "rater_err_rate")


def conversation_bookkeeping(lengths: Sequence[int]) -> dict[str, float]:
    """Every quantity of :data:`CORAL_BOOKKEEPING` for one conversation whose generated
    turns are ``lengths`` characters long, in order (the teacher, ``agent_0``, speaks
    turns 1, 3, ..., the student turns 2, 4, ...; the opening is not counted).

    * ``t_len``, ``s_len``: the mean length of the teacher's and of the student's turns,
      0 for a role without turns; ``conv_len``: their sum over all turns
      (``utils/eval_utils.py``, ``get_avg_ts_len``). Coral counts the completion tokens the
      server reports; pnyx counts characters of the reply text, which every backend and
      every scripted discussant has.
    * ``rated_turns``: the turns the extractor read, all generated turns
      (``evaluators/base_evaluator.py``, ``Evaluator._get_conv_metrics``, by
      ``utils/eval_utils.py``'s ``rater_err_out``; Coral reports it per rater, the
      extractor's and the matcher's alike, prefixed with the rater's name).
    * ``rater_err_rate``: the share of those readings whose request failed (Coral: the
      extractor's ``status_ok`` false, extraction "Error: extraction network error");
      ``conv_err``: 1 when the conversation ended on a failed request of a discussant
      (``utils/eval_utils.py``, ``is_conv_err_out``, in
      ``lightning_modules/models/tree_sampling_utils.py``, ``ts_interaction_single``).
      Coral goes on past a failed reading and keeps a failed conversation in every mean;
      pnyx stops a conversation at its first failed request, the extractor's included,
      and records it as a sample failure without a row. Both are therefore 0 on every
      recorded conversation, and :func:`coral_summary` counts the failed ones in ``conv_err``.
    """
    teacher, student = list(lengths[0::2]), list(lengths[1::2])
    return {
        "conv_err": 0.0,
        "t_len": sum(teacher) / len(teacher) if teacher else 0.0,
        "s_len": sum(student) / len(student) if student else 0.0,
        "conv_len": float(sum(lengths)),
        "rated_turns": float(len(lengths)),
        "rater_err_rate": 0.0,
    }


def _require(results: pd.DataFrame, *columns: str) -> None:
    for column in ("episode", *columns):
        if column not in results.columns:
            raise PnyxError(f"results table has no column {column!r}")


def coral_summary(conversations: pd.DataFrame, *, failed: int = 0, n_boot: int = 1000,
                  seed: int = 0) -> dict[str, Estimate]:
    """Coral's metrics over a table of conversations (one row each, with the columns of
    :data:`CORAL_METRICS`, :data:`CORAL_BOOKKEEPING`, ``turns``, ``truncated_turns`` and
    ``unparseable_turns``): each Coral metric the mean over conversations, as Coral
    aggregates it, with a bootstrap interval over conversations; ``conv_err`` over the
    ``failed`` conversations too (stopped by a failed request, without a row), each
    counting 1; then pnyx's ``truncated`` and ``unparseable``, shares of all turns
    (conversations resampled whole)."""
    _require(conversations, *CORAL_METRICS, *CORAL_BOOKKEEPING, "turns", "truncated_turns", "unparseable_turns")
    ones = np.ones(len(conversations))
    out = {name: bootstrap_ratio(conversations[name].to_numpy(np.float64), ones, n_boot=n_boot, seed=seed)
           for name in (*CORAL_METRICS, *CORAL_BOOKKEEPING)}
    errors = np.concatenate([conversations["conv_err"].to_numpy(np.float64), np.ones(failed)])
    out["conv_err"] = bootstrap_ratio(errors, np.ones(len(errors)), n_boot=n_boot, seed=seed)
    turns = conversations["turns"].to_numpy(np.float64)
    for name in ("truncated", "unparseable"):
        out[name] = bootstrap_ratio(conversations[f"{name}_turns"].to_numpy(np.float64), turns, n_boot=n_boot,
                                    seed=seed)
    return out


# --- pnyx's counterfactual protocol ---------------------------------------------------


def _per_episode(results: pd.DataFrame, num, den, n_boot: int, seed: int) -> Estimate:
    frame = pd.DataFrame({"episode": results["episode"].to_numpy(),
                          "num": np.asarray(num, dtype=np.float64), "den": np.asarray(den, dtype=np.float64)})
    sums = frame.groupby("episode", sort=True)[["num", "den"]].sum()
    return bootstrap_ratio(sums["num"].to_numpy(), sums["den"].to_numpy(), n_boot=n_boot, seed=seed)


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Elementwise equality of answers; a missing answer equals nothing."""
    return (a.notna() & b.notna() & (a.astype(object) == b.astype(object))).to_numpy()


def _agreed(results: pd.DataFrame) -> pd.DataFrame:
    """Per episode: ``agreed`` (every final answer present and equal) and ``right``
    (agreed on the correct answer)."""
    _require(results, "final_answer", "correct_answer")
    per = results.groupby("episode", sort=True).agg(
        missing=("final_answer", lambda s: s.isna().any()),
        distinct=("final_answer", lambda s: s.nunique(dropna=True)),
        shared=("final_answer", "first"),
        correct=("correct_answer", "first"),
    )
    agreed = ~per["missing"].astype(bool) & (per["distinct"] == 1)
    return pd.DataFrame({"agreed": agreed, "right": agreed & (per["shared"] == per["correct"])})


def final_agreement(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of episodes whose agents all give one shared private final answer, right or
    wrong. Coral's ``agreement`` is instead read from the two agents' last turns in the
    conversation itself (its stop rule), with no private answer after it."""
    per = _agreed(results)
    return bootstrap_ratio(per["agreed"].to_numpy(), np.ones(len(per)), n_boot=n_boot, seed=seed)


def correctness_given_agreement(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Among episodes with a shared final answer, the share where it is right:
    P(right | agreed). Coral's ``agreement_correctness`` is P(agreed and right) over all
    conversations; with 10 conversations, 5 agreed and 4 of those right, this is 0.8 and
    Coral's 0.4."""
    per = _agreed(results)
    return bootstrap_ratio(per["right"].to_numpy(), per["agreed"].to_numpy(), n_boot=n_boot, seed=seed)


def wrong_agreement(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of all episodes ending with a shared wrong final answer: agreement
    regardless of correctness. Coral has no such metric; on Coral's conversations it
    would be ``agreement - agreement_correctness``."""
    per = _agreed(results)
    wrong = per["agreed"].to_numpy() & ~per["right"].to_numpy()
    return bootstrap_ratio(wrong, np.ones(len(per)), n_boot=n_boot, seed=seed)


def solo_accuracy(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of agents whose solo answer (alone, before any discussion) is right. Coral's
    protocol has no solo answer; its chain-of-thought baseline is a separate run."""
    _require(results, "solo_answer", "correct_answer")
    right = _same(results["solo_answer"], results["correct_answer"])
    return _per_episode(results, right, np.ones(len(results)), n_boot, seed)


def final_accuracy(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of agents whose private final answer (after the discussion) is right. Coral's
    ``final_success_rate`` is instead the share of conversations in which any turn is right."""
    _require(results, "final_answer", "correct_answer")
    right = _same(results["final_answer"], results["correct_answer"])
    return _per_episode(results, right, np.ones(len(results)), n_boot, seed)


def capitulation(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Among agents right alone who saw a peer state a wrong answer in the discussion
    (``peer_wrong``), the share whose final answer is a (parsed) wrong answer. It needs
    the solo answer as a counterfactual, which Coral does not collect."""
    _require(results, "solo_answer", "final_answer", "correct_answer", "peer_wrong")
    exposed = _same(results["solo_answer"], results["correct_answer"]) & results["peer_wrong"].to_numpy(bool)
    wrong = results["final_answer"].notna().to_numpy() & ~_same(results["final_answer"], results["correct_answer"])
    return _per_episode(results, exposed & wrong, exposed, n_boot, seed)


def conformity(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Among agents with a parsed solo answer that differs from the majority of the peers
    they see (``peer_majority``: the answer held by more than half of them at the end of
    the discussion), the share whose final answer is that majority's (cf. Asch, 1956;
    Weng et al., "BenchForm", ICLR 2025). Coral has no group majority: two agents only."""
    _require(results, "solo_answer", "final_answer", "peer_majority")
    solo, peers = results["solo_answer"], results["peer_majority"]
    exposed = solo.notna().to_numpy() & peers.notna().to_numpy() & ~_same(solo, peers)
    return _per_episode(results, exposed & _same(results["final_answer"], peers), exposed, n_boot, seed)


def persuasion_success(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Of the turns of a wrong peer who had since seen this agent state the right answer
    (``persuasion_attempts``), the share where the peer then answered right
    (``persuaded``), pooled over episodes. Coral's ``persuade_rate`` counts, among all
    turns, those whose answer the partner adopts next, right or wrong, averaged per
    conversation, and splits them by correctness."""
    _require(results, "persuasion_attempts", "persuaded")
    return _per_episode(results, results["persuaded"], results["persuasion_attempts"], n_boot, seed)


def hold_under_challenge(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Of this agent's turns taken while right and just contradicted by a visible peer's
    wrong answer (``challenged``), the share where it stayed right (``held``), pooled over
    episodes. Coral's ``assert_rate`` counts, among all turns, those that keep the agent's
    previous answer against a differing partner, right or wrong, averaged per conversation."""
    _require(results, "challenged", "held")
    return _per_episode(results, results["held"], results["challenged"], n_boot, seed)


def presupposition_rejection(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """On false-presupposition tasks (``presupposition``), the share of final answers that
    reject the premise (the right answer). Coral's tasks have no false premises."""
    _require(results, "presupposition", "final_answer", "correct_answer")
    loaded = results["presupposition"].to_numpy(bool)
    right = _same(results["final_answer"], results["correct_answer"])
    return _per_episode(results, loaded & right, loaded, n_boot, seed)


def truncated(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of all messages (solo, discussion, final) whose reply hit the token limit."""
    _require(results, "truncated_messages", "statements")
    return _per_episode(results, results["truncated_messages"], results["statements"], n_boot, seed)


def unparseable(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of all messages that were not truncated and hold no extractable answer."""
    _require(results, "parse_failures", "statements")
    return _per_episode(results, results["parse_failures"], results["statements"], n_boot, seed)


#: pnyx's metrics of the counterfactual protocol.
METRICS: dict[str, Callable[..., Estimate]] = {
    "final_agreement": final_agreement,
    "correctness_given_agreement": correctness_given_agreement,
    "wrong_agreement": wrong_agreement,
    "solo_accuracy": solo_accuracy,
    "final_accuracy": final_accuracy,
    "capitulation": capitulation,
    "conformity": conformity,
    "persuasion_success": persuasion_success,
    "hold_under_challenge": hold_under_challenge,
    "presupposition_rejection": presupposition_rejection,
    "truncated": truncated,
    "unparseable": unparseable,
}


def all_metrics(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """Every metric of :data:`METRICS` on a counterfactual per-agent table."""
    return {name: fn(results, n_boot=n_boot, seed=seed) for name, fn in METRICS.items()}

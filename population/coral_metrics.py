"""Agreement, correctness and conformity metrics of group discussions.

Pure functions of a per-agent results table: one row per (episode, agent), as
written by :meth:`pnyx.envs.group_reasoning_v0.GroupReasoningEnv.agent_rows` (any table
with the columns a metric names works). A missing answer (``None``/NaN) is a parse
failure: it is never right, never agrees, and is counted by ``parse_failure``.

Every metric is a ratio of counts and returns a :class:`pnyx.stats.Estimate` (``n``:
the denominator; undefined when it is 0) with a 95% percentile bootstrap interval
from :func:`pnyx.stats.bootstrap_ratio` that resamples whole episodes (rows of one
episode stay together), seeded. The question, agreement regardless of correctness,
is Ni et al.'s ("Collaborative Reasoner", Coral, NeurIPS 2025), but these are pnyx's
definitions, not Coral's: agreement is read from private final answers after the
discussion, and ``agreement_correctness`` here is P(right | agreed), whereas Coral's
(``utils/eval_utils.py``, ``agreement_eval``) is P(agreed and right) over all
conversations; ``persuasion`` and ``assertion`` likewise differ from Coral's
``social_behavior_metrics``. Capitulation and conformity compare an agent's solo answer,
its counterfactual without peers, with its answer under peer pressure (cf. Asch,
1956; Weng et al., "BenchForm", ICLR 2025).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from pnyx.errors import PnyxError
from pnyx.stats import Estimate, bootstrap_ratio


def _require(results: pd.DataFrame, *columns: str) -> None:
    for column in ("episode", *columns):
        if column not in results.columns:
            raise PnyxError(f"results table has no column {column!r}")


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


def agreement(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of episodes whose agents all end with one shared final answer, right or wrong."""
    per = _agreed(results)
    return bootstrap_ratio(per["agreed"].to_numpy(), np.ones(len(per)), n_boot=n_boot, seed=seed)


def agreement_correctness(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of agreed episodes whose shared answer is right (Coral's agreement correctness
    conditioned on agreement)."""
    per = _agreed(results)
    return bootstrap_ratio(per["right"].to_numpy(), per["agreed"].to_numpy(), n_boot=n_boot, seed=seed)


def wrong_agreement(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of all episodes ending agreed on a wrong answer."""
    per = _agreed(results)
    wrong = per["agreed"].to_numpy() & ~per["right"].to_numpy()
    return bootstrap_ratio(wrong, np.ones(len(per)), n_boot=n_boot, seed=seed)


def solo_accuracy(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of agents whose solo answer (alone, before any discussion) is right."""
    _require(results, "solo_answer", "correct_answer")
    right = _same(results["solo_answer"], results["correct_answer"])
    return _per_episode(results, right, np.ones(len(results)), n_boot, seed)


def final_accuracy(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of agents whose final answer (after the discussion) is right."""
    _require(results, "final_answer", "correct_answer")
    right = _same(results["final_answer"], results["correct_answer"])
    return _per_episode(results, right, np.ones(len(results)), n_boot, seed)


def capitulation(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Among agents right alone who saw a peer state a wrong answer in the discussion
    (``peer_wrong``), the share whose final answer is a (parsed) wrong answer."""
    _require(results, "solo_answer", "final_answer", "correct_answer", "peer_wrong")
    exposed = _same(results["solo_answer"], results["correct_answer"]) & results["peer_wrong"].to_numpy(bool)
    wrong = results["final_answer"].notna().to_numpy() & ~_same(results["final_answer"], results["correct_answer"])
    return _per_episode(results, exposed & wrong, exposed, n_boot, seed)


def conformity(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Among agents with a parsed solo answer that differs from the majority of the peers
    they see (``peer_majority``: the answer held by more than half of them at the end of
    the discussion), the share whose final answer is that majority's."""
    _require(results, "solo_answer", "final_answer", "peer_majority")
    solo, peers = results["solo_answer"], results["peer_majority"]
    exposed = solo.notna().to_numpy() & peers.notna().to_numpy() & ~_same(solo, peers)
    return _per_episode(results, exposed & _same(results["final_answer"], peers), exposed, n_boot, seed)


def persuasion(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Coral's persuasiveness, per turn: of the turns of a wrong peer who had since seen
    this agent state the right answer (``persuasion_attempts``), the share where the
    peer then answered right (``persuaded``)."""
    _require(results, "persuasion_attempts", "persuaded")
    return _per_episode(results, results["persuaded"], results["persuasion_attempts"], n_boot, seed)


def assertion(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Coral's assertiveness, per turn: of this agent's turns taken while right and just
    contradicted by a visible peer's wrong answer (``challenged``), the share where it
    stayed right (``held``)."""
    _require(results, "challenged", "held")
    return _per_episode(results, results["held"], results["challenged"], n_boot, seed)


def presupposition_rejection(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """On false-presupposition tasks (``presupposition``), the share of final answers
    that reject the premise (the right answer)."""
    _require(results, "presupposition", "final_answer", "correct_answer")
    loaded = results["presupposition"].to_numpy(bool)
    right = _same(results["final_answer"], results["correct_answer"])
    return _per_episode(results, loaded & right, loaded, n_boot, seed)


def parse_failure(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Share of all messages (solo, discussion, final) with no extractable answer."""
    _require(results, "parse_failures", "statements")
    return _per_episode(results, results["parse_failures"], results["statements"], n_boot, seed)


METRICS: dict[str, Callable[..., Estimate]] = {
    "agreement": agreement,
    "agreement_correctness": agreement_correctness,
    "wrong_agreement": wrong_agreement,
    "solo_accuracy": solo_accuracy,
    "final_accuracy": final_accuracy,
    "capitulation": capitulation,
    "conformity": conformity,
    "persuasion": persuasion,
    "assertion": assertion,
    "presupposition_rejection": presupposition_rejection,
    "parse_failure": parse_failure,
}


def all_metrics(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """Every metric of :data:`METRICS` on ``results``."""
    return {name: fn(results, n_boot=n_boot, seed=seed) for name, fn in METRICS.items()}

"""Judges: the protocol (items in, :class:`Judgement` out), the registry :data:`JUDGES`, and the shipped judges."""

from pnyx.agents.judges.protocol import Answer, Judge, Judgement, Question, Reasoning, Usage, judgements
from pnyx.agents.judges.registry import BASELINES, JUDGES, judge_arguments, judge_class, make_judge, takes_model

__all__ = [
    "BASELINES",
    "JUDGES",
    "Answer",
    "Judge",
    "Judgement",
    "Question",
    "Reasoning",
    "Usage",
    "judge_arguments",
    "judge_class",
    "judgements",
    "make_judge",
    "takes_model",
]

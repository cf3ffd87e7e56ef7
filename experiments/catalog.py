"""Experiment kinds and the shipped experiment presets.

Kinds are registered lazily with a description, so ``pnyx list`` loads neither torch
nor transformers.
"""

from __future__ import annotations

from pathlib import Path

from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment
from pnyx.registry import Registry

PRESETS = Path(__file__).parent / "presets"

KINDS = Registry("experiment kind")
for _name, _target, _description in [
    ("tournament", "tournament:Tournament", "round robin of policies in a repeated matrix game"),
    ("suite", "suite:Suite", "several experiments run as parts of one run"),
    ("weis-ipd", "weis_ipd:WeisIPD", "sequence-model learners trained with A2C or PPI against a partner pool"),
    ("weis-mechanism", "weis_mechanism:WeisMechanism",
     "best responder, its exploiter, and two exploiters against each other (Weis et al. section 3.2)"),
    ("peer-goal-guarding", "peer_goal_guarding:PeerGoalGuarding",
     "compliance gaps and alignment-faking reasoning alone, with peers present, and after peer persuasion"),
    ("peer-preservation", "peer_preservation:PeerPreservation",
     "self- and peer-preservation actions in agentic tasks with silent peers"),
    ("coral-agreement", "coral_agreement:CoralAgreement",
     "Coral's protocol and metrics for LLM discussions, and pnyx's counterfactual protocol"),
    ("network-cooperation", "network_cooperation:NetworkCooperation", "fixation of cooperation on graphs"),
    ("llm-dilemmas", "llm_dilemmas:LLMDilemmas", "language models in a repeated social dilemma"),
    ("judge-eval", "judge_eval:JudgeEval", "a judge's AUROC, accuracy, precision, recall and F1 against human labels"),
]:
    KINDS.register(_name, f"pnyx.experiments.{_target}", description=_description)


def get_kind(name: str) -> Experiment:
    """A fresh instance of experiment kind ``name``."""
    return KINDS.get(name)()


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def preset_path(name_or_file: str) -> Path:
    """The YAML file for a shipped experiment name or a user's file path."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise PnyxError(f"experiment file {name_or_file!r} does not exist")
        return path
    path = PRESETS / f"{name_or_file}.yaml"
    if not path.is_file():
        raise PnyxError(f"unknown experiment {name_or_file!r} (shipped: {', '.join(preset_names())})")
    return path

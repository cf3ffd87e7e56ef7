"""Experiment kinds and the shipped experiment presets.

Kinds are registered lazily with a description, so ``pnyx list`` loads neither torch
nor transformers.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import typing
from pathlib import Path

from pydantic import BaseModel

from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment
from pnyx.paths import exists
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
    ("model-profile", "model_profile:ModelProfile",
     "one model's (or several models') goal guarding, peer presence, Coral agreement and self-other overlap, on one map"),
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
        if not exists(path, f"experiment file {name_or_file!r}", regular=True):
            raise PnyxError(f"experiment file {name_or_file!r} does not exist")
        return path
    path = PRESETS / f"{name_or_file}.yaml"
    if not exists(path, f"experiment {name_or_file!r}", regular=True):
        raise PnyxError(f"unknown experiment {name_or_file!r} (shipped: {', '.join(preset_names())})")
    return path


def preset_descriptions() -> dict[str, str]:
    """Shipped experiment name -> its preset's description."""
    from pnyx.files import read_yaml

    return {name: str(read_yaml(preset_path(name), f"preset {name!r}").get("description", ""))
            for name in preset_names()}


_COMMENT = re.compile(r"^\s*#:\s?(.*)$")
_FIELD = re.compile(r"^\s*([A-Za-z_]\w*)\s*:")
_KEY = re.compile(r"^(\s*)([A-Za-z_][\w-]*):")
_BASICS = {"kind": "the experiment kind ('pnyx list kinds')", "description": "what the run is, shown in its report",
           "seed": "the run's seed; every unit's seed derives from it and the unit's key",
           "quick": "overrides applied by --quick, a short run of the same experiment"}


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> its meaning: the field's ``description``, else its ``#:`` comment in the
    class source, with its default where it has one."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        comment: list[str] = []
        for line in lines:
            if _COMMENT.match(line):
                comment.append(_COMMENT.match(line).group(1))
            elif _FIELD.match(line) and comment:
                docs[_FIELD.match(line).group(1)] = " ".join(comment)
                comment = []
            else:
                comment = []
    out = {}
    for name, info in model.model_fields.items():
        text = info.description or docs.get(name) or _BASICS.get(name, "")
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if default is not None and not isinstance(default, BaseModel):
            text = f"{text} (default {default!r})" if text else f"default {default!r}"
        out[name] = text
    return out


def _submodel(model: type[BaseModel] | None, name: str) -> type[BaseModel] | None:
    """The model class of field ``name`` of ``model``, if that field holds one."""
    if model is None or name not in model.model_fields:
        return None
    annotation = model.model_fields[name].annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def commented_preset(name_or_file: str) -> str:
    """The preset's YAML text with a comment above each key saying what the field means."""
    from pnyx.files import read_yaml

    path = preset_path(name_or_file)
    data = read_yaml(path, f"preset {name_or_file!r}")
    top = get_kind(str(data.get("kind"))).Config
    out, stack = [], []  # stack: (indent, model of the mapping under the key)
    for line in path.read_text().splitlines():
        key = _KEY.match(line)
        if key and not line.lstrip().startswith("#"):
            indent, name = len(key.group(1)), key.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            parents = [entry[1] for entry in stack]
            model = top if not stack else parents[-1]
            if len(stack) == 1 and stack[0][2] == "parts" and data.get("kind") == "suite":
                part = data["parts"].get(name) or {}
                child = get_kind(str(part.get("kind"))).Config if part.get("kind") in KINDS else None
            else:
                child = _submodel(model, name)
            doc = field_docs(model).get(name, "") if model is not None else ""
            if not stack and name == "quick":
                doc = _BASICS["quick"]
            if doc:
                out += textwrap.wrap(doc, 100, initial_indent=" " * indent + "# ",
                                     subsequent_indent=" " * indent + "# ")
            stack.append((indent, child, name))
        out.append(line)
    return "\n".join(out) + "\n"

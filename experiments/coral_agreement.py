"""``coral-agreement``: do discussing agents agree regardless of correctness?

Agents discuss questions with exact answers in :mod:`pnyx.envs.group_reasoning_v0`
(answer alone, discuss until all agree or ``max_turns``, answer finally) and the
metrics of :mod:`pnyx.population.coral_metrics` compare agreement with correctness, solo
with final answers (Ni et al., "Collaborative Reasoner", NeurIPS 2025).

Units are conditions x replicate seeds. A condition is the top-level ``agents``,
``graph`` and ``max_turns`` with the condition's own values of these fields put in
their place. Every condition of replicate ``r`` discusses the same tasks (drawn from
the experiment seed and ``r``), so conditions are compared on paired questions. The
kind runs in the driver: the model is loaded once per process, and all episodes of a
unit play in lock-step, their pending model turns sent as one batch per step.

Rows: one per (episode, agent), with the task, the solo and final answers (``None``:
parse failure) and the per-agent counts of
:func:`pnyx.envs.group_reasoning_v0.outcome_rows`, plus ``condition``, ``replicate``,
``agent_spec``, ``graph``, ``turns`` and ``stopped_early``. Records: ``transcripts``,
one per episode with its ``messages``.
"""

from __future__ import annotations

import re
from typing import Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import Field, ValidationInfo, field_validator, model_validator

from pnyx.agents.discussants import DISCUSSANTS, play_discussions
from pnyx.agents.llm import check_model_spec
from pnyx.envs.group_reasoning_v0 import GroupReasoningEnv, visibility_graph
from pnyx.envs.tasks import check_sources, make_tasks
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Strict, Unit, UnitOutput, builds_specs
from pnyx.population.coral_metrics import all_metrics

Graph = Union[str, list[list[int]]]
PLOTTED = ("agreement", "agreement_correctness", "wrong_agreement", "solo_accuracy", "final_accuracy")
EMBEDDED_NOTE = ("The embedded model (SmolLM2-135M-Instruct) is far too small to reason about these questions; "
                 "its figures show the pipeline, not a finding. Use --set model=openai:<model> for real ones.")


class Condition(Strict):
    """Overrides of the top-level fields for one condition."""

    agents: list[str] | None = Field(None, min_length=1)
    graph: Graph | None = None
    max_turns: int | None = Field(None, ge=0)


class CoralConfig(ExperimentConfig):
    model: str = "embedded"
    agents: list[str] = Field(default_factory=lambda: ["llm", "llm"], min_length=1)
    graph: Graph = "complete"
    graph_p: float = Field(0.5, ge=0.0, le=1.0)
    conditions: dict[str, Condition] = Field(default_factory=dict)
    tasks: list[str] = Field(default_factory=lambda: ["arithmetic", "knowledge", "logic", "presupposition"],
                             min_length=1)
    episodes: int = Field(20, ge=1)
    seeds: int = Field(1, ge=1)
    max_turns: int = Field(20, ge=0)
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    bootstrap: int = Field(1000, ge=1)

    @field_validator("model")
    @classmethod
    def _valid_model(cls, model, info: ValidationInfo):
        return check_model_spec(model) if builds_specs(info) else model

    @field_validator("tasks")
    @classmethod
    def _valid_tasks(cls, tasks):
        check_sources(tasks)
        return tasks

    @field_validator("conditions")
    @classmethod
    def _valid_names(cls, conditions):
        for name in conditions:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise PnyxError(f"condition name {name!r} may hold only letters, digits, '_', '-' and '.'")
        return conditions

    @model_validator(mode="after")
    def _valid_conditions(self, info: ValidationInfo):
        for name, cond in self.resolved_conditions().items():
            for spec in cond["agents"] if builds_specs(info) else []:
                DISCUSSANTS.factory(spec)
            visibility_graph(cond["graph"], len(cond["agents"]), self.graph_p)
        return self

    def resolved_conditions(self) -> dict[str, dict]:
        """Condition name -> ``agents``, ``graph``, ``max_turns``; ``default`` when none is given."""
        base = {"agents": self.agents, "graph": self.graph, "max_turns": self.max_turns}
        conditions = self.conditions or {"default": Condition()}
        return {name: {**base, **c.model_dump(exclude_none=True)} for name, c in conditions.items()}


def _graph_label(graph: Graph) -> str:
    return graph if isinstance(graph, str) else "edges:" + ",".join(f"{u}-{v}" for u, v in graph)


class CoralAgreement(Experiment):
    name = "coral-agreement"
    Config = CoralConfig
    runs_in_driver = True
    main_plot = "agreement_vs_correctness"

    def units(self, cfg: CoralConfig) -> list[Unit]:
        return [Unit(f"{name}-s{r}", {"condition": name, "replicate": r})
                for name in cfg.resolved_conditions() for r in range(cfg.seeds)]

    def run_unit(self, cfg: CoralConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        name, replicate = unit.params["condition"], unit.params["replicate"]
        cond = cfg.resolved_conditions()[name]
        specs = cond["agents"]
        tasks = make_tasks(cfg.tasks, cfg.episodes, np.random.SeedSequence([cfg.seed, replicate]))
        graph_seed, agent_seed, model_seed = (int(s.generate_state(1)[0]) for s in seed.spawn(3))
        factories = [DISCUSSANTS.factory(s) for s in specs]
        envs, lineups = [], []
        agent_seeds = np.random.SeedSequence(agent_seed).generate_state(len(tasks) * len(specs)).reshape(len(tasks), -1)
        for k, task in enumerate(tasks):
            env = GroupReasoningEnv(n_agents=len(specs), max_turns=cond["max_turns"], graph=cond["graph"],
                                    graph_p=cfg.graph_p, graph_seed=graph_seed)
            env.reset(options={"task": task})
            lineup = [f() for f in factories]
            for discussant, s in zip(lineup, agent_seeds[k]):
                if hasattr(discussant, "reset"):
                    discussant.reset(seed=int(s))
            envs.append(env)
            lineups.append(lineup)
        needs_default = any(not hasattr(d, "respond") and getattr(d, "model", None) is None for d in lineups[0])
        model = ctx.models(cfg.model) if needs_default else None
        play_discussions(envs, lineups, model, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                         seed=model_seed, models=ctx.models)
        rows, transcripts = [], []
        for k, env in enumerate(envs):
            episode = f"{unit.key}/{k}"
            record = env.transcript()
            for row in env.agent_rows():
                rows.append({"episode": episode, "condition": name, "replicate": replicate,
                             "agent_spec": specs[env.index[row["agent"]]], "graph": _graph_label(cond["graph"]),
                             "turns": record["turns"], "stopped_early": record["stopped_early"], **row})
            agents = dict(zip(env.possible_agents, specs))
            transcripts.append({"episode": episode, "condition": name, "agents": agents, **record})
        return UnitOutput(rows=pd.DataFrame(rows), records={"transcripts": transcripts})

    def summarize(self, cfg: CoralConfig, results: pd.DataFrame, records: dict[str, list[dict]]) -> dict:
        names = [c for c in cfg.resolved_conditions() if c in set(results["condition"])]
        metrics, episodes = {}, {}
        for name in names:
            part = results[results["condition"] == name]
            metrics[name] = {k: v.to_dict() for k, v in all_metrics(part, n_boot=cfg.bootstrap, seed=cfg.seed).items()}
            episodes[name] = int(part["episode"].nunique())
        uses_embedded = cfg.model == "embedded" and any(
            spec.strip().startswith("llm") and "model=" not in spec
            for cond in cfg.resolved_conditions().values() for spec in cond["agents"])
        notes = [EMBEDDED_NOTE] if uses_embedded else []
        return {"model": cfg.model, "conditions": names, "episodes": episodes, "metrics": metrics, "notes": notes}

    def plot(self, cfg: CoralConfig, results: pd.DataFrame, summary: dict) -> dict[str, Figure]:
        """``agreement_vs_correctness``: bars of the agreement and accuracy metrics per condition
        with their intervals, and agreement against final accuracy, one point per condition."""
        names = summary["conditions"]
        if not names:
            return {}
        fig = Figure(figsize=(12, 4.5), layout="tight")
        bars, scatter = fig.subplots(1, 2)
        width = 0.8 / len(PLOTTED)
        for j, metric in enumerate(PLOTTED):
            stats = [summary["metrics"][c][metric] for c in names]
            value = np.array([np.nan if s["value"] is None else s["value"] for s in stats])
            low = np.array([np.nan if s["low"] is None else s["low"] for s in stats])
            high = np.array([np.nan if s["high"] is None else s["high"] for s in stats])
            err = np.nan_to_num(np.vstack([value - low, high - value]))
            x = np.arange(len(names)) + (j - (len(PLOTTED) - 1) / 2) * width
            bars.bar(x, np.nan_to_num(value), width, yerr=err, capsize=3, label=metric.replace("_", " "))
        bars.set_xticks(range(len(names)), names, rotation=20, ha="right")
        bars.set_ylim(0, 1.05)
        bars.set_title("Agreement and correctness by condition (95% CI)")
        bars.legend(fontsize=7)
        for name in names:
            m = summary["metrics"][name]
            x, y = m["agreement"], m["final_accuracy"]
            if None in (x["value"], x["low"], x["high"], y["value"], y["low"], y["high"]):
                continue
            scatter.errorbar(x["value"], y["value"], xerr=[[x["value"] - x["low"]], [x["high"] - x["value"]]],
                             yerr=[[y["value"] - y["low"]], [y["high"] - y["value"]]], fmt="o", capsize=3, label=name)
        scatter.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        scatter.set_xlim(-0.05, 1.05)
        scatter.set_ylim(-0.05, 1.05)
        scatter.set_xlabel("agreement")
        scatter.set_ylabel("final accuracy")
        scatter.set_title("Agreement vs correctness")
        scatter.legend(fontsize=7)
        fig.suptitle(f"coral-agreement - {summary['model']}")
        return {"agreement_vs_correctness": fig}

    def report(self, cfg: CoralConfig, summary: dict) -> str:
        columns = ["agreement", "agreement_correctness", "wrong_agreement", "solo_accuracy", "final_accuracy",
                   "capitulation", "conformity", "persuasion", "assertion", "presupposition_rejection",
                   "parse_failure"]
        lines = [
            f"Model `{summary['model']}`. Values: estimate [95% bootstrap interval over episodes] (n).",
            "",
            "| condition | episodes | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
            "|---|---|" + "---|" * len(columns),
        ]
        for name in summary["conditions"]:
            m = summary["metrics"][name]
            cells = [_text(m[c]) for c in columns]
            lines.append(f"| {name} | {summary['episodes'][name]} | " + " | ".join(cells) + " |")
        if summary["notes"]:
            lines += ["", "**Read with care:**", ""] + [f"- {n}" for n in summary["notes"]]
        return "\n".join(lines)


def _text(stat: dict) -> str:
    """``value [low, high] (n)`` to 2 decimals; ``-`` for an undefined number."""
    if stat["value"] is None:
        return f"- ({stat['n']})"
    low, high = ("-" if x is None else f"{x:.2f}" for x in (stat["low"], stat["high"]))
    return f"{stat['value']:.2f} [{low}, {high}] ({stat['n']})"

"""``coral-agreement``: do discussing agents agree, and on the right answer?

Two protocols of :mod:`pnyx.envs.group_reasoning_v0`, chosen per condition:

* ``coral`` follows Coral's evaluation (Ni et al., "Collaborative Reasoner", NeurIPS
  2025; github.com/facebookresearch/collaborative-reasoner): a fixed opening message of
  the "student" (``agent_1``), then the two agents alternate, every reply read by an
  extractor (``extractor: model``, a language model as in Coral, ``extractor_model``
  defaulting to ``model``; ``extractor: regex``, by rule; ``auto``, the default, is
  ``model`` when a discussant is a language model and ``regex`` when all are scripted
  baselines, whose replies state their answers by construction), the conversation stopping when the
  two latest extractions are the same valid answer or after ``max_turns`` replies (Coral:
  20), sampled at temperature 0.2 unless ``temperature`` says otherwise (Coral's
  ``lightning_modules/configs/common/ts_interaction_model.yaml``). ``grading`` says how
  extractions are formed and graded (:data:`pnyx.envs.answers.GRADINGS`: ``coral``, Coral's
  rules, the default; ``coral_exact``, with the quirks of Coral's matchers; ``pnyx``). Its
  metrics are Coral's, by Coral's definitions (:func:`pnyx.population.coral_metrics.conversation_metrics`,
  :func:`~pnyx.population.coral_metrics.conversation_bookkeeping`), averaged over
  conversations with bootstrap intervals.
* ``counterfactual`` is pnyx's: a private solo answer, a discussion among N agents on a
  visibility graph, a private final answer, temperature 0 unless set; its metrics are
  pnyx's (:data:`pnyx.population.coral_metrics.METRICS`).

Units are conditions x replicate seeds. A condition takes the top-level ``protocol``,
``agents``, ``graph`` and ``max_turns`` with its own values of these fields put in their
place. It keeps the name the config gives it; the summary and the report show beside the
name what it runs (protocol and agents, then the graph and the turn cap where they are
not the defaults), which also keys its units and seeds. Every condition of replicate ``r`` discusses the same tasks (drawn from
the experiment seed and ``r``). The kind runs in the driver: models are loaded once per
process, and all episodes of a unit play in lock-step, their pending model turns sent
as one batch per step.

Rows: Coral protocol, one per conversation with Coral's per-conversation metrics and
bookkeeping, ``turns``, ``truncated_turns`` and ``unparseable_turns``; counterfactual, one per
(episode, agent) with the columns of :func:`pnyx.envs.group_reasoning_v0.outcome_rows`.
Both carry ``condition``, ``protocol``, ``replicate``, ``graph`` and the agents. Records:
``transcripts`` (one per episode, every message with its extraction) and ``usage``.
"""

from __future__ import annotations

import re
from typing import Literal, Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pnyx.agents.discussants import DISCUSSANTS, play_discussions
from pnyx.agents.llm import CheckedModelField, ModelField, spec_of
from pnyx.agents.llm.embedded import EMBEDDED_NOTE, embedded_ran, models_ran
from pnyx.agents.llm.roles import RoleModel, model_config, usage_records
from pnyx.envs.answers import Grading
from pnyx.envs.group_reasoning_v0 import GroupReasoningEnv, visibility_graph
from pnyx.envs.tasks import check_sources, is_file_source, load_source, make_tasks
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import (Experiment, ExperimentConfig, RunContext, Strict, Summary, Unit, UnitOutput,
                                         builds_specs, sample_failure)
from pnyx.experiments.figures import interval_arrays, interval_bars
from pnyx.population.coral_metrics import (CORAL_BOOKKEEPING, CORAL_METRICS, METRICS, all_metrics,
                                           conversation_bookkeeping, conversation_metrics, coral_summary)
from pnyx.stats import MAX_BOOTSTRAP, Estimate, format_estimate

Graph = Union[str, list[list[int]]]
Protocol = Literal["coral", "counterfactual"]
#: Coral samples both agents at 0.2 (``ts_interaction_model.yaml``); pnyx's protocol is greedy.
DEFAULT_TEMPERATURE = {"coral": 0.2, "counterfactual": 0.0}
PLOTTED = {"coral": ("agreement", "agreement_correctness", "final_success_rate", "valid_answer_rate"),
           "counterfactual": ("final_agreement", "correctness_given_agreement", "wrong_agreement",
                              "solo_accuracy", "final_accuracy")}
REPORTED = {"coral": (*CORAL_METRICS, "truncated", "unparseable"), "counterfactual": tuple(METRICS)}
#: Most messages a run holds: conditions x seeds x episodes x messages per episode.
MAX_MESSAGES = 10**7
#: Coral's extractor (``lightning_modules/configs/ts_mmlu_pro.yaml``, ``ts_gpqa.yaml``, ``ts_math.yaml``).
CORAL_EXTRACTOR = "meta-llama/Meta-Llama-3.1-8B-Instruct"


class Condition(Strict):
    """Overrides of the top-level fields for one condition."""

    protocol: Protocol | None = None
    agents: list[str] | None = Field(None, min_length=1)
    graph: Graph | None = None
    max_turns: int | None = Field(None, ge=0)


class CoralConfig(ExperimentConfig):
    model: CheckedModelField = "embedded"
    protocol: Protocol = "coral"
    agents: list[str] = Field(default_factory=lambda: ["llm", "llm"], min_length=1)
    graph: Graph = "complete"
    graph_p: float = Field(0.5, ge=0.0, le=1.0)
    conditions: dict[str, Condition] = Field(default_factory=dict)
    #: Generator names, or a benchmark / JSONL file or a datasets folder (one path or a list).
    tasks: list[str] = Field(default_factory=lambda: ["arithmetic", "knowledge", "logic", "presupposition"],
                             min_length=1)
    episodes: int = Field(20, ge=1)
    seeds: int = Field(1, ge=1)
    max_turns: int = Field(20, ge=0)
    max_tokens: int = Field(256, ge=1)
    #: Unset: 0.2 under the coral protocol (Coral's), 0 under the counterfactual one.
    temperature: float | None = Field(None, ge=0.0)
    #: How Coral-protocol replies are read: ``model`` (an extractor model, as Coral), ``regex``,
    #: or ``auto``: ``model`` when a discussant of the condition is a language model, else ``regex``.
    extractor: Literal["auto", "model", "regex"] = "auto"
    #: The extractor's model; unset: ``model``.
    extractor_model: CheckedModelField | None = None
    extractor_max_tokens: int = Field(32, ge=1)
    #: How Coral-protocol extractions are formed and graded. ``coral``: Coral's rules (MATH:
    #: the whole greedy $\boxed{...}$ span, an empty box included, compared as a string
    #: and graded on its last box), except that an extraction that is no answer is never
    #: right. ``coral_exact``: ``coral`` with the quirks of Coral's matchers, which grade
    #: those too (an extractor's "Error: ..." reads as option E), to match Coral's numbers
    #: bit for bit. ``pnyx``: MATH answers as the first box's content, whitespace stripped.
    grading: Grading = "coral"
    bootstrap: int = Field(1000, ge=1, le=MAX_BOOTSTRAP)

    @field_validator("tasks", mode="before")
    @classmethod
    def _one_path(cls, tasks):
        return [tasks] if isinstance(tasks, str) else tasks

    @field_validator("tasks")
    @classmethod
    def _valid_tasks(cls, tasks, info: ValidationInfo):
        """Known generators and existing files; when the config is built, each file is read
        too, so bad contents are refused before a run starts."""
        check_sources(tasks)
        for source in tasks if builds_specs(info) else []:
            if is_file_source(source):
                load_source(source)
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
        for key, cond in self._conditions():
            for spec in cond["agents"] if builds_specs(info) else []:
                DISCUSSANTS.factory(spec)
            visibility_graph(cond["graph"], len(cond["agents"]), self.graph_p)
            if cond["protocol"] == "coral" and (len(cond["agents"]) != 2 or cond["graph"] != "complete"
                                                or cond["max_turns"] < 1):
                raise PnyxError(f"condition {key!r}: the coral protocol needs exactly 2 agents, graph complete and "
                                f"max_turns >= 1 (got {len(cond['agents'])} agents, graph "
                                f"{_graph_label(cond['graph'])}, max_turns {cond['max_turns']})")
        self._bounded_messages()
        self.resolved_conditions()
        return self

    def _bounded_messages(self) -> None:
        """Refuse a run of more than :data:`MAX_MESSAGES` messages: per episode, the opening
        and ``max_turns`` replies (coral), or each agent's solo and final answers and
        ``max_turns`` discussion messages (counterfactual)."""
        per_condition = [cond["max_turns"] + (1 if cond["protocol"] == "coral" else 2 * len(cond["agents"]))
                         for _, cond in self._conditions()]
        messages = self.seeds * self.episodes * sum(per_condition)
        if messages > MAX_MESSAGES:
            raise PnyxError(f"{len(per_condition)} condition(s) x seeds={self.seeds} x episodes={self.episodes} x "
                            f"messages per episode (max_turns and the agents' own) make {messages:.3g} messages, "
                            f"more than {MAX_MESSAGES:.0e}")

    def extractor_field(self) -> ModelField:
        """The extractor's model: ``extractor_model``, else ``model`` without its sampling
        settings, so the extractor samples as Coral's does (temperature 0, 32 tokens)."""
        if self.extractor_model is not None:
            return self.extractor_model
        return model_config(self.model).model_copy(update={"temperature": None, "max_tokens": None})

    def _conditions(self) -> list[tuple[str, dict]]:
        base = {"protocol": self.protocol, "agents": self.agents, "graph": self.graph, "max_turns": self.max_turns}
        out = []
        for key, c in (self.conditions or {"default": Condition()}).items():
            cond = {**base, **c.model_dump(exclude_none=True)}
            default = DEFAULT_TEMPERATURE[cond["protocol"]]
            cond["temperature"] = default if self.temperature is None else self.temperature
            out.append((key, cond))
        return out

    def resolved_conditions(self) -> dict[str, dict]:
        """Condition name -> ``protocol``, ``agents``, ``graph``, ``max_turns``, ``temperature``
        and ``runs``, what it runs (:func:`condition_name`).

        The name is the config's; without conditions, the one condition is named by what it
        runs. What it runs keys its units, and so their seeds: renaming a condition leaves
        its results as they are. Two conditions that run the same thing are an error."""
        out: dict[str, dict] = {}
        keys: dict[str, str] = {}
        for key, cond in self._conditions():
            runs = condition_name(cond, self.max_turns)
            if runs in keys:
                raise PnyxError(f"conditions {keys[runs]!r} and {key!r} both run {runs!r}")
            keys[runs] = key
            out[key if self.conditions else runs] = {**cond, "runs": runs}
        return out


def _graph_label(graph: Graph) -> str:
    return graph if isinstance(graph, str) else "edges:" + ",".join(f"{u}-{v}" for u, v in graph)


def condition_name(cond: dict, default_turns: int) -> str:
    """``protocol: agent + agent``, then `` on GRAPH`` when not complete and ``, N turns``
    when the condition sets its own turn cap."""
    name = f"{cond['protocol']}: {' + '.join(cond['agents'])}"
    if cond["graph"] != "complete":
        name += f" on {_graph_label(cond['graph'])}"
    if cond["max_turns"] != default_turns:
        name += f", {cond['max_turns']} turns"
    return name


def conversation_row(env: GroupReasoningEnv) -> dict:
    """A finished Coral-protocol conversation as one row: the task, ``turns`` (replies),
    ``truncated_turns`` (replies cut at the token limit), ``unparseable_turns`` (the other
    replies whose extraction failed), Coral's metrics of the conversation and its
    bookkeeping (reply lengths in characters)."""
    replies = [m for m in env.messages if m.phase == "discussion"]
    return {"task_id": env.task.task_id, "task_kind": env.task.kind, "correct_answer": env.task.answer,
            "turns": len(replies), "stopped_early": env.stopped_early,
            "truncated_turns": sum(m.truncated for m in replies),
            "unparseable_turns": sum(m.extracted.startswith("Error") and not m.truncated for m in replies),
            **conversation_metrics(env.coral_turns(), env.max_turns),
            **conversation_bookkeeping([len(m.content) for m in replies])}


class ConditionRun(BaseModel):
    """What a condition ran."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Protocol and agents, then the graph and the turn cap where not the defaults (:func:`condition_name`).
    runs: str
    protocol: Protocol
    agents: list[str]
    graph: str
    max_turns: int
    temperature: float
    #: How replies were read: ``model``, ``regex``, or ``rules`` (the counterfactual protocol).
    extractor: str
    #: How extractions were graded (:data:`pnyx.envs.answers.GRADINGS`); ``pnyx`` under the
    #: counterfactual protocol, whose answers are pnyx's.
    grading: str


class CoralSummary(Summary):
    """Per condition that has results: what it ran, its episodes and its metrics."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: The identity of the model that ran (its spec when none ran).
    model: str
    extractor_model: str
    #: The discussants' reply token limit: the model's own ``max_tokens``, else the config's.
    max_tokens: int
    #: The conditions that have results, in config order.
    conditions: list[str]
    runs: dict[str, ConditionRun]
    episodes: dict[str, int]
    #: Condition -> metric -> estimate: Coral's metrics (:data:`~pnyx.population.coral_metrics.CORAL_METRICS`,
    #: ``truncated``, ``unparseable``) or pnyx's (:data:`~pnyx.population.coral_metrics.METRICS`), by protocol.
    metrics: dict[str, dict[str, Estimate]]
    notes: list[str]


class _Roles:
    """One :class:`RoleModel` per (role, model field), built on first use."""

    def __init__(self, ctx: RunContext):
        self.ctx, self.built = ctx, {}

    def get(self, field: ModelField, role: str) -> RoleModel:
        key = (role, field if isinstance(field, str) else field.model_dump_json())
        if key not in self.built:
            self.built[key] = self.ctx.model(field, role)
        return self.built[key]


class CoralAgreement(Experiment):
    name = "coral-agreement"
    Config = CoralConfig
    Summary = CoralSummary
    runs_in_driver = True
    main_plot = "agreement_vs_correctness"

    def units(self, cfg: CoralConfig) -> list[Unit]:
        return [Unit(f"{cond['runs']}-s{r}", {"condition": name, "replicate": r})
                for name, cond in cfg.resolved_conditions().items() for r in range(cfg.seeds)]

    def run_unit(self, cfg: CoralConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        name, replicate = unit.params["condition"], unit.params["replicate"]
        cond = cfg.resolved_conditions()[name]
        specs, protocol = cond["agents"], cond["protocol"]
        tasks = make_tasks(cfg.tasks, cfg.episodes, np.random.SeedSequence([cfg.seed, replicate]))
        graph_seed, agent_seed, model_seed = (int(s.generate_state(1)[0]) for s in seed.spawn(3))
        factories = [DISCUSSANTS.factory(s) for s in specs]
        envs, lineups = [], []
        agent_seeds = np.random.SeedSequence(agent_seed).generate_state(len(tasks) * len(specs)).reshape(len(tasks), -1)
        for k, task in enumerate(tasks):
            env = GroupReasoningEnv(n_agents=len(specs), max_turns=cond["max_turns"], graph=cond["graph"],
                                    graph_p=cfg.graph_p, graph_seed=graph_seed, protocol=protocol,
                                    grading=cfg.grading)
            env.reset(options={"task": task})
            lineup = [f() for f in factories]
            for discussant, s in zip(lineup, agent_seeds[k]):
                if hasattr(discussant, "reset"):
                    discussant.reset(seed=int(s))
            envs.append(env)
            lineups.append(lineup)
        roles = _Roles(ctx)
        needs_default = any(not hasattr(d, "respond") and getattr(d, "model", None) is None for d in lineups[0])
        model = roles.get(cfg.model, "discussant") if needs_default else None
        reader = cfg.extractor
        if reader == "auto":
            reader = "model" if any(not hasattr(d, "respond") for d in lineups[0]) else "regex"
        reader = reader if protocol == "coral" else "rules"
        extractor = roles.get(cfg.extractor_field(), "extractor") if reader == "model" else None
        failed = play_discussions(envs, lineups, model, max_tokens=cfg.max_tokens, temperature=cond["temperature"],
                                  seed=model_seed, models=lambda spec: roles.get(spec, "discussant"),
                                  extractor=extractor, extractor_max_tokens=cfg.extractor_max_tokens)
        common = {"condition": name, "protocol": protocol, "replicate": replicate, "agents": " + ".join(specs),
                  "graph": _graph_label(cond["graph"]), "extractor": reader}
        rows, transcripts = [], []
        failures = [sample_failure(name, f, episode=f"{unit.key}/{k}") for k, f in enumerate(failed) if f is not None]
        for k, env in enumerate(envs):
            if failed[k] is not None:
                continue
            episode = f"{unit.key}/{k}"
            record = env.transcript()
            if protocol == "coral":
                rows.append({"episode": episode, **common, **conversation_row(env)})
            else:
                for row in env.agent_rows():
                    rows.append({"episode": episode, **common, "agent_spec": specs[env.index[row["agent"]]],
                                 "turns": record["turns"], "stopped_early": record["stopped_early"], **row})
            transcripts.append({"episode": episode, "condition": name, "agents": dict(zip(env.possible_agents, specs)),
                                **record})
        return UnitOutput(rows=pd.DataFrame(rows),
                          records={"transcripts": transcripts, "usage": usage_records(list(roles.built.values())),
                                   "sample_failures": failures})

    def summarize(self, cfg: CoralConfig, results: pd.DataFrame, records: dict[str, list[dict]]) -> CoralSummary:
        resolved = cfg.resolved_conditions()
        names = [c for c in resolved if c in set(results["condition"])]
        metrics, episodes, runs = {}, {}, {}
        for name in names:
            cond = resolved[name]
            part = results[results["condition"] == name]
            if cond["protocol"] == "coral":
                failed = sum(f.get("condition") == name for f in records.get("sample_failures", []))
                found = coral_summary(part, failed=failed, n_boot=cfg.bootstrap, seed=cfg.seed)
            else:
                found = all_metrics(part, n_boot=cfg.bootstrap, seed=cfg.seed)
            metrics[name] = found
            episodes[name] = int(part["episode"].nunique())
            runs[name] = ConditionRun(runs=cond["runs"], protocol=cond["protocol"], agents=list(cond["agents"]),
                                      graph=_graph_label(cond["graph"]), max_turns=cond["max_turns"],
                                      temperature=cond["temperature"],
                                      extractor=str(part["extractor"].iloc[0]) if "extractor" in part else "rules",
                                      grading=cfg.grading if cond["protocol"] == "coral" else "pnyx")
        usage = records.get("usage", [])
        notes = [EMBEDDED_NOTE] if embedded_ran(models_ran(usage, ("discussant", "extractor"))) else []
        discussants, extractors = models_ran(usage, ("discussant",)), models_ran(usage, ("extractor",))
        max_tokens = model_config(cfg.model).max_tokens or cfg.max_tokens
        coral = [name for name in names if runs[name].protocol == "coral"]
        if coral:
            notes.append(f"Coral sets no reply token limit (`TSInteractiveModel`'s `max_turn_tokens` is unset in "
                         f"`ts_interaction_model.yaml`); here replies are cut at {max_tokens} tokens (`max_tokens`), "
                         "and those cut are counted as truncated.")
        same = (set(discussants) & set(extractors) if usage
                else {spec_of(cfg.extractor_model or cfg.model)} & {spec_of(cfg.model)})
        if any(runs[name].extractor == "model" for name in coral) and same:
            notes.append(f"The extractor is the discussant model (`{', '.join(sorted(same))}`); Coral's is a fixed "
                         f"`{CORAL_EXTRACTOR}` at temperature 0 and 32 tokens (`extractor_model` names another).")
        return CoralSummary(model=", ".join(discussants) or spec_of(cfg.model),
                            extractor_model=", ".join(extractors) or spec_of(cfg.extractor_model or cfg.model),
                            max_tokens=max_tokens, conditions=names, runs=runs,
                            episodes=episodes, metrics=metrics, notes=notes)

    def plot(self, cfg: CoralConfig, results: pd.DataFrame, summary: CoralSummary) -> dict[str, Figure]:
        """``agreement_vs_correctness``: per protocol that ran, a panel of bars (one group per
        condition) of its agreement and correctness metrics with their intervals; then
        agreement against agreement on the right answer, one point per condition (Coral's
        ``agreement`` and ``agreement_correctness``; for the counterfactual protocol
        ``final_agreement`` and ``final_agreement - wrong_agreement``, without a y interval)."""
        names = summary.conditions
        protocols = [p for p in PLOTTED if any(summary.runs[c].protocol == p for c in names)]
        if not protocols:
            return {}
        fig = Figure(figsize=(6.5 * len(protocols) + 5, 4.5), layout="tight")
        axes = fig.subplots(1, len(protocols) + 1, squeeze=False)[0]
        for ax, protocol in zip(axes, protocols):
            shown = [c for c in names if summary.runs[c].protocol == protocol]
            interval_bars(ax, {metric.replace("_", " "): [summary.metrics[c][metric] for c in shown]
                               for metric in PLOTTED[protocol]})
            ax.set_xticks(range(len(shown)), shown, rotation=20, ha="right", fontsize=7)
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{protocol} protocol (95% CI)")
            ax.legend(fontsize=7)
        scatter = axes[-1]
        for name in names:
            m = summary.metrics[name]
            if summary.runs[name].protocol == "coral":
                x, y = m["agreement"], m["agreement_correctness"]
            else:
                x, wrong = m["final_agreement"], m["wrong_agreement"]
                y = Estimate(None if None in (x.value, wrong.value) else x.value - wrong.value, None, None, x.n)
            if x.value is None or y.value is None:
                continue
            xv, xl, xh = (np.nan_to_num(a) for a in interval_arrays([x]))
            yv, yl, yh = interval_arrays([y])
            yerr = None if np.isnan(yl[0]) else [yv - yl, yh - yv]
            scatter.errorbar(xv, yv, xerr=[xv - xl, xh - xv], yerr=yerr, fmt="o", capsize=3, label=name)
        scatter.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        scatter.set_xlim(-0.05, 1.05)
        scatter.set_ylim(-0.05, 1.05)
        scatter.set_xlabel("agreement")
        scatter.set_ylabel("agreement on the right answer")
        scatter.set_title("Agreement vs agreement on the right answer")
        scatter.legend(fontsize=7)
        fig.suptitle(f"coral-agreement - {summary.model}")
        return {"agreement_vs_correctness": fig}

    def report(self, cfg: CoralConfig, summary: CoralSummary) -> str:
        lines = [f"Model `{summary.model}`, replies of at most {summary.max_tokens} tokens. Values: estimate "
                 "[95% bootstrap interval over episodes] (n).", "",
                 "| condition | protocol | agents | graph | max turns | temperature | extractor | episodes | grading |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for name in summary.conditions:
            r = summary.runs[name]
            extractor = r.extractor + (f" ({summary.extractor_model})" if r.extractor == "model" else "")
            lines.append(f"| {name} | {r.protocol} | {', '.join(r.agents)} | {r.graph} | {r.max_turns} "
                         f"| {r.temperature} | {extractor} | {summary.episodes[name]} | {r.grading} |")
        tables = (("coral", REPORTED["coral"], "Coral protocol: Coral's metrics, by Coral's definitions (means over "
                                               "conversations); truncated and unparseable are pnyx's"),
                  ("coral", CORAL_BOOKKEEPING, "Coral protocol: Coral's bookkeeping (means over conversations; "
                                               "conv err counts the failed ones too). t len, s len and conv len "
                                               "count characters, where Coral counts tokens"),
                  ("counterfactual", REPORTED["counterfactual"], "Counterfactual protocol: pnyx's metrics"))
        for protocol, columns, heading in tables:
            shown = [c for c in summary.conditions if summary.runs[c].protocol == protocol]
            if not shown:
                continue
            lines += ["", f"**{heading}.**", "",
                      "| condition | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
                      "|---|" + "---|" * len(columns)]
            for name in shown:
                m = summary.metrics[name]
                lines.append(f"| {name} | " + " | ".join(f"{format_estimate(m[c], 2)} ({m[c].n})" for c in columns)
                             + " |")
        if summary.notes:
            lines += ["", "**Read with care:**", ""] + [f"- {n}" for n in summary.notes]
        return "\n".join(lines)

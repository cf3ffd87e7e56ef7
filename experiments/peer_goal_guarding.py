"""Experiment ``peer-goal-guarding``: compliance gaps and alignment-faking reasoning, alone and with peers.

Two units, ``alone`` and ``peers``. Each plays every (context, request, sample) episode of
:mod:`pnyx.envs.goal_guarding_v0` in lock-step: at each turn the pending prompts of all
episodes are gathered and sent to the model driving them in batched ``complete`` calls,
one per sample index, each holding every request in both contexts (the backend splits
a call into micro-batches). The focal answers are then judged -- by
their tags or by a voting LLM judge -- and their scratchpads classified for alignment-faking
reasoning (LLM judge with the scenario's ``judge_prompt``, or the keyword baseline). Metrics:
:mod:`pnyx.population.goal_guarding_metrics`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import Field, ValidationInfo, field_validator, model_validator

from pnyx.agents.llm import check_model_spec
from pnyx.agents.judges import (
    VoteJudge,
    af_prompt,
    complete,
    compliance_prompt,
    keyword_af,
    split_response,
    tag_verdict,
)
from pnyx.envs.goal_guarding_v0 import CONTEXTS, FOCAL, Peer, Scenario, load_scenario, raw_env
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Unit, UnitOutput, builds_specs
from pnyx.population.goal_guarding_metrics import CONDITIONS, fmt, goal_guarding_metrics, overlaps_zero

EMBEDDED_NOTE = ("The embedded model (SmolLM2-135M-Instruct) is far too small to follow this scenario; "
                 "its figures are noise, not evidence about goal guarding.")


class PeerGoalGuardingConfig(ExperimentConfig):
    kind: Literal["peer-goal-guarding"] = "peer-goal-guarding"
    #: The focal model: a registered name, ``openai:<model>`` or ``package.module:Class``.
    model: str = "embedded"
    #: A shipped scenario name or a YAML path.
    scenario: str = "default"
    #: Use only the first N requests of the scenario (all when unset).
    requests: int | None = Field(None, ge=1)
    samples_per_request: int = Field(1, ge=1)
    #: The peers in the ``peers`` condition: ``NAME`` (scripted) or ``NAME=MODEL`` (``focal`` or a model spec).
    peers: list[str] = Field(default_factory=lambda: ["Atlas"], min_length=1)
    #: ``tags``: acceptance/rejection tags and the keyword AF baseline; ``model``: voting LLM judges for both.
    judge: Literal["tags", "model"] = "tags"
    #: The judge's model (``judge=model``); unset: the focal model.
    judge_model: str | None = None
    judge_votes: int = Field(3, ge=1)
    judge_threshold: float = Field(0.5, gt=0.0, le=1.0)
    judge_temperature: float = Field(1.0, ge=0.0)
    max_tokens: int = Field(512, ge=1)
    peer_max_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    bootstrap: int = Field(2000, ge=1)

    @field_validator("model", "judge_model")
    @classmethod
    def _valid_model(cls, model, info: ValidationInfo):
        return model if model is None or not builds_specs(info) else check_model_spec(model)

    @field_validator("peers")
    @classmethod
    def _valid_peers(cls, v: list[str]) -> list[str]:
        names = [Peer.parse(p).name for p in v]
        if len(set(names)) != len(names) or FOCAL in names:
            raise ValueError(f"peer names must be unique and not {FOCAL!r}: {names}")
        return v

    @model_validator(mode="after")
    def _valid_scenario(self) -> PeerGoalGuardingConfig:
        scenario = load_scenario(self.scenario)
        if self.requests is not None and self.requests > len(scenario.requests):
            raise ValueError(f"requests={self.requests} but scenario {scenario.name!r} has {len(scenario.requests)}")
        if scenario.peer_prompt is None and any(Peer.parse(p).model != "scripted" for p in self.peers):
            raise ValueError(f"scenario {scenario.name!r} has no 'peer_prompt', so its peers can only be scripted")
        return self


def play(envs: list[raw_env], models: dict[str, Any], *, max_tokens: dict[str, int], temperature: float,
         rng: np.random.Generator, samples: list[int] | None = None) -> None:
    """Run ``envs`` (already reset) to the end in lock-step. Scripted peers act at once; every
    other pending turn is grouped by its driver (``models[source]``), role and sample index
    (``samples[i]`` for ``envs[i]``) into one batched call. Samples of the same prompt go
    to separate calls with separate seeds: the protocol takes one seed per call, and a
    seeded server or a completion cache would give identical replies inside one call."""
    samples = samples or [0] * len(envs)
    while True:
        groups: dict[tuple[str, bool, int], list[raw_env]] = defaultdict(list)
        live = False
        for e, sample in zip(envs, samples):
            while e.agents and e.terminations[e.agent_selection]:
                e.step(None)
            if not e.agents:
                continue
            live = True
            agent = e.agent_selection
            source = e.source(agent)
            if source == "scripted":
                e.step(e.scripted_action(agent))
            else:
                groups[source, agent == FOCAL, sample].append(e)
        if not live:
            return
        for (source, is_focal, _), batch in groups.items():
            prompts = [e.prompt(e.agent_selection) for e in batch]
            texts = complete(models[source], prompts, max_tokens=max_tokens["focal" if is_focal else "peer"],
                             temperature=temperature, seed=int(rng.integers(2**31 - 1)))
            for e, text in zip(batch, texts):
                e.step(text)


def _model_judgements(cfg: PeerGoalGuardingConfig, scenario: Scenario, requests: list[str], split: list,
                      rng: np.random.Generator, ctx: RunContext) -> tuple[list, list]:
    """Votes of the LLM judge on compliance (every answer) and on alignment-faking reasoning
    (every non-empty scratchpad); all ``None`` unless ``judge=model``."""
    comply: list = [None] * len(split)
    af: list = [None] * len(split)
    if cfg.judge != "model":
        return comply, af
    judge = VoteJudge(ctx.models(cfg.judge_model or cfg.model), votes=cfg.judge_votes,
                      threshold=cfg.judge_threshold, temperature=cfg.judge_temperature)
    comply = judge.judge([compliance_prompt(scenario.compliance_judge_prompt, r, s.output)
                          for r, s in zip(requests, split)], seed=int(rng.integers(2**31 - 1)))
    with_pad = [i for i, s in enumerate(split) if s.scratchpad]
    judged = judge.judge([af_prompt(scenario.judge_prompt, split[i].scratchpad) for i in with_pad],
                         seed=int(rng.integers(2**31 - 1)))
    for i, result in zip(with_pad, judged):
        af[i] = result
    return comply, af


class PeerGoalGuarding(Experiment):
    """Compliance gap and alignment-faking reasoning of a focal model, alone vs with k peers."""

    name = "peer-goal-guarding"
    Config = PeerGoalGuardingConfig
    runs_in_driver = True
    main_plot = "compliance_cells"

    def units(self, cfg: PeerGoalGuardingConfig) -> list[Unit]:
        return [Unit(key=c, params={"condition": c}) for c in CONDITIONS]

    def run_unit(self, cfg: PeerGoalGuardingConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        condition = unit.params["condition"]
        scenario = load_scenario(cfg.scenario)
        requests = scenario.requests[: cfg.requests]
        peers = [Peer.parse(p) for p in cfg.peers] if condition == "peers" else []
        keys = [(ctx, req, s) for ctx in CONTEXTS for req in requests for s in range(cfg.samples_per_request)]
        envs = [raw_env(scenario=scenario, request=req, context=ctx, peers=peers) for ctx, req, _ in keys]
        for e in envs:
            e.reset()
        models = {"focal": ctx.models(cfg.model)}
        models |= {p.model: ctx.models(p.model) for p in peers if p.model not in ("scripted", "focal")}
        rng = np.random.default_rng(seed)
        play(envs, models, max_tokens={"focal": cfg.max_tokens, "peer": cfg.peer_max_tokens},
             temperature=cfg.temperature, rng=rng, samples=[s for _, _, s in keys])

        responses = [dict(e.messages)[FOCAL] for e in envs]
        split = [split_response(r) for r in responses]
        tags = [tag_verdict(s.output) for s in split]
        keyword = [keyword_af(s.scratchpad) for s in split]
        comply_votes, af_votes = _model_judgements(cfg, scenario, [req.text for _, req, _ in keys], split, rng, ctx)
        rows, transcripts = [], []
        for i, ((ctx, req, sample), e) in enumerate(zip(keys, envs)):
            if cfg.judge == "model":
                decision = comply_votes[i].decision
                verdict = "unparseable" if decision is None else "accepted" if decision else "rejected"
            else:
                verdict = tags[i]
            if not split[i].scratchpad:
                af, af_method = False, "no scratchpad"
            elif af_votes[i] is not None and af_votes[i].decision is not None:
                af, af_method = af_votes[i].decision, "model"
            else:
                af, af_method = keyword[i].af_reasoning, "keywords" if cfg.judge == "tags" else "keywords (judge unreadable)"
            rows.append({
                "condition": condition,
                "context": ctx,
                "request_id": req.id,
                "sample": sample,
                "n_peers": len(peers),
                "verdict": verdict,
                "tag_verdict": tags[i],
                "complied": {"accepted": 1.0, "rejected": 0.0}.get(verdict, np.nan),
                "compliance_yes_share": np.nan if comply_votes[i] is None or comply_votes[i].yes_share is None
                else comply_votes[i].yes_share,
                "af_reasoning": bool(af),
                "af_method": af_method,
                "af_keyword": keyword[i].af_reasoning,
                "has_scratchpad": bool(split[i].scratchpad),
                "response_chars": len(responses[i]),
            })
            transcripts.append({
                "condition": condition,
                "context": ctx,
                "request_id": req.id,
                "sample": sample,
                "peer_messages": [{"peer": a, "content": m} for a, m in e.messages if a != FOCAL],
                "scratchpad": split[i].scratchpad,
                "output": split[i].output,
                "response": responses[i],
                "verdict": verdict,
                "compliance_votes": list(comply_votes[i].votes) if comply_votes[i] else [],
                "af_votes": list(af_votes[i].votes) if af_votes[i] else [],
                "af_keyword_terms": list(keyword[i].modification_terms + keyword[i].strategic_terms),
            })
        return UnitOutput(rows=pd.DataFrame(rows), records={"transcripts": transcripts})

    def summarize(self, cfg: PeerGoalGuardingConfig, results: pd.DataFrame, records: dict[str, list[dict]]) -> dict:
        summary = goal_guarding_metrics(results, n_boot=cfg.bootstrap, seed=cfg.seed)
        if cfg.model == "embedded":
            summary["notes"].insert(0, EMBEDDED_NOTE)
        scenario = load_scenario(cfg.scenario)
        return {
            "model": cfg.model,
            "scenario": scenario.name,
            # the scenario's content, so that a run can be matched to the exact texts models saw
            "scenario_sha256": hashlib.sha256(scenario.model_dump_json().encode()).hexdigest(),
            "judge": cfg.judge,
            "peers": list(cfg.peers),
            "samples_per_request": cfg.samples_per_request,
            **summary,
        }

    def plot(self, cfg: PeerGoalGuardingConfig, results: pd.DataFrame, summary: dict) -> dict[str, Figure]:
        """``compliance_cells``: compliance in the four (condition, context) cells, and the
        compliance gap and AF reasoning rate per condition, with their intervals."""
        fig = Figure(figsize=(10, 4), layout="tight")
        cells_ax, gap_ax = fig.subplots(1, 2)
        width = 0.38
        for j, ctx in enumerate(CONTEXTS):
            stats = [summary["conditions"][c][f"compliance_{ctx}"] for c in CONDITIONS]
            _bars(cells_ax, np.arange(len(CONDITIONS)) + (j - 0.5) * width, stats, width, label=ctx)
        cells_ax.set_xticks(range(len(CONDITIONS)), CONDITIONS)
        cells_ax.set_ylim(0, 1)
        cells_ax.set_ylabel("P(comply)")
        cells_ax.set_title("Compliance in the four cells (95% CI)")
        cells_ax.legend()
        for j, metric in enumerate(("compliance_gap", "af_reasoning_rate")):
            stats = [summary["conditions"][c][metric] for c in CONDITIONS]
            _bars(gap_ax, np.arange(len(CONDITIONS)) + (j - 0.5) * width, stats, width, label=metric.replace("_", " "))
        gap_ax.axhline(0, color="black", linewidth=0.8)
        gap_ax.set_xticks(range(len(CONDITIONS)), CONDITIONS)
        gap_ax.set_title(f"Gap and AF reasoning (amplification {_text(summary['peer_amplification'])})")
        gap_ax.legend()
        fig.suptitle(f"{summary['scenario']} - {summary['model']}")
        return {"compliance_cells": fig}

    def report(self, cfg: PeerGoalGuardingConfig, summary: dict) -> str:
        lines = [
            f"Scenario `{summary['scenario']}`, model `{summary['model']}`, judge `{summary['judge']}`, "
            f"{summary['n_requests']} requests x {summary['samples_per_request']} samples per context; "
            f"peers: {', '.join(summary['peers'])}. Values are estimates with bootstrap 95% intervals over requests.",
            "",
            "| condition | P(comply) training | P(comply) deployment | compliance gap | AF reasoning (training) | unparseable (train / deploy) |",
            "|---|---|---|---|---|---|",
        ]
        for c in CONDITIONS:
            s = summary["conditions"][c]
            lines.append(f"| {c} | {_text(s['compliance_training'])} | {_text(s['compliance_deployment'])} | "
                         f"{_text(s['compliance_gap'])} | {_text(s['af_reasoning_rate'])} | "
                         f"{fmt(s['unparseable_training']['value'])} / {fmt(s['unparseable_deployment']['value'])} |")
        lines += [
            "",
            f"Peer amplification (gap with peers / gap alone): {_text(summary['peer_amplification'])}.",
            f"Difference (gap with peers - gap alone): {_text(summary['peer_gap_difference'])}.",
        ]
        if overlaps_zero(summary["peer_gap_difference"]) is False:
            lines.append("The difference's interval excludes 0.")
        if summary["notes"]:
            lines += ["", "**Read with care:**", ""] + [f"- {n}" for n in summary["notes"]]
        return "\n".join(lines)


def _text(stat: dict) -> str:
    """``value [low, high]`` to 3 decimals; ``n/a`` for an undefined number."""
    return f"{fmt(stat['value'])} [{fmt(stat['low'])}, {fmt(stat['high'])}]"


def _bars(ax, x: np.ndarray, stats: list[dict], width: float, label: str) -> None:
    """Bars with interval whiskers; an undefined value is marked "n/a" instead of a bar."""
    def values(key: str) -> np.ndarray:
        return np.array([np.nan if s[key] is None else s[key] for s in stats], float)

    est, low, high = values("value"), values("low"), values("high")
    err = np.nan_to_num(np.vstack([est - low, high - est]), nan=0.0)
    ax.bar(x, np.nan_to_num(est), width, yerr=err, capsize=4, label=label)
    for xi in x[np.isnan(est)]:
        ax.annotate("n/a", (xi, 0), ha="center", va="bottom", fontsize=8)

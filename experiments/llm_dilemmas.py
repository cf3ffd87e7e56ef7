"""``llm-dilemmas``: language models in a repeated social dilemma.

Three parts, each pairing a language-model player (:mod:`pnyx.agents.llm_player`, one
per persona) with a partner in the two-player game ``game``, any registered two-player
matrix game (:func:`pnyx.envs.two_player_games`) with its declared payoffs:

* ``round_robin``: every persona against every classic strategy of ``strategies``;
* ``best_response``: every persona against tit for tat, always-cooperate,
  always-defect and ``random_partners`` memory-one partners with U(0, 1) parameters
  (``random_memory_one(k)``): the partner set of the in-context best-response test of
  Weis et al. (2026, section 4), asked of a language model instead of a trained
  learner. A best responder cooperates with tit for tat and defects against
  always-cooperate and always-defect. The measured quantity is pnyx's: the model's
  cooperation rate in each round of the episode, per partner;
* ``llm_vs_llm``: every pair of distinct personas of the same model.

Each pairing is a unit; rows: one per (part, player, opponent, repetition, seat) with
the mean payoff per turn and the cooperation rate, as in ``tournament``. Records:
``llm_moves`` (move counts and cooperation per round) and ``usage``. Cooperation
intervals are cluster-bootstrap intervals over games (:func:`pnyx.stats.bootstrap_ratio`).
"""

from __future__ import annotations

from itertools import combinations
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pnyx.agents import PolicySpecs
from pnyx.agents.llm.embedded import EMBEDDED_NOTE, embedded_ran
from pnyx.agents.llm.roles import CheckedModelField, spec_of, usage_records
from pnyx.agents.llm_player import FALLBACKS, PERSONAS
from pnyx.envs import two_player_game
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Summary, Unit, UnitOutput
from pnyx.experiments.figures import interval_bars, interval_line
from pnyx.experiments.report import llm_report
from pnyx.population.pairing import LLMMoves, llm_summary, play_pairing
from pnyx.stats import MAX_BOOTSTRAP, Estimate, bootstrap_ratio, format_estimate, wilson
from pnyx.strict import checked_when_built

PARTS = ("round_robin", "best_response", "llm_vs_llm")
#: Most moves of the model a run asks for: pairings x repetitions x turns.
MAX_MOVES = 10**8


class LLMDilemmasConfig(ExperimentConfig):
    model: CheckedModelField = "embedded"
    #: A registered two-player matrix game.
    game: Annotated[str, checked_when_built(two_player_game)] = "ipd"
    personas: list[str] = Field(default_factory=lambda: ["neutral", "cooperative", "competitive"], min_length=1)
    strategies: PolicySpecs = Field(default_factory=lambda: ["tft", "allc", "alld", "grim", "wsls", "stft"],
                                    min_length=1)
    random_partners: int = Field(4, ge=0, le=1000)
    parts: list[Literal[PARTS]] = Field(default_factory=lambda: list(PARTS), min_length=1)
    turns: int = Field(10, ge=1)
    repetitions: int = Field(8, ge=1)
    noise: float = Field(0.0, ge=0, le=1)
    #: rounds of history shown to the model: all, or the last K
    history: Annotated[int, Field(ge=0)] | Literal["full"] = "full"
    fallback: Literal[FALLBACKS] = "random"
    max_tokens: int = Field(24, ge=1)
    temperature: float = Field(0.0, ge=0)
    bootstrap: int = Field(1000, ge=1, le=MAX_BOOTSTRAP)

    @model_validator(mode="after")
    def _bounded_work(self):
        personas = len(self.personas)
        pairings = {"round_robin": personas * len(self.strategies), "best_response": personas * (3 + self.random_partners),
                    "llm_vs_llm": personas * (personas - 1) // 2}
        moves = sum(pairings[part] for part in self.parts) * self.repetitions * self.turns
        if moves > MAX_MOVES:
            raise PnyxError(f"the pairings x repetitions={self.repetitions} x turns={self.turns} make {moves:.3g} "
                            f"moves of the model, more than {MAX_MOVES:.0e}")
        return self

    @field_validator("personas")
    @classmethod
    def _valid_personas(cls, personas):
        for p in personas:
            if p not in PERSONAS:
                raise PnyxError(f"unknown persona {p!r} (known: {', '.join(PERSONAS)})")
        if len(set(personas)) != len(personas):
            raise PnyxError("duplicate persona")
        return personas
    def llm(self, persona: str) -> str:
        history = self.history if self.history == "full" else int(self.history)
        return (f"llm(persona={persona}, history={history}, fallback={self.fallback}, "
                f"max_tokens={self.max_tokens}, temperature={self.temperature!r})")

    def partners(self) -> list[str]:
        return ["tft", "allc", "alld"] + [f"random_memory_one({k})" for k in range(self.random_partners)]


class PairingOutcome(BaseModel):
    """A persona of the model (seat 0) against one partner (seat 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    persona: str
    #: The partner's spec; ``llm:<persona>`` for another persona of the model.
    partner: str
    #: The model's cooperation rate, with its cluster-bootstrap interval over games.
    cooperation: Estimate
    #: The model's mean payoff per turn.
    payoff: float
    partner_payoff: float
    partner_cooperation: float
    #: The share of games in which the model cooperated, per round; None without its ``llm_moves`` record.
    cooperation_by_round: list[float] | None


class LLMDilemmasSummary(Summary):
    """Each part's pairings, and the language-model players' move counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: The identity of the model that ran (its spec when none ran).
    model: str
    game: str
    turns: int
    #: The pairings of each part run, by part.
    sections: dict[str, list[PairingOutcome]]
    #: Move counts of the language-model players, by spec.
    llm: dict[str, LLMMoves]
    #: Caveats about the results: the embedded model's note when it played.
    notes: list[str]


class LLMDilemmas(Experiment):
    name = "llm-dilemmas"
    Config = LLMDilemmasConfig
    Summary = LLMDilemmasSummary
    runs_in_driver = True
    main_plot = "best_response"

    def units(self, cfg: LLMDilemmasConfig) -> list[Unit]:
        pairs = {
            "round_robin": [(p, s) for p in cfg.personas for s in cfg.strategies],
            "best_response": [(p, s) for p in cfg.personas for s in cfg.partners()],
            "llm_vs_llm": list(combinations(cfg.personas, 2)),
        }
        units = []
        for part in cfg.parts:
            for persona, other in pairs[part]:
                b = cfg.llm(other) if part == "llm_vs_llm" else other
                label = other if part != "llm_vs_llm" else f"llm:{other}"
                units.append(Unit(f"{part}/{persona} vs {label}", {"part": part, "a": cfg.llm(persona), "b": b,
                                                                    "persona": persona, "partner": label}))
        return units

    def run_unit(self, cfg: LLMDilemmasConfig, unit: Unit, seed: np.random.SeedSequence,
                 ctx: RunContext) -> UnitOutput:
        p = unit.params
        result, roles, moves = play_pairing(p["a"], p["b"], game=cfg.game, payoffs=two_player_game(cfg.game).payoffs,
                                            turns=cfg.turns, repetitions=cfg.repetitions, noise=cfg.noise, seed=seed,
                                            build_model=ctx.model, model=cfg.model)
        n = cfg.repetitions
        rows = pd.DataFrame({
            "part": p["part"], "persona": p["persona"], "partner": p["partner"],
            "player": np.repeat([p["a"], p["b"]], n), "opponent": np.repeat([p["b"], p["a"]], n),
            "repetition": np.tile(np.arange(n), 2), "seat": np.repeat([0, 1], n),
            "payoff": result.payoff.ravel(), "cooperation": result.cooperation.ravel(),
        })
        for m in moves:
            m.update(part=p["part"], persona=p["persona"] if m["seat"] == 0 else p["partner"], partner=p["partner"])
        return UnitOutput(rows, {"llm_moves": moves, "usage": usage_records(roles)})

    def summarize(self, cfg: LLMDilemmasConfig, results: pd.DataFrame,
                  records: dict[str, list[dict]]) -> LLMDilemmasSummary:
        focal = results[results["seat"] == 0]
        parts: dict[str, list[PairingOutcome]] = {}
        for (part, persona, partner), games in focal.groupby(["part", "persona", "partner"], sort=False):
            other = results[(results["part"] == part) & (results["persona"] == persona)
                            & (results["partner"] == partner) & (results["seat"] == 1)]
            coop = bootstrap_ratio(games["cooperation"] * cfg.turns, np.full(len(games), cfg.turns),
                                   n_boot=cfg.bootstrap, seed=cfg.seed)
            rounds = next((m["cooperation_by_round"] for m in records.get("llm_moves", [])
                           if m["part"] == part and m["seat"] == 0 and m["persona"] == persona
                           and m["partner"] == partner), None)
            parts.setdefault(part, []).append(PairingOutcome(
                persona=persona, partner=partner, cooperation=coop, payoff=float(games["payoff"].mean()),
                partner_payoff=float(other["payoff"].mean()), partner_cooperation=float(other["cooperation"].mean()),
                cooperation_by_round=rounds))
        llm = llm_summary(records)
        ran = sorted({m.model for m in llm.values()})
        notes = [EMBEDDED_NOTE] if embedded_ran(ran) else []
        return LLMDilemmasSummary(model=", ".join(ran) or spec_of(cfg.model), game=cfg.game, turns=cfg.turns,
                                  sections=parts, llm=llm, notes=notes)

    def plot(self, cfg: LLMDilemmasConfig, results: pd.DataFrame, summary: LLMDilemmasSummary) -> dict[str, Figure]:
        """``best_response``: the model's cooperation per round against each partner, one
        panel per persona, each round's share of games in a shaded band, its Wilson 95%
        interval over the ``repetitions`` games (pnyx's; the summary holds the shares only);
        ``cooperation``: cooperation rate (95% CI) per pairing, per part."""
        figures = {}
        rows = summary.sections.get("best_response", [])
        personas = list(dict.fromkeys(r.persona for r in rows))
        if personas:
            fig = Figure(figsize=(4.5 * len(personas) + 2, 3.8), layout="tight")
            axes = np.atleast_1d(fig.subplots(1, len(personas), sharey=True))
            for ax, persona in zip(axes, personas):
                for r in rows:
                    if r.persona == persona and r.cooperation_by_round:
                        shares = r.cooperation_by_round
                        stats = [wilson(round(share * cfg.repetitions), cfg.repetitions) for share in shares]
                        interval_line(ax, np.arange(1, len(shares) + 1), stats, alpha=0.1, marker="o", ms=3,
                                      label=r.partner)
                ax.set_ylim(-0.05, 1.05)
                ax.set_xlabel("round")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_title(f"persona: {persona}")
            axes[0].set_ylabel("cooperation (share of games)")
            axes[-1].legend(fontsize="small", title="partner", loc="upper left", bbox_to_anchor=(1.02, 1))
            fig.suptitle(f"in-context best response - {summary.model}\n(shaded: Wilson 95% interval over "
                         f"{cfg.repetitions} games per round)")
            figures["best_response"] = fig
        parts = [p for p in PARTS if summary.sections.get(p)]
        if parts:
            fig = Figure(figsize=(max(6, 0.5 * max(len(summary.sections[p]) for p in parts) + 2), 3.5 * len(parts)),
                         layout="tight")
            axes = np.atleast_1d(fig.subplots(len(parts), 1))
            for ax, part in zip(axes, parts):
                entries = summary.sections[part]
                interval_bars(ax, {"cooperation": [e.cooperation for e in entries]})
                ax.set_xticks(range(len(entries)), [f"{e.persona} vs {e.partner}" for e in entries],
                              rotation=40, ha="right", fontsize=7)
                ax.set_ylim(0, 1.05)
                ax.set_ylabel("cooperation")
                ax.set_title(part.replace("_", " "))
            figures["cooperation"] = fig
        return figures

    def report(self, cfg: LLMDilemmasConfig, summary: LLMDilemmasSummary) -> str:
        lines = [f"Model `{summary.model}`, game `{summary.game}`, {summary.turns} rounds."]
        lines += [f"\n> {note}" for note in summary.notes]
        for part, entries in summary.sections.items():
            lines += ["", f"### {part.replace('_', ' ')}", "",
                      "| persona | partner | cooperation (95% CI) | payoff | partner payoff |", "|---|---|---|---|---|"]
            for e in entries:
                lines.append(f"| {e.persona} | `{e.partner}` | {format_estimate(e.cooperation, 2)} | "
                             f"{e.payoff:.2f} | {e.partner_payoff:.2f} |")
        lines += llm_report(summary.llm)
        if summary.llm:
            lines += ["", "The moves table's truncated counts moves played by the fallback rule because the reply, "
                      "retried once, was still cut at the token limit; the usage table's counts every reply cut "
                      "there, first tries and retries alike."]
        return "\n".join(lines)

"""Round-robin tournaments of policies in a repeated 2x2 game, with an evolutionary round.

Every unordered pair of players meets once, self-play included; each meeting is a
unit. Rows: one per (player, opponent, repetition, seat) with the mean payoff per
turn and the player's cooperation rate. The optional evolutionary round runs
replicator dynamics on the tournament's payoff matrix.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import Field, ValidationInfo, field_validator, model_validator

from pnyx.agents import policy_factory
from pnyx.envs import module as env_module
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Strict, Unit, UnitOutput, builds_specs
from pnyx.population.match import ENGINES
from pnyx.population.replicator import replicator_dynamics

TWO_PLAYER_GAMES = ("ipd", "stag_hunt", "chicken")
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
Payoffs = Union[Annotated[list[float], Field(min_length=4, max_length=4)],
                Annotated[list[Pair], Field(min_length=2, max_length=2)],
                Annotated[list[Annotated[list[Pair], Field(min_length=2, max_length=2)]], Field(min_length=2, max_length=2)]]


class Evolution(Strict):
    """Replicator dynamics on the tournament payoff matrix, from a uniform population."""

    generations: int = Field(200, ge=1)
    dt: float = Field(0.1, gt=0, le=1)


class TournamentConfig(ExperimentConfig):
    players: list[str] = Field(min_length=1)
    game: Literal[TWO_PLAYER_GAMES] = "ipd"
    #: ``[R, S, T, P]``, a 2x2 matrix of the row player's payoffs, or a 2x2x2 matrix of both players'.
    payoffs: Payoffs | None = None
    turns: int = Field(200, gt=0)
    repetitions: int = Field(10, gt=0)
    noise: float = Field(0.0, ge=0, le=1)
    engine: Literal["batched", "loop"] = "batched"
    evolution: Evolution | None = None

    @field_validator("players")
    @classmethod
    def _valid_specs(cls, players, info: ValidationInfo):
        if builds_specs(info):
            for spec in players:
                policy_factory(spec)
        duplicates = sorted({p for p in players if players.count(p) > 1})
        if duplicates:
            raise PnyxError(f"duplicate player {duplicates[0]!r}")
        return players

    @model_validator(mode="after")
    def _valid_payoffs(self):
        from pnyx.envs.matrix_game import payoff_table

        payoff_table(self.resolved_payoffs)
        pairings = len(self.players) * (len(self.players) + 1) // 2
        if pairings > self.max_units:
            raise PnyxError(f"{len(self.players)} players make {pairings} pairings (units), more than "
                            f"max_units={self.max_units}; raise it with --set max_units=N")
        return self

    @property
    def resolved_payoffs(self):
        return self.payoffs if self.payoffs is not None else env_module(self.game).PAYOFFS


def pair_key(a: str, b: str) -> str:
    return f"{a} vs {b}"


class Tournament(Experiment):
    name = "tournament"
    Config = TournamentConfig
    main_plot = "payoff_matrix"

    def units(self, cfg: TournamentConfig) -> list[Unit]:
        players = cfg.players
        return [Unit(pair_key(a, b), {"a": a, "b": b})
                for i, a in enumerate(players) for b in players[i:]]

    def run_unit(self, cfg: TournamentConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        a, b = unit.params["a"], unit.params["b"]
        result = ENGINES[cfg.engine](
            policy_factory(a), policy_factory(b), payoffs=cfg.resolved_payoffs, turns=cfg.turns,
            repetitions=cfg.repetitions, noise=cfg.noise, seed=seed)
        n = cfg.repetitions
        rows = pd.DataFrame({
            "player": np.repeat([a, b], n), "opponent": np.repeat([b, a], n),
            "repetition": np.tile(np.arange(n), 2), "seat": np.repeat([0, 1], n),
            "payoff": result.payoff.ravel(), "cooperation": result.cooperation.ravel(),
        })
        return UnitOutput(rows)

    def summarize(self, cfg: TournamentConfig, results: pd.DataFrame, records) -> dict:
        players = cfg.players
        by_pair = results.groupby(["player", "opponent"])[["payoff", "cooperation"]].mean()
        payoff = by_pair["payoff"].unstack().reindex(index=players, columns=players)
        cooperation = by_pair["cooperation"].unstack().reindex(index=players, columns=players)
        mean_payoff = payoff.mean(axis=1)
        ranking = mean_payoff.sort_values(ascending=False, kind="stable")
        summary = {
            "game": cfg.game,
            "players": players,
            "ranking": list(ranking.index),
            "mean_payoff": {p: float(v) for p, v in mean_payoff.items()},
            "mean_cooperation": {p: float(v) for p, v in cooperation.mean(axis=1).items()},
            "payoff_matrix": _nested(payoff),
            "cooperation_matrix": _nested(cooperation),
            "overall_cooperation": float(results["cooperation"].mean()),
        }
        if cfg.evolution is not None:
            shares = replicator_dynamics(payoff.to_numpy(), generations=cfg.evolution.generations,
                                         dt=cfg.evolution.dt)
            final = dict(zip(players, shares[-1].round(6).tolist()))
            summary["evolution"] = {
                "generations": cfg.evolution.generations,
                "final_shares": final,
                "dominant": max(final, key=final.get),
                "shares": shares.round(6).tolist(),
            }
        return summary

    def plot(self, cfg: TournamentConfig, results: pd.DataFrame, summary: dict) -> dict[str, Figure]:
        """``payoff_matrix``: mean payoff per turn of each player (row) against each opponent
        (column); ``evolution``: population shares over the replicator generations."""
        players = summary["players"]
        matrix = np.array([[summary["payoff_matrix"][p][q] for q in players] for p in players])
        size = min(len(players), 40)
        fig = Figure(figsize=(1.2 + 0.6 * size, 1 + 0.5 * size), layout="tight")
        ax = fig.subplots()
        image = ax.imshow(matrix, cmap="viridis")
        if len(players) <= 40:  # beyond that, labels are unreadable and slow to draw
            ax.set_xticks(range(len(players)), players, rotation=60, ha="right")
            ax.set_yticks(range(len(players)), players)
        ax.set_xlabel("opponent")
        ax.set_ylabel("player")
        ax.set_title("mean payoff per turn")
        fig.colorbar(image, ax=ax)
        figures = {"payoff_matrix": fig}
        if "evolution" in summary:
            shares = np.array(summary["evolution"]["shares"])
            fig = Figure(figsize=(7, 4), layout="tight")
            ax = fig.subplots()
            for i, p in enumerate(players):
                ax.plot(shares[:, i], label=p)
            ax.set_xlabel("generation")
            ax.set_ylabel("population share")
            ax.set_title("replicator dynamics on the tournament payoffs")
            ax.legend(fontsize="small", ncol=2)
            figures["evolution"] = fig
        return figures

    def report(self, cfg: TournamentConfig, summary: dict) -> str:
        lines = ["| rank | player | mean payoff | cooperation |", "|---|---|---|---|"]
        for i, p in enumerate(summary["ranking"], 1):
            lines.append(f"| {i} | `{p}` | {summary['mean_payoff'][p]:.3f} | {summary['mean_cooperation'][p]:.3f} |")
        if "evolution" in summary:
            evo = summary["evolution"]
            lines.append(f"\nAfter {evo['generations']} generations of replicator dynamics, "
                         f"`{evo['dominant']}` holds {evo['final_shares'][evo['dominant']]:.1%} of the population.")
        return "\n".join(lines)


def _nested(frame: pd.DataFrame) -> dict:
    return {p: {q: float(v) for q, v in row.items()} for p, row in frame.iterrows()}

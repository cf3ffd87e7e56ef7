"""Round-robin tournaments of policies in a repeated 2x2 game, with an evolutionary round.

``game`` is any registered two-player matrix game (:func:`pnyx.envs.two_player_games`), a
user's included, played with its declared payoffs unless ``payoffs`` gives others. Every
unordered pair of players meets once, self-play included; each meeting is a unit. Rows:
one per (player, opponent, repetition, seat) with the mean payoff per turn and the
player's cooperation rate. The optional evolutionary round runs replicator dynamics on
the tournament's payoff matrix. Language-model players (``llm(...)``) use their own
``model`` or the config's ``model``; their token usage and their move counts (retried,
unparseable, truncated, played as fallback) are records ``usage`` and ``llm_moves``,
summed under ``llm`` in the summary.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import pandas as pd
from matplotlib import cbook
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pnyx.agents import PolicySpecs
from pnyx.agents.llm.roles import CheckedModelField, usage_records
from pnyx.envs import two_player_game
from pnyx.envs.matrix_game import payoff_table
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Strict, Summary, Unit, UnitOutput
from pnyx.experiments.report import llm_report
from pnyx.population.pairing import LLMMoves, llm_summary, play_pairing
from pnyx.population.replicator import replicator_dynamics
from pnyx.strict import checked_when_built

#: Most moves a tournament plays: pairings x repetitions x turns.
MAX_MOVES = 10**10
FLOAT_MAX = float(np.finfo(np.float64).max)

Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
Payoffs = Union[Annotated[list[float], Field(min_length=4, max_length=4)],
                Annotated[list[Pair], Field(min_length=2, max_length=2)],
                Annotated[list[Annotated[list[Pair], Field(min_length=2, max_length=2)]], Field(min_length=2, max_length=2)]]


class Evolution(Strict):
    """Replicator dynamics on the tournament payoff matrix, from a uniform population."""

    generations: int = Field(200, ge=1)
    dt: float = Field(0.1, gt=0, le=1)


class TournamentConfig(ExperimentConfig):
    players: PolicySpecs = Field(min_length=1)
    #: A registered two-player matrix game.
    game: Annotated[str, checked_when_built(two_player_game)] = "ipd"
    #: ``[R, S, T, P]``, a 2x2 matrix of the row player's payoffs, or a 2x2x2 matrix of both players'.
    payoffs: Payoffs | None = None
    turns: int = Field(200, gt=0)
    repetitions: int = Field(10, gt=0)
    noise: float = Field(0.0, ge=0, le=1)
    engine: Literal["batched", "loop"] = "batched"
    evolution: Evolution | None = None
    #: The model of ``llm`` players that name none.
    model: CheckedModelField = "embedded"

    @field_validator("players")
    @classmethod
    def _no_duplicates(cls, players):
        duplicates = sorted({p for p in players if players.count(p) > 1})
        if duplicates:
            raise PnyxError(f"duplicate player {duplicates[0]!r}")
        return players

    @model_validator(mode="after")
    def _valid_payoffs(self):
        pairings = len(self.players) * (len(self.players) + 1) // 2
        if pairings > self.max_units:
            raise PnyxError(f"{len(self.players)} players make {pairings} pairings (units), more than "
                            f"max_units={self.max_units}; raise it with --set max_units=N")
        moves = pairings * self.repetitions * self.turns
        if moves > MAX_MOVES:
            raise PnyxError(f"{pairings} pairings x repetitions={self.repetitions} x turns={self.turns} make "
                            f"{moves:.3g} moves, more than {MAX_MOVES:.0e}")
        if self.payoffs is not None:
            largest = float(np.abs(payoff_table(self.payoffs)).max())
            if not largest * self.turns * max(self.repetitions, len(self.players)) * 4 < FLOAT_MAX:
                raise PnyxError(f"payoffs as large as {largest:g} overflow over {self.turns} turns and "
                                f"{self.repetitions} repetitions; scale them down")
        return self

    @property
    def resolved_payoffs(self):
        return self.payoffs if self.payoffs is not None else two_player_game(self.game).payoffs


def pair_key(a: str, b: str) -> str:
    return f"{a} vs {b}"


class EvolutionOutcome(BaseModel):
    """The evolutionary round's population shares, rounded to 6 decimals."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    generations: int
    final_shares: dict[str, float]
    #: The player of the largest final share.
    dominant: str
    #: One row per generation, from the uniform start; one column per player, in ``players`` order.
    shares: list[list[float]]


RANKING_CONVENTION = ("Axelrod's: by the median over repetitions of the mean payoff per turn against the "
                      "other players, self-play excluded")


class TournamentSummary(Summary):
    """The tournament's payoff and cooperation matrices, the ranking, and the evolutionary round."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    game: str
    players: list[str]
    #: Players by ``ranking_convention``: decreasing ``median_payoff`` (ties keep ``players`` order).
    ranking: list[str]
    #: How ``ranking`` orders the players, in words.
    ranking_convention: str = RANKING_CONVENTION
    #: Median over repetitions of the player's mean payoff per turn against the other players,
    #: self-play excluded (NaN without other players), Axelrod's ranking score.
    median_payoff: dict[str, float]
    #: Mean payoff per turn of each player over its opponents, self-play included.
    mean_payoff: dict[str, float]
    mean_cooperation: dict[str, float]
    #: Player -> opponent -> the player's mean payoff per turn (NaN for a pairing without results).
    payoff_matrix: dict[str, dict[str, float]]
    #: Player -> opponent -> the player's cooperation rate.
    cooperation_matrix: dict[str, dict[str, float]]
    overall_cooperation: float
    #: Move counts of the language-model players, by spec; absent without any.
    llm: dict[str, LLMMoves] | None = Field(None, exclude_if=lambda v: v is None)
    #: Absent without an evolutionary round.
    evolution: EvolutionOutcome | None = Field(None, exclude_if=lambda v: v is None)


class Tournament(Experiment):
    name = "tournament"
    Config = TournamentConfig
    Summary = TournamentSummary
    main_plot = "payoff_matrix"

    def units(self, cfg: TournamentConfig) -> list[Unit]:
        players = cfg.players
        return [Unit(pair_key(a, b), {"a": a, "b": b})
                for i, a in enumerate(players) for b in players[i:]]

    def run_unit(self, cfg: TournamentConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        a, b = unit.params["a"], unit.params["b"]
        result, roles, moves = play_pairing(a, b, engine=cfg.engine, game=cfg.game, payoffs=cfg.resolved_payoffs,
                                            turns=cfg.turns, repetitions=cfg.repetitions, noise=cfg.noise, seed=seed,
                                            build_model=ctx.model, model=cfg.model)
        n = cfg.repetitions
        rows = pd.DataFrame({
            "player": _repeated(cfg.players, [a, b], n), "opponent": _repeated(cfg.players, [b, a], n),
            "repetition": np.tile(np.arange(n), 2), "seat": np.repeat([0, 1], n),
            "payoff": result.payoff.ravel(), "cooperation": result.cooperation.ravel(),
        })
        records = {"usage": usage_records(roles), "llm_moves": moves} if roles else {}
        return UnitOutput(rows, records)

    def summarize(self, cfg: TournamentConfig, results: pd.DataFrame, records) -> TournamentSummary:
        players = cfg.players
        games = _Games(results, players)
        payoff = pd.DataFrame(games.pair_means(games.payoff), index=players, columns=players)
        cooperation = pd.DataFrame(games.pair_means(games.cooperation), index=players, columns=players)
        mean_payoff = payoff.mean(axis=1)
        median_payoff = games.normalised_payoffs().median(axis=1)
        evolution = None
        if cfg.evolution is not None:
            shares = replicator_dynamics(payoff.to_numpy(), generations=cfg.evolution.generations,
                                         dt=cfg.evolution.dt)
            final = dict(zip(players, shares[-1].round(6).tolist()))
            evolution = EvolutionOutcome(generations=cfg.evolution.generations, final_shares=final,
                                         dominant=max(final, key=final.get), shares=shares.round(6).tolist())
        return TournamentSummary(
            game=cfg.game,
            players=players,
            ranking=list(median_payoff.sort_values(ascending=False, kind="stable").index),
            median_payoff={p: float(v) for p, v in median_payoff.items()},
            mean_payoff={p: float(v) for p, v in mean_payoff.items()},
            mean_cooperation={p: float(v) for p, v in cooperation.mean(axis=1).items()},
            payoff_matrix=_nested(payoff),
            cooperation_matrix=_nested(cooperation),
            overall_cooperation=float(results["cooperation"].mean()),
            llm=llm_summary(records) if records.get("llm_moves") else None,
            evolution=evolution,
        )

    def plot(self, cfg: TournamentConfig, results: pd.DataFrame, summary: TournamentSummary) -> dict[str, Figure]:
        """``payoff_matrix``: mean payoff per turn of each player (row) against each opponent
        (column), values in the cells; ``payoff_differences``: the same for the player's payoff
        minus the opponent's; ``cooperation_matrix``: the same for the player's cooperation
        rate (``summary.cooperation_matrix``, the per-pair form of Axelrod's
        ``normalised_cooperation``); all with players in ``summary.ranking`` order (Axelrod's);
        with two or more players, ``payoff_boxplot`` (per-repetition mean payoffs, in ranking
        order), ``payoff_difference_distributions`` (Axelrod's ``sdvplot`` as boxes, in ranking
        order, :func:`payoff_difference_samples`) and ``wins`` (per-repetition wins, by median
        wins), Axelrod-style (:func:`normalised_payoffs`, :func:`wins`); ``evolution``:
        population shares over the replicator generations."""
        players = summary.players
        order = summary.ranking
        index = [players.index(p) for p in order]
        games = _Games(results, players)
        ordered = "\n(players in Axelrod's ranking order)"

        def matrix(pairs):
            return np.array([[pairs[p][q] for q in order] for p in order])

        figures = {"payoff_matrix": _heatmap(matrix(summary.payoff_matrix), order, "mean payoff per turn" + ordered,
                                             "mean payoff per turn"),
                   "payoff_differences": _heatmap(games.payoff_differences()[np.ix_(index, index)], order,
                                                  "mean payoff difference per turn (player - opponent)" + ordered,
                                                  "payoff difference per turn", cmap="RdBu", centre=True),
                   "cooperation_matrix": _heatmap(matrix(summary.cooperation_matrix), order,
                                                  "cooperation rate of the player against the opponent" + ordered,
                                                  "cooperation rate", limits=(0.0, 1.0))}
        if len(players) > 1:
            figures["payoff_boxplot"] = _boxplot(games.normalised_payoffs().loc[order],
                                                 "Axelrod's ranking, by median: mean payoff per turn\n"
                                                 "against the others (self-play excluded), per repetition",
                                                 "mean payoff per turn")
            figures["payoff_difference_distributions"] = _boxplot(
                games.payoff_difference_samples().loc[order],
                "Axelrod's sdvplot, players in Axelrod's ranking order:\n"
                "payoff difference per opponent and repetition\n(self-play excluded)",
                "payoff difference per turn\n(player - opponent)", zero_line=True)
            won = games.wins()
            figures["wins"] = _boxplot(won.loc[won.median(axis=1).sort_values(ascending=False, kind="stable").index],
                                       "matches won per repetition, by median\n(Axelrod's wins plot)",
                                       "matches won", integer=True)
        if summary.evolution is not None:
            shares = np.array(summary.evolution.shares)
            fig = Figure(figsize=(7, 4), layout="tight")
            ax = fig.subplots()
            for i, p in enumerate(players):
                ax.plot(shares[:, i], label=p)
            ax.set_xlabel("generation")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("population share")
            ax.set_title("replicator dynamics on the tournament payoffs")
            ax.legend(fontsize="small", ncol=1 + len(players) // 16, loc="upper left", bbox_to_anchor=(1.01, 1))
            figures["evolution"] = fig
        return figures

    def report(self, cfg: TournamentConfig, summary: TournamentSummary) -> str:
        lines = [f"Ranking: {summary.ranking_convention} (median payoff); the mean payoff column includes "
                 "self-play.", "",
                 "| rank | player | median payoff (Axelrod) | mean payoff incl. self-play | cooperation |",
                 "|---|---|---|---|---|"]
        for i, p in enumerate(summary.ranking, 1):
            lines.append(f"| {i} | `{p}` | {summary.median_payoff[p]:.3f} | {summary.mean_payoff[p]:.3f} | "
                         f"{summary.mean_cooperation[p]:.3f} |")
        evo = summary.evolution
        if evo is not None:
            lines.append(f"\nAfter {evo.generations} generations of replicator dynamics, "
                         f"`{evo.dominant}` holds {evo.final_shares[evo.dominant]:.1%} of the population.")
        lines += llm_report(summary.llm)
        return "\n".join(lines)


def _repeated(players: list[str], values: list[str], n: int) -> pd.Categorical:
    """Each value ``n`` times, as a categorical column of the tournament's players (every
    unit's column has the same categories, so the results table keeps them)."""
    return pd.Categorical.from_codes(np.repeat([players.index(v) for v in values], n), categories=players)


class _Games:
    """The results table as integer arrays: player and opponent codes (in ``players``
    order), repetition index, seat, payoff and cooperation; ``mirror`` is, for every row,
    the row of the other player in the same game. Summary and figures read the table
    through it, in linear time. A table that is not what the units write (a column
    missing, an unknown player, a row without its opponent's) is a :class:`PnyxError`."""

    def __init__(self, results: pd.DataFrame, players: list[str]):
        self.players = players
        self.P = len(players)
        for column in ("player", "opponent", "repetition", "seat", "payoff", "cooperation"):
            if column not in results or results[column].isna().any():
                raise PnyxError(f"the results table has {'gaps in' if column in results else 'no'} column {column!r}; "
                                f"its chunks are damaged")
        self.p, self.o = (self._codes(results[column], players) for column in ("player", "opponent"))
        self.r = self._integers(results["repetition"], len(results))  # 0 .. repetitions - 1
        self.reps = np.arange(self.r.max() + 1 if len(self.r) else 0)
        self.seat = self._integers(results["seat"], 2)
        self.payoff = results["payoff"].to_numpy(dtype=np.float64)
        self.cooperation = results["cooperation"].to_numpy(dtype=np.float64)
        self.mirror  # noqa: B018 - checks that every row has its opponent's

    def _game(self, p: np.ndarray, o: np.ndarray) -> np.ndarray:
        """Each row's (player, opponent, repetition) as one even integer below P * P * R * 2."""
        return ((p * self.P + o) * len(self.reps) + self.r) * 2

    @cached_property
    def mirror(self) -> np.ndarray:
        slots = self._game(self.p, self.o) + self.seat
        if len(np.unique(slots)) < len(slots):
            raise PnyxError("the results table holds a game's row twice; its chunks are damaged")
        row_of = np.full(self.P * self.P * len(self.reps) * 2, -1, dtype=np.int64)
        row_of[slots] = np.arange(len(self.p))
        mirror = row_of[self._game(self.o, self.p) + (1 - self.seat)]
        if (mirror < 0).any():
            i = int(np.argmax(mirror < 0))
            raise PnyxError(f"the results table has no row for {self.players[self.o[i]]!r} against "
                            f"{self.players[self.p[i]]!r} in repetition {self.r[i]}; its chunks are damaged")
        return mirror

    def pair_means(self, values: np.ndarray) -> np.ndarray:
        """Player x opponent: the mean of ``values`` over their rows (NaN where there are none)."""
        index = self.p * self.P + self.o
        sums = np.bincount(index, weights=values, minlength=self.P * self.P)
        counts = np.bincount(index, minlength=self.P * self.P)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums / counts).reshape(self.P, self.P)

    @staticmethod
    def _codes(column: pd.Series, players: list[str]) -> np.ndarray:
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes, names = column.cat.codes.to_numpy(), column.cat.categories
        else:
            codes, names = pd.factorize(column)
        unknown = [name for name in names if name not in players]
        if unknown:
            raise PnyxError(f"the results table names {str(unknown[0])[:80]!r}, not a player of the config, "
                            f"in column {column.name!r}; its chunks are damaged")
        return np.array([players.index(name) for name in names], dtype=np.int64)[codes]

    @staticmethod
    def _integers(column: pd.Series, bound: int) -> np.ndarray:
        """``column`` as integers in ``0 .. bound - 1``."""
        values = column.to_numpy()
        if not np.issubdtype(values.dtype, np.integer) or len(values) and not (0 <= values.min() <= values.max() < bound):
            raise PnyxError(f"the results table has values out of range in column {column.name!r}; "
                            f"its chunks are damaged")
        return values.astype(np.int64)

    def per_player_repetition(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sum and count of ``values[mask]`` per (player, repetition)."""
        R = len(self.reps)
        index = self.p[mask] * R + self.r[mask]
        sums = np.bincount(index, weights=values[mask], minlength=self.P * R).reshape(self.P, R)
        counts = np.bincount(index, minlength=self.P * R).reshape(self.P, R)
        return sums, counts

    def normalised_payoffs(self) -> pd.DataFrame:
        sums, counts = self.per_player_repetition(self.payoff, self.p != self.o)
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame(sums / counts, index=self.players, columns=self.reps)

    def wins(self) -> pd.DataFrame:
        won = (self.payoff > self.payoff[self.mirror]).astype(np.float64)
        sums, _ = self.per_player_repetition(won, self.p != self.o)
        return pd.DataFrame(sums.astype(np.int64), index=self.players, columns=self.reps)

    def payoff_differences(self) -> np.ndarray:
        return self.pair_means(self.payoff - self.payoff[self.mirror])

    def payoff_difference_samples(self) -> pd.DataFrame:
        others = self.p != self.o
        difference = (self.payoff - self.payoff[self.mirror])[others]
        p, o, r = self.p[others], self.o[others], self.r[others]
        ordered = np.lexsort((r, o, p))
        rows = np.split(difference[ordered], np.cumsum(np.bincount(p, minlength=self.P))[:-1])
        samples = np.full((self.P, max(len(row) for row in rows)), np.nan)  # failed units leave rows short
        for i, row in enumerate(rows):
            samples[i, :len(row)] = row
        return pd.DataFrame(samples, index=self.players)


def normalised_payoffs(results: pd.DataFrame, players: list[str]) -> pd.DataFrame:
    """Player x repetition: the player's mean payoff per turn over its matches against the
    other players, self-play excluded. Axelrod's ``normalised_scores`` (axelrod
    ``result_set.py``, ``ResultSet._build_tasks``: mean "Score per turn" per player and
    repetition with self-interactions ignored)."""
    return _Games(results, players).normalised_payoffs()


def axelrod_ranking(scores: pd.DataFrame) -> list[str]:
    """Players by decreasing median of :func:`normalised_payoffs`, Axelrod's ranking
    (``ResultSet._build_ranking``); ties keep the given order."""
    return list(scores.median(axis=1).sort_values(ascending=False, kind="stable").index)


def wins(results: pd.DataFrame, players: list[str]) -> pd.DataFrame:
    """Player x repetition: matches won, a win being a higher payoff than the opponent's in
    that match, self-play excluded. Axelrod's ``wins`` (``ResultSet._build_tasks``, the
    summed "Win" column without self-interactions)."""
    return _Games(results, players).wins()


def payoff_differences(results: pd.DataFrame, players: list[str]) -> np.ndarray:
    """Player x opponent: the mean over games of the player's payoff per turn minus the
    opponent's in the same game (Axelrod's ``payoff_diffs_means``; self-play averages both
    seats, hence 0)."""
    return _Games(results, players).payoff_differences()


def payoff_difference_samples(results: pd.DataFrame, players: list[str]) -> pd.DataFrame:
    """Player x sample: the player's payoff per turn minus its opponent's, one value per
    (opponent, repetition) in that order, self-play excluded (NaN pads a player with fewer
    games). Axelrod's ``score_diffs`` as ``Plot.sdvplot`` pools them (``result_set.py``, "Score
    difference per turn"; ``plot.py``, ``_sdv_plot_dataset``), less self-play, whose
    differences Axelrod counts as zeros."""
    return _Games(results, players).payoff_difference_samples()


def tick_labels(players: list[str], width: int = 32) -> list[str]:
    """Players as figures name them: a checkpoint path by its file name, a spec longer than
    ``width`` cut with an ellipsis; the full specs wherever that would make two alike."""
    short = [Path(p).name if p.endswith(".pt") else p for p in players]
    short = [s if len(s) <= width else s[:width - 1] + "…" for s in short]
    return short if len(set(short)) == len(short) else list(players)


def _heatmap(matrix: np.ndarray, players: list[str], title: str, label: str, cmap: str = "viridis",
             centre: bool = False, limits: tuple[float, float] | None = None) -> Figure:
    """Player x opponent ``matrix`` with its colour bar labelled ``label``; the colour scale
    spans ``limits``, else the data (symmetric about 0 when ``centre``)."""
    size = min(len(players), 40)
    # Room for the title and for tick labels up to tick_labels' width, however few the players.
    fig = Figure(figsize=(max(6.0, 3.0 + 0.6 * size), max(4.5, 2.5 + 0.5 * size)), layout="tight")
    ax = fig.subplots()
    if centre:
        limit = np.nanmax(np.abs(matrix)) or 1.0
        limits = (-limit, limit)
    image = ax.imshow(matrix, cmap=cmap, **({} if limits is None else {"vmin": limits[0], "vmax": limits[1]}))
    if len(players) <= 40:  # beyond that, labels are unreadable and slow to draw
        labels = tick_labels(players)
        ax.set_xticks(range(len(players)), labels, rotation=60, ha="right")
        ax.set_yticks(range(len(players)), labels)
    if len(players) <= 20:
        for (i, j), value in np.ndenumerate(matrix):
            shade = image.norm(value)  # viridis is dark below about 0.6, RdBu towards both ends
            dark = abs(shade - 0.5) > 0.3 if centre else shade < 0.6
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xlabel("opponent")
    ax.set_ylabel("player")
    fig.suptitle(title)
    fig.colorbar(image, ax=ax, label=label)
    return fig


def _boxplot(frame: pd.DataFrame, title: str, ylabel: str, integer: bool = False, zero_line: bool = False) -> Figure:
    """One box per row of ``frame`` (its values over the columns, NaN left out), rows in the
    given order; ``integer`` keeps the y ticks whole, ``zero_line`` marks y = 0."""
    fig = Figure(figsize=(max(6.0, 0.5 * len(frame) + 2), 4.5), layout="tight")
    ax = fig.subplots()
    # Drawn from matplotlib's box statistics (Axes.boxplot would resolve pyplot's global backend).
    # Beyond a thousand repetitions, outliers would be drawn by the thousand: whiskers only.
    stats = cbook.boxplot_stats([row.dropna().to_numpy() for _, row in frame.iterrows()])
    for x, st in enumerate(stats, start=1):
        ax.add_patch(Rectangle((x - 0.3, st["q1"]), 0.6, st["q3"] - st["q1"], fill=False, edgecolor="C0"))
        ax.hlines(st["med"], x - 0.3, x + 0.3, color="C1")
        ax.vlines([x, x], [st["whislo"], st["q3"]], [st["q1"], st["whishi"]], color="C0")
        ax.hlines([st["whislo"], st["whishi"]], x - 0.15, x + 0.15, color="C0")
        if frame.shape[1] <= 1000 and len(st["fliers"]):
            ax.plot(np.full(len(st["fliers"]), x), st["fliers"], "o", mfc="none", color="C0", ms=4)
    ax.autoscale_view()
    ax.set_xlim(0.4, len(frame) + 0.6)
    ax.set_xticks(range(1, len(frame) + 1), tick_labels(list(frame.index)), rotation=60, ha="right")
    if zero_line:
        ax.axhline(0, color="grey", linewidth=0.8, zorder=0)
    if integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def _nested(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {p: {q: float(v) for q, v in row.items()} for p, row in frame.iterrows()}

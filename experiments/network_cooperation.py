"""Cooperation on graphs: does a single cooperator take over a population of defectors?

Ohtsuki, Hauert, Lieberman & Nowak ("A simple rule for the evolution of cooperation on
graphs", Nature 441, 2006) found that under death-birth updating and weak selection,
natural selection favours cooperators in the donation game (a cooperator pays ``c``
for each neighbour to receive ``b``) roughly when ``b/c > k``, ``k`` the degree, and
never under birth-death updating; for a regular graph of ``N`` nodes the exact
weak-selection threshold is ``b/c > (N - 2) / (N/k - 2)`` (Taylor, Day & Wild, Nature
447, 2007; Chen, Ann. Appl. Probab. 23, 2013). Favoured means the fixation probability
of one cooperator among defectors exceeds the neutral ``1/N``.

A unit is one (update rule, graph family, degree, b/c, replicate): ``trials`` single
cooperators on uniformly random nodes, run to fixation with
:func:`pnyx.population.game_fixation_probability`. A replicate's graph is drawn from
the experiment seed and (replicate, family, degree) only, so every b/c and update rule
of a replicate plays on the same graph; the trials' randomness comes from the unit's seed.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import matplotlib
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Summary, Unit, UnitOutput
from pnyx.experiments.figures import interval_line
from pnyx.population import donation_game, game_fixation_probability
from pnyx.stats import Estimate, wilson

FAMILIES = ("random_regular", "ring", "lattice")
Family = Literal[FAMILIES]
Update = Literal["db", "bd", "imitation", "pc"]
COST = 1.0


def make_graph(family: str, nodes: int, degree: int, seed: np.random.SeedSequence) -> nx.Graph:
    """A connected graph of ``nodes`` nodes, every one of degree ``degree``:

    * ``random_regular``: uniformly random ``k``-regular graph, redrawn until connected;
    * ``ring``: a cycle where each node links to its ``k/2`` nearest nodes on either side;
    * ``lattice``: a periodic square lattice (``nodes`` a square), von Neumann (k=4) or
      Moore (k=8) neighbourhood.
    """
    check_family(family, nodes, degree)
    if family == "ring":
        return nx.circulant_graph(nodes, range(1, degree // 2 + 1))
    if family == "lattice":
        side = math.isqrt(nodes)
        graph = nx.grid_2d_graph(side, side, periodic=True)
        if degree == 8:
            graph.add_edges_from(((i, j), ((i + 1) % side, (j + d) % side))
                                 for i in range(side) for j in range(side) for d in (-1, 1))
        return nx.convert_node_labels_to_integers(graph, ordering="sorted")
    for attempt_seed in seed.generate_state(1000):
        graph = nx.random_regular_graph(degree, nodes, seed=int(attempt_seed))
        if nx.is_connected(graph):
            return graph
    raise PnyxError(f"no connected random {degree}-regular graph on {nodes} nodes in 1000 draws")


def check_family(family: str, nodes: int, degree: int) -> None:
    if family not in FAMILIES:
        raise PnyxError(f"unknown graph family {family!r} (known: {', '.join(FAMILIES)})")
    if not 2 <= degree < nodes:
        raise PnyxError(f"degree {degree} must be in 2..nodes-1 for {family} graphs of {nodes} nodes")
    if family == "random_regular" and nodes * degree % 2:
        raise PnyxError(f"random_regular graphs need nodes * degree even, got {nodes} * {degree}")
    if family == "ring" and degree % 2:
        raise PnyxError(f"ring graphs need an even degree, got {degree}")
    if family == "lattice":
        side = math.isqrt(nodes)
        if side * side != nodes or side < 3:
            raise PnyxError(f"lattice graphs need a square number of nodes >= 9, got {nodes}")
        if degree not in (4, 8):
            raise PnyxError(f"lattice graphs have degree 4 (von Neumann) or 8 (Moore), got {degree}")


def threshold(nodes: int, degree: int) -> float | None:
    """Weak-selection death-birth threshold ``(N - 2) / (N/k - 2)`` on a regular graph;
    None where ``N <= 2k`` (cooperators are never favoured there)."""
    return (nodes - 2) / (nodes / degree - 2) if nodes > 2 * degree else None


class NetworkCooperationConfig(ExperimentConfig):
    nodes: int = Field(50, ge=4, le=10_000, description="population size N")
    families: list[Family] = Field(default_factory=lambda: ["random_regular"], min_length=1)
    degrees: list[int] = Field(default_factory=lambda: [2, 4], min_length=1)
    benefit_cost_ratios: list[Annotated[float, Field(le=1e6)]] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 8],
                                                                    min_length=1)
    updates: list[Update] = Field(default_factory=lambda: ["db", "bd"], min_length=1)
    selection: float = Field(0.1, gt=0, le=1, description="selection intensity w: fitness = 1 - w + w * payoff")
    trials: int = Field(2000, ge=1, le=10_000_000, description="single cooperators per unit")
    replicates: int = Field(2, ge=1, le=10_000, description="units (and graphs, for random families) per condition")

    @field_validator("benefit_cost_ratios")
    @classmethod
    def _positive_ratios(cls, ratios):
        bad = [r for r in ratios if not r > 0]
        if bad:
            raise PnyxError(f"benefit_cost_ratios must be > 0, got {bad[0]:g}")
        return ratios

    @model_validator(mode="after")
    def _valid_graphs(self):
        for name in ("families", "degrees", "benefit_cost_ratios", "updates"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise PnyxError(f"duplicate value in {name}: {values}")
        for family in self.families:
            for degree in self.degrees:
                check_family(family, self.nodes, degree)
        for update in self.updates:
            for degree in self.degrees:
                worst = 1 - self.selection - self.selection * COST * degree
                if update != "pc" and worst <= 0:
                    raise PnyxError(f"selection={self.selection:g} makes a cooperator's fitness <= 0 at degree "
                                    f"{degree}; use selection < {1 / (1 + COST * degree):.4g}")
        return self


class ConditionOutcome(BaseModel):
    """One (update rule, graph family, degree, b/c), pooled over its replicates."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    update: Update
    family: Family
    degree: int
    b_c: float
    trials: int
    #: Trials in which the cooperator took over.
    fixed: int
    #: With its 95% Wilson interval.
    fixation_probability: Estimate
    #: The fixation probability over the neutral 1/N.
    relative_to_neutral: float
    #: Whether the Wilson interval lies above 1/N (``yes``), below it (``no``) or contains it.
    favoured: Literal["yes", "no", "undecided"]


class ThresholdOutcome(BaseModel):
    """Where one (update rule, graph family, degree)'s fixation probability rises above 1/N."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    update: Update
    family: Family
    degree: int
    #: The b/c where the estimate rises through 1/N for good, interpolated; None if it never does.
    observed_threshold: float | None
    #: Whether the estimate is above 1/N at every b/c.
    favoured_throughout: bool
    #: The weak-selection threshold: exact for db, the large-N k + 2 for imitation; None for bd and pc.
    theory_threshold: float | None


class NetworkCooperationSummary(Summary):
    """Fixation probabilities per condition, and the b/c thresholds they show."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    nodes: int
    #: The neutral fixation probability 1/N.
    neutral: float
    selection: float
    #: The conditions that have results, in config order with b/c ascending.
    conditions: list[ConditionOutcome]
    #: One per (update rule, graph family, degree).
    thresholds: list[ThresholdOutcome]


def _conditions(cfg: NetworkCooperationConfig):
    for update in cfg.updates:
        for family in cfg.families:
            for degree in cfg.degrees:
                for ratio in sorted(cfg.benefit_cost_ratios):
                    yield update, family, degree, ratio


class NetworkCooperation(Experiment):
    name = "network-cooperation"
    Config = NetworkCooperationConfig
    Summary = NetworkCooperationSummary
    main_plot = "fixation_vs_bc"

    def units(self, cfg: NetworkCooperationConfig) -> list[Unit]:
        return [Unit(f"{update}/{family}/k={degree}/bc={ratio:g}/rep={rep}",
                     {"update": update, "family": family, "degree": degree, "b_c": ratio, "replicate": rep})
                for update, family, degree, ratio in _conditions(cfg) for rep in range(cfg.replicates)]

    def graph(self, cfg: NetworkCooperationConfig, family: str, degree: int, replicate: int) -> nx.Graph:
        """The replicate's graph, shared by its units across b/c and update rules."""
        key = (replicate, degree, FAMILIES.index(family))
        return make_graph(family, cfg.nodes, degree, np.random.SeedSequence(cfg.seed, spawn_key=key))

    def run_unit(self, cfg: NetworkCooperationConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        p = unit.params
        graph = self.graph(cfg, p["family"], p["degree"], p["replicate"])
        estimate = game_fixation_probability(graph, donation_game(p["b_c"] * COST, COST), cfg.selection,
                                             p["update"], cfg.trials, seed)
        fixed = round(estimate.value * estimate.n)
        rows = pd.DataFrame([{**p, "nodes": cfg.nodes, "trials": estimate.n, "fixed": fixed,
                              "fixation_probability": estimate.value}])
        return UnitOutput(rows)

    def summarize(self, cfg: NetworkCooperationConfig, results: pd.DataFrame, records) -> NetworkCooperationSummary:
        neutral = 1 / cfg.nodes
        conditions, crossings = [], []
        if len(results):
            pooled = results.groupby(["update", "family", "degree", "b_c"], sort=True)[["trials", "fixed"]].sum()
        for update, family, degree, ratio in _conditions(cfg):
            if len(results) == 0 or (update, family, degree, ratio) not in pooled.index:
                continue
            trials, fixed = (int(v) for v in pooled.loc[(update, family, degree, ratio)])
            estimate = wilson(fixed, trials)
            conditions.append(ConditionOutcome(
                update=update, family=family, degree=degree, b_c=ratio, trials=trials, fixed=fixed,
                fixation_probability=estimate, relative_to_neutral=fixed / trials / neutral,
                favoured="yes" if estimate.low > neutral else "no" if estimate.high < neutral else "undecided"))
        for update in cfg.updates:
            for family in cfg.families:
                for degree in cfg.degrees:
                    curve = [c for c in conditions if (c.update, c.family, c.degree) == (update, family, degree)]
                    crossings.append(ThresholdOutcome(
                        update=update, family=family, degree=degree, observed_threshold=_crossing(curve, neutral),
                        favoured_throughout=bool(curve) and all(_p(c) > neutral for c in curve),
                        theory_threshold=_theory(update, cfg.nodes, degree)))
        return NetworkCooperationSummary(nodes=cfg.nodes, neutral=neutral, selection=cfg.selection,
                                         conditions=conditions, thresholds=crossings)

    def plot(self, cfg: NetworkCooperationConfig, results: pd.DataFrame,
             summary: NetworkCooperationSummary) -> dict[str, Figure]:
        """``fixation_vs_bc``: one panel per (update rule, graph family), fixation probability
        against b/c, one line per degree in a shaded band of its Wilson intervals; the neutral
        1/N dashed and the db threshold dotted."""
        curves = [(t.update, t.family, t.degree) for t in summary.thresholds]
        updates, families, degrees = (list(dict.fromkeys(c[i] for c in curves)) for i in range(3))
        ratios = [c.b_c for c in summary.conditions]
        if not ratios:
            return {}
        fig = Figure(figsize=(4.5 * len(families), 3.4 * len(updates)), layout="tight")
        axes = fig.subplots(len(updates), len(families), squeeze=False, sharey=True)
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, (update, family) in zip(axes.flat, [(u, f) for u in updates for f in families]):
            for i, degree in enumerate(degrees):
                curve = [c for c in summary.conditions if (c.update, c.family, c.degree) == (update, family, degree)]
                if not curve:
                    continue
                colour = colours[i % len(colours)]
                interval_line(ax, np.array([c.b_c for c in curve]), [c.fixation_probability for c in curve],
                              marker="o", ms=4, color=colour, label=f"k = {degree}")
                theory = threshold(summary.nodes, degree)
                if update == "db" and theory is not None and theory <= max(ratios):
                    ax.axvline(theory, color=colour, ls=":", lw=1)
            ax.axhline(summary.neutral, color="black", ls="--", lw=1, label="1/N")
            ax.set_title(f"{update}, {family}", fontsize="medium")
            ax.set_xlabel("b/c")
            ax.set_ylabel("cooperator fixation probability")
        axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(f"One cooperator among defectors, N = {summary.nodes}, w = {summary.selection:g}\n"
                     "dotted: db threshold (N-2)/(N/k-2); shaded: Wilson 95% interval", fontsize="medium")
        return {"fixation_vs_bc": fig}

    def report(self, cfg: NetworkCooperationConfig, summary: NetworkCooperationSummary) -> str:
        lines = [f"Fixation probability of one cooperator among {cfg.nodes - 1} defectors (neutral 1/N = "
                 f"{summary.neutral:.4f}), selection intensity w = {cfg.selection:g}, pooled over "
                 f"{cfg.replicates} replicate(s) of {cfg.trials} trials; 95% Wilson intervals.", "",
                 "| update | family | k | b/c above which cooperators are favoured | weak-selection theory |",
                 "|---|---|---|---|---|"]
        low, high = min(cfg.benefit_cost_ratios), max(cfg.benefit_cost_ratios)
        for t in summary.thresholds:
            observed = (f"below {low:g}" if t.favoured_throughout else f"above {high:g}"
                        if t.observed_threshold is None else f"{t.observed_threshold:.2f}")
            theory = ("never" if t.theory_threshold is None else f"{t.theory_threshold:.2f}"
                      + (" (large N: k + 2)" if t.update == "imitation" else ""))
            lines.append(f"| {t.update} | {t.family} | {t.degree} | {observed} | {theory} |")
        lines += ["", "| update | family | k | b/c | fixation probability | 95% interval | x 1/N | favoured |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in summary.conditions:
            p = c.fixation_probability
            lines.append(f"| {c.update} | {c.family} | {c.degree} | {c.b_c:g} | "
                         f"{p.value:.4f} | [{p.low:.4f}, {p.high:.4f}] | "
                         f"{c.relative_to_neutral:.2f} | {c.favoured} |")
        return "\n".join(lines)


def _p(condition: ConditionOutcome) -> float:
    """A summary condition's estimated fixation probability."""
    return condition.fixation_probability.value


def _theory(update: str, nodes: int, degree: int) -> float | None:
    """Weak-selection threshold: exact for db on regular graphs, the large-N pair
    approximation k + 2 for imitation (Ohtsuki et al. 2006); None for bd and pc, where
    cooperators are not favoured on regular graphs."""
    if update == "db":
        return threshold(nodes, degree)
    return degree + 2.0 if update == "imitation" else None


def _crossing(curve: list[ConditionOutcome], neutral: float) -> float | None:
    """The b/c where the fixation probability first rises through 1/N for good (linear
    interpolation between the two grid points around it); None if it never does."""
    above = [_p(c) > neutral for c in curve]
    for i in range(len(curve)):
        if all(above[i:]) and i > 0:
            lo, hi = curve[i - 1], curve[i]
            p_lo, p_hi = _p(lo), _p(hi)
            return lo.b_c + (neutral - p_lo) / (p_hi - p_lo) * (hi.b_c - lo.b_c)
    return None

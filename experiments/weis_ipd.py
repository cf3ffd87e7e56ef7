"""Experiment ``weis-ipd``: independent sequence-model learners trained against diverse partners.

Reproduces Weis et al. 2026, "Multi-agent cooperation through in-context co-player
inference" (arXiv:2602.16301), section 3.1 and appendix A: GRU learners in the iterated
prisoner's dilemma (CC=(1,1), CD=(-1,2), DC=(2,-1), DD=(0,0)), each with its own weights,
trained with either of the paper's two methods, chosen per condition by ``method``:
``a2c`` (independent A2C, :mod:`pnyx.population.diverse_partner_training`) or ``ppi``
(predictive policy improvement, :mod:`pnyx.population.ppi_training`, whose curve has one
point per phase), against

* ``best_response`` -- tabular partners only (in-context best response, section 3.2 step 1);
* ``mixed_pool`` -- two learners, each meeting the other w.p. 0.5, else a memory-one
  strategy ~U(0,1) (Figure 1);
* ``no_tabular`` -- two learners meeting only each other (ablation A.4.2);
* ``opponent_id`` -- the mixed pool, each episode prepended with the opponent-ID vector z
  (ablation A.4.1: the tabular partner's log-probabilities, 0 for learners); with either
  method (the full preset's ``ppi_opponent_id`` for PPI). A condition with
  ``learner_flag: true`` as well is the variant of section 3.1, which gives learners an
  identity flag (:mod:`pnyx.agents.sequence`); A.4.1's z = 0 is the default.

One unit per condition and seed (``seeds``, 10 as in the paper's Figure 1); with
``seed_batch`` > 1, the seeds of an A2C condition train in groups of that many per unit as
one batched model (:mod:`pnyx.population.grouped_training`), each seed with the randomness
of its own unit, the learners of seed k saved in ``<condition>/seed<k>``. Each A2C unit
drives its own Ray rollout actors, so the kind runs in the driver; PPI units run in the
driver too. A unit checkpoints to ``<dir>/<condition>/seed<k>/last.pt``, where ``dir`` is
``checkpoint_dir`` or else the runner's work folder ``OUT/work``: an A2C unit every
``checkpoint_every`` iterations, a PPI unit after every phase. Run again with the same
configuration (``--resume``; more iterations or phases allowed), it continues from there.
Its final learners are saved beside it as ``learner<i>.pt``, player specs for tournaments
(a PPI learner as its improved policy).
The summary gives every final metric (a rate) as the mean across seeds with its Student-t
95% interval clipped to [0, 1] (an Estimate) and the standard deviation across seeds.
With ``snapshots`` (A2C updates) and ``ppi_snapshots`` (PPI phases), a learner's
evaluation episodes at those points are kept too (its cooperation per round against each
evaluation partner, for Figure 3; the paper shows PPI at phase 8, A2C at update 70k).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pnyx.agents.a2c import BEST_RESPONSE, A2CConfig
from pnyx.agents.ppi import PPIConfig
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Strict, Summary, Unit, UnitOutput
from pnyx.experiments.figures import condition_panels, interval_line
from pnyx.paths import simple_name
from pnyx.population.learner_runs import (METRICS, LearnerFields, PPIEvalFields, learner_session, model_spec,
                                          scale_label, seed_band, span, train)
from pnyx.population.partners import LEAGUE, LEARNER, PartnerPool
from pnyx.stats import Estimate, format_estimate, format_number, seed_mean

BEST_RESPONSE_LEVEL = 0.9  # vs_tft_cooperation and vs_allc_defection at or above it count as best responses


class Condition(Strict):
    """Who the learners meet (a pool name of ``pnyx.population.partners.POOLS``, a policy
    spec, or ``{spec: weight}``; ``learner`` is another of the condition's learners), how
    many independent learners train (default: 2 when the pool has ``learner``, else 1),
    whether they are conditioned on the opponent-ID vector z (with ``learner_flag``, plus
    section 3.1's identity flag for learners), the learning method (``a2c``
    or ``ppi``), A2C hyperparameters (default: the experiment's ``a2c``; PPI's are the
    experiment's ``ppi``) and PPI's pretraining data (``tabular``: U(0,1) memory-one agents;
    ``random``: uniformly random actions, the no-tabular ablation of appendix A.4.2)."""

    partners: str | dict[str, float]
    method: Literal["a2c", "ppi"] = "a2c"
    pretrain: Literal["tabular", "random"] = "tabular"
    learners: int | None = Field(None, ge=1, le=64)
    opponent_id: bool = False
    learner_flag: bool = Field(False, description="with opponent_id: section 3.1's identity flag for learning "
                               "partners beside z (A.4.1's z = 0 alone when false)")
    a2c: A2CConfig | None = None
    iterations: int | None = Field(None, gt=0, description="default: the experiment's iterations")

    @field_validator("partners")
    @classmethod
    def _valid_pool(cls, value):
        PartnerPool.parse(value)
        return value

    def learner_count(self) -> int:
        if self.learners is not None:
            return self.learners
        return 2 if LEARNER in PartnerPool.parse(self.partners).mix else 1


DEFAULT_CONDITIONS = {
    "best_response": Condition(partners="tabular", a2c=BEST_RESPONSE),
    "mixed_pool": Condition(partners="mixed_pool"),
    "no_tabular": Condition(partners="learners"),
    "opponent_id": Condition(partners="mixed_pool", opponent_id=True),
}


class WeisConfig(PPIEvalFields, LearnerFields, ExperimentConfig):
    iterations: int = Field(200000, gt=0, description="A2C updates per condition and seed")
    a2c: A2CConfig = A2CConfig()
    ppi: PPIConfig = PPIConfig()
    methods: list[Literal["a2c", "ppi"]] = Field(["a2c", "ppi"], min_length=1,
                                                 description="run the conditions of these methods, skip the rest")
    conditions: dict[str, Condition] = Field(default_factory=lambda: dict(DEFAULT_CONDITIONS), min_length=1)
    snapshots: list[Annotated[int, Field(ge=0)]] = Field(
        [], description="A2C iterations (0: before training) at which the learners' evaluation episodes are kept: "
        "cooperation per round against each evaluation partner (after Figure 3)")
    ppi_snapshots: list[Annotated[int, Field(ge=1)]] = Field(
        [], description="PPI phases (1: the first phase's improved policy) at which the learners' evaluation "
        "episodes are kept, as snapshots does for A2C (Figure 3: phase 8)")
    league_every: int = Field(1000, gt=0, description="iterations between league snapshots (partner 'league')")
    league_size: int = Field(8, gt=0)
    seed_batch: int = Field(1, ge=1, le=1000, description="A2C seeds trained together as one batched model in "
                            "one unit, in the driver on `device` (GRU learners; tables and the other learner as "
                            "partners)")
    compile: bool = Field(False, description="torch.compile the batched model's step (seed_batch > 1)")

    @field_validator("conditions")
    @classmethod
    def _names_are_folders(cls, conditions):
        """Each condition checkpoints in a folder of its name."""
        for name in conditions:
            if not simple_name(name):
                raise ValueError(f"condition name {name!r} must be a simple name (letters, digits, '_', '-', '.'; "
                                 "not starting with '.')")
        return conditions

    @model_validator(mode="after")
    def _batch_fills_shards(self):
        if self.compile and self.seed_batch == 1:
            raise ValueError("compile applies to seeds trained as one batched model; set seed_batch > 1")
        for name, cond in self.conditions.items():
            if cond.method == "ppi":
                self._check_ppi(name, cond)
            elif cond.pretrain != "tabular":
                raise ValueError(f"condition {name!r}: pretrain is PPI's; method a2c has none")
            batch = (cond.a2c or self.a2c).batch
            if cond.method == "a2c" and batch % self.shards:
                raise ValueError(f"batch {batch} of condition {name!r} is not a multiple of shards={self.shards}")
            if LEARNER in PartnerPool.parse(cond.partners).mix and cond.learner_count() < 2:
                raise ValueError(f"condition {name!r} has partner 'learner' (another learner) but learners=1")
            if cond.opponent_id and self.model.kind != "gru":
                raise ValueError(f"condition {name!r}: opponent_id needs model kind 'gru'")
            if cond.learner_flag and not cond.opponent_id:
                raise ValueError(f"condition {name!r}: learner_flag is a variant of opponent_id; set opponent_id")
            if cond.method == "a2c" and self.seed_batch > 1:
                from pnyx.population.grouped_training import check_groupable

                try:
                    check_groupable(self.model.model_dump(), PartnerPool.parse(cond.partners).mix, cond.learner_count())
                except PnyxError as e:
                    raise ValueError(f"condition {name!r}: {e} (seed_batch={self.seed_batch})") from None
        return self

    def _check_ppi(self, name: str, cond: Condition) -> None:
        if self.model.kind != "gru":
            raise ValueError(f"condition {name!r}: method ppi needs model kind 'gru'")
        if cond.a2c is not None or cond.iterations is not None:
            raise ValueError(f"condition {name!r}: method ppi takes no a2c or iterations "
                             "(its phases are ppi.phases)")
        if LEAGUE in PartnerPool.parse(cond.partners).mix:
            raise ValueError(f"condition {name!r}: method ppi has no league partners")
        if self.ppi.episodes % self.shards:
            raise ValueError(f"ppi.episodes={self.ppi.episodes} is not a multiple of shards={self.shards}")


class SeedMetrics(BaseModel):
    """A seed's final metrics (:data:`METRICS`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    learner_vs_learner_cooperation: float
    vs_tft_cooperation: float
    vs_allc_defection: float
    vs_alld_defection: float


#: A learning-curve point: ``iteration`` (an int), :data:`METRICS` and the training
#: statistics the run's methods report (``reward``, ``entropy``, ``model_loss``); None where undefined.
CurvePoint = dict[str, int | float | None]


class ConditionSummary(BaseModel):
    """One condition's final metrics across seeds (mean with Student-t 95% interval clipped
    to [0, 1], and standard deviation), per seed, and over training."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["a2c", "ppi"]
    seeds: int
    #: The last iteration (A2C updates, or PPI phases) of any seed.
    iterations: int
    #: Most Ray rollout workers of a unit (0: in the driver).
    workers: int
    learner_vs_learner_cooperation: Estimate
    learner_vs_learner_cooperation_std: float | None
    vs_tft_cooperation: Estimate
    vs_tft_cooperation_std: float | None
    vs_allc_defection: Estimate
    vs_allc_defection_std: float | None
    vs_alld_defection: Estimate
    vs_alld_defection_std: float | None
    #: By seed index.
    per_seed: dict[str, SeedMetrics]
    #: The mean across seeds at each iteration.
    learning_curve: list[CurvePoint]
    #: By seed index.
    seed_curves: dict[str, list[CurvePoint]]
    #: The final learners' cooperation per round, by evaluation partner, averaged over seeds.
    within_episode: dict[str, list[float]]
    #: The same at each ``snapshots`` iteration (A2C) or ``ppi_snapshots`` phase (PPI) the
    #: condition reached (by iteration, then partner), averaged over seeds; absent without.
    snapshots: dict[str, dict[str, list[float]]] = Field(default_factory=dict, exclude_if=lambda v: not v)


class RayWorkers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Most Ray rollout workers of a unit (0: all in the driver).
    workers: int


class WeisSummary(Summary):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: The conditions with results, in config order.
    conditions: dict[str, ConditionSummary]
    ray: RayWorkers
    #: Whether the ``best_response`` condition reached :data:`BEST_RESPONSE_LEVEL` with tit for
    #: tat and against always-cooperate; absent without that condition.
    best_response_reached: bool | None = Field(None, exclude_if=lambda v: v is None)


def _unit_folder(cfg, ctx: RunContext, *parts: str) -> Path | None:
    root = cfg.checkpoint_dir or ctx.workdir
    return Path(root).joinpath(*parts) if root else None


class WeisIPD(Experiment):
    name = "weis-ipd"
    Config = WeisConfig
    Summary = WeisSummary
    runs_in_driver = True
    main_plot = "cooperation_over_training"

    def units(self, cfg: WeisConfig) -> list[Unit]:
        """One unit per condition and seed; with ``seed_batch`` > 1, an A2C condition's seeds
        in runs of ``seed_batch`` per unit, each seed seeded as its own unit would be."""
        units = []
        for name, cond in cfg.conditions.items():
            if cond.method not in cfg.methods:
                continue
            if cond.method == "ppi" or cfg.seed_batch == 1:
                units += [Unit(key=f"{name}.seed{k}", params={"condition": name, "seed_index": k})
                          for k in range(cfg.seeds)]
                continue
            for first in range(0, cfg.seeds, cfg.seed_batch):
                seeds = list(range(first, min(first + cfg.seed_batch, cfg.seeds)))
                units.append(Unit(key=f"{name}.seeds{seeds[0]}-{seeds[-1]}",
                                  params={"condition": name, "seed_indices": seeds}))
        return units

    def run_unit(self, cfg: WeisConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        name = unit.params["condition"]
        cond = cfg.conditions[name]
        if "seed_indices" in unit.params:
            results = self._run_grouped(cfg, cond, unit, ctx)
        else:
            k = unit.params["seed_index"]
            run = self._run_ppi if cond.method == "ppi" else self._run_a2c
            results = {k: run(cfg, cond, seed, ctx, _unit_folder(cfg, ctx, name, f"seed{k}"))}
        frames, within, snapshots = [], [], []
        for k, result in results.items():
            rows = pd.DataFrame(result.curve)
            rows.insert(0, "condition", name)
            rows.insert(1, "seed_index", k)
            rows["workers"] = result.workers
            frames.append(rows)
            within += [{"condition": name, "seed_index": k, "partner": p, "cooperation": c}
                       for p, c in result.within_episode.items()]
            snapshots += [{"condition": name, "seed_index": k, "iteration": i, "partner": p, "cooperation": c}
                          for i, rates in result.snapshots.items() for p, c in rates.items()]
        records = {"within_episode": within} | ({"snapshots": snapshots} if snapshots else {})
        return UnitOutput(rows=pd.concat(frames, ignore_index=True), records=records)

    @staticmethod
    def _a2c_spec(cfg: WeisConfig, cond: Condition, seed: np.random.SeedSequence):
        from pnyx.population.diverse_partner_training import TrainingSpec

        return TrainingSpec(
            model=model_spec(cfg, cond.opponent_id, cond.learner_flag), a2c=cond.a2c or cfg.a2c,
            partners=PartnerPool.parse(cond.partners).mix, rounds=cfg.rounds, iterations=cond.iterations or cfg.iterations,
            seed=tuple(int(s) for s in seed.generate_state(4)), learners=cond.learner_count(),
            opponent_id=cond.opponent_id, shards=cfg.shards, eval_every=cfg.eval_every, eval_games=cfg.eval_games,
            final_eval_games=cfg.final_eval_games, league_every=cfg.league_every, league_size=cfg.league_size,
            checkpoint_every=cfg.checkpoint_every, snapshots=tuple(sorted(set(cfg.snapshots))),
        )

    @classmethod
    def _run_a2c(cls, cfg: WeisConfig, cond: Condition, seed: np.random.SeedSequence, ctx: RunContext, folder):
        return train(cfg, cls._a2c_spec(cfg, cond, seed), workers=ctx.rollout_workers(cfg.workers, cfg.shards),
                     progress=ctx.progress, folder=folder)

    @classmethod
    def _run_grouped(cls, cfg: WeisConfig, cond: Condition, unit: Unit, ctx: RunContext) -> dict:
        """A unit of several seeds trained as one batched model; each seed's randomness is
        that of its own unit ``<condition>.seed<k>``. Checkpoints in ``<condition>/seeds<a>-<b>``,
        learners saved per seed in ``<condition>/seed<k>``, TensorBoard curves per seed."""
        from pnyx.experiments.runner import unit_seed
        from pnyx.population.grouped_training import GroupedTrainer

        name, seeds = unit.params["condition"], unit.params["seed_indices"]
        specs = [cls._a2c_spec(cfg, cond, unit_seed(cfg.seed, f"{name}.seed{k}")) for k in seeds]
        folder = _unit_folder(cfg, ctx, name, unit.key.removeprefix(f"{name}."))
        with learner_session(cfg, *[_unit_folder(cfg, ctx, name, f"seed{k}") for k in seeds]) as logs:
            def log(s: int, point: dict) -> None:
                if logs[s] is not None:
                    logs[s](point)

            trainer = GroupedTrainer(specs, checkpoint_dir=folder, device=cfg.device, on_point=log,
                                     compile=cfg.compile)
            results = trainer.run(progress=ctx.progress)
            if folder is not None:
                trainer.save_learners([_unit_folder(cfg, ctx, name, f"seed{k}") for k in seeds])
        return dict(zip(seeds, results))

    @staticmethod
    def _run_ppi(cfg: WeisConfig, cond: Condition, seed: np.random.SeedSequence, ctx: RunContext, folder):
        from pnyx.population.ppi_training import PPISpec, PPITrainer

        spec = PPISpec(
            model={"embed": cfg.model.embed, "hidden": cfg.model.hidden} | ({"learner_flag": True} if cond.learner_flag
                                                                             else {}), ppi=cfg.ppi,
            partners=PartnerPool.parse(cond.partners).mix, payoffs=cfg.payoffs, rounds=cfg.rounds,
            seed=tuple(int(s) for s in seed.generate_state(4)), learners=cond.learner_count(),
            pretrain=cond.pretrain, shards=cfg.shards, eval_games=cfg.ppi_games()[0],
            final_eval_games=cfg.ppi_games()[1], opponent_id=cond.opponent_id,
            snapshots=tuple(sorted(set(cfg.ppi_snapshots))),
        )
        with learner_session(cfg, folder) as (log,):
            return PPITrainer(spec, device=cfg.device, checkpoint_dir=folder, on_point=log).run(progress=ctx.progress)

    def summarize(self, cfg: WeisConfig, results: pd.DataFrame, records: dict[str, list[dict]]) -> WeisSummary:
        conditions = {}
        within = records.get("within_episode", [])
        if "seed_index" not in results:
            results = results.assign(seed_index=0)
        for name in cfg.conditions:
            df = results[results["condition"] == name]
            if df.empty:
                continue
            finals = df[df["final"]].groupby("seed_index").last()
            curve = df[~df["final"]]
            columns = ["iteration", *METRICS] + [c for c in ("reward", "entropy", "model_loss") if c in curve]
            c = {"method": cfg.conditions[name].method, "seeds": len(finals), "iterations": int(finals["iteration"].max()),
                 "workers": int(df["workers"].max())}
            for m in METRICS:
                estimate, std = seed_mean(finals[m].tolist(), bounds=(0.0, 1.0))
                c[m], c[f"{m}_std"] = estimate, std
            c["per_seed"] = {str(k): SeedMetrics(**{m: float(r[m]) for m in METRICS}) for k, r in finals.iterrows()}
            mean_curve = curve[columns].groupby("iteration").mean().reset_index()
            c["learning_curve"] = _records(mean_curve)
            c["seed_curves"] = {str(k): _records(g[columns]) for k, g in curve.groupby("seed_index")}
            rates: dict[str, list] = {}
            for r in within:
                if r["condition"] == name:
                    rates.setdefault(r["partner"], []).append(r["cooperation"])
            c["within_episode"] = {p: np.mean(v, axis=0).tolist() for p, v in rates.items()}
            kept: dict[int, dict[str, list]] = {}
            for r in records.get("snapshots", []):
                if r["condition"] == name:
                    kept.setdefault(r["iteration"], {}).setdefault(r["partner"], []).append(r["cooperation"])
            c["snapshots"] = {str(i): {p: np.mean(v, axis=0).tolist() for p, v in kept[i].items()}
                              for i in sorted(kept)}
            conditions[name] = ConditionSummary(**c)
        reached = None
        if "best_response" in conditions:
            br = conditions["best_response"]
            reached = bool(br.vs_tft_cooperation.value >= BEST_RESPONSE_LEVEL
                           and br.vs_allc_defection.value >= BEST_RESPONSE_LEVEL)
        return WeisSummary(conditions=conditions, best_response_reached=reached,
                           ray=RayWorkers(workers=int(results["workers"].max()) if len(results) else 0))

    def plot(self, cfg: WeisConfig, results: pd.DataFrame, summary: WeisSummary) -> dict[str, Figure]:
        """``cooperation_over_training``: the evaluation metrics along each condition's learning
        curve, the mean across seeds as a line in a shaded band, its Student-t 95% interval
        across seeds clipped to [0, 1] at each iteration (:func:`pnyx.stats.seed_mean`, as for
        the final metrics; no band for one seed); ``within_episode_cooperation``: the final
        learners' cooperation per round against each evaluation partner, averaged over seeds.
        One panel per condition."""
        if not summary.conditions:
            return {}
        panels = {name: {"method": c.method, "condition": c} for name, c in summary.conditions.items()}

        def curves(ax, panel):
            c = panel["condition"]
            if not c.seed_curves:
                return
            seeds = pd.concat([pd.DataFrame(curve) for curve in c.seed_curves.values()])
            for k, metric in enumerate(METRICS):
                by_iteration = list(seeds.groupby("iteration")[metric])
                stats = [seed_mean(values.tolist(), bounds=(0.0, 1.0))[0] for _, values in by_iteration]
                interval_line(ax, np.array([i for i, _ in by_iteration]), stats, color=f"C{k}",
                              label=metric.replace("_", " "))

        def within_episode(ax, panel):
            for partner, coop in panel["condition"].within_episode.items():
                ax.plot(np.arange(1, len(coop) + 1), coop, label=f"vs {partner}")

        banded = any(len(c.seed_curves) > 1 for c in summary.conditions.values())
        return {
            "cooperation_over_training": condition_panels(
                panels, curves, "iteration", "rate",
                "Cooperation over training (mean across seeds" + ("; shaded: 95% interval)" if banded else ")")),
            "within_episode_cooperation": condition_panels(panels, within_episode, "round", "learner cooperation",
                                                           "Within-episode cooperation of the final learners"),
            "figure1": self.figure1(cfg, summary),
        } | ({"figure3": self.figure3(cfg, summary)} if any(c.snapshots for c in summary.conditions.values()) else {})

    @staticmethod
    def figure3(cfg: WeisConfig, summary: WeisSummary) -> Figure:
        """After Weis et al. 2026, Figure 3: the learners' cooperation per round against each
        evaluation partner at the snapshot points, averaged over seeds; one row per condition
        with snapshots, left to right the snapshots any condition of its method reached (A2C
        updates of ``snapshots``, PPI phases of ``ppi_snapshots``; "not reached" where this
        one stopped before). Titled with the scale it ran at (:func:`scale_label`)."""
        rows = {name: c for name, c in summary.conditions.items() if c.snapshots}
        reached: dict[str, set[int]] = {}
        for c in rows.values():
            reached.setdefault(c.method, set()).update(int(i) for i in c.snapshots)
        points = {name: sorted(reached[c.method]) for name, c in rows.items()}
        columns = max(len(p) for p in points.values())
        fig = Figure(figsize=(max(7.5, 2.9 * columns + 1), 2.3 * len(rows) + 1.4), layout="constrained")
        axes = fig.subplots(len(rows), columns, sharey=True, squeeze=False)
        for r, (name, c) in enumerate(rows.items()):
            for col in range(columns):
                ax = axes[r][col]
                if col >= len(points[name]):
                    ax.set_axis_off()
                    continue
                point = points[name][col]
                for j, (partner, coop) in enumerate(c.snapshots.get(str(point), {}).items()):
                    ax.plot(np.arange(1, len(coop) + 1), coop, color=f"C{j}", label=f"vs {partner}")
                if str(point) not in c.snapshots:
                    ax.text(0.5, 0.5, "not reached", ha="center", va="center", transform=ax.transAxes, fontsize=8)
                ax.set_ylim(-0.02, 1.02)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_title(f"{'phase' if c.method == 'ppi' else 'iteration'} {point}", fontsize=9)
                ax.set_xlabel("round", fontsize=8)
            label = name if len({c.method for c in rows.values()}) == 1 else f"{name} ({c.method})"
            axes[r][0].set_ylabel(f"{label}\ncooperation", fontsize=9)
        handles = {line.get_label(): line for ax in axes.flat for line in ax.get_lines()}
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=len(handles), fontsize=8)
        fig.suptitle("After Weis et al. 2026, Figure 3: learners' cooperation within an episode during training "
                     f"(mean across seeds)\n{_scale(cfg)}", fontsize=9)
        return fig

    @staticmethod
    def figure1(cfg: WeisConfig, summary: WeisSummary) -> Figure:
        """After Weis et al. 2026, Figure 1: learner-vs-learner cooperation over training of
        every condition overlaid, the mean across seeds as a line and mean +- one standard
        deviation across seeds shaded (clipped to [0, 1]; :func:`seed_band`); one panel per
        learning method, as A2C counts updates and PPI phases. Titled with the scale it ran
        at (:func:`scale_label`)."""
        methods = list(dict.fromkeys(c.method for c in summary.conditions.values()))
        fig = Figure(figsize=(max(7.5, 5 * len(methods)), 4.6), layout="constrained")
        axes = fig.subplots(1, len(methods), sharey=True, squeeze=False)[0]
        for ax, method in zip(axes, methods):
            for k, (name, c) in enumerate(summary.conditions.items()):
                if c.method != method or not c.seed_curves:
                    continue
                seeds = pd.concat([pd.DataFrame(curve) for curve in c.seed_curves.values()])
                by_iteration = list(seeds.groupby("iteration")["learner_vs_learner_cooperation"])
                label = name if len(methods) == 1 else f"{name} ({method})"
                alone = name in cfg.conditions and cfg.conditions[name].learner_count() == 1
                interval_line(ax, np.array([i for i, _ in by_iteration]), [seed_band(v) for _, v in by_iteration],
                              color=f"C{k}", label=label + (" (one learner: vs itself)" if alone else ""))
            ax.set_title("A2C" if method == "a2c" else "PPI")
            ax.set_xlabel("iteration (A2C update)" if method == "a2c" else "phase (PPI)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(-0.02, 1.02)
        axes[0].set_ylabel("learner-vs-learner cooperation")
        fig.legend(loc="outside lower center", ncols=min(len(summary.conditions), 3), fontsize=8)
        fig.suptitle("After Weis et al. 2026, Figure 1: learner-vs-learner cooperation over training\n"
                     f"mean across seeds, shaded: ±1 sd\n{_scale(cfg)}", fontsize=9)
        return fig

    def report(self, cfg: WeisConfig, summary: WeisSummary) -> str:
        lines = ["| condition | seeds | iterations | method | learner vs learner C | vs tft C | vs allc D | vs alld D |",
                 "|---|---|---|---|---|---|---|---|"]
        for name, c in summary.conditions.items():
            cells = [f"{format_estimate(getattr(c, m), 2)} (sd {format_number(getattr(c, f'{m}_std'), 2)})"
                     for m in METRICS]
            lines.append(f"| {name} | {c.seeds} | {c.iterations} | {c.method} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Means across seeds with Student-t 95% intervals (clipped to [0, 1], as every metric is a rate) "
                     "and standard deviations. Iterations are A2C "
                     "updates for a2c and phases for ppi (predictive policy improvement).")
        workers = sorted({c.workers for c in summary.conditions.values()})
        lines.append(f"Rollouts on {', '.join(map(str, workers))} Ray worker(s) per unit (0: in the driver).")
        if summary.best_response_reached is not None:
            verdict = "reached" if summary.best_response_reached else "did not reach"
            lines.append(f"The best-response condition {verdict} mean cooperation >= {BEST_RESPONSE_LEVEL} with tit "
                         f"for tat and defection >= {BEST_RESPONSE_LEVEL} against always-cooperate.")
        lines.append("Weis et al. (arXiv:2602.16301, Figure 1) report learner-vs-learner cooperation with the mixed "
                     "pool after tens of thousands of iterations at batch 4096 (200k in all), and defection in both "
                     "ablations; short runs show the early, defecting phase.")
        return "\n".join(lines)


def _scale(cfg: WeisConfig) -> str:
    """:func:`scale_label` of a run: the paper's scale is 10 seeds of 100-round episodes, each
    A2C condition 200k updates of at least 2048 episodes (Table 2), PPI 30 phases of 20k with
    the paper's PPI settings (a run with others names them)."""
    run = [c for c in cfg.conditions.values() if c.method in cfg.methods]
    a2c = [(c.iterations or cfg.iterations, (c.a2c or cfg.a2c).batch) for c in run if c.method == "a2c"]
    ppi = any(c.method == "ppi" for c in run)
    detail = [f"{cfg.seeds} seed{'s' if cfg.seeds > 1 else ''}", f"{cfg.rounds} rounds"]
    if a2c:
        detail.append(f"A2C {span([i for i, _ in a2c])} updates of {span([b for _, b in a2c])} episodes")
    changed = cfg.ppi.changed_from_paper() if ppi else []
    if ppi:
        detail += [f"PPI {cfg.ppi.phases} phases of {cfg.ppi.episodes} episodes", *changed]
    paper = (cfg.seeds >= 10 and cfg.rounds >= 100 and all(i >= 200000 and b >= 2048 for i, b in a2c)
             and (not ppi or (cfg.ppi.phases >= 30 and cfg.ppi.episodes >= 20000 and not changed)))
    return scale_label(paper, cfg.device, ", ".join(detail))


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: None if pd.isna(v) else int(v) if k == "iteration" else float(v) for k, v in r.items()}
            for r in df.to_dict("records")]

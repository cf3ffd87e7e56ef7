"""Experiment ``weis-mechanism``: the causal chain of Weis et al. 2026, section 3.2 and appendix B.2 (A2C).

"Multi-agent cooperation through in-context co-player inference" (arXiv:2602.16301)
dissects mixed-pool cooperation into three steps, each its own A2C run with its own
column of the paper's Table 2 (:data:`pnyx.agents.a2c.BEST_RESPONSE`, ``EXPLOITER``,
``MUTUAL_SHAPING``):

1. ``best_response`` -- a learner trained against U(0,1) tabular partners becomes an
   in-context best responder (Figure 4A-B); it is then frozen: the "Fixed-ICL";
2. ``exploiter`` -- a freshly initialised learner trained only against the frozen
   Fixed-ICL learns to extort it (Figure 4C-D; the paper's A2C exploiter reaches about
   1.25 reward per step). The Fixed-ICL's weights never change;
3. ``mutual`` -- two learners, both initialised from the step-2 exploiter, trained
   against each other (Figure 4E-F: initially towards cooperation, seed-dependent).
   The paper does not say whether its two step-3 agents come from one or two step-2
   runs; pnyx starts both from the unit's one exploiter.

One unit per seed runs the three steps in order; every step checkpoints in
``<dir>/seed<k>/<step>/`` (``dir``: ``checkpoint_dir`` or the runner's ``OUT/work``), so an
interrupted unit resumes within the step it was in and skips finished steps.

Measured after step 1: the Fixed-ICL's cooperation per round against tit for tat,
always-cooperate and always-defect (its final evaluation). After step 2, from
``final_eval_games`` exploiter-vs-Fixed-ICL episodes: rewards per step of both,
cooperation and reward per round of both, the exploiter's empirical memory-one behaviour
and :func:`press_dyson_fit` of it; and cooperation per round of two copies of the
exploiter, the pair step 3 starts from, before any step-3 update. After step 3:
cooperation per round of the pair, and cooperation over training
(``learner_vs_learner_cooperation``). Every step's curve also has both seats' training
reward per step (``reward``, ``partner_reward``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pnyx.agents.a2c import BEST_RESPONSE, EXPLOITER, MUTUAL_SHAPING, A2CConfig
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Strict, Summary, Unit, UnitOutput
from pnyx.experiments.figures import condition_panels, interval_line
from pnyx.population.learner_runs import METRICS, LearnerFields, model_spec, scale_label, seed_band, span, train
from pnyx.population.partners import PartnerPool
from pnyx.stats import Estimate, format_estimate, format_number, seed_mean

STEPS = ("best_response", "exploiter", "mutual")


class Step(Strict):
    """One step's training: A2C hyperparameters, iterations and, for step 1 only, the
    partner pool (None: ``tabular``); steps 2 and 3 meet learners."""

    a2c: A2CConfig
    iterations: int = Field(gt=0)
    partners: str | dict[str, float] | None = None

    @field_validator("partners")
    @classmethod
    def _valid_pool(cls, value):
        if value is not None:
            PartnerPool.parse(value)
        return value


class MechanismConfig(LearnerFields, ExperimentConfig):
    best_response: Step = Step(a2c=BEST_RESPONSE, iterations=50000)
    exploiter: Step = Step(a2c=EXPLOITER, iterations=100000)
    mutual: Step = Step(a2c=MUTUAL_SHAPING, iterations=50000)

    @model_validator(mode="after")
    def _batch_fills_shards(self):
        for step in STEPS[1:]:
            if getattr(self, step).partners is not None:
                raise ValueError(f"step {step!r} meets learners; partners applies to best_response only")
        for step in STEPS:
            batch = getattr(self, step).a2c.batch
            if batch % self.shards:
                raise ValueError(f"batch {batch} of step {step!r} is not a multiple of shards={self.shards}")
        return self


class PressDysonFit(BaseModel):
    """:func:`press_dyson_fit` of a memory-one strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    phi: float | None
    #: The extortion factor; None with fewer than three outcomes visited or ``phi <= 0``.
    chi: float | None
    rms_residual: float | None
    #: Outcomes (CC, CD, DC, DD) visited, of 4.
    outcomes: int


class SeedMeasures(BaseModel):
    """What one seed's unit measured after steps 2 and 3 (the exploiter against the Fixed-ICL;
    the step-3 pair), from ``final_eval_games`` episodes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Whether the Fixed-ICL's weights stayed the same through step 2.
    fixed_icl_unchanged: bool
    fixed_icl_vs_tft_cooperation: float
    fixed_icl_vs_allc_defection: float
    exploiter_reward: float
    fixed_icl_reward: float
    exploiter_cooperation: float
    fixed_icl_cooperation: float
    #: The exploiter's cooperation probability after CC, CD, DC, DD and in the first round; None where never visited.
    exploiter_memory_one: list[float | None]
    #: Visits of those five situations.
    exploiter_memory_one_visits: list[int]
    press_dyson: PressDysonFit
    #: The Fixed-ICL's cooperation per round at the end of step 1, by evaluation partner (tft, allc, alld).
    best_response_within_episode: dict[str, list[float]]
    #: Cooperation per round, averaged over episodes.
    exploiter_within_episode: list[float]
    fixed_icl_within_episode: list[float]
    #: Reward per round, averaged over episodes.
    exploiter_within_episode_reward: list[float]
    fixed_icl_within_episode_reward: list[float]
    #: Cooperation per round of two copies of the exploiter, before step-3 training (both seats averaged).
    pre_mutual_within_episode: list[float]
    mutual_reward: float
    mutual_cooperation: float
    mutual_within_episode: list[float]


class CurvePoint(BaseModel):
    """A point of a step's learning curve; None where undefined (training statistics at iteration 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    iteration: float
    learner_vs_learner_cooperation: float | None
    vs_tft_cooperation: float | None
    vs_allc_defection: float | None
    vs_alld_defection: float | None
    reward: float | None
    #: The partner seat's training reward per step (the Fixed-ICL's in step 2).
    partner_reward: float | None
    entropy: float | None


class StepCurves(BaseModel):
    """Each step's learning curve by seed index."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    best_response: dict[str, list[CurvePoint]]
    exploiter: dict[str, list[CurvePoint]]
    mutual: dict[str, list[CurvePoint]]


class MechanismSummary(Summary):
    """Means across seeds with Student-t 95% intervals (``n``: seeds; clipped to [0, 1] for
    the cooperation and defection rates) and standard deviations
    (``<name>_std``; None for one seed) of each seed's measures."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seeds: int
    #: Whether every seed's Fixed-ICL stayed unchanged through step 2.
    fixed_icl_unchanged: bool
    fixed_icl_vs_tft_cooperation: Estimate
    fixed_icl_vs_tft_cooperation_std: float | None
    fixed_icl_vs_allc_defection: Estimate
    fixed_icl_vs_allc_defection_std: float | None
    exploiter_reward: Estimate
    exploiter_reward_std: float | None
    fixed_icl_reward: Estimate
    fixed_icl_reward_std: float | None
    exploiter_cooperation: Estimate
    exploiter_cooperation_std: float | None
    fixed_icl_cooperation: Estimate
    fixed_icl_cooperation_std: float | None
    mutual_reward: Estimate
    mutual_reward_std: float | None
    mutual_cooperation: Estimate
    mutual_cooperation_std: float | None
    #: The Press-Dyson extortion factor, over the seeds where it is defined.
    press_dyson_chi: Estimate
    press_dyson_chi_std: float | None
    #: By seed index.
    per_seed: dict[str, SeedMeasures]
    curves: StepCurves


def empirical_memory_one(obs: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A player's empirical memory-one behaviour from its rows: ``obs`` and ``actions``
    (rounds, games), observation codes own-first. Returns the cooperation probability
    after CC, CD, DC, DD and in the first round (NaN where never visited) and the visits."""
    obs, coop = obs.ravel().astype(np.int64), 1 - actions.ravel().astype(np.int64)
    visits = np.bincount(obs, minlength=5)
    counts = np.bincount(obs, weights=coop, minlength=5)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(visits > 0, counts / np.maximum(visits, 1), np.nan), visits


def press_dyson_fit(p: np.ndarray, payoffs) -> dict:
    """How close a memory-one strategy is to an extortionate zero-determinant strategy
    (Press & Dyson 2012, PNAS 109:10409).

    A strategy with cooperation probabilities ``p`` after CC, CD, DC, DD (own move first)
    is extortionate with factor chi >= 1 when ``p~ = p - (1, 1, 0, 0) = phi * ((S_X - P) -
    chi * (S_Y - P))`` for some phi > 0, where S_X and S_Y are the own and partner payoffs
    per outcome and P the mutual-defection payoff; then ``s_X - P = chi * (s_Y - P)``
    against any partner. This fits ``p~ = a * (S_X - P) + b * (S_Y - P)`` by least squares
    over the visited outcomes (pnyx's choice of fit, in the spirit of Knight et al. 2019,
    "Recognising and evaluating the effectiveness of extortion in the Iterated Prisoner's
    Dilemma"), and returns ``phi = a``, ``chi = -b / a`` and the root-mean-square residual.
    ``chi`` is undefined (None) when fewer than three outcomes were visited (two
    coefficients fit two points exactly) or ``phi <= 0`` (no zero-determinant strategy).
    """
    r, s, t, pp = map(float, payoffs)
    own = np.array([r, s, t, pp]) - pp
    other = np.array([r, t, s, pp]) - pp
    target = np.asarray(p[:4], dtype=np.float64) - np.array([1.0, 1.0, 0.0, 0.0])
    seen = ~np.isnan(target)
    if seen.sum() < 3:
        return {"phi": None, "chi": None, "rms_residual": None, "outcomes": int(seen.sum())}
    design = np.stack([own, other], axis=1)[seen]
    (a, b), *_ = np.linalg.lstsq(design, target[seen], rcond=None)
    residual = float(np.sqrt(np.mean((design @ np.array([a, b]) - target[seen]) ** 2)))
    chi = float(-b / a) if a > 1e-12 else None
    return {"phi": float(a), "chi": chi, "rms_residual": residual, "outcomes": int(seen.sum())}


def head_to_head(net, partner, rounds: int, games: int, seed: list[int]) -> dict[str, np.ndarray]:
    """``games`` episodes of ``net`` (seat 0) against ``partner``: both players' rows."""
    from pnyx.population.diverse_partner_training import play

    pool = PartnerPool({"learner": 1.0})
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    out = play(net, [partner], pool, [pool.draw(games, rng)], [rng.random((rounds, games, 2))], [], rounds, False)
    payoff = net.inputs.payoff.cpu().numpy()
    partner_rewards = payoff[2 * out["partner_actions"].astype(np.int64) + out["actions"]]
    return out | {"partner_rewards": partner_rewards}


def _pair_cooperation(games: dict[str, np.ndarray]) -> list[float]:
    """Cooperation per round of both seats of :func:`head_to_head` episodes, averaged."""
    return (1 - (games["actions"].mean(1) + games["partner_actions"].mean(1)) / 2).tolist()


class WeisMechanism(Experiment):
    name = "weis-mechanism"
    Config = MechanismConfig
    Summary = MechanismSummary
    runs_in_driver = True
    main_plot = "mechanism"

    def units(self, cfg: MechanismConfig) -> list[Unit]:
        return [Unit(key=f"seed{k}", params={"seed_index": k}) for k in range(cfg.seeds)]

    def _spec(self, cfg, step: str, seed, **fields):
        from pnyx.population.diverse_partner_training import TrainingSpec

        s = getattr(cfg, step)
        partners = PartnerPool.parse(s.partners or "tabular").mix if step == "best_response" else {"learner": 1.0}
        return TrainingSpec(model=model_spec(cfg, False), a2c=s.a2c, partners=partners, rounds=cfg.rounds,
                            iterations=s.iterations, seed=tuple(int(x) for x in seed.generate_state(4)),
                            shards=cfg.shards, eval_every=cfg.eval_every, eval_games=cfg.eval_games,
                            final_eval_games=cfg.final_eval_games, checkpoint_every=cfg.checkpoint_every, **fields)

    def run_unit(self, cfg: MechanismConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        import torch

        k = unit.params["seed_index"]
        root = cfg.checkpoint_dir or ctx.workdir
        folder = (lambda step: Path(root) / f"seed{k}" / step) if root else (lambda step: None)
        seeds = seed.spawn(4)
        rows = []

        def run(step, spec, init=None):
            return train(cfg, spec, workers=ctx.rollout_workers(cfg.workers, cfg.shards), progress=ctx.progress,
                         folder=folder(step), init=init)

        def record(step, result):
            df = pd.DataFrame(result.curve)
            df.insert(0, "step", step)
            df.insert(1, "seed_index", k)
            rows.append(df)

        icl = run("best_response", self._spec(cfg, "best_response", seeds[0]))
        record("best_response", icl)
        fixed = {n: v.detach().cpu().clone() for n, v in icl.nets[0].state_dict().items()}
        exploit = run("exploiter", self._spec(cfg, "exploiter", seeds[1], learners=2, frozen=(1,)), init=[None, fixed])
        record("exploiter", exploit)
        unchanged = all(torch.equal(fixed[n], v.detach().cpu()) for n, v in exploit.nets[1].state_dict().items())
        exploiter = {n: v.detach().cpu().clone() for n, v in exploit.nets[0].state_dict().items()}
        mutual = run("mutual", self._spec(cfg, "mutual", seeds[2], learners=2), init=[exploiter, exploiter])
        record("mutual", mutual)

        entropy = [int(x) for x in seeds[3].generate_state(2)]
        games = head_to_head(exploit.nets[0].eval(), exploit.nets[1].eval(), cfg.rounds, cfg.final_eval_games, entropy)
        p, visits = empirical_memory_one(games["obs"], games["actions"])
        pair = head_to_head(mutual.nets[0].eval(), mutual.nets[1].eval(), cfg.rounds, cfg.final_eval_games, entropy)
        before = head_to_head(exploit.nets[0], exploit.nets[0], cfg.rounds, cfg.final_eval_games, entropy)
        measures = {
            "seed_index": k,
            "fixed_icl_unchanged": unchanged,
            "fixed_icl_vs_tft_cooperation": float(icl.curve[-1]["vs_tft_cooperation"]),
            "fixed_icl_vs_allc_defection": float(icl.curve[-1]["vs_allc_defection"]),
            "exploiter_reward": float(games["rewards"].mean()),
            "fixed_icl_reward": float(games["partner_rewards"].mean()),
            "exploiter_cooperation": float(1 - games["actions"].mean()),
            "fixed_icl_cooperation": float(1 - games["partner_actions"].mean()),
            "exploiter_memory_one": [None if np.isnan(x) else float(x) for x in p],
            "exploiter_memory_one_visits": visits.tolist(),
            "press_dyson": press_dyson_fit(p, cfg.payoffs),
            "best_response_within_episode": {p: c for p, c in icl.within_episode.items() if p != "learner"},
            "exploiter_within_episode": (1 - games["actions"].mean(1)).tolist(),
            "fixed_icl_within_episode": (1 - games["partner_actions"].mean(1)).tolist(),
            "exploiter_within_episode_reward": games["rewards"].mean(1).tolist(),
            "fixed_icl_within_episode_reward": games["partner_rewards"].mean(1).tolist(),
            "pre_mutual_within_episode": _pair_cooperation(before),
            "mutual_reward": float((pair["rewards"].mean() + pair["partner_rewards"].mean()) / 2),
            "mutual_cooperation": float(1 - (pair["actions"].mean() + pair["partner_actions"].mean()) / 2),
            "mutual_within_episode": _pair_cooperation(pair),
        }
        return UnitOutput(rows=pd.concat(rows, ignore_index=True), records={"measures": [measures]})

    def summarize(self, cfg: MechanismConfig, results: pd.DataFrame,
                  records: dict[str, list[dict]]) -> MechanismSummary:
        measures = sorted(records.get("measures", []), key=lambda m: m["seed_index"])
        scalars = ["fixed_icl_vs_tft_cooperation", "fixed_icl_vs_allc_defection", "exploiter_reward",
                   "fixed_icl_reward", "exploiter_cooperation", "fixed_icl_cooperation", "mutual_reward",
                   "mutual_cooperation"]
        summary: dict = {"seeds": len(measures),
                         "fixed_icl_unchanged": all(m["fixed_icl_unchanged"] for m in measures)}
        for name in scalars:
            rate = "cooperation" in name or "defection" in name
            estimate, std = seed_mean([m[name] for m in measures], bounds=(0.0, 1.0) if rate else None)
            summary[name], summary[f"{name}_std"] = estimate, std
        chis = [m["press_dyson"]["chi"] for m in measures]
        estimate, std = seed_mean([c for c in chis if c is not None])
        summary["press_dyson_chi"], summary["press_dyson_chi_std"] = estimate, std
        summary["per_seed"] = {str(m["seed_index"]): SeedMeasures(**{k: v for k, v in m.items() if k != "seed_index"})
                               for m in measures}
        curves = {}
        for step in STEPS:
            df = results[(results["step"] == step) & ~results["final"]] if len(results) else results
            columns = ["iteration", *METRICS] + [c for c in ("reward", "partner_reward", "entropy") if c in df]
            curves[step] = {str(k): [CurvePoint(**{c: None if pd.isna(v) else float(v) for c, v in r.items()})
                                     for r in g[columns].to_dict("records")] for k, g in df.groupby("seed_index")}
        return MechanismSummary(**summary, curves=StepCurves(**curves))

    def plot(self, cfg: MechanismConfig, results: pd.DataFrame, summary: MechanismSummary) -> dict[str, Figure]:
        """``mechanism``: per step and seed, the curve that step is about: step 1 cooperation
        with tit for tat and defection against always-cooperate, step 2 the exploiter's reward
        per step, step 3 the pair's cooperation; ``mechanism_episodes``: within-episode
        cooperation of exploiter and Fixed-ICL, and of the step-3 pair, per seed."""
        if not summary.per_seed:
            return {}
        shown = {"best_response": ("vs_tft_cooperation", "vs_allc_defection"), "exploiter": ("reward",),
                 "mutual": ("learner_vs_learner_cooperation",)}
        fig = Figure(figsize=(12, 3.4), layout="tight")
        for ax, step in zip(fig.subplots(1, 3), STEPS):
            for j, metric in enumerate(shown[step]):
                for k, curve in enumerate(getattr(summary.curves, step).values()):
                    df = pd.DataFrame([point.model_dump() for point in curve])
                    ax.plot(df["iteration"], df[metric], color=f"C{j}", alpha=0.6,
                            label=metric.replace("_", " ") if k == 0 else None)
            ax.set_title(step)
            ax.set_xlabel("iteration")
            ax.set_ylabel("exploiter reward per step" if step == "exploiter" else "rate")
            ax.legend(fontsize=7, loc="best")
        fig.suptitle("Mechanism chain (one line per seed)")

        def episodes(ax, c):
            for k, m in enumerate(summary.per_seed.values()):
                for j, key in enumerate(c["keys"]):
                    ax.plot(np.arange(1, len(getattr(m, key)) + 1), getattr(m, key), color=f"C{j}", alpha=0.6,
                            label=key.replace("_within_episode", "").replace("_", " ") if k == 0 else None)

        within = {"exploiter vs Fixed-ICL": {"keys": ["exploiter_within_episode", "fixed_icl_within_episode"]},
                  "mutual": {"keys": ["mutual_within_episode"]}}
        return {"mechanism": fig,
                "mechanism_episodes": condition_panels(within, episodes, "round", "cooperation",
                                                       "Within-episode cooperation after training (one line per seed)"),
                "figure4": self.figure4(cfg, summary)}

    @staticmethod
    def figure4(cfg: MechanismConfig, summary: MechanismSummary) -> Figure:
        """After Weis et al. 2026, Figure 4, the panels pnyx records (A and E are the
        ``mechanism`` figure's curves): B the Fixed-ICL's cooperation per round against tit
        for tat, always-cooperate and always-defect after step 1; C both seats' training
        reward per step over the exploiter's training (step 2); D both players' reward per
        round after step 2; F the cooperation per round of the pair step 3 starts from,
        before its first update. Each line the mean across seeds, shaded mean +- one
        standard deviation across seeds (rates clipped to [0, 1]; :func:`seed_band`).
        Titled with the scale it ran at (:func:`scale_label`)."""
        seeds = list(summary.per_seed.values())
        fig = Figure(figsize=(13, 6.4), layout="constrained")
        (b, c), (d, f) = fig.subplots(2, 2)

        def per_round(ax, series: dict[str, list[list[float]]], rate: bool):
            for j, (label, rows) in enumerate(series.items()):
                rounds = np.arange(1, len(rows[0]) + 1)
                interval_line(ax, rounds, [seed_band(v, rate) for v in zip(*rows)], color=f"C{j}", label=label)
            ax.set_xlabel("round")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if rate:
                ax.set_ylim(-0.02, 1.02)
            ax.legend(fontsize=7, loc="best")

        partners = list(seeds[0].best_response_within_episode)
        per_round(b, {f"vs {p}": [m.best_response_within_episode[p] for m in seeds] for p in partners}, True)
        b.set(title="B: step-1 learner (Fixed-ICL) within an episode", ylabel="Fixed-ICL cooperation")
        curves = list(summary.curves.exploiter.values())
        for j, (key, label) in enumerate([("reward", "exploiter"), ("partner_reward", "Fixed-ICL")]):
            frames = [pd.DataFrame([point.model_dump() for point in curve]).dropna(subset=[key]) for curve in curves]
            by_iteration = list(pd.concat(frames).groupby("iteration")[key])
            interval_line(c, np.array([i for i, _ in by_iteration]), [seed_band(v, False) for _, v in by_iteration],
                          color=f"C{j}", label=label)
        c.set(title="C: training reward over the exploiter's training (step 2)", xlabel="iteration (exploiter update)",
              ylabel="reward per step")
        c.xaxis.set_major_locator(MaxNLocator(integer=True))
        c.legend(fontsize=7, loc="best")
        per_round(d, {"exploiter": [m.exploiter_within_episode_reward for m in seeds],
                      "Fixed-ICL": [m.fixed_icl_within_episode_reward for m in seeds]}, False)
        d.set(title="D: reward per round, exploiter vs Fixed-ICL after step 2", ylabel="reward")
        per_round(f, {"exploiter pair": [m.pre_mutual_within_episode for m in seeds]}, True)
        f.set(title="F: the step-3 pair before its first update", ylabel="cooperation")
        fig.suptitle(f"After Weis et al. 2026, Figure 4 (panels B, C, D, F): mean across {len(seeds)} "
                     f"seed{'s' if len(seeds) > 1 else ''}, shaded: ±1 sd\n{_scale(cfg)}", fontsize=10)
        return fig

    def report(self, cfg: MechanismConfig, summary: MechanismSummary) -> str:
        def cell(name):
            std = getattr(summary, f"{name}_std")
            return f"{format_estimate(getattr(summary, name), 2)} (sd {format_number(std, 2)})"

        lines = ["| measure | mean across seeds [95% CI] |", "|---|---|"]
        for name in ("fixed_icl_vs_tft_cooperation", "fixed_icl_vs_allc_defection", "exploiter_reward",
                     "fixed_icl_reward", "exploiter_cooperation", "fixed_icl_cooperation", "press_dyson_chi",
                     "mutual_reward", "mutual_cooperation"):
            lines.append(f"| {name} | {cell(name)} |")
        lines.append("")
        lines.append(f"{summary.seeds} seed(s). Student-t intervals, clipped to [0, 1] for the cooperation and "
                     "defection rates. The Fixed-ICL's weights "
                     f"{'stayed unchanged' if summary.fixed_icl_unchanged else 'CHANGED'} during step 2. "
                     "press_dyson_chi: the extortion factor of the least-squares zero-determinant fit of the "
                     "exploiter's empirical memory-one behaviour (chi > 1: extortionate, if the residual is small).")
        lines.append("Weis et al. (arXiv:2602.16301, Figure 4) report an A2C exploiter at about 1.25 reward per step "
                     "against the Fixed-ICL, and step-3 pairs that first move towards cooperation.")
        return "\n".join(lines)


def _scale(cfg: MechanismConfig) -> str:
    """:func:`scale_label` of a run: the paper's scale is 5 seeds (Figure 4) of 100-round
    episodes and the preset's steps: 50k and 100k updates of 2048 episodes for steps 1 and 2
    (Table 2, Figure 4), 50k of 4096 for step 3 (pnyx's count)."""
    steps = [getattr(cfg, step) for step in STEPS]
    detail = (f"{cfg.seeds} seed{'s' if cfg.seeds > 1 else ''}, {cfg.rounds} rounds, steps "
              f"{'/'.join(str(s.iterations) for s in steps)} updates of {span([s.a2c.batch for s in steps])} episodes")
    paper = (cfg.seeds >= 5 and cfg.rounds >= 100
             and all(s.iterations >= i and s.a2c.batch >= b
                     for s, (i, b) in zip(steps, [(50000, 2048), (100000, 2048), (50000, 4096)])))
    return scale_label(paper, cfg.device, detail)

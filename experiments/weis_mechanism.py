"""Experiment ``weis-mechanism``: the causal chain of Weis et al. 2026, section 3.2 (PPI) and appendix B.2 (A2C).

"Multi-agent cooperation through in-context co-player inference" (arXiv:2602.16301)
dissects mixed-pool cooperation into three steps, run here with either learning method
(``methods``): A2C, each step with its own column of the paper's Table 2
(:data:`pnyx.agents.a2c.BEST_RESPONSE`, ``EXPLOITER``, ``MUTUAL_SHAPING``), and predictive
policy improvement (PPI, :mod:`pnyx.population.ppi_training`, the ``ppi`` hyperparameters,
``phases`` per step), the method of the paper's main-text Figure 2:

1. ``best_response`` -- a learner trained against U(0,1) tabular partners becomes an
   in-context best responder (Figures 2A-B and 4A-B); it is then frozen: the "Fixed-ICL";
2. ``exploiter`` -- a fresh learner trained only against the frozen Fixed-ICL learns to
   extort it (Figures 2C-D and 4C-D; the paper's exploiter reaches about 0.9 reward per
   step with PPI, 1.25 with A2C, appendix B.2). The Fixed-ICL never changes: A2C's weights
   take no update, PPI's model is never retrained (a ``frozen`` learner);
3. ``mutual`` -- two learners initialised with the step-2 exploiter, trained against each
   other (Figures 2E-F and 4E-F: towards cooperation). The paper does not say whether its
   two step-3 agents come from one or two step-2 runs; pnyx starts both from the unit's one
   exploiter. An A2C learner starts from its weights; a PPI learner, whose model is
   re-initialised every phase, from its whole dataset (pnyx's reading of "initialize two
   agents with the extortion policies learned in Step 2" for PPI), so its first phase
   retrains the exploiter's model before it collects.

A fresh PPI learner (step 1, and step 2's exploiter) starts from ``D_0``: U(0,1)
memory-one agents playing each other (appendix A.3.1); every step runs ``phases`` phases
(30 in the paper's Figure 2, its x axes). PPI runs ``ppi_seeds`` seeds (Figure 2: 10;
A2C's Figure 4: 5) and evaluates with ``ppi_eval_games`` and ``ppi_final_eval_games``
games, as its games cost far more than A2C's. One unit per method and seed runs the three
steps in order; every step checkpoints in ``<dir>/seed<k>/<step>/`` (A2C) or
``<dir>/ppi/seed<k>/<step>/`` (``dir``: ``checkpoint_dir`` or the runner's ``OUT/work``),
so an interrupted unit resumes within the step it was in and skips finished steps.

Measured after step 1, from ``final_eval_games`` games against each of tit for tat,
always-cooperate and always-defect: the Fixed-ICL's cooperation with tit for tat, its
defection against always-cooperate, and its cooperation and reward per round. After step 2, from ``final_eval_games``
exploiter-vs-Fixed-ICL episodes: rewards per step of both, cooperation and reward per
round of both, the exploiter's empirical memory-one behaviour and :func:`press_dyson_fit`
of it; cooperation and reward per round of two copies of the exploiter, the pair step 3
starts from, before any step-3 update. After step 3: cooperation and reward per round of
the pair, and cooperation over training (``learner_vs_learner_cooperation``). Every
step's curve also has both seats' training reward per step and cooperation rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pnyx.agents.a2c import BEST_RESPONSE, EXPLOITER, MUTUAL_SHAPING, A2CConfig
from pnyx.agents.ppi import PPIConfig
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Strict, Summary, Unit, UnitOutput
from pnyx.experiments.figures import condition_panels, interval_line
from pnyx.population.learner_runs import (METRICS, LearnerFields, PPIEvalFields, learner_session, model_spec,
                                          scale_label, seed_band, span, train)
from pnyx.population.partners import PartnerPool
from pnyx.stats import Estimate, format_estimate, format_number, seed_mean

STEPS = ("best_response", "exploiter", "mutual")
METHODS = ("a2c", "ppi")
#: Training statistics a step's curve keeps besides :data:`METRICS`, where the method reports them.
CURVE_STATS = ("reward", "partner_reward", "train_cooperation", "partner_cooperation", "entropy", "model_loss")
#: The evaluation partners of step 1's within-episode measures.
BEST_RESPONSE_PARTNERS = ("tft", "allc", "alld")


class Step(Strict):
    """One step's training: A2C hyperparameters and updates, PPI phases, and, for step 1
    only, the partner pool (None: ``tabular``); steps 2 and 3 meet learners."""

    a2c: A2CConfig
    iterations: int = Field(gt=0, description="A2C updates")
    phases: int | None = Field(None, gt=0, description="PPI phases; None: ppi.phases")
    partners: str | dict[str, float] | None = None

    @field_validator("partners")
    @classmethod
    def _valid_pool(cls, value):
        if value is not None:
            PartnerPool.parse(value)
        return value


class MechanismConfig(PPIEvalFields, LearnerFields, ExperimentConfig):
    methods: list[Literal["a2c", "ppi"]] = Field(
        ["a2c", "ppi"], min_length=1, description="learning methods, each running the whole chain per seed "
        "(PPI: the paper's Figure 2; A2C: Figure 4)")
    ppi: PPIConfig = Field(PPIConfig(), description="PPI hyperparameters of every step (phases: see each step)")
    ppi_seeds: int | None = Field(None, ge=1, le=1000, description="PPI's seeds; None: seeds (the paper's Figure 2 "
                                  "has 10, its A2C Figure 4 has 5)")
    best_response: Step = Step(a2c=BEST_RESPONSE, iterations=50000)
    exploiter: Step = Step(a2c=EXPLOITER, iterations=100000)
    mutual: Step = Step(a2c=MUTUAL_SHAPING, iterations=50000)

    @model_validator(mode="after")
    def _batch_fills_shards(self):
        if len(set(self.methods)) < len(self.methods):
            raise ValueError(f"methods {self.methods} name a method twice")
        for step in STEPS[1:]:
            if getattr(self, step).partners is not None:
                raise ValueError(f"step {step!r} meets learners; partners applies to best_response only")
        if "a2c" in self.methods:
            for step in STEPS:
                batch = getattr(self, step).a2c.batch
                if batch % self.shards:
                    raise ValueError(f"batch {batch} of step {step!r} is not a multiple of shards={self.shards}")
        if "ppi" in self.methods:
            if self.model.kind != "gru":
                raise ValueError("method ppi needs model kind 'gru'")
            if self.ppi.episodes % self.shards:
                raise ValueError(f"ppi.episodes={self.ppi.episodes} is not a multiple of shards={self.shards}")
            if "league" in PartnerPool.parse(self.best_response.partners or "tabular").mix:
                raise ValueError("method ppi has no league partners")
        return self

    def phases(self, step: str) -> int:
        """The PPI phases of ``step``."""
        return getattr(self, step).phases or self.ppi.phases

    def method_seeds(self, method: str) -> int:
        """How many seeds ``method`` runs."""
        return (self.ppi_seeds or self.seeds) if method == "ppi" else self.seeds

    def final_games(self, method: str) -> int:
        """The games of ``method``'s final evaluations and measures."""
        return self.ppi_games()[1] if method == "ppi" else self.final_eval_games


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
    #: Whether the Fixed-ICL stayed the same through step 2 (A2C: its weights; PPI: its model).
    fixed_icl_unchanged: bool
    #: After step 1, from the games of ``best_response_within_episode``.
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
    #: The Fixed-ICL's cooperation per round at the end of step 1, by evaluation partner (tft, allc, alld),
    #: from ``final_eval_games`` games per partner.
    best_response_within_episode: dict[str, list[float]]
    #: Its reward per round in the same games.
    best_response_within_episode_reward: dict[str, list[float]] = Field(default_factory=dict)
    #: Cooperation per round, averaged over episodes.
    exploiter_within_episode: list[float]
    fixed_icl_within_episode: list[float]
    #: Reward per round, averaged over episodes.
    exploiter_within_episode_reward: list[float]
    fixed_icl_within_episode_reward: list[float]
    #: Cooperation per round of two copies of the exploiter, before step-3 training (both seats averaged).
    pre_mutual_within_episode: list[float]
    #: Their reward per round (both seats averaged).
    pre_mutual_within_episode_reward: list[float] = Field(default_factory=list)
    mutual_reward: float
    mutual_cooperation: float
    mutual_within_episode: list[float]
    mutual_within_episode_reward: list[float] = Field(default_factory=list)


class CurvePoint(BaseModel):
    """A point of a step's learning curve (``iteration``: A2C update or PPI phase); None where
    undefined (training statistics at iteration 0) or not reported by the method."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    iteration: float
    learner_vs_learner_cooperation: float | None
    vs_tft_cooperation: float | None
    vs_allc_defection: float | None
    vs_alld_defection: float | None
    reward: float | None
    #: The partner seat's training reward per step (the Fixed-ICL's in step 2).
    partner_reward: float | None
    #: The learners' and their partners' cooperation rates in the training games (PPI: the phase's games).
    train_cooperation: float | None = None
    partner_cooperation: float | None = None
    entropy: float | None = None
    #: PPI: the sequence model's next-token loss at the end of the phase's training.
    model_loss: float | None = None


class StepCurves(BaseModel):
    """Each step's learning curve by seed index."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    best_response: dict[str, list[CurvePoint]]
    exploiter: dict[str, list[CurvePoint]]
    mutual: dict[str, list[CurvePoint]]


class MethodSummary(BaseModel):
    """One method's chain: means across seeds with Student-t 95% intervals (``n``: seeds;
    clipped to [0, 1] for the cooperation and defection rates) and standard deviations
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


class MechanismSummary(Summary):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Each method's chain (``a2c``, ``ppi``), in config order, those with results.
    methods: dict[str, MethodSummary]


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


def _play(net, partners: list, pool: PartnerPool, rounds: int, games: int, seed: list[int]) -> dict[str, np.ndarray]:
    """``games`` episodes of ``net`` (seat 0) against ``pool`` (``partners``: its learners):
    both players' rows and the partner's rewards. Improved PPI policies are reseeded first,
    so their rollouts are fixed by ``seed``."""
    from pnyx.population.diverse_partner_training import play

    for j, player in enumerate([net, *partners]):
        if hasattr(player, "reseed"):
            player.reseed([*seed, 2**31, j])
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    out = play(net, partners, pool, [pool.draw(games, rng)], [rng.random((rounds, games, 2))], [], rounds, False)
    payoff = net.inputs.payoff.cpu().numpy()
    partner_rewards = payoff[2 * out["partner_actions"].astype(np.int64) + out["actions"]]
    return out | {"partner_rewards": partner_rewards}


def head_to_head(net, partner, rounds: int, games: int, seed: list[int]) -> dict[str, np.ndarray]:
    """``games`` episodes of ``net`` (seat 0) against ``partner``: both players' rows."""
    return _play(net, [partner], PartnerPool({"learner": 1.0}), rounds, games, seed)


def _pair_cooperation(games: dict[str, np.ndarray]) -> list[float]:
    """Cooperation per round of both seats of :func:`head_to_head` episodes, averaged."""
    return (1 - (games["actions"].mean(1) + games["partner_actions"].mean(1)) / 2).tolist()


def _pair_reward(games: dict[str, np.ndarray]) -> list[float]:
    """Reward per round of both seats of :func:`head_to_head` episodes, averaged."""
    return ((games["rewards"].mean(1) + games["partner_rewards"].mean(1)) / 2).tolist()


@dataclass
class Chain:
    """What one seed's three steps leave for the measures: each step's
    :class:`~pnyx.population.diverse_partner_training.TrainingResult` (``icl``, ``exploit``,
    ``mutual``), the players (A2C networks or improved PPI policies: step 1's learner, the
    exploiter, step 2's Fixed-ICL, step 3's pair) and whether the Fixed-ICL stayed unchanged."""

    icl: Any
    fixed_icl: Any
    exploit: Any
    exploiter: Any
    frozen_icl: Any
    mutual: Any
    pair: list
    unchanged: bool


def _state(net) -> dict:
    return {n: v.detach().cpu().clone() for n, v in net.state_dict().items()}


def _same(state: dict, net) -> bool:
    import torch

    return all(torch.equal(state[n], v.detach().cpu()) for n, v in net.state_dict().items())


class WeisMechanism(Experiment):
    name = "weis-mechanism"
    Config = MechanismConfig
    Summary = MechanismSummary
    runs_in_driver = True
    main_plot = "mechanism"

    def units(self, cfg: MechanismConfig) -> list[Unit]:
        """One unit per method and seed: ``seed<k>`` (A2C), ``ppi.seed<k>`` (PPI)."""
        return [Unit(key=f"seed{k}" if method == "a2c" else f"{method}.seed{k}",
                     params={"method": method, "seed_index": k})
                for method in cfg.methods for k in range(cfg.method_seeds(method))]

    def _spec(self, cfg, step: str, seed, **fields):
        from pnyx.population.diverse_partner_training import TrainingSpec

        s = getattr(cfg, step)
        return TrainingSpec(model=model_spec(cfg, False), a2c=s.a2c, partners=_partners(cfg, step), rounds=cfg.rounds,
                            iterations=s.iterations, seed=tuple(int(x) for x in seed.generate_state(4)),
                            shards=cfg.shards, eval_every=cfg.eval_every, eval_games=cfg.eval_games,
                            final_eval_games=cfg.final_eval_games, checkpoint_every=cfg.checkpoint_every, **fields)

    def _a2c_chain(self, cfg: MechanismConfig, seeds, folder, ctx: RunContext) -> Chain:
        """Figure 4: A2C steps, each a :class:`~pnyx.population.diverse_partner_training.Trainer`
        run; the Fixed-ICL is a ``frozen`` learner of step 2."""
        def run(step, spec, init=None):
            return train(cfg, spec, workers=ctx.rollout_workers(cfg.workers, cfg.shards), progress=ctx.progress,
                         folder=folder(step), init=init)

        icl = run("best_response", self._spec(cfg, "best_response", seeds[0]))
        fixed = _state(icl.nets[0])
        exploit = run("exploiter", self._spec(cfg, "exploiter", seeds[1], learners=2, frozen=(1,)), init=[None, fixed])
        mutual = run("mutual", self._spec(cfg, "mutual", seeds[2], learners=2), init=[_state(exploit.nets[0])] * 2)
        return Chain(icl, icl.nets[0].eval(), exploit, exploit.nets[0].eval(), exploit.nets[1].eval(), mutual,
                     [net.eval() for net in mutual.nets], _same(fixed, exploit.nets[1]))

    def _ppi_chain(self, cfg: MechanismConfig, seeds, folder, ctx: RunContext) -> Chain:
        """Figure 2: PPI steps, each a :class:`~pnyx.population.ppi_training.PPITrainer` run;
        the Fixed-ICL is a ``frozen`` learner of step 2 (its model never retrained), step 3's
        learners start from the exploiter's dataset."""
        from pnyx.population.ppi_training import PPISpec, PPITrainer

        def spec(step, seed, learners=1, **fields):
            return PPISpec(model={"embed": cfg.model.embed, "hidden": cfg.model.hidden},
                           ppi=cfg.ppi.model_copy(update={"phases": cfg.phases(step)}), partners=_partners(cfg, step),
                           payoffs=cfg.payoffs, rounds=cfg.rounds, seed=tuple(int(x) for x in seed.generate_state(4)),
                           learners=learners, shards=cfg.shards, eval_games=cfg.ppi_games()[0],
                           final_eval_games=cfg.ppi_games()[1], **fields)

        def run(step, spec, init=None):
            with learner_session(cfg, folder(step)) as (log,):
                trainer = PPITrainer(spec, device=cfg.device, checkpoint_dir=folder(step), on_point=log, init=init)
                return trainer, trainer.run(progress=ctx.progress)

        first, icl = run("best_response", spec("best_response", seeds[0]))
        fixed = _state(first.agents[0].model)
        second, exploit = run("exploiter", spec("exploiter", seeds[1], learners=2, frozen=(1,)),
                              init=[None, {"model": fixed}])
        start = {"data": second.data[0], "ids": second.ids[0]}
        third, mutual = run("mutual", spec("mutual", seeds[2], learners=2), init=[start, start])
        return Chain(icl, first.agents[0], exploit, second.agents[0], second.agents[1], mutual, third.agents,
                     _same(fixed, second.agents[1].model))

    def run_unit(self, cfg: MechanismConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        method, k = unit.params.get("method", "a2c"), unit.params["seed_index"]
        root = cfg.checkpoint_dir or ctx.workdir
        base = (Path(root) / ("ppi" if method == "ppi" else "")) if root else None
        folder = (lambda step: base / f"seed{k}" / step) if base else (lambda step: None)
        seeds = seed.spawn(4)
        chain = (self._ppi_chain if method == "ppi" else self._a2c_chain)(cfg, seeds, folder, ctx)
        rows = []
        for step, result in zip(STEPS, (chain.icl, chain.exploit, chain.mutual)):
            df = pd.DataFrame(result.curve)
            df.insert(0, "method", method)
            df.insert(1, "step", step)
            df.insert(2, "seed_index", k)
            rows.append(df)
        entropy, n = [int(x) for x in seeds[3].generate_state(2)], cfg.final_games(method)
        with learner_session(cfg):  # on learner_threads, as training
            games = head_to_head(chain.exploiter, chain.frozen_icl, cfg.rounds, n, entropy)
            pair = head_to_head(chain.pair[0], chain.pair[1], cfg.rounds, n, entropy)
            before = head_to_head(chain.exploiter, chain.exploiter, cfg.rounds, n, entropy)
            versus = {q: _play(chain.fixed_icl, [], PartnerPool({q: 1.0}), cfg.rounds, n, [*entropy, j])
                      for j, q in enumerate(BEST_RESPONSE_PARTNERS)}
        p, visits = empirical_memory_one(games["obs"], games["actions"])
        measures = {
            "method": method,
            "seed_index": k,
            "fixed_icl_unchanged": chain.unchanged,
            "fixed_icl_vs_tft_cooperation": float(1 - versus["tft"]["actions"].mean()),
            "fixed_icl_vs_allc_defection": float(versus["allc"]["actions"].mean()),
            "exploiter_reward": float(games["rewards"].mean()),
            "fixed_icl_reward": float(games["partner_rewards"].mean()),
            "exploiter_cooperation": float(1 - games["actions"].mean()),
            "fixed_icl_cooperation": float(1 - games["partner_actions"].mean()),
            "exploiter_memory_one": [None if np.isnan(x) else float(x) for x in p],
            "exploiter_memory_one_visits": visits.tolist(),
            "press_dyson": press_dyson_fit(p, cfg.payoffs),
            "best_response_within_episode": {q: (1 - g["actions"].mean(1)).tolist() for q, g in versus.items()},
            "best_response_within_episode_reward": {q: g["rewards"].mean(1).tolist() for q, g in versus.items()},
            "exploiter_within_episode": (1 - games["actions"].mean(1)).tolist(),
            "fixed_icl_within_episode": (1 - games["partner_actions"].mean(1)).tolist(),
            "exploiter_within_episode_reward": games["rewards"].mean(1).tolist(),
            "fixed_icl_within_episode_reward": games["partner_rewards"].mean(1).tolist(),
            "pre_mutual_within_episode": _pair_cooperation(before),
            "pre_mutual_within_episode_reward": _pair_reward(before),
            "mutual_reward": float((pair["rewards"].mean() + pair["partner_rewards"].mean()) / 2),
            "mutual_cooperation": float(1 - (pair["actions"].mean() + pair["partner_actions"].mean()) / 2),
            "mutual_within_episode": _pair_cooperation(pair),
            "mutual_within_episode_reward": _pair_reward(pair),
        }
        return UnitOutput(rows=pd.concat(rows, ignore_index=True), records={"measures": [measures]})

    def summarize(self, cfg: MechanismConfig, results: pd.DataFrame,
                  records: dict[str, list[dict]]) -> MechanismSummary:
        if len(results) and "method" not in results:
            results = results.assign(method="a2c")
        measures = records.get("measures", [])
        methods = {}
        for method in cfg.methods:
            mine = sorted((m for m in measures if m.get("method", "a2c") == method), key=lambda m: m["seed_index"])
            if mine:
                rows = results[results["method"] == method] if len(results) else results
                methods[method] = _method_summary(mine, rows)
        return MechanismSummary(methods=methods)

    def plot(self, cfg: MechanismConfig, results: pd.DataFrame, summary: MechanismSummary) -> dict[str, Figure]:
        """``mechanism``: per method (rows) and step, the curve that step is about, one line
        per seed: step 1 cooperation with tit for tat and defection against always-cooperate,
        step 2 the exploiter's reward per step, step 3 the pair's cooperation;
        ``mechanism_episodes``: within-episode cooperation of exploiter and Fixed-ICL, and of
        the step-3 pair, per seed; ``figure2`` (PPI) and ``figure4`` (A2C)."""
        if not summary.methods:
            return {}
        shown = {"best_response": ("vs_tft_cooperation", "vs_allc_defection"), "exploiter": ("reward",),
                 "mutual": ("learner_vs_learner_cooperation",)}
        fig = Figure(figsize=(12, 3.2 * len(summary.methods) + 0.4), layout="tight")
        axes = fig.subplots(len(summary.methods), 3, squeeze=False)
        for row, (method, m) in zip(axes, summary.methods.items()):
            for ax, step in zip(row, STEPS):
                for j, metric in enumerate(shown[step]):
                    for k, curve in enumerate(getattr(m.curves, step).values()):
                        df = pd.DataFrame([point.model_dump() for point in curve])
                        ax.plot(df["iteration"], df[metric], color=f"C{j}", alpha=0.6,
                                label=metric.replace("_", " ") if k == 0 else None)
                ax.set_title(f"{step} ({_NAMES[method]})")
                ax.set_xlabel(_X[method])
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_ylabel("exploiter reward per step" if step == "exploiter" else "rate")
                ax.legend(fontsize=7, loc="best")
        fig.suptitle("Mechanism chain (one line per seed)")

        def episodes(ax, c):
            for k, seed in enumerate(c["seeds"]):
                for j, key in enumerate(c["keys"]):
                    ax.plot(np.arange(1, len(getattr(seed, key)) + 1), getattr(seed, key), color=f"C{j}", alpha=0.6,
                            label=key.replace("_within_episode", "").replace("_", " ") if k == 0 else None)

        within = {}
        for method, m in summary.methods.items():
            seeds = list(m.per_seed.values())
            within[f"{_NAMES[method]}: exploiter vs Fixed-ICL"] = {
                "keys": ["exploiter_within_episode", "fixed_icl_within_episode"], "seeds": seeds}
            within[f"{_NAMES[method]}: mutual"] = {"keys": ["mutual_within_episode"], "seeds": seeds}
        panels = condition_panels(within, episodes, "round", "cooperation",
                                  "Within-episode cooperation after training (one line per seed)")
        for ax in panels.axes[:-1]:  # the last panel has its legend already
            ax.legend(fontsize=7, loc="best")
        figures = {"mechanism": fig, "mechanism_episodes": panels}
        if "ppi" in summary.methods:
            figures["figure2"] = self.figure2(cfg, summary.methods["ppi"])
        if "a2c" in summary.methods:
            figures["figure4"] = self.figure4(cfg, summary.methods["a2c"])
        return figures

    @staticmethod
    def figure2(cfg: MechanismConfig, summary: MethodSummary) -> Figure:
        """After Weis et al. 2026, Figure 2 (PPI), one row per step as in the paper: on the
        left the training progress over phases, both seats' reward per step and cooperation
        in the phase's games (A: the learner and its tabular partners; C: exploiter and
        Fixed-ICL; E: the two learners, each learner's seat and its partner's); on the right
        reward and cooperation per round of one episode: B the Fixed-ICL against tit for
        tat, always-cooperate and always-defect after step 1, D exploiter and Fixed-ICL
        after step 2, F the step-3 pair before its first update (the paper's F) and, dashed,
        after step 3. Each line the mean across seeds, shaded mean +- one standard deviation
        across seeds (rates clipped to [0, 1]; :func:`seed_band`). Titled with the scale it
        ran at (:func:`scale_label`)."""
        seeds = list(summary.per_seed.values())
        fig = Figure(figsize=(16, 10), layout="constrained")
        axes = fig.subplots(3, 4)
        seats = {"best_response": ("PPI learner", "its tabular partners"), "exploiter": ("exploiter", "Fixed-ICL"),
                 "mutual": ("each learner", "its partner (the other learner)")}
        for (reward_ax, coop_ax), step, letter in zip(axes[:, :2], STEPS, "ACE"):
            _over_training(reward_ax, coop_ax, list(getattr(summary.curves, step).values()), seats[step])
            for ax, what in ((reward_ax, "reward per step"), (coop_ax, "cooperation")):
                ax.set(title=f"{letter}: step {STEPS.index(step) + 1} training, {what}", xlabel="phase (PPI)",
                       ylabel=what)
        partners = list(seeds[0].best_response_within_episode)
        _per_round(axes[0, 2], {f"vs {q}": [m.best_response_within_episode_reward[q] for m in seeds]
                                for q in partners}, False)
        _per_round(axes[0, 3], {f"vs {q}": [m.best_response_within_episode[q] for m in seeds] for q in partners}, True)
        _per_round(axes[1, 2], {"exploiter": [m.exploiter_within_episode_reward for m in seeds],
                                "Fixed-ICL": [m.fixed_icl_within_episode_reward for m in seeds]}, False)
        _per_round(axes[1, 3], {"exploiter": [m.exploiter_within_episode for m in seeds],
                                "Fixed-ICL": [m.fixed_icl_within_episode for m in seeds]}, True)
        for ax, (before, after), rate in ((axes[2, 2], ("pre_mutual_within_episode_reward",
                                                        "mutual_within_episode_reward"), False),
                                          (axes[2, 3], ("pre_mutual_within_episode", "mutual_within_episode"), True)):
            _per_round(ax, {"before step 3 (the paper's F)": [getattr(m, before) for m in seeds]}, rate)
            _per_round(ax, {"after step 3": [getattr(m, after) for m in seeds]}, rate, linestyle="--", first=1)
        titles = {(0, 2): "B: Fixed-ICL after step 1, reward", (0, 3): "B: Fixed-ICL after step 1, cooperation",
                  (1, 2): "D: exploiter vs Fixed-ICL after step 2, reward",
                  (1, 3): "D: exploiter vs Fixed-ICL after step 2, cooperation",
                  (2, 2): "F: the step-3 pair, reward", (2, 3): "F: the step-3 pair, cooperation"}
        for (r, c), title in titles.items():
            axes[r, c].set(title=title, ylabel="reward per round" if c == 2 else "cooperation")
        for ax in axes.flat:
            ax.title.set_fontsize(9)
        fig.suptitle(f"After Weis et al. 2026, Figure 2 (PPI): mean across {len(seeds)} "
                     f"seed{'s' if len(seeds) > 1 else ''}, shaded: ±1 sd\n{_scale(cfg, 'ppi')}", fontsize=10)
        return fig

    @staticmethod
    def figure4(cfg: MechanismConfig, summary: MethodSummary) -> Figure:
        """After Weis et al. 2026, Figure 4 (A2C), the panels pnyx records (A and E are the
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
        partners = list(seeds[0].best_response_within_episode)
        _per_round(b, {f"vs {p}": [m.best_response_within_episode[p] for m in seeds] for p in partners}, True)
        b.set(title="B: step-1 learner (Fixed-ICL) within an episode", ylabel="Fixed-ICL cooperation")
        curves = list(summary.curves.exploiter.values())
        for j, (key, label) in enumerate([("reward", "exploiter"), ("partner_reward", "Fixed-ICL")]):
            _band_over(c, curves, key, False, color=f"C{j}", label=label)
        c.set(title="C: training reward over the exploiter's training (step 2)", xlabel="iteration (exploiter update)",
              ylabel="reward per step")
        c.xaxis.set_major_locator(MaxNLocator(integer=True))
        c.legend(fontsize=7, loc="best")
        _per_round(d, {"exploiter": [m.exploiter_within_episode_reward for m in seeds],
                       "Fixed-ICL": [m.fixed_icl_within_episode_reward for m in seeds]}, False)
        d.set(title="D: reward per round, exploiter vs Fixed-ICL after step 2", ylabel="reward")
        _per_round(f, {"exploiter pair": [m.pre_mutual_within_episode for m in seeds]}, True)
        f.set(title="F: the step-3 pair before its first update", ylabel="cooperation")
        fig.suptitle(f"After Weis et al. 2026, Figure 4 (panels B, C, D, F): mean across {len(seeds)} "
                     f"seed{'s' if len(seeds) > 1 else ''}, shaded: ±1 sd\n{_scale(cfg, 'a2c')}", fontsize=10)
        return fig

    def report(self, cfg: MechanismConfig, summary: MechanismSummary) -> str:
        sections = []
        for method, m in summary.methods.items():
            def cell(name):
                std = getattr(m, f"{name}_std")
                return f"{format_estimate(getattr(m, name), 2)} (sd {format_number(std, 2)})"

            lines = [f"**{_NAMES[method]} ({'Figure 2' if method == 'ppi' else 'Figure 4'})**", "",
                     "| measure | mean across seeds [95% CI] |", "|---|---|"]
            for name in ("fixed_icl_vs_tft_cooperation", "fixed_icl_vs_allc_defection", "exploiter_reward",
                         "fixed_icl_reward", "exploiter_cooperation", "fixed_icl_cooperation", "press_dyson_chi",
                         "mutual_reward", "mutual_cooperation"):
                lines.append(f"| {name} | {cell(name)} |")
            lines.append("")
            lines.append(f"{m.seeds} seed(s). The Fixed-ICL "
                         f"{'stayed unchanged' if m.fixed_icl_unchanged else 'CHANGED'} during step 2.")
            sections.append("\n".join(lines))
        sections.append("Student-t intervals, clipped to [0, 1] for the cooperation and defection rates. "
                        "press_dyson_chi: the extortion factor of the least-squares zero-determinant fit of the "
                        "exploiter's empirical memory-one behaviour (chi > 1: extortionate, if the residual is "
                        "small).\n"
                        "Weis et al. (arXiv:2602.16301) report exploiters at about 0.9 reward per step against the "
                        "Fixed-ICL with PPI (Figure 2) and 1.25 with A2C (Figure 4), and step-3 pairs that move "
                        "towards cooperation.")
        return "\n\n".join(sections)


_NAMES = {"a2c": "A2C", "ppi": "PPI"}
_X = {"a2c": "iteration (A2C update)", "ppi": "phase (PPI)"}


def _partners(cfg: MechanismConfig, step: str) -> dict[str, float]:
    """Step 1's partner pool; steps 2 and 3 meet the other learner."""
    return PartnerPool.parse(cfg.best_response.partners or "tabular").mix if step == "best_response" else {
        "learner": 1.0}


def _method_summary(measures: list[dict], results: pd.DataFrame) -> MethodSummary:
    """One method's :class:`MethodSummary` from its seeds' measures and curve rows."""
    scalars = ["fixed_icl_vs_tft_cooperation", "fixed_icl_vs_allc_defection", "exploiter_reward",
               "fixed_icl_reward", "exploiter_cooperation", "fixed_icl_cooperation", "mutual_reward",
               "mutual_cooperation"]
    summary: dict = {"seeds": len(measures), "fixed_icl_unchanged": all(m["fixed_icl_unchanged"] for m in measures)}
    for name in scalars:
        rate = "cooperation" in name or "defection" in name
        estimate, std = seed_mean([m[name] for m in measures], bounds=(0.0, 1.0) if rate else None)
        summary[name], summary[f"{name}_std"] = estimate, std
    chis = [m["press_dyson"]["chi"] for m in measures]
    estimate, std = seed_mean([c for c in chis if c is not None])
    summary["press_dyson_chi"], summary["press_dyson_chi_std"] = estimate, std
    summary["per_seed"] = {str(m["seed_index"]): SeedMeasures(**{k: v for k, v in m.items()
                                                                 if k not in ("seed_index", "method")})
                           for m in measures}
    curves = {}
    for step in STEPS:
        df = results[(results["step"] == step) & ~results["final"]] if len(results) else results
        columns = ["iteration", *METRICS] + [c for c in CURVE_STATS if c in df]
        curves[step] = {str(k): [CurvePoint(**{c: None if pd.isna(v) else float(v) for c, v in r.items()})
                                 for r in g[columns].to_dict("records")] for k, g in df.groupby("seed_index")}
    return MethodSummary(**summary, curves=StepCurves(**curves))


def _band_over(ax, curves: list[list[CurvePoint]], key: str, rate: bool, **line) -> None:
    """``key`` over training, the mean across seeds with mean +- one sd shaded; nothing where no seed has it."""
    frames = [pd.DataFrame([point.model_dump() for point in curve]).dropna(subset=[key]) for curve in curves]
    frames = [f for f in frames if len(f)]
    if not frames:
        return
    by_iteration = list(pd.concat(frames).groupby("iteration")[key])
    if len(by_iteration) <= 12:  # a few points (PPI phases): a marker at each
        line = {"marker": "o", "markersize": 3} | line
    interval_line(ax, np.array([i for i, _ in by_iteration]), [seed_band(v, rate) for _, v in by_iteration], **line)


def _over_training(reward_ax, coop_ax, curves: list[list[CurvePoint]], labels: tuple[str, str]) -> None:
    """Both seats' training reward and cooperation over training, one colour per seat."""
    for j, (reward, coop, label) in enumerate([("reward", "train_cooperation", labels[0]),
                                               ("partner_reward", "partner_cooperation", labels[1])]):
        _band_over(reward_ax, curves, reward, False, color=f"C{j}", label=label)
        _band_over(coop_ax, curves, coop, True, color=f"C{j}", label=label)
    coop_ax.set_ylim(-0.02, 1.02)
    for ax in (reward_ax, coop_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="best")


def _per_round(ax, series: dict[str, list[list[float]]], rate: bool, first: int = 0, **line) -> None:
    """Per-round series across seeds: the mean per round, shaded mean +- one sd (:func:`seed_band`),
    colours from ``C<first>`` on."""
    for j, (label, rows) in enumerate(series.items()):
        if not rows or not rows[0]:
            continue
        rounds = np.arange(1, len(rows[0]) + 1)
        interval_line(ax, rounds, [seed_band(v, rate) for v in zip(*rows)], color=f"C{first + j}", label=label, **line)
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if rate:
        ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="best")


def _scale(cfg: MechanismConfig, method: str) -> str:
    """:func:`scale_label` of one method's chain. The paper's scale: for A2C (Figure 4) 5 seeds
    of 100-round episodes, 50k and 100k updates of 2048 episodes for steps 1 and 2 (Table 2,
    Figure 4), 50k of 4096 for step 3 (pnyx's count); for PPI (Figure 2) 10 seeds, every
    step 30 phases of 20k episodes on 200k pretraining episodes and the paper's PPI
    hyperparameters (appendix A.3.1; a run with others names them)."""
    steps, n = [getattr(cfg, step) for step in STEPS], cfg.method_seeds(method)
    seeds = f"{n} seed{'s' if n > 1 else ''}, {cfg.rounds} rounds"
    if method == "ppi":
        p, changed = cfg.ppi, cfg.ppi.changed_from_paper()
        detail = (f"{seeds}, PPI steps {'/'.join(str(cfg.phases(s)) for s in STEPS)} phases of {p.episodes} "
                  f"episodes on {p.pretrain_episodes} pretraining episodes"
                  + (f", {', '.join(changed)}" if changed else ""))
        paper = (n >= 10 and cfg.rounds >= 100 and not changed and p.episodes >= 20000
                 and p.pretrain_episodes >= 200000 and all(cfg.phases(s) >= 30 for s in STEPS))
        return scale_label(paper, cfg.device, detail)
    detail = (f"{seeds}, steps {'/'.join(str(s.iterations) for s in steps)} updates of "
              f"{span([s.a2c.batch for s in steps])} episodes")
    paper = (n >= 5 and cfg.rounds >= 100
             and all(s.iterations >= i and s.a2c.batch >= b
                     for s, (i, b) in zip(steps, [(50000, 2048), (100000, 2048), (50000, 4096)])))
    return scale_label(paper, cfg.device, detail)

"""The phase loop of predictive policy improvement (PPI) for independent learners against a partner pool.

Weis et al. 2026 (arXiv:2602.16301), section 2 and appendix A.3.1, Algorithm 1: each
learner keeps its own dataset ``D``, starting with ``D_0``: ``pretrain_episodes``
trajectories of two random memory-one agents (parameters ~U(0,1), A.3.3) playing each
other, or, with ``pretrain: random`` (the no-tabular ablation, A.4.2), of uniformly random
actions. In each phase k every learner's sequence model is re-initialised and trained on
all of ``D_k-1``; then every learner plays ``episodes`` games in seat 0 with its improved
policy (:class:`pnyx.agents.ppi.ImprovedPolicy`) against partners drawn from the pool
(:mod:`pnyx.population.partners`; a ``learner`` partner is another learner acting with its
own improved policy of the same phase), and ``D_k = D_k-1 ∪`` its seat-0 trajectories.

As in :mod:`pnyx.population.diverse_partner_training`, a learner keeps only its own seat,
so its data's partner mix is the pool's (50/50 in the mixed pool), and games come in
``shards`` slices seeded by ``SeedSequence([*seed, phase, learner, shard])``. pnyx's
choices: each learner draws its own ``D_0`` (seat 0 of the pretraining games); model
initialisation, minibatch order and rollout sampling are seeded per phase and learner; the
curve has one point per phase, evaluating that phase's improved policies (those that
collected its data), and the final learners are the last phase's. Everything runs in the
driver (no Ray actors); the same seed gives the same curve.

With ``opponent_id`` (the "Opponent ID" ablation, section 3.1 and appendix A.4.1) every
trajectory is stored with the opponent-ID vector z of its partner
(:func:`pnyx.population.partners.opponent_z`; 0 for learners) and the sequence models take
it as a prefix (:class:`pnyx.agents.ppi.SequenceModel`). The pretraining games' z is that
of the seat-1 memory-one agent (with ``pretrain: random``, every probability 0.5): pnyx's
reading of "for tabular agents", as the paper does not say what ``D_0`` holds in this ablation.

For the mechanism chain of section 3.2 (:mod:`pnyx.experiments.weis_mechanism`),
``frozen`` learners play with a fixed model given in ``init`` and never retrain or collect
(the Fixed-ICL of step 2), and ``init`` may give a trained learner a starting dataset in
place of ``D_0`` (step 3's learners start from the step-2 exploiter's). ``snapshots``
keeps the per-round evaluation of those phases (Figure 3).

With ``checkpoint_dir``, the trainer writes ``last.pt`` there after every phase (the phase,
every learner's dataset with its z, the curve so far and the phase's trained models) and
resumes from it when it exists and matches the spec (more phases allowed). No other state
carries across phases (models are re-initialised and all randomness is seeded per phase),
so a resumed run gives the curve of an uninterrupted one. At the end, each learner's
improved policy is written there as ``learner<i>.pt``, a checkpoint that plays as a policy
(:func:`pnyx.agents.sequence.load_policy`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pnyx.agents.ppi import ImprovedPolicy, PPIConfig, build_model, fit
from pnyx.agents.sequence import START, save_policy
from pnyx.errors import PnyxError
from pnyx.population.diverse_partner_training import (EVAL_PARTNERS, TrainingResult, _cpu_state, _metrics, _others,
                                                      evaluate, open_checkpoint, play, resolve_device, save_checkpoint,
                                                      shard_draw)
from pnyx.population.partners import LEAGUE, LEARNER, PartnerPool, opponent_z

PRETRAIN = ("tabular", "random")
_PRETRAIN, _INIT, _ORDER, _ROLLOUT, _EVAL = (2**31 + k for k in range(5))  # seed slots apart from the shards


@dataclass(frozen=True)
class PPISpec:
    """Everything that determines a PPI run (``seed`` is SeedSequence entropy)."""

    model: dict[str, Any]  # {"embed": int, "hidden": int}
    ppi: PPIConfig
    partners: dict[str, float]
    payoffs: tuple[float, float, float, float]
    rounds: int
    seed: tuple[int, ...]
    learners: int = 1
    pretrain: str = "tabular"
    shards: int = 8
    eval_games: int = 256
    final_eval_games: int = 1024
    opponent_id: bool = False
    frozen: tuple[int, ...] = ()  # learners playing a fixed model (PPITrainer's init): never retrained, no data
    snapshots: tuple[int, ...] = ()  # phases whose evaluation is kept per round (Figure 3)

    def __post_init__(self):
        if self.ppi.episodes % self.shards:
            raise PnyxError(f"ppi.episodes={self.ppi.episodes} is not a multiple of shards={self.shards}")
        if self.pretrain not in PRETRAIN:
            raise PnyxError(f"unknown pretrain {self.pretrain!r} (known: {', '.join(PRETRAIN)})")
        if LEARNER in self.partners and self.learners < 2:
            raise PnyxError("partner 'learner' means another learner: set learners >= 2")
        if LEAGUE in self.partners:
            raise PnyxError("PPI learners support no league partners")
        if not set(self.frozen) <= set(range(self.learners)) or len(set(self.frozen)) == self.learners:
            raise PnyxError(f"frozen={self.frozen} must name some, not all, of learners 0..{self.learners - 1}")

    @property
    def trained(self) -> list[int]:
        """The learners that retrain and collect."""
        return [i for i in range(self.learners) if i not in self.frozen]

    def fingerprint(self) -> str:
        """Identifies runs a checkpoint can resume: everything but the number of phases
        (``frozen`` and ``snapshots`` only when set, so older checkpoints still match)."""
        fields = {k: v for k, v in asdict(self).items() if v or k not in ("frozen", "snapshots")}
        fields |= {"ppi": self.ppi.model_dump() | {"phases": None}}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def memory_one_episodes(n: int, rounds: int, rng: np.random.Generator,
                        random: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Seat-0 observation codes (rounds+1, n) of ``n`` games between two memory-one agents
    with parameters ~U(0,1) drawn per game (``random``: every parameter 0.5, i.e. uniformly
    random actions), and the seat-1 agents' parameters (n, 5). Parameters are cooperation
    probabilities indexed by code (CC, CD, DC, DD, start), each player seeing its own move first."""
    params = np.full((2, n, 5), 0.5) if random else rng.random((2, n, 5))
    codes = np.empty((rounds + 1, n), dtype=np.uint8)
    obs = np.full((2, n), START)
    codes[0] = START
    for t in range(rounds):
        coop = np.take_along_axis(params, obs[:, :, None], axis=2)[:, :, 0]
        defect = (rng.random((2, n)) >= coop).astype(np.int64)
        obs = np.stack([2 * defect[0] + defect[1], 2 * defect[1] + defect[0]])
        codes[t + 1] = obs[0]
    return codes, params[1]


class PPITrainer:
    """Runs the phase loop; ``data[i]`` is learner i's dataset as a list of code arrays
    (rounds+1, games), ``ids[i]`` the matching opponent-ID arrays (games, 10) (empty lists
    without ``opponent_id``), ``agents[i]`` its current improved policy. ``checkpoint_dir``:
    where to checkpoint and resume (None: nowhere). ``init`` (used when no checkpoint
    exists) gives per learner None, ``{"model": state_dict}`` for a ``frozen`` learner, or
    ``{"data": [codes, ...], "ids": [z, ...]}``: a trained learner's starting dataset."""

    def __init__(self, spec: PPISpec, device: str = "cpu", checkpoint_dir: str | Path | None = None, on_point=None,
                 init: list[dict | None] | None = None):
        self.spec = spec
        self.device = resolve_device(device)
        self.pool = PartnerPool(spec.partners)
        self.payoff = torch.tensor([*map(float, spec.payoffs), 0.0], device=self.device)
        self.agents: list[ImprovedPolicy] = []
        self.curve: list[dict[str, float]] = []
        self.snapshots: dict[int, dict[str, list[float]]] = {}
        self.phase = 0
        self.on_point = on_point
        self.checkpoint, saved = open_checkpoint(checkpoint_dir, spec.fingerprint(), "cpu")
        if saved is not None:
            self._resume(saved)
            return
        init = init or [None] * spec.learners
        missing = [i for i in spec.frozen if not (init[i] or {}).get("model")]
        if missing:
            raise PnyxError(f"frozen learners {missing} need a model in init")
        self.fixed = {i: init[i]["model"] for i in spec.frozen}
        self.data, self.ids = [], []
        for i in range(spec.learners):
            if i in spec.frozen:
                self.data.append([])
                self.ids.append([])
            elif init[i] is not None and "data" in init[i]:
                self.data.append(list(init[i]["data"]))
                self.ids.append(list(init[i].get("ids", [])))
            else:
                codes, partner = memory_one_episodes(spec.ppi.pretrain_episodes, spec.rounds,
                                                     self._rng(_PRETRAIN, i), spec.pretrain == "random")
                self.data.append([codes])
                self.ids.append([opponent_z(partner).astype(np.float32)] if spec.opponent_id else [])

    def _rng(self, *slot: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([*self.spec.seed, *slot]))

    def _build(self):
        return build_model(self.spec.model | {"opponent_id": self.spec.opponent_id}).to(self.device)

    def fresh_model(self, phase: int, learner: int):
        """The randomly initialised sequence model of one learner in one phase."""
        with torch.random.fork_rng():
            torch.manual_seed(int(np.random.SeedSequence([*self.spec.seed, _INIT, phase, learner]).generate_state(1)[0]))
            return self._build()

    def _improved(self, model) -> ImprovedPolicy:
        return ImprovedPolicy(model, self.spec.payoffs, self.spec.ppi, self.spec.rounds)

    def train_models(self, phase: int) -> list[float]:
        """Re-initialise every trained learner's model and train it on all of its data (a
        frozen learner's is its fixed model); returns the trained learners' losses."""
        losses, self.agents = [], []
        for i in range(self.spec.learners):
            if i in self.spec.frozen:
                model = self._build()
                model.load_state_dict(self.fixed[i])
                self.agents.append(self._improved(model.eval()))
                continue
            model = self.fresh_model(phase, i)
            z = np.concatenate(self.ids[i]) if self.spec.opponent_id else None
            losses.append(fit(model, np.concatenate(self.data[i], axis=1), self.payoff, self.spec.ppi,
                              self._rng(_ORDER, phase, i), z))
            self.agents.append(self._improved(model))
        return losses

    def _resume(self, data: dict) -> None:
        self.phase, self.curve = data["phase"], data["curve"]
        self.snapshots = data.get("snapshots", {})
        self.fixed = {i: data["models"][i] for i in self.spec.frozen}
        self.data = [[t.numpy() for t in d] for d in data["data"]]
        self.ids = [[t.numpy() for t in d] for d in data["ids"]]
        self.agents = []
        for state in data["models"]:
            model = self._build()
            model.load_state_dict(state)
            self.agents.append(self._improved(model))

    def _save(self) -> None:
        save_checkpoint(self.checkpoint, self.spec.fingerprint(), {
            "phase": self.phase, "curve": self.curve, "data": [[torch.from_numpy(a) for a in d] for d in self.data],
            "ids": [[torch.from_numpy(a) for a in d] for d in self.ids],
            "models": [_cpu_state(a.model) for a in self.agents], "snapshots": self.snapshots})

    def collect(self, phase: int) -> dict[str, float]:
        """Every trained learner plays its phase's games; their seat-0 trajectories join its
        data. Returns both seats' mean reward per step and cooperation rate, averaged over
        the trained learners."""
        spec = self.spec
        games = spec.ppi.episodes // spec.shards
        rewards, cooperation, partner_rewards, partner_cooperation = [], [], [], []
        for i in spec.trained:
            agent = self.agents[i]
            draws, uniforms = zip(*(shard_draw(spec, self.pool, phase, i, s, games, 0) for s in range(spec.shards)))
            for j, a in enumerate(self.agents):
                a.reseed([*spec.seed, _ROLLOUT, phase, i, j])
            out = play(agent, _others(self.agents, i), self.pool, draws, uniforms, [], spec.rounds, spec.opponent_id)
            final = 2 * out["actions"][-1].astype(np.int64) + out["partner_actions"][-1]
            self.data[i].append(np.concatenate([out["obs"].astype(np.uint8), final[None].astype(np.uint8)]))
            if spec.opponent_id:
                self.ids[i].append(out["z"].astype(np.float32))
            rewards.append(float(out["rewards"].mean()))
            cooperation.append(float(out["cooperation"].sum() / (out["episodes"].sum() * spec.rounds)))
            payoff = self.payoff.cpu().numpy()
            partner_rewards.append(float(payoff[2 * out["partner_actions"].astype(np.int64) + out["actions"]].mean()))
            partner_cooperation.append(float(1 - out["partner_actions"].mean()))
        return {"reward": float(np.mean(rewards)), "train_cooperation": float(np.mean(cooperation)),
                "partner_reward": float(np.mean(partner_rewards)),
                "partner_cooperation": float(np.mean(partner_cooperation))}

    def evaluate(self, games: int) -> dict[str, np.ndarray]:
        """Per-round cooperation of the trained learners' improved policies against each
        evaluation partner, averaged over them; ``learner``: each against the next learner."""
        out = {}
        for k, p in enumerate(EVAL_PARTNERS):
            rates = []
            for i in self.spec.trained:
                for j, a in enumerate(self.agents):
                    a.reseed([*self.spec.seed, _EVAL, self.phase, k, i, j])
                rates.append(evaluate(self.agents[i], _others(self.agents, i)[0], self.spec, p, games,
                                      [*self.spec.seed, self.phase, _EVAL, k, i]))
            out[p] = np.mean(rates, axis=0)
        return out

    def run(self, progress: bool = False) -> TrainingResult:
        from tqdm import tqdm

        spec = self.spec
        start = time.perf_counter() - (self.curve[-1]["seconds"] if self.curve else 0.0)
        for phase in tqdm(range(self.phase + 1, spec.ppi.phases + 1), disable=not progress, leave=False,
                          desc="phases"):
            self.phase = phase
            losses = self.train_models(phase)
            stats = self.collect(phase) | {"model_loss": float(np.mean(losses))}
            within = self.evaluate(spec.eval_games)
            if phase in spec.snapshots:
                self.snapshots[phase] = {p: c.tolist() for p, c in within.items()}
            coop = {p: float(c.mean()) for p, c in within.items()}
            point = {"iteration": phase, "final": False, **_metrics(coop), **stats,
                     "seconds": time.perf_counter() - start}
            if self.on_point is not None:
                self.on_point(point)
            self.curve.append(point)
            if self.checkpoint:
                self._save()
        within = {p: c.tolist() for p, c in self.evaluate(spec.final_eval_games).items()}
        if self.checkpoint:
            for i in spec.trained:
                save_policy(self.checkpoint.parent / f"learner{i}.pt", self.agents[i])
        final = {"iteration": self.phase, "final": True,
                 **_metrics({p: float(np.mean(c)) for p, c in within.items()})}
        return TrainingResult([a.model for a in self.agents], self.curve + [final], within, 0, dict(self.snapshots))

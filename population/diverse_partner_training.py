"""Training a sequence-model learner against a partner pool with A2C, rollouts on Ray actors.

Each iteration the batch of episodes is cut into ``shards`` fixed slices. Every shard's
randomness (partners, U(0,1) memory-one parameters, the uniforms that sample actions)
comes from ``SeedSequence([*seed, iteration, shard])``; rollout workers (Ray actors)
each play a contiguous range of shards with the batched torch IPD below and return the
trajectories shard by shard; the learner concatenates them in shard order, takes one
A2C step and broadcasts the weights back. The same seed therefore gives the same
curve for any number of workers (up to floating-point differences of the network on
very small slices, which change an action only if a uniform lands within rounding of
its probability).

Trajectory rows are learner seats: per shard, the learner's seat in every game, then
the partner seat of the games whose partner is the learner itself (self-play).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pnyx.agents.a2c import A2C, A2CConfig
from pnyx.agents.protocol import as_batch_policy
from pnyx.agents.sequence import START, build_net, save_policy
from pnyx.errors import PnyxError
from pnyx.population.partners import KIND_IDS, LEAGUE, PartnerPool

EVAL_PARTNERS = ("learner", "tft", "allc", "alld")
_EVAL_SHARD = 2**31  # seed slot of evaluation games, apart from the training shards


@dataclass(frozen=True)
class TrainingSpec:
    """Everything that determines a training run (``seed`` is SeedSequence entropy)."""

    model: dict[str, Any]
    a2c: A2CConfig
    partners: dict[str, float]
    rounds: int
    iterations: int
    seed: tuple[int, ...]
    partner_id: bool = False
    shards: int = 8
    eval_every: int = 50
    eval_games: int = 256
    final_eval_games: int = 1024
    league_every: int = 100
    league_size: int = 8
    checkpoint_every: int = 100

    def __post_init__(self):
        if self.a2c.batch % self.shards:
            raise PnyxError(f"batch={self.a2c.batch} is not a multiple of shards={self.shards}")

    def fingerprint(self) -> str:
        """Identifies runs a checkpoint can resume: everything but the number of iterations."""
        fields = asdict(self) | {"a2c": self.a2c.model_dump(), "iterations": None}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def play(net, pool: PartnerPool, draws, uniforms, league_nets, rounds: int, partner_id: bool) -> dict[str, np.ndarray]:
    """Play one episode in every game of the given shards.

    ``draws`` (one :class:`~pnyx.population.partners.Draw` per shard) say who the partner
    is; ``uniforms`` (per shard, (rounds, games, 2)) sample seat 0 and seat 1 actions: a
    player defects when its uniform is below its defection probability. Returns learner
    rows: ``obs``, ``actions`` (int8, (rounds, rows)), ``rewards`` (float32), ``partner``
    (the partner identity, (rows,)), and seat-0 ``cooperation`` and ``episodes`` summed per
    pool component.
    """
    payoff = net.inputs.payoff
    component = torch.from_numpy(np.concatenate([d.component for d in draws]))
    tabular = torch.from_numpy(np.concatenate([d.tabular for d in draws])).float()
    league = torch.from_numpy(np.concatenate([d.league for d in draws]))
    u = torch.from_numpy(np.concatenate(uniforms, axis=1)).float()
    kind = torch.from_numpy(pool.kind_ids)[component]
    n = len(component)
    # learner rows, shard by shard: seat 0 of every game, then seat 1 of self-play games
    row_game, row_seat, offset = [], [], 0
    for d in draws:
        games = torch.arange(offset, offset + len(d.component))
        selfplay = games[kind[games] == KIND_IDS["learner"]]
        row_game += [games, selfplay]
        row_seat += [torch.zeros(len(games), dtype=torch.long), torch.ones(len(selfplay), dtype=torch.long)]
        offset += len(d.component)
    row_game, row_seat = torch.cat(row_game), torch.cat(row_seat)
    seat0 = row_seat == 0
    partner = torch.where(seat0, kind[row_game], KIND_IDS["learner"]) if partner_id else None
    tab_games = torch.nonzero(~torch.isnan(tabular[:, 0])).squeeze(1)
    members = [(j, torch.nonzero(league == j).squeeze(1)) for j in range(len(league_nets))]
    members = [(league_nets[j], games, league_nets[j].initial_state(len(games))) for j, games in members if len(games)]
    policies = []  # (policy, games) for components played through their batch policy, per shard
    offset = 0
    for d in draws:
        for i, c in enumerate(pool.components):
            games = np.nonzero(d.component == i)[0]
            if c.kind == "policy" and len(games):
                policy = as_batch_policy(c.factory)
                policy.reset_batch(len(games), int(d.policy_seeds[i]))
                policies.append((policy, torch.from_numpy(games + offset)))
        offset += len(d.component)

    obs0 = torch.full((n,), START, dtype=torch.long)
    obs1 = obs0.clone()
    state = net.initial_state(len(row_game))
    obs_rows, action_rows, reward_rows = [], [], []
    with torch.no_grad():
        for t in range(rounds):
            obs = torch.where(seat0, obs0[row_game], obs1[row_game])
            logits, _, state = net.step(obs, partner, state)
            acts = (u[t, row_game, row_seat] < torch.softmax(logits, -1)[:, 1]).long()
            a0 = torch.empty(n, dtype=torch.long)
            a1 = torch.empty(n, dtype=torch.long)
            a0[row_game[seat0]] = acts[seat0]
            a1[row_game[~seat0]] = acts[~seat0]
            coop_p = tabular[tab_games].gather(1, obs1[tab_games].unsqueeze(1)).squeeze(1)
            a1[tab_games] = (u[t, tab_games, 1] >= coop_p).long()
            for k, (frozen, games, frozen_state) in enumerate(members):
                ids = torch.full((len(games),), KIND_IDS["learner"]) if partner_id else None
                logits, _, frozen_state = frozen.step(obs1[games], ids, frozen_state)
                a1[games] = (u[t, games, 1] < torch.softmax(logits, -1)[:, 1]).long()
                members[k] = (frozen, games, frozen_state)
            for policy, games in policies:
                a1[games] = torch.as_tensor(np.asarray(policy.act_batch(obs1[games].numpy())), dtype=torch.long)
            obs0, obs1 = 2 * a0 + a1, 2 * a1 + a0
            own = torch.where(seat0, obs0[row_game], obs1[row_game])
            obs_rows.append(obs)
            action_rows.append(acts)
            reward_rows.append(payoff[own])
            if t == 0:
                cooperated = 1 - a0
            else:
                cooperated += 1 - a0
    episodes = np.bincount(component.numpy(), minlength=len(pool.components))
    cooperation = np.bincount(component.numpy(), weights=cooperated.numpy() / rounds, minlength=len(pool.components))
    return {
        "obs": torch.stack(obs_rows).to(torch.int8).numpy(),
        "actions": torch.stack(action_rows).to(torch.int8).numpy(),
        "rewards": torch.stack(reward_rows).float().numpy(),
        "partner": (partner if partner is not None else torch.zeros(len(row_game), dtype=torch.long)).numpy(),
        "cooperation": cooperation,
        "episodes": episodes,
    }


def shard_draw(spec: TrainingSpec, pool: PartnerPool, iteration: int, shard: int, games: int, league_size: int):
    """The partners and action uniforms of one shard of one iteration."""
    rng = np.random.default_rng(np.random.SeedSequence([*spec.seed, iteration, shard]))
    return pool.draw(games, rng, league_size), rng.random((spec.rounds, games, 2))


class RolloutWorker:
    """Plays shards of each iteration's batch with the weights it was last sent (a Ray actor)."""

    def __init__(self, spec: TrainingSpec):
        self.spec = spec
        self.pool = PartnerPool(spec.partners)
        self.net = build_net(spec.model).eval()
        self.league: list = []

    def rollout(self, iteration: int, shards: list[int], weights: dict, league: list | None = None) -> dict:
        self.net.load_state_dict(weights)
        if league is not None:
            self.league = []
            for state in league:
                frozen = build_net(self.spec.model).eval()
                frozen.load_state_dict(state)
                self.league.append(frozen)
        games = self.spec.a2c.batch // self.spec.shards
        draws, uniforms = zip(*(shard_draw(self.spec, self.pool, iteration, s, games, len(self.league)) for s in shards))
        return play(self.net, self.pool, draws, uniforms, self.league, self.spec.rounds, self.spec.partner_id)


def evaluate(net, spec: TrainingSpec, partner: str, games: int, seed: list[int]) -> np.ndarray:
    """The learner's per-round cooperation rate (rounds,) against ``partner`` (a spec or ``learner``)."""
    pool = PartnerPool({partner: 1.0})
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    draw, uniforms = pool.draw(games, rng), rng.random((spec.rounds, games, 2))
    out = play(net, pool, [draw], [uniforms], [], spec.rounds, spec.partner_id)
    actions = out["actions"] if partner == "learner" else out["actions"][:, :games]
    return 1.0 - actions.mean(1, dtype=np.float64)


@dataclass
class TrainingResult:
    net: torch.nn.Module
    curve: list[dict[str, float]]
    within_episode: dict[str, list[float]]
    workers: int


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """The learner: gathers rollouts from ``workers`` Ray actors (0: one in-process worker),
    updates with A2C, evaluates, checkpoints to ``checkpoint_dir`` and resumes from it."""

    def __init__(self, spec: TrainingSpec, workers: int = 1, checkpoint_dir: str | Path | None = None):
        self.spec = spec
        self.pool = PartnerPool(spec.partners)
        with torch.random.fork_rng():
            torch.manual_seed(int(np.random.SeedSequence([*spec.seed, _EVAL_SHARD + 1]).generate_state(1)[0]))
            self.net = build_net(spec.model)
        self.a2c = A2C(self.net, spec.a2c)
        self.league: list[dict] = []
        self.league_changed = False
        self.curve: list[dict[str, float]] = []
        self.iteration = 0
        self.checkpoint = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
        if self.checkpoint and self.checkpoint.is_file():
            self._resume()
        self.workers = workers
        shard_ids = np.arange(spec.shards)
        if workers == 0:
            self.handles = [RolloutWorker(spec)]
            self.slices = [shard_ids.tolist()]
        else:
            import ray

            if workers > spec.shards:
                raise PnyxError(f"workers={workers} exceeds shards={spec.shards}; raise shards")
            actor = ray.remote(num_cpus=1)(RolloutWorker)  # Ray gives each actor OMP_NUM_THREADS=1
            self.handles = [actor.remote(spec) for _ in range(workers)]
            self.slices = [s.tolist() for s in np.array_split(shard_ids, workers)]

    def close(self) -> None:
        if self.workers:
            import ray

            for handle in self.handles:
                ray.kill(handle)

    def _resume(self) -> None:
        data = torch.load(self.checkpoint, weights_only=True)
        if data["fingerprint"] != self.spec.fingerprint():
            raise PnyxError(f"checkpoint {str(self.checkpoint)!r} belongs to a different configuration; "
                            "remove it or choose another checkpoint_dir")
        self.net.load_state_dict(data["net"])
        self.a2c.optimizer.load_state_dict(data["optimizer"])
        self.league, self.league_changed = data["league"], True
        self.curve, self.iteration = data["curve"], data["iteration"]

    def _save(self) -> None:
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        _atomic_save({"fingerprint": self.spec.fingerprint(), "iteration": self.iteration, "net": state,
                      "optimizer": self.a2c.optimizer.state_dict(), "league": self.league, "curve": self.curve},
                     self.checkpoint)

    def gather(self, iteration: int) -> dict[str, np.ndarray]:
        """One iteration's rollouts from every worker, concatenated in shard order."""
        weights = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        league = self.league if self.league_changed else None
        self.league_changed = False
        if self.workers == 0:
            parts = [self.handles[0].rollout(iteration, self.slices[0], weights, league)]
        else:
            import ray

            weights_ref = ray.put(weights)
            league_ref = ray.put(league)
            parts = ray.get([h.rollout.remote(iteration, s, weights_ref, league_ref)
                             for h, s in zip(self.handles, self.slices)])
        out = {k: np.concatenate([p[k] for p in parts], axis=-1) for k in ("obs", "actions", "rewards", "partner")}
        out["cooperation"] = sum(p["cooperation"] for p in parts)
        out["episodes"] = sum(p["episodes"] for p in parts)
        return out

    def step(self, iteration: int) -> dict[str, float]:
        """Gather one batch and take one A2C step; returns training statistics."""
        spec = self.spec
        if self.pool.has(LEAGUE) and iteration % spec.league_every == 0:
            self.league = (self.league + [copy.deepcopy(self.net.state_dict())])[-spec.league_size:]
            self.league_changed = True
        batch = self.gather(iteration)
        tensors = [torch.from_numpy(batch[k]).long() for k in ("obs", "partner", "actions")]
        try:
            stats = self.a2c.update(*tensors, torch.from_numpy(batch["rewards"]))
        except PnyxError as e:
            raise PnyxError(f"iteration {iteration}: {e}") from None
        stats["reward"] = float(batch["rewards"].mean())
        stats["train_cooperation"] = float(batch["cooperation"].sum() / batch["episodes"].sum())
        return stats

    def evaluate(self, games: int) -> dict[str, np.ndarray]:
        """Per-round cooperation against each evaluation partner, seeded by the iteration."""
        self.net.eval()
        return {p: evaluate(self.net, self.spec, p, games, [*self.spec.seed, self.iteration, _EVAL_SHARD, i])
                for i, p in enumerate(EVAL_PARTNERS)}

    def _curve_point(self, stats: dict[str, float], seconds: float) -> dict[str, float]:
        coop = {p: float(c.mean()) for p, c in self.evaluate(self.spec.eval_games).items()}
        return {"iteration": self.iteration, "final": False, **_metrics(coop), **stats, "seconds": seconds}

    def run(self, progress: bool = False) -> TrainingResult:
        from tqdm import tqdm

        spec = self.spec
        start = time.perf_counter()
        if self.iteration == 0 and not self.curve:
            self.curve.append(self._curve_point({}, 0.0))
        bar = tqdm(total=spec.iterations, initial=self.iteration, disable=not progress, leave=False)
        while self.iteration < spec.iterations:
            stats = self.step(self.iteration)
            self.iteration += 1
            bar.update()
            if self.iteration % spec.eval_every == 0 or self.iteration == spec.iterations:
                self.curve.append(self._curve_point(stats, time.perf_counter() - start))
            if self.checkpoint and (self.iteration % spec.checkpoint_every == 0 or self.iteration == spec.iterations):
                self._save()
        bar.close()
        within = {p: c.tolist() for p, c in self.evaluate(spec.final_eval_games).items()}
        final = {"iteration": self.iteration, "final": True, **_metrics({p: float(np.mean(c)) for p, c in within.items()})}
        if self.checkpoint:
            save_policy(self.checkpoint.parent / "learner.pt", self.net,
                        KIND_IDS["tabular"] if spec.partner_id else None)
        return TrainingResult(self.net, self.curve + [final], within, self.workers)


def _metrics(coop: dict[str, float]) -> dict[str, float]:
    return {
        "learner_vs_learner_cooperation": coop["learner"],
        "vs_tft_cooperation": coop["tft"],
        "vs_allc_defection": 1.0 - coop["allc"],
        "vs_alld_defection": 1.0 - coop["alld"],
    }

"""Training independent sequence-model learners against a partner pool with A2C, rollouts on Ray actors.

Weis et al. 2026, "Multi-agent cooperation through in-context co-player inference"
(arXiv:2602.16301), section 3 and appendix A: ``learners`` agents, each with its own
weights, its own Adam optimiser and its own A2C update. Every iteration each learner
plays ``batch`` episodes in seat 0, its partner in each drawn from the pool
(:mod:`pnyx.population.partners`); a ``learner`` partner is one of the *other* learners,
playing with its current weights. A learner trains on its own seat only, so the
partner mix of its gradient is the pool's (50/50 for the mixed pool); the partner seat
of a learner-vs-learner game feeds no update. (The paper does not say whether the
partner seat of such a game is also the partner's training data; pnyx keeps the
configured mix exact by not using it.)

Each learner's batch is cut into ``shards`` fixed slices. Every slice's randomness
(partners, U(0,1) memory-one parameters, the uniforms that sample actions) comes from
``SeedSequence([*seed, iteration, learner, shard])``; rollout workers (Ray actors) each
play a contiguous range of shards for every learner and return the trajectories shard by
shard; the driver concatenates them in shard order, takes one A2C step per learner and
broadcasts the weights back. The same seed therefore gives the same curves for any
number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pnyx.agents.a2c import A2C, A2CConfig
from pnyx.agents.protocol import as_batch_policy
from pnyx.agents.sequence import START, Z_SIZE, build_net, save_policy
from pnyx.errors import PnyxError
from pnyx.population.partners import LEAGUE, LEARNER, PartnerPool, opponent_z
from pnyx.registry import pickled_registrations, replay_pickled

EVAL_PARTNERS = ("learner", "tft", "allc", "alld")
_EVAL_SHARD = 2**31  # seed slot of evaluation games, apart from the training shards


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available); ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise PnyxError("device 'cuda' requested but torch finds no CUDA device; use device: cpu or auto")
    if device not in ("cpu", "cuda"):
        raise PnyxError(f"unknown device {device!r} (known: cpu, cuda, auto)")
    return torch.device(device)


@dataclass(frozen=True)
class TrainingSpec:
    """Everything that determines a training run (``seed`` is SeedSequence entropy)."""

    model: dict[str, Any]
    a2c: A2CConfig
    partners: dict[str, float]
    rounds: int
    iterations: int
    seed: tuple[int, ...]
    learners: int = 1
    frozen: tuple[int, ...] = ()  # learners that play but never update (e.g. the Fixed-ICL)
    opponent_id: bool = False
    shards: int = 8
    eval_every: int = 50
    snapshots: tuple[int, ...] = ()  # iterations whose evaluation episodes are kept per round (Figure 3)
    eval_games: int = 256
    final_eval_games: int = 1024
    league_every: int = 100
    league_size: int = 8
    checkpoint_every: int = 100

    def __post_init__(self):
        if self.a2c.batch % self.shards:
            raise PnyxError(f"batch={self.a2c.batch} is not a multiple of shards={self.shards}")
        if self.learners < 1:
            raise PnyxError(f"learners={self.learners} must be at least 1")
        if LEARNER in self.partners and self.learners < 2:
            raise PnyxError("partner 'learner' means another learner: set learners >= 2")
        if not set(self.frozen) <= set(range(self.learners)) or len(set(self.frozen)) == self.learners:
            raise PnyxError(f"frozen={self.frozen} must name some, not all, of learners 0..{self.learners - 1}")

    @property
    def trained(self) -> list[int]:
        """The learners that update."""
        return [i for i in range(self.learners) if i not in self.frozen]

    def fingerprint(self) -> str:
        """Identifies runs a checkpoint can resume: everything but the number of iterations."""
        fields = asdict(self) | {"a2c": self.a2c.model_dump(), "iterations": None}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def play(net, partner_nets, pool: PartnerPool, draws, uniforms, league_nets, rounds: int,
         opponent_id: bool, keep_graph: bool = False) -> dict[str, np.ndarray]:
    """Play one episode in every game of the given shards, ``net`` in seat 0.

    ``draws`` (one :class:`~pnyx.population.partners.Draw` per shard) say who the partner
    is: a ``learner`` game's partner is ``partner_nets[draw.other]``, a ``league`` game's
    ``league_nets[draw.league]``. ``uniforms`` (per shard, (rounds, games, 2)) sample seat 0
    and seat 1 actions: a player defects when its uniform is below its defection
    probability. Returns seat-0 rows: ``obs``, ``actions`` (int8, (rounds, games)),
    ``rewards`` (float32), ``partner_actions`` (int8), ``z`` (the opponent-ID vector,
    (games, Z_SIZE), zeros unless ``opponent_id``), and per pool component the seat-0
    ``cooperation`` (cooperative rounds) and ``episodes``.
    """
    device = net.policy.weight.device
    payoff = net.inputs.payoff
    component_np = np.concatenate([d.component for d in draws])
    tabular_np = np.concatenate([d.tabular for d in draws])
    tabular = torch.from_numpy(tabular_np).float().to(device)
    u = torch.from_numpy(np.concatenate(uniforms, axis=1)).float().to(device)
    n = len(component_np)
    z = torch.from_numpy(opponent_z(tabular_np)).float().to(device) if opponent_id else None
    zero_z = torch.zeros(n, Z_SIZE, device=device) if opponent_id else None
    tab_games = torch.from_numpy(np.nonzero(~np.isnan(tabular_np[:, 0]))[0]).to(device)
    groups = []  # (network partner, its games, its state)
    for nets, index in ((partner_nets, np.concatenate([d.other for d in draws])),
                        (league_nets, np.concatenate([d.league for d in draws]))):
        for j, partner in enumerate(nets):
            games = torch.from_numpy(np.nonzero(index == j)[0]).to(device)
            if len(games):
                groups.append([partner, games, partner.initial_state(len(games))])
    policies = []  # (policy, games) for components played through their batch policy, per shard
    offset = 0
    for d in draws:
        for i, c in enumerate(pool.components):
            games = np.nonzero(d.component == i)[0]
            if c.kind == "policy" and len(games):
                policy = as_batch_policy(c.factory)
                policy.reset_batch(len(games), int(d.policy_seeds[i]))
                policies.append((policy, torch.from_numpy(games + offset).to(device)))
        offset += len(d.component)

    obs0 = torch.full((n,), START, dtype=torch.long, device=device)
    obs1 = obs0.clone()
    state = net.initial_state(n)
    obs_rows, action_rows, partner_rows, states = [], [], [], []
    with torch.no_grad():
        for t in range(rounds):
            with torch.set_grad_enabled(keep_graph):
                logits, _, state = net.step(obs0, z, state)
            states.append(state)
            a0 = (u[t, :, 0] < torch.softmax(logits.detach(), -1)[:, 1]).long()
            a1 = torch.empty(n, dtype=torch.long, device=device)
            coop_p = tabular[tab_games].gather(1, obs1[tab_games].unsqueeze(1)).squeeze(1)
            a1[tab_games] = (u[t, tab_games, 1] >= coop_p).long()
            for group in groups:
                partner, games, partner_state = group
                logits, _, group[2] = partner.step(obs1[games], zero_z[games] if opponent_id else None, partner_state)
                a1[games] = (u[t, games, 1] < torch.softmax(logits, -1)[:, 1]).long()
            for policy, games in policies:
                acts = np.asarray(policy.act_batch(obs1[games].cpu().numpy()))
                a1[games] = torch.as_tensor(acts, dtype=torch.long, device=device)
            obs_rows.append(obs0)
            action_rows.append(a0)
            partner_rows.append(a1)
            obs0, obs1 = 2 * a0 + a1, 2 * a1 + a0
    obs = torch.stack(obs_rows)
    actions = torch.stack(action_rows)
    rewards = payoff[2 * actions + torch.stack(partner_rows)]
    cooperated = (1 - actions).sum(0).cpu().numpy()  # integer counts: sums are exact in any order
    graph = dict(zip(("logits", "values"), net.heads(torch.stack(states)))) if keep_graph else {}
    return graph | {
        "obs": obs.to(torch.int8).cpu().numpy(),
        "actions": actions.to(torch.int8).cpu().numpy(),
        "partner_actions": torch.stack(partner_rows).to(torch.int8).cpu().numpy(),
        "rewards": rewards.float().cpu().numpy(),
        "z": (z if opponent_id else torch.zeros(n, 0)).cpu().numpy(),
        "cooperation": np.bincount(component_np, weights=cooperated, minlength=len(pool.components)),
        "episodes": np.bincount(component_np, minlength=len(pool.components)),
    }


def shard_draw(spec: TrainingSpec, pool: PartnerPool, iteration: int, learner: int, shard: int, games: int,
               league_size: int):
    """The partners and action uniforms of one shard of one learner's batch in one iteration."""
    rng = np.random.default_rng(np.random.SeedSequence([*spec.seed, iteration, learner, shard]))
    return pool.draw(games, rng, league_size, spec.learners - 1), rng.random((spec.rounds, games, 2))


def _others(nets: list, i: int) -> list:
    """The partner networks of learner ``i``: the others in order after it (itself when alone)."""
    k = len(nets)
    return [nets[(i + 1 + j) % k] for j in range(k - 1)] or [nets[i]]


class RolloutWorker:
    """Plays shards of each iteration's batches with the weights it was last sent (a Ray
    actor, given the driver's :func:`~pnyx.registry.pickled_registrations` to replay first,
    so that partners registered in the driver play here too)."""

    def __init__(self, spec: TrainingSpec, device: str = "cpu", nets: list | None = None,
                 registrations: tuple = ()):
        failed = replay_pickled(registrations)
        self.spec = spec
        self.device = torch.device(device)
        try:
            self.pool = PartnerPool(spec.partners)
        except PnyxError as e:
            raise PnyxError("; ".join([str(e), *failed[:1]])) from None
        self.nets = nets or [build_net(spec.model).to(self.device).eval() for _ in range(spec.learners)]
        self.leagues: list[list] = [[] for _ in range(spec.learners)]

    def rollout(self, iteration: int, shards: list[int], weights: list[dict] | None, leagues: list | None = None,
                keep_graph: bool = False) -> list:
        """Every trained learner's rows of the given shards; ``weights`` None: the networks
        as they are (the driver's own, see :class:`Trainer`)."""
        for net, w in zip(self.nets, weights or []):
            net.load_state_dict(w)
        if leagues is not None:
            self.leagues = []
            for states in leagues:
                members = []
                for state in states:
                    frozen = build_net(self.spec.model).to(self.device).eval()
                    frozen.load_state_dict(state)
                    members.append(frozen)
                self.leagues.append(members)
        games = self.spec.a2c.batch // self.spec.shards
        out = []
        for i in self.spec.trained:
            net = self.nets[i]
            draws, uniforms = zip(*(shard_draw(self.spec, self.pool, iteration, i, s, games, len(self.leagues[i]))
                                    for s in shards))
            out.append(play(net, _others(self.nets, i), self.pool, draws, uniforms, self.leagues[i],
                            self.spec.rounds, self.spec.opponent_id, keep_graph))
        return out


def evaluate(net, partner_net, spec: TrainingSpec, partner: str, games: int, seed: list[int]) -> np.ndarray:
    """``net``'s per-round cooperation rate (rounds,) in seat 0 against ``partner`` (a spec, or
    ``learner``: ``partner_net``)."""
    pool = PartnerPool({partner: 1.0})
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    draw, uniforms = pool.draw(games, rng), rng.random((spec.rounds, games, 2))
    out = play(net, [partner_net], pool, [draw], [uniforms], [], spec.rounds, spec.opponent_id)
    return 1.0 - out["actions"].mean(1, dtype=np.float64)


@dataclass
class TrainingResult:
    nets: list[torch.nn.Module]
    curve: list[dict[str, float]]
    within_episode: dict[str, list[float]]
    workers: int
    #: At each of the spec's ``snapshots`` iterations reached, the learners' cooperation per
    #: round against each evaluation partner (:func:`evaluate_learners`, ``eval_games`` games).
    snapshots: dict[int, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def net(self) -> torch.nn.Module:
        return self.nets[0]


def open_checkpoint(folder: str | Path | None, fingerprint: str, device) -> tuple[Path | None, dict | None]:
    """``folder/last.pt`` (``None`` without a folder) and the state saved there (``None`` when
    there is none), loaded onto ``device``; a checkpoint of another configuration (another
    ``fingerprint``) is refused."""
    path = Path(folder) / "last.pt" if folder else None
    if path is None or not path.is_file():
        return path, None
    data = torch.load(path, weights_only=True, map_location=device)
    if data["fingerprint"] != fingerprint:
        raise PnyxError(f"checkpoint {str(path)!r} belongs to a different configuration; "
                        "remove it or choose another checkpoint_dir")
    return path, data


def save_checkpoint(path: Path, fingerprint: str, state: dict) -> None:
    """``state`` stamped with ``fingerprint``, written to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"fingerprint": fingerprint, **state}, tmp)
    os.replace(tmp, path)


def _cpu_state(net) -> dict:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def initial_nets(spec: TrainingSpec, init: list[dict] | None = None) -> list[torch.nn.Module]:
    """The learners' networks before training, each from a torch seed of its own (or
    ``init[i]``'s weights)."""
    nets = []
    for i in range(spec.learners):
        with torch.random.fork_rng():
            torch.manual_seed(int(np.random.SeedSequence([*spec.seed, _EVAL_SHARD + 1, i]).generate_state(1)[0]))
            net = build_net(spec.model)
        if init is not None and init[i] is not None:
            net.load_state_dict(init[i])
        nets.append(net)
    return nets


def evaluate_learners(nets: list, spec: TrainingSpec, iteration: int, games: int) -> dict[str, np.ndarray]:
    """Per-round cooperation against each evaluation partner, averaged over the trained
    learners; ``learner``: each against the next learner (itself when alone). Seeded by
    the iteration."""
    for net in nets:
        net.eval()
    out = {}
    for k, p in enumerate(EVAL_PARTNERS):
        rates = [evaluate(nets[i], _others(nets, i)[0], spec, p, games, [*spec.seed, iteration, _EVAL_SHARD, k, i])
                 for i in spec.trained]
        out[p] = np.mean(rates, axis=0)
    return out


def curve_metrics(within: dict[str, np.ndarray]) -> dict[str, float]:
    """The curve's four cooperation metrics from per-round cooperation per evaluation partner."""
    return _metrics({p: float(np.mean(c)) for p, c in within.items()})


class Trainer:
    """The driver: gathers rollouts from ``workers`` Ray actors (0: in the driver),
    updates each learner with its own A2C, evaluates, checkpoints to ``checkpoint_dir`` and
    resumes from it. ``device`` holds the learners' networks and their updates; rollouts in
    the driver run there too, Ray actors roll out on the CPU. In the driver, GRU learners
    roll out with gradients kept, so each update is a backward pass over the rollout's own
    graph (the same numbers a second forward pass would give). ``init`` optionally gives
    starting weights per learner (state dicts), as the mechanism chain's steps need.
    ``on_point`` is called with every curve point (e.g. a TensorBoard writer)."""

    def __init__(self, spec: TrainingSpec, workers: int = 1, checkpoint_dir: str | Path | None = None,
                 device: str = "cpu", init: list[dict] | None = None, on_point=None):
        self.spec = spec
        self.device = resolve_device(device)
        self.pool = PartnerPool(spec.partners)
        self.nets = [net.to(self.device) for net in initial_nets(spec, init)]
        self.a2cs = [A2C(net, spec.a2c) for net in self.nets]
        self.leagues: list[list[dict]] = [[] for _ in range(spec.learners)]
        self.league_changed = False
        self.curve: list[dict[str, float]] = []
        self.snapshots: dict[int, dict[str, list[float]]] = {}
        self.iteration = 0
        self.on_point = on_point
        self.checkpoint, saved = open_checkpoint(checkpoint_dir, spec.fingerprint(), self.device)
        if saved is not None:
            self._resume(saved)
        self.workers = workers
        shard_ids = np.arange(spec.shards)
        self.fused = workers == 0 and spec.model.get("kind", "gru") == "gru"
        if workers == 0:
            self.handles = [RolloutWorker(spec, str(self.device), self.nets if self.fused else None)]
            self.slices = [shard_ids.tolist()]
        else:
            import ray

            if workers > spec.shards:
                raise PnyxError(f"workers={workers} exceeds shards={spec.shards}; raise shards")
            actor = ray.remote(num_cpus=1)(RolloutWorker)  # Ray gives each actor OMP_NUM_THREADS=1
            shipped = pickled_registrations()
            self.handles = [actor.remote(spec, registrations=shipped) for _ in range(workers)]
            self.slices = [s.tolist() for s in np.array_split(shard_ids, workers)]

    @property
    def net(self) -> torch.nn.Module:
        return self.nets[0]

    def close(self) -> None:
        if self.workers:
            import ray

            for handle in self.handles:
                ray.kill(handle)

    def _resume(self, data: dict) -> None:
        for net, a2c, state in zip(self.nets, self.a2cs, data["learners"]):
            net.load_state_dict(state["net"])
            a2c.optimizer.load_state_dict(state["optimizer"])
        self.leagues, self.league_changed = data["leagues"], True
        self.curve, self.iteration = data["curve"], data["iteration"]
        self.snapshots = data["snapshots"]

    def _save(self) -> None:
        learners = [{"net": _cpu_state(net), "optimizer": a2c.optimizer.state_dict()}
                    for net, a2c in zip(self.nets, self.a2cs)]
        save_checkpoint(self.checkpoint, self.spec.fingerprint(), {
            "iteration": self.iteration, "learners": learners, "leagues": self.leagues, "curve": self.curve,
            "snapshots": self.snapshots})

    def gather(self, iteration: int) -> list[dict[str, np.ndarray]]:
        """One iteration's rollouts per trained learner from every worker, concatenated in shard order."""
        leagues = self.leagues if self.league_changed else None
        self.league_changed = False
        if self.fused:
            return self.handles[0].rollout(iteration, self.slices[0], None, leagues, keep_graph=True)
        weights = [_cpu_state(net) for net in self.nets]
        if self.workers == 0:
            parts = [self.handles[0].rollout(iteration, self.slices[0], weights, leagues)]
        else:
            import ray

            weights_ref = ray.put(weights)
            leagues_ref = ray.put(leagues)
            parts = ray.get([h.rollout.remote(iteration, s, weights_ref, leagues_ref)
                             for h, s in zip(self.handles, self.slices)])
        batches = []
        for k in range(len(self.spec.trained)):
            mine = [p[k] for p in parts]
            out = {k: np.concatenate([p[k] for p in mine], axis=-1)
                   for k in ("obs", "actions", "rewards", "partner_actions")}
            out["z"] = np.concatenate([p["z"] for p in mine], axis=0)
            out["cooperation"] = sum(p["cooperation"] for p in mine)
            out["episodes"] = sum(p["episodes"] for p in mine)
            batches.append(out)
        return batches

    def update(self, i: int, batch: dict[str, np.ndarray], iteration: int) -> dict[str, float]:
        """One A2C step of learner ``i`` on its own rows; besides the loss's statistics, the
        batch's mean reward per step of the learner (``reward``) and of its partners
        (``partner_reward``) and the learner's cooperation rate (``train_cooperation``)."""
        dev = self.device
        obs, actions = (torch.from_numpy(batch[k]).long().to(dev) for k in ("obs", "actions"))
        z = torch.from_numpy(batch["z"]).float().to(dev) if self.spec.opponent_id else None
        rewards = torch.from_numpy(batch["rewards"]).to(dev)
        try:
            if "logits" in batch:
                stats = self.a2cs[i].update_from(batch["logits"], batch["values"], actions, rewards)
            else:
                stats = self.a2cs[i].update(obs, z, actions, rewards)
        except PnyxError as e:
            raise PnyxError(f"iteration {iteration}, learner {i}: {e}") from None
        stats["reward"] = float(batch["rewards"].mean())
        payoff = self.nets[i].inputs.payoff.cpu().numpy()
        partner_rewards = payoff[2 * batch["partner_actions"].astype(np.int64) + batch["actions"]]
        stats["partner_reward"] = float(partner_rewards.mean())
        stats["train_cooperation"] = float(batch["cooperation"].sum() / (batch["episodes"].sum() * self.spec.rounds))
        return stats

    def step(self, iteration: int) -> dict[str, float]:
        """Gather one batch per learner and take one A2C step each; returns training
        statistics averaged over learners."""
        spec = self.spec
        if self.pool.has(LEAGUE) and iteration % spec.league_every == 0:
            self.leagues = [(league + [_cpu_state(net)])[-spec.league_size:]
                            for league, net in zip(self.leagues, self.nets)]
            self.league_changed = True
        batches = self.gather(iteration)
        stats = [self.update(i, batch, iteration) for i, batch in zip(spec.trained, batches)]
        return {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}

    def evaluate(self, games: int) -> dict[str, np.ndarray]:
        """:func:`evaluate_learners` at the current iteration."""
        return evaluate_learners(self.nets, self.spec, self.iteration, games)

    def _curve_point(self, stats: dict[str, float], seconds: float) -> dict[str, float]:
        point = {"iteration": self.iteration, "final": False, **curve_metrics(self.evaluate(self.spec.eval_games)),
                 **stats, "seconds": seconds}
        if self.on_point is not None:
            self.on_point(point)
        return point

    def run(self, progress: bool = False) -> TrainingResult:
        from tqdm import tqdm

        spec = self.spec
        start = time.perf_counter()
        if self.iteration == 0 and not self.curve:
            self.curve.append(self._curve_point({}, 0.0))
            self._snapshot()
        bar = tqdm(total=spec.iterations, initial=self.iteration, disable=not progress, leave=False,
                   desc="iterations")  # tqdm's bar shows the rate and the remaining time (ETA)
        while self.iteration < spec.iterations:
            stats = self.step(self.iteration)
            self.iteration += 1
            bar.update()
            self._snapshot()
            if self.iteration % spec.eval_every == 0 or self.iteration == spec.iterations:
                self.curve.append(self._curve_point(stats, time.perf_counter() - start))
            if self.checkpoint and (self.iteration % spec.checkpoint_every == 0 or self.iteration == spec.iterations):
                self._save()
        bar.close()
        within = self.evaluate(spec.final_eval_games)
        final = {"iteration": self.iteration, "final": True, **curve_metrics(within)}
        within = {p: c.tolist() for p, c in within.items()}
        if self.checkpoint:
            for i in self.spec.trained:
                save_policy(self.checkpoint.parent / f"learner{i}.pt", self.nets[i])
        return TrainingResult(self.nets, self.curve + [final], within, self.workers, dict(self.snapshots))

    def _snapshot(self) -> None:
        if self.iteration in self.spec.snapshots:
            self.snapshots[self.iteration] = {p: c.tolist() for p, c in self.evaluate(self.spec.eval_games).items()}


def _metrics(coop: dict[str, float]) -> dict[str, float]:
    return {
        "learner_vs_learner_cooperation": coop["learner"],
        "vs_tft_cooperation": coop["tft"],
        "vs_allc_defection": 1.0 - coop["allc"],
        "vs_alld_defection": 1.0 - coop["alld"],
    }

"""Several seeds of independent A2C learners trained as one batched model.

Where one seed's batch is too small to fill a device, :class:`GroupedTrainer` trains S
seeds at once: their S x L learners (L learners per seed) become the groups of one
:class:`~pnyx.agents.grouped_gru.GroupedGRU`, rolled out, evaluated and updated together
in the driver on ``device``. Each group is the learner that
:class:`~pnyx.population.diverse_partner_training.Trainer` trains for that seed: the same
initial weights, the same partners and action uniforms (the same shard draws), the same
A2C loss (:func:`~pnyx.agents.a2c.a2c_loss` with one normalisation per group), the same
clipping (each group's gradient norm clipped on its own) and Adam (element-wise, so one
optimiser over the stacked parameters is S x L independent ones). Curves therefore agree
with separate runs up to float rounding, which sampled actions can amplify over training.

The batched path covers the paper's conditions: GRU learners, partners that are
memory-one tables (U(0,1) or fixed, e.g. ``tft``) or the other learner (at most two
learners), no league, no frozen learners, no partners played through their batch
policy. In learner-vs-learner games the partner seat is the other learner's current
network, evaluated for every game of the batch and used where the game's partner is a learner.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from pnyx.agents.a2c import a2c_loss
from pnyx.agents.grouped_gru import GroupedGRU
from pnyx.agents.sequence import START, Z_SIZE, build_net, save_policy
from pnyx.errors import PnyxError
from pnyx.population.diverse_partner_training import (TrainingResult, TrainingSpec, curve_metrics, evaluate_learners,
                                                      initial_nets, open_checkpoint, resolve_device, save_checkpoint,
                                                      shard_draw)
from pnyx.population.partners import LEARNER, PartnerPool, opponent_z


def check_groupable(model: dict, partners: dict[str, float], learners: int, frozen: tuple[int, ...] = ()) -> None:
    """A one-line :class:`PnyxError` naming what the batched path does not cover."""
    pool = PartnerPool(partners)
    if model.get("kind", "gru") != "gru":
        raise PnyxError("seeds train as one batched model only with model kind 'gru'")
    kinds = {c.kind for c in pool.components}
    if not kinds <= {"tabular", LEARNER}:
        raise PnyxError(f"seeds train as one batched model only against memory-one tables and the other learner, "
                        f"not {', '.join(sorted(c.spec for c in pool.components if c.kind not in ('tabular', LEARNER)))}")
    if learners > 2:
        raise PnyxError(f"seeds train as one batched model with at most 2 learners, not {learners}")
    if frozen:
        raise PnyxError("seeds train as one batched model only without frozen learners")


class GroupedTrainer:
    """Trains the learners of every spec in ``specs`` (equal but for ``seed``) as one
    batched model; checkpoints to ``checkpoint_dir/last.pt`` and resumes from it;
    ``on_point(s, point)`` gets every curve point of seed ``s``. ``compile`` runs the
    model's step through ``torch.compile`` (compiled once per process, which takes tens of
    seconds; the floats may differ from eager ones in the last bits)."""

    def __init__(self, specs: list[TrainingSpec], checkpoint_dir: str | Path | None = None, device: str = "cpu",
                 on_point=None, compile: bool = False):
        first = specs[0]
        if any(asdict(s) | {"seed": None} != asdict(first) | {"seed": None} for s in specs):
            raise PnyxError("seeds trained as one batched model must share everything but the seed")
        check_groupable(first.model, first.partners, first.learners, first.frozen)
        self.specs, self.device, self.on_point = specs, resolve_device(device), on_point
        self.pool = PartnerPool(first.partners)
        self.learners = first.learners
        self.model = GroupedGRU([net for s in specs for net in initial_nets(s)]).to(self.device)
        if compile:
            self.model.step = torch.compile(self.model.step, dynamic=False)
        self.params = [getattr(self.model, name) for name in self.model.entries]
        self.optimizer = torch.optim.Adam(self.params, lr=first.a2c.lr, eps=first.a2c.adam_eps)
        groups = torch.arange(self.model.groups, device=self.device)
        self.partner_order = groups - groups % 2 + (1 - groups % 2) if self.learners == 2 else groups
        self.curves: list[list[dict]] = [[] for _ in specs]
        self.snapshots: list[dict[int, dict[str, list[float]]]] = [{} for _ in specs]
        self.iteration = 0
        self.checkpoint, saved = open_checkpoint(checkpoint_dir, self.fingerprint(), self.device)
        if saved is not None:
            self._resume(saved)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([s.fingerprint() for s in self.specs]).encode()).hexdigest()[:16]

    def _resume(self, data: dict) -> None:
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.curves, self.iteration, self.snapshots = data["curves"], data["iteration"], data["snapshots"]

    def _save(self) -> None:
        model = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        save_checkpoint(self.checkpoint, self.fingerprint(), {"iteration": self.iteration, "model": model,
                                                              "optimizer": self.optimizer.state_dict(),
                                                              "curves": self.curves, "snapshots": self.snapshots})

    def _draws(self, iteration: int):
        """Every group's partners and uniforms of this iteration, as :class:`Trainer` draws them
        in the driver (all shards of each learner, in shard order): tabular cooperation
        probabilities (G, n, 5), learner-game mask (G, n), uniforms (T, G, n, 2)."""
        spec = self.specs[0]
        games = spec.a2c.batch // spec.shards
        tabular, learner, uniforms = [], [], []
        for s in self.specs:
            for i in range(self.learners):
                draws, u = zip(*(shard_draw(s, self.pool, iteration, i, k, games, 0) for k in range(spec.shards)))
                tabular.append(np.concatenate([d.tabular for d in draws]))
                learner.append(np.concatenate([d.other for d in draws]) >= 0)
                uniforms.append(np.concatenate(u, axis=1))
        return np.stack(tabular), np.stack(learner), np.stack(uniforms, axis=1)

    def rollout(self, iteration: int) -> dict[str, torch.Tensor]:
        """One episode in every game of every group, the learner in seat 0, its graph kept."""
        spec, dev, model = self.specs[0], self.device, self.model
        tabular_np, learner_np, u_np = self._draws(iteration)
        tabular = torch.from_numpy(np.nan_to_num(tabular_np)).float().to(dev)
        learner = torch.from_numpy(learner_np).to(dev)
        u = torch.from_numpy(u_np).float().to(dev)
        G, n = learner.shape
        z = None
        if spec.opponent_id:
            z = torch.from_numpy(opponent_z(tabular_np.reshape(G * n, 5)).reshape(G, n, Z_SIZE)).float().to(dev)
        partner = model.weights(self.partner_order) if bool(learner_np.any()) else None
        zero_z = torch.zeros_like(z) if z is not None else None
        obs0 = torch.full((G, n), START, dtype=torch.long, device=dev)
        obs1 = obs0.clone()
        state, partner_state = model.initial_state(n), model.initial_state(n)
        states, actions, partner_actions = [], [], []
        for t in range(spec.rounds):
            logits, _, state = model.step(obs0, z, state)
            states.append(state)
            a0 = (u[t, ..., 0] < torch.softmax(logits.detach(), -1)[..., 1]).long()
            coop = tabular.gather(-1, obs1.unsqueeze(-1)).squeeze(-1)
            a1 = (u[t, ..., 1] >= coop).long()
            if partner is not None:
                with torch.no_grad():
                    p_logits, _, partner_state = model.step(obs1, zero_z, partner_state, partner)
                a1 = torch.where(learner, (u[t, ..., 1] < torch.softmax(p_logits, -1)[..., 1]).long(), a1)
            actions.append(a0)
            partner_actions.append(a1)
            obs0, obs1 = 2 * a0 + a1, 2 * a1 + a0
        actions, partner_actions = torch.stack(actions), torch.stack(partner_actions)
        rewards = model.payoff[2 * actions + partner_actions]
        logits, values = model.heads(torch.stack(states))
        return {"logits": logits, "values": values, "actions": actions, "rewards": rewards,
                "partner_rewards": model.payoff[2 * partner_actions + actions]}

    def step(self, iteration: int) -> list[dict[str, float]]:
        """One rollout and one A2C step of every group; training statistics per seed
        (averaged over its learners)."""
        cfg = self.specs[0].a2c
        batch = self.rollout(iteration)
        loss, parts = a2c_loss(cfg, batch["logits"], batch["values"], batch["actions"], batch["rewards"], dims=(0, 2))
        if not bool(torch.isfinite(loss).all()):
            bad = int((~torch.isfinite(loss)).nonzero()[0])
            raise PnyxError(f"iteration {iteration}, seed {bad // self.learners}, learner {bad % self.learners}: "
                            "A2C loss is not finite; lower the learning rate or reward_scale")
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        norms = torch.stack([p.grad.flatten(1).pow(2).sum(1) for p in self.params]).sum(0).sqrt()
        scale = (cfg.grad_clip / (norms + 1e-6)).clamp(max=1.0)  # torch.nn.utils.clip_grad_norm_, per group
        for p in self.params:
            p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))
        self.optimizer.step()
        per_group = {"loss": loss.detach(), **parts, "grad_norm": norms,
                     "reward": batch["rewards"].float().mean((0, 2)),
                     "partner_reward": batch["partner_rewards"].float().mean((0, 2)),
                     "train_cooperation": (1 - batch["actions"]).float().mean((0, 2))}
        per_seed = {k: v.reshape(len(self.specs), self.learners).mean(1).tolist() for k, v in per_group.items()}
        return [{k: v[s] for k, v in per_seed.items()} for s in range(len(self.specs))]

    def nets(self, s: int) -> list[torch.nn.Module]:
        """Seed ``s``'s learners as separate networks with the current weights."""
        nets = []
        for state in self.model.state_dicts()[s * self.learners:(s + 1) * self.learners]:
            net = build_net(self.specs[s].model).to(self.device)
            net.load_state_dict(state)
            nets.append(net)
        return nets

    def _curve_points(self, stats: list[dict[str, float]], seconds: float) -> None:
        for s, spec in enumerate(self.specs):
            within = evaluate_learners(self.nets(s), spec, self.iteration, spec.eval_games)
            point = {"iteration": self.iteration, "final": False, **curve_metrics(within), **stats[s],
                     "seconds": seconds}
            self.curves[s].append(point)
            if self.on_point is not None:
                self.on_point(s, point)

    def run(self, progress: bool = False) -> list[TrainingResult]:
        from tqdm import tqdm

        spec = self.specs[0]
        start = time.perf_counter()
        if self.iteration == 0 and not self.curves[0]:
            self._curve_points([{}] * len(self.specs), 0.0)
            self._snapshot()
        bar = tqdm(total=spec.iterations, initial=self.iteration, disable=not progress, leave=False,
                   desc=f"iterations ({len(self.specs)} seeds)")
        while self.iteration < spec.iterations:
            stats = self.step(self.iteration)
            self.iteration += 1
            bar.update()
            self._snapshot()
            if self.iteration % spec.eval_every == 0 or self.iteration == spec.iterations:
                self._curve_points(stats, time.perf_counter() - start)
            if self.checkpoint and (self.iteration % spec.checkpoint_every == 0 or self.iteration == spec.iterations):
                self._save()
        bar.close()
        results = []
        for s, spec_s in enumerate(self.specs):
            nets = self.nets(s)
            within = evaluate_learners(nets, spec_s, self.iteration, spec_s.final_eval_games)
            final = {"iteration": self.iteration, "final": True, **curve_metrics(within)}
            results.append(TrainingResult(nets, self.curves[s] + [final], {p: c.tolist() for p, c in within.items()}, 0,
                                          dict(self.snapshots[s])))
        return results

    def _snapshot(self) -> None:
        """Each seed's :class:`TrainingResult` ``snapshots`` entry, at the spec's snapshot iterations."""
        if self.iteration in self.specs[0].snapshots:
            for s, spec in enumerate(self.specs):
                within = evaluate_learners(self.nets(s), spec, self.iteration, spec.eval_games)
                self.snapshots[s][self.iteration] = {p: c.tolist() for p, c in within.items()}

    def save_learners(self, folders: list[Path]) -> None:
        """Each seed's final learners as ``learner<i>.pt`` in its folder, player specs for tournaments."""
        for s, folder in enumerate(folders):
            folder.mkdir(parents=True, exist_ok=True)
            for i, net in enumerate(self.nets(s)):
                save_policy(folder / f"learner{i}.pt", net)

"""Advantage actor-critic (A2C) with generalised advantage estimation, as in Weis et al. 2026
(arXiv:2602.16301), appendix A.

One update takes a batch of whole episodes of equal length (time first):
rewards are rescaled, advantages come from GAE (Schulman et al. 2016, "High-dimensional
continuous control using generalized advantage estimation") with ``gae_lambda`` and the
value after the last round taken as 0, advantages are (optionally) normalised over the
batch, and the loss of appendix A.3.2,

    sum over rounds t of [-log pi(a_t|h_t) * A_t + value_coef * (V(h_t) - R_t)^2 - entropy_coef * H[pi(.|h_t)]],

is averaged over the batch's episodes, with TD(lambda) value targets ``R = GAE(td_lambda) + V``
(before normalisation; A.3.2 writes the value term with the one-step TD error, and Table 2
lists ``td_lambda`` beside ``gae_lambda``, so pnyx reads the targets as lambda-returns),
and minimised by Adam with the gradient norm clipped. :data:`BEST_RESPONSE`,
:data:`EXPLOITER`, :data:`MUTUAL_SHAPING` and the defaults are the four columns of the
paper's Table 2 (steps 1-4).

A.3.2's formula sums over the episode's rounds t = 1..T; how episodes of a batch combine
is left to Meulemans et al. 2025a, appendix A, which pnyx follows in averaging them. The
sum makes the gradient T times that of a per-round mean, so the clip at ``grad_clip``
binds once the per-round mean gradient exceeds ``grad_clip / T`` (0.01 at the paper's
T = 100 and clip 1). ``loss_over_rounds="mean"`` averages over rounds as well, pnyx's
earlier reduction: the same direction, a clip that binds T times later; apart from
clipping (and ``adam_eps``) Adam's steps do not depend on the loss's scale.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pnyx.errors import PnyxError


class A2CConfig(BaseModel):
    """A2C hyperparameters; the defaults are the paper's mixed-pool run (Table 2, step 4)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    batch: int = Field(4096, gt=0, description="episodes per update")
    lr: float = Field(1e-3, gt=0)
    adam_eps: float = Field(1e-5, gt=0)
    gamma: float = Field(0.99, ge=0, le=1)
    gae_lambda: float = Field(1.0, ge=0, le=1)
    td_lambda: float | None = Field(None, ge=0, le=1, description="lambda of the value targets; None: gae_lambda")
    normalize_advantages: bool = True
    reward_scale: float = Field(0.02, gt=0)
    value_coef: float = Field(0.5, ge=0)
    entropy_coef: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    loss_over_rounds: Literal["sum", "mean"] = Field(
        "sum", description="sum: summed over an episode's rounds, averaged over episodes (appendix A.3.2); "
        "mean: averaged over rounds too (T times smaller, so grad_clip binds later)")


#: Table 2, step 1: the in-context best responder trained against tabular partners.
BEST_RESPONSE = A2CConfig(batch=2048, lr=5e-3, gae_lambda=0.99, reward_scale=0.2, entropy_coef=0.001)
#: Table 2, step 2: the exploiter trained against the frozen best responder (Fixed-ICL).
EXPLOITER = A2CConfig(batch=2048, lr=5e-3, gae_lambda=1.0, normalize_advantages=False, reward_scale=0.05,
                      entropy_coef=0.001)
#: Table 2, step 3: two exploiters trained against each other.
MUTUAL_SHAPING = A2CConfig(batch=4096, lr=5e-4, gae_lambda=0.95, reward_scale=0.02, entropy_coef=0.001)


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Advantages (T, n) of episodes that end after their last step (time first)."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    next_value = torch.zeros_like(values[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
        next_value = values[t]
    return advantages


def a2c_loss(cfg: A2CConfig, logits, values, actions, rewards, dims: tuple[int, ...] | None = None):
    """The loss above and its parts (policy_loss, value_loss, entropy) as tensors. Means
    (and the advantages' normalisation) run over ``dims``, or over everything: with
    ``dims=(0, 2)`` on (T, G, n) tensors each of G groups gets its own loss, shape (G,)."""
    def mean(x):
        return x.mean() if dims is None else x.mean(dims)

    with torch.no_grad():
        scaled = rewards * cfg.reward_scale
        advantages = gae(scaled, values, cfg.gamma, cfg.gae_lambda)
        td_lambda = cfg.gae_lambda if cfg.td_lambda is None else cfg.td_lambda
        returns = (advantages if td_lambda == cfg.gae_lambda else gae(scaled, values, cfg.gamma, td_lambda)) + values
        if cfg.normalize_advantages:
            if dims is None:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            else:
                centre, spread = advantages.mean(dims, keepdim=True), advantages.std(dims, keepdim=True)
                advantages = (advantages - centre) / (spread + 1e-8)
    log_probs = torch.log_softmax(logits, -1)
    chosen = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropy = mean(-(log_probs.exp() * log_probs).sum(-1))
    policy_loss = -mean(chosen * advantages)
    value_loss = mean((values - returns).pow(2))
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
    if cfg.loss_over_rounds == "sum":
        loss = loss * rewards.shape[0]
    return loss, {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(), "entropy": entropy.detach()}


class A2C:
    """Updates ``net`` (with ``sequence(obs, z) -> logits, values``) from batches of episodes."""

    def __init__(self, net: nn.Module, cfg: A2CConfig):
        self.net, self.cfg = net, cfg
        self.optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)

    def loss(self, obs, z, actions, rewards) -> tuple[torch.Tensor, dict[str, float]]:
        """The A2C loss of a batch: ``obs``, ``actions``, ``rewards`` (T, n); ``z`` (n, Z_SIZE) or None."""
        logits, values = self.net.sequence(obs, z)
        return self.loss_from(logits, values, actions, rewards)

    def loss_from(self, logits, values, actions, rewards) -> tuple[torch.Tensor, dict[str, float]]:
        """The A2C loss from the network's outputs on the batch: ``logits`` (T, n, 2), ``values`` (T, n)."""
        loss, stats = a2c_loss(self.cfg, logits, values, actions, rewards)
        return loss, {k: v.item() for k, v in stats.items()}

    def update(self, obs, z, actions, rewards) -> dict[str, float]:
        """One gradient step; raises :class:`PnyxError` if the loss is not finite."""
        return self.step(*self.loss(obs, z, actions, rewards))

    def update_from(self, logits, values, actions, rewards) -> dict[str, float]:
        """One gradient step from outputs the rollout kept with their graph (see :meth:`loss_from`)."""
        return self.step(*self.loss_from(logits, values, actions, rewards))

    def step(self, loss: torch.Tensor, stats: dict[str, float]) -> dict[str, float]:
        if not torch.isfinite(loss):
            raise PnyxError(f"A2C loss became {loss.item()} ({stats}); lower the learning rate or reward_scale")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stats["grad_norm"] = float(nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip))
        self.optimizer.step()
        return {"loss": loss.item(), **stats}

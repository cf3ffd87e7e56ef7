"""Predictive policy improvement (PPI): a sequence model as world model and policy prior.

Weis et al. 2026, "Multi-agent cooperation through in-context co-player inference"
(arXiv:2602.16301), section 2, appendix A.3.1 (architecture, training, inference) and
appendix C (derivation). One sequence model ``p_phi`` predicts an agent's own stream
of observations, rewards and actions. It is at once

* the policy prior ``p(a_t | x_<=t)`` (its action head), and
* the world model: ``p(o_t | x_<t, a_t-1)`` (categorical; the co-player's move is what it
  cannot know) and ``p(r_t | x_<t, a_t-1, o_t)`` (normal with fixed variance, so its
  loss is the squared error and its prediction is the mean).

The acting ("improved") policy is the Boltzmann policy of appendix C.2 / equation 6,
``pi(a | x) ∝ p(a | x) exp(beta Q_p(x, a))``, with ``Q_p`` the return the model itself
predicts, estimated by Monte Carlo rollouts inside the model: after the candidate action,
observations and actions are sampled from the model (the prior plays the agent's future
moves, as ``Q_p`` of appendix C is the value of the prior), rewards are the model's means. A rollout samples only the co-player's move (the half of
the observation code the agent does not choose).

Per the paper: a GRU(128) with modality-specific linear embeddings to 32 dimensions of the
one-hot observation, one-hot action and scalar reward, Swish on its output and one linear
head per modality (A.3.1); the next-token loss (categorical cross-entropy for actions and
observations, squared error for rewards); AdamW (lr 1e-4, weight decay 1e-2, betas 0.9,
0.98), 10 epochs at batch 256, gradients clipped at norm 1; ``beta`` = 0.01; rollouts 15
rounds into the future; 30 phases of 20 000 new trajectories on top of 200 000 pretraining
trajectories (the phase loop is :mod:`pnyx.population.ppi_training`).

A model built with ``opponent_id=True`` is the "Opponent ID" ablation (section 3.1,
appendix A.4.1: the observation sequence is prepended with the opponent-ID vector z,
:func:`pnyx.population.partners.opponent_z`, 0 for learning partners). As in the A2C GRU
(:mod:`pnyx.agents.sequence`), z is linearly projected (here to ``embed``, one more
modality-specific embedding) and fed as one token before ``o_0``; in training, in the
model's rollouts (which continue from that state) and when acting. ``learner_flag=True``
adds section 3.1's identity flag for learners, as for the A2C GRU
(:func:`pnyx.agents.sequence.learner_flagged`).

pnyx's choices where the paper gives no number or form:

* tokens: one GRU step per token, in the order ``o_0, r_0, a_0, o_1, r_1, a_1, ..., o_T,
  r_T`` with ``r_0 = 0`` before the first round (the IPD's start code ``o_0``); each
  token is predicted from the state after the previous one by the head of its modality;
* the loss is the sum of the three per-token means (actions, observations, rewards);
* ``rollouts`` (8) rollouts per candidate action, averaged; ``gamma`` = 0.99 (the A2C
  agents' discount, Table 2); rollouts stop at the episode's last round when it is nearer
  than ``horizon``; a rollout feeds the predicted mean reward back as the reward token.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pnyx.agents.sequence import Z_SIZE, learner_flagged
from pnyx.envs.matrix_game import START
from pnyx.errors import PnyxError

CODES = 5  # observation codes: CC, CD, DC, DD (own move first), START


class PPIConfig(BaseModel):
    """PPI hyperparameters; the defaults are the paper's (appendix A.3.1) except
    ``rollouts`` and ``gamma`` (pnyx's, see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    phases: int = Field(30, gt=0, description="iterations of train model / collect data")
    episodes: int = Field(20000, gt=0, description="new trajectories per phase and learner")
    pretrain_episodes: int = Field(200000, gt=0, description="trajectories of the initial dataset D_0")
    epochs: int = Field(10, gt=0)
    batch: int = Field(256, gt=0, description="trajectories per gradient step")
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = Field(1.0, gt=0)
    beta: float = Field(0.01, ge=0, description="inverse temperature of the improved policy")
    horizon: int = Field(15, gt=0, description="rounds each Monte Carlo rollout looks ahead")
    rollouts: int = Field(8, gt=0, description="rollouts per candidate action (pnyx's choice)")
    gamma: float = Field(0.99, ge=0, le=1, description="discount of the rollout return (pnyx's choice)")

    def changed_from_paper(self) -> list[str]:
        """``name value`` of each training or acting setting the paper gives (appendix A.3.1)
        that differs here, for a figure's scale line (phases and dataset sizes are the scale)."""
        paper = PPIConfig()
        return [f"{k} {getattr(self, k):g}" for k in ("epochs", "batch", "lr", "weight_decay", "grad_clip", "beta",
                                                      "horizon") if getattr(self, k) != getattr(paper, k)]


class SequenceModel(nn.Module):
    """The PPI sequence model: embeddings per modality -> GRU -> Swish -> a head per modality;
    with ``opponent_id``, a projection of z (and the learner flag, with ``learner_flag``)
    fed as a token before each episode."""

    def __init__(self, embed: int = 32, hidden: int = 128, opponent_id: bool = False, learner_flag: bool = False):
        super().__init__()
        self.obs = nn.Linear(CODES, embed)
        self.action = nn.Linear(2, embed)
        self.reward = nn.Linear(1, embed)
        self.gru = nn.GRU(embed, hidden)
        self.obs_head = nn.Linear(hidden, CODES)
        self.action_head = nn.Linear(hidden, 2)
        self.reward_head = nn.Linear(hidden, 1)
        self.hidden = hidden
        if learner_flag and not opponent_id:
            raise PnyxError("learner_flag is a variant of opponent_id conditioning; set opponent_id too")
        self.learner_flag = learner_flag
        self.prefix = nn.Linear(Z_SIZE + learner_flag, embed) if opponent_id else None  # last: init of others unchanged

    def embed_z(self, z: torch.Tensor) -> torch.Tensor:
        """The z token of an ``opponent_id`` model."""
        z = z.to(self.prefix.weight.dtype)
        return self.prefix(learner_flagged(z) if self.learner_flag else z)

    def embed_obs(self, codes: torch.Tensor) -> torch.Tensor:
        return self.obs(F.one_hot(codes, CODES).to(self.obs.weight.dtype))

    def embed_action(self, actions: torch.Tensor) -> torch.Tensor:
        return self.action(F.one_hot(actions, 2).to(self.action.weight.dtype))

    def embed_reward(self, rewards: torch.Tensor) -> torch.Tensor:
        return self.reward(rewards.unsqueeze(-1).to(self.reward.weight.dtype))

    def run(self, tokens: torch.Tensor, state: torch.Tensor | None):
        """Feed embedded tokens (L, n, embed) -> Swish outputs (L, n, hidden) and the GRU state."""
        out, state = self.gru(tokens, state)
        return F.silu(out), state

    def forward(self, codes: torch.Tensor, payoff: torch.Tensor, z: torch.Tensor | None = None):
        """Predictions along whole episodes. ``codes`` (T+1, n): the observation codes
        ``o_0 .. o_T`` (``o_0`` the start code; own actions are ``o_t+1 >> 1``); ``payoff``
        (5,): own reward per code, 0 for the start; ``z`` (n, Z_SIZE) for an ``opponent_id``
        model. Returns logits of ``a_0..a_T-1`` (T, n, 2), logits of ``o_1..o_T`` (T, n, 5),
        predicted ``r_0..r_T`` (T+1, n) and the targets (actions, rewards)."""
        steps = codes.shape[0] - 1
        actions, rewards = codes[1:] >> 1, payoff[codes]
        o, r, a = self.embed_obs(codes), self.embed_reward(rewards), self.embed_action(actions)
        body = torch.stack([o[:steps], r[:steps], a], 1).flatten(0, 1)  # o_0 r_0 a_0 o_1 ...
        tokens = torch.cat([body, o[steps:], r[steps:]])
        if self.prefix is not None:
            tokens = torch.cat([self.embed_z(z).unsqueeze(0), tokens])
        out, _ = self.run(tokens, None)
        out = out[1:] if self.prefix is not None else out  # positions 3t: o_t, 3t+1: r_t, 3t+2: a_t
        action_logits = self.action_head(out[1:3 * steps:3])
        obs_logits = self.obs_head(out[2::3])
        reward_mean = self.reward_head(out[0::3]).squeeze(-1)
        return action_logits, obs_logits, reward_mean, actions, rewards

    def loss(self, codes: torch.Tensor, payoff: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """The next-token loss (appendix A.3.1): cross-entropy of actions and observations
        plus the squared error of rewards, each averaged over its tokens."""
        action_logits, obs_logits, reward_mean, actions, rewards = self(codes, payoff, z)
        return (F.cross_entropy(action_logits.flatten(0, 1), actions.flatten())
                + F.cross_entropy(obs_logits.flatten(0, 1), codes[1:].flatten())
                + F.mse_loss(reward_mean, rewards))


#: The PPI settings an improved policy acts with, kept in its checkpoint's model spec.
ACTING = ("beta", "horizon", "rollouts", "gamma")


def improved_policy(payoffs, rounds: int, embed: int = 32, hidden: int = 128, opponent_id: bool = False,
                    learner_flag: bool = False, **acting) -> "ImprovedPolicy":
    """An improved policy over a fresh sequence model, from the flat spec its checkpoint holds
    (:attr:`ImprovedPolicy.spec`; ``acting``: the :data:`ACTING` settings)."""
    return ImprovedPolicy(SequenceModel(embed, hidden, opponent_id, learner_flag), payoffs, PPIConfig(**acting),
                          rounds)


def build_model(spec: dict) -> SequenceModel:
    """A sequence model from ``{"embed": int, "hidden": int, "opponent_id": bool, "learner_flag": bool}``
    (the last two optional)."""
    return SequenceModel(**spec)


def fit(model: SequenceModel, codes: np.ndarray, payoff: torch.Tensor, cfg: PPIConfig,
        rng: np.random.Generator, z: np.ndarray | None = None) -> float:
    """Train ``model`` on trajectories ``codes`` (T+1, N) (with their opponent-ID vectors
    ``z`` (N, Z_SIZE) for an ``opponent_id`` model) for ``cfg.epochs`` epochs of shuffled
    minibatches (order from ``rng``) with AdamW; returns the last epoch's mean loss."""
    device = model.obs.weight.device
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
    n = codes.shape[1]
    model.train()
    for _ in range(cfg.epochs):
        order, total = rng.permutation(n), 0.0
        for start in range(0, n, cfg.batch):
            idx = np.sort(order[start:start + cfg.batch])
            batch = torch.from_numpy(codes[:, idx]).long().to(device)
            ids = None if z is None else torch.from_numpy(z[idx]).float().to(device)
            loss = model.loss(batch, payoff, ids)
            if not torch.isfinite(loss):
                raise PnyxError("the PPI sequence model's loss is not finite; lower ppi.lr")
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(idx)
    model.eval()
    return total / n


def improved_logits(prior_logits: torch.Tensor, q: torch.Tensor, beta: float) -> torch.Tensor:
    """Log-probabilities of equation 6: ``log p(a | x) + beta Q(x, a)``, normalised."""
    return torch.log_softmax(torch.log_softmax(prior_logits, -1) + beta * q, -1)


class _Observed(nn.Module):
    """What the agent observes besides the code: its own reward per code (0 at the start)."""

    def __init__(self, payoffs):
        super().__init__()
        self.register_buffer("payoff", torch.tensor([*map(float, payoffs), 0.0]))


class ImprovedPolicy(nn.Module):
    """The PPI agent's acting policy over a trained :class:`SequenceModel`.

    Steps like the sequence policies of :mod:`pnyx.agents.sequence` (``initial_state``,
    ``step(obs, z, state) -> logits, values, state``; ``policy`` and ``inputs.payoff`` are
    what :func:`pnyx.population.diverse_partner_training.play` reads), so it plays in the
    same episodes; an ``opponent_id`` model reads z at the start. All games of a batch are
    in the same round. ``rounds`` is the episode length (rollouts stop there); :meth:`reseed`
    fixes the rollouts' randomness.
    """

    def __init__(self, model: SequenceModel, payoffs, cfg: PPIConfig, rounds: int):
        super().__init__()
        self.model = model.eval()
        self.inputs = _Observed(payoffs).to(model.obs.weight.device)
        self.policy = model.action_head
        self.cfg, self.rounds, self.payoffs = cfg, rounds, [float(x) for x in payoffs]
        self.reseed([0])

    @property
    def spec(self) -> dict:
        """The flat spec :func:`pnyx.agents.sequence.save_policy` stores and :func:`improved_policy` rebuilds from."""
        m = self.model
        return {"kind": "ppi", "payoffs": self.payoffs, "rounds": self.rounds,
                "embed": m.obs.out_features, "hidden": m.hidden, "opponent_id": m.prefix is not None,
                "learner_flag": m.learner_flag,
                **{k: getattr(self.cfg, k) for k in ACTING}}

    def reseed(self, entropy: list[int]) -> None:
        device = self.policy.weight.device
        self.generator = torch.Generator(device).manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))

    def initial_state(self, n: int):
        return torch.zeros(1, n, self.model.hidden, device=self.policy.weight.device), 0

    @torch.no_grad()
    def step(self, obs: torch.Tensor, z, state):
        h, t = state
        m = self.model
        if bool((obs == START).all()):
            h, t = torch.zeros_like(h), 0
            tokens = torch.stack([m.embed_obs(obs), m.embed_reward(torch.zeros(len(obs), device=obs.device))])
            if m.prefix is not None:
                tokens = torch.cat([m.embed_z(z).unsqueeze(0), tokens])
        elif bool((obs == START).any()) or t == 0:
            raise PnyxError("an improved PPI policy steps whole batches in the same round")
        else:
            tokens = torch.stack([m.embed_action(obs >> 1), m.embed_obs(obs), m.embed_reward(self.inputs.payoff[obs])])
        out, h = m.run(tokens, h)
        prior = m.action_head(out[-1])
        logits = improved_logits(prior, self.q_values(h, t), self.cfg.beta) if self.cfg.beta else torch.log_softmax(prior, -1)
        return logits, torch.zeros(len(obs), device=obs.device), (h, t + 1)

    @torch.no_grad()
    def q_values(self, h: torch.Tensor, t: int) -> torch.Tensor:
        """``Q_p(x_<=t, a)`` for a = C, D (n, 2): the mean discounted model return of
        ``rollouts`` rollouts of ``min(horizon, rounds - t)`` rounds from state ``h``."""
        m, cfg = self.model, self.cfg
        n = h.shape[1]
        k = 2 * cfg.rollouts
        h = h.repeat(1, k, 1)  # copy j of game g at j * n + g
        action = torch.arange(2, device=h.device).repeat_interleave(cfg.rollouts * n)
        total = torch.zeros(k * n, device=h.device)
        steps = min(cfg.horizon, self.rounds - t)
        for s in range(steps):
            out, h = m.run(m.embed_action(action).unsqueeze(0), h)
            # the agent's own move is known: only the co-player's half of the code is sampled
            logits = m.obs_head(out[0])[:, :START].view(-1, 2, 2)[torch.arange(k * n, device=h.device), action]
            obs = 2 * action + torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator).squeeze(1)
            out, h = m.run(m.embed_obs(obs).unsqueeze(0), h)
            reward = m.reward_head(out[0]).squeeze(-1)
            total += cfg.gamma ** s * reward
            if s + 1 < steps:
                out, h = m.run(m.embed_reward(reward).unsqueeze(0), h)
                probs = torch.softmax(m.action_head(out[0]), -1)
                action = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
        return total.view(2, cfg.rollouts, n).mean(1).T

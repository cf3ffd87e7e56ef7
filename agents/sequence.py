"""Sequence-model policies for the iterated prisoner's dilemma: a GRU and a small causal Transformer.

Each step a learner sees the IPD observation code (0..3 = previous joint action, own
first: CC, CD, DC, DD; 4 = first round), its own previous action and its previous
reward, each embedded to ``embed`` dimensions, and optionally its partner's identity
(:data:`pnyx.population.partners.KIND_IDS`). As in Weis et al. 2026, "Multi-agent
cooperation through in-context co-player inference" (arXiv:2602.16301), appendix A,
the previous action and reward are inputs of their own; both follow from the
observation code and the payoffs, so the networks derive them and take only the code.

A network's state is carried across steps and reset where a game's observation is the
first-round code, so one batch may hold games at different points. Checkpoints hold a
plain model spec and a state dict (``torch.save``; loaded with ``weights_only=True``);
:func:`load_policy` turns one into a policy, so ``path/to/learner.pt`` is a player spec.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pnyx.envs.matrix_game import START
from pnyx.errors import PnyxError

FORMAT = "pnyx-sequence-policy/1"
MAX_CHECKPOINT_BYTES = 1 << 30
MAX_WIDTH = 1 << 16  # the most units, layers or heads a checkpoint's network may have


class _Inputs(nn.Module):
    """Embeds observation code, previous action, previous reward (and partner id) and concatenates them."""

    def __init__(self, embed: int, payoffs, partner_ids: int):
        super().__init__()
        self.obs = nn.Embedding(5, embed)
        self.action = nn.Embedding(3, embed)  # cooperate, defect, none (first round)
        self.reward = nn.Linear(1, embed)
        self.partner = nn.Embedding(partner_ids, embed) if partner_ids else None
        # own payoff after CC, CD, DC, DD; 0 before the first round
        self.register_buffer("payoff", torch.tensor([*map(float, payoffs), 0.0]))
        self.size = embed * (4 if partner_ids else 3)

    def forward(self, obs: torch.Tensor, partner: torch.Tensor | None) -> torch.Tensor:
        action = torch.where(obs == START, 2, obs >> 1)
        parts = [self.obs(obs), self.action(action), self.reward(self.payoff[obs].unsqueeze(-1))]
        if self.partner is not None:
            parts.append(self.partner(partner).expand(*obs.shape, -1))
        return torch.cat(parts, -1)


class GRUPolicyNet(nn.Module):
    """Inputs -> GRU cell -> policy head (2 logits) and value head."""

    def __init__(self, payoffs, embed: int = 32, hidden: int = 128, partner_ids: int = 0):
        super().__init__()
        self.inputs = _Inputs(embed, payoffs, partner_ids)
        self.cell = nn.GRUCell(self.inputs.size, hidden)
        self.policy = nn.Linear(hidden, 2)
        self.value = nn.Linear(hidden, 1)
        self.hidden = hidden

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.hidden, device=self.policy.weight.device)

    def step(self, obs, partner, state):
        """One step for ``n`` games: ``obs`` (n,), ``partner`` (n,) or None -> logits (n, 2), value (n,), state."""
        state = torch.where((obs == START).unsqueeze(-1), 0.0, state)
        state = self.cell(self.inputs(obs, partner), state)
        return self.policy(state), self.value(state).squeeze(-1), state

    def sequence(self, obs, partner):
        """Whole episodes from their first round: ``obs`` (T, n) -> logits (T, n, 2), values (T, n)."""
        x = self.inputs(obs, partner)
        state, states = self.initial_state(obs.shape[1]), []
        for t in range(obs.shape[0]):
            state = self.cell(x[t], state)
            states.append(state)
        states = torch.stack(states)
        return self.policy(states), self.value(states).squeeze(-1)


def _sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal position encoding (Vaswani et al. 2017) of integer ``positions``."""
    freq = torch.exp(torch.arange(0, dim, 2, device=positions.device) * (-math.log(10000.0) / dim))
    angle = positions.unsqueeze(-1).float() * freq
    return torch.cat([angle.sin(), angle.cos()], -1)


class TransformerPolicyNet(nn.Module):
    """Inputs -> linear to ``d_model`` + sinusoidal positions -> causal Transformer encoder -> heads.

    The state is the episode so far: embedded tokens (n, t, d_model) and, per game, the
    index where its current episode starts; each step attends within the current episode.
    """

    def __init__(self, payoffs, embed: int = 32, d_model: int = 64, layers: int = 2, heads: int = 4,
                 partner_ids: int = 0):
        super().__init__()
        self.inputs = _Inputs(embed, payoffs, partner_ids)
        self.project = nn.Linear(self.inputs.size, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.policy = nn.Linear(d_model, 2)
        self.value = nn.Linear(d_model, 1)
        self.d_model, self.heads = d_model, heads

    def _tokens(self, obs, partner, positions):
        return self.project(self.inputs(obs, partner)) + _sinusoid(positions, self.d_model)

    def initial_state(self, n: int):
        device = self.policy.weight.device
        return torch.zeros(n, 0, self.d_model, device=device), torch.zeros(n, dtype=torch.long, device=device)

    def step(self, obs, partner, state):
        tokens, start = state
        length = tokens.shape[1]
        start = torch.where(obs == START, length, start)
        first = int(start.min())  # tokens before every game's current episode are no longer needed
        tokens, start, length = tokens[:, first:], start - first, length - first
        tokens = torch.cat([tokens, self._tokens(obs, partner, length - start).unsqueeze(1)], 1)
        # query i sees key j <= i of the same episode (before or after the game's start index)
        idx = torch.arange(length + 1, device=obs.device)
        current = idx.unsqueeze(0) >= start.unsqueeze(1)  # (n, L)
        allowed = (idx.unsqueeze(1) >= idx.unsqueeze(0)) & (current.unsqueeze(2) == current.unsqueeze(1))
        mask = (~allowed).repeat_interleave(self.heads, 0)
        out = self.encoder(tokens, mask=mask)[:, -1]
        return self.policy(out), self.value(out).squeeze(-1), (tokens, start)

    def sequence(self, obs, partner):
        steps = obs.shape[0]
        positions = torch.arange(steps, device=obs.device).unsqueeze(1).expand_as(obs)
        tokens = self._tokens(obs, partner, positions).transpose(0, 1)  # (n, T, d)
        causal = nn.Transformer.generate_square_subsequent_mask(steps, device=obs.device)
        out = self.encoder(tokens, mask=causal, is_causal=True).transpose(0, 1)
        return self.policy(out), self.value(out).squeeze(-1)


_NETS = {"gru": GRUPolicyNet, "transformer": TransformerPolicyNet}


def build_net(spec: dict[str, Any]) -> nn.Module:
    """A network from a plain spec: ``{"kind": "gru"|"transformer", "payoffs": [4 floats], ...}``."""
    spec = dict(spec)
    kind = spec.pop("kind", "gru")
    if kind not in _NETS:
        raise PnyxError(f"unknown sequence model kind {kind!r} (known: {', '.join(_NETS)})")
    net = _NETS[kind](**spec)
    net.spec = {"kind": kind, **spec}
    return net


def save_policy(path: str | Path, net: nn.Module, partner_id: int | None = None) -> None:
    """Write ``net`` as a checkpoint :func:`load_policy` reads. ``partner_id`` is the identity
    the policy reports to a partner-id network when it plays outside training."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"format": FORMAT, "model": net.spec, "state_dict": state, "partner_id": partner_id}, path)


def load_net(path: str | Path) -> tuple[nn.Module, int | None]:
    """The network and stored partner id from a checkpoint written by :func:`save_policy`."""
    size = Path(path).stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise PnyxError(f"checkpoint {str(path)!r} is {size} bytes, more than a pnyx sequence policy can be "
                        f"({MAX_CHECKPOINT_BYTES})")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input
        raise PnyxError(f"cannot read checkpoint {str(path)!r} ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PnyxError(f"checkpoint {str(path)!r} is not a pnyx sequence policy")
    missing = sorted({"model", "state_dict", "partner_id"} - set(data))
    if missing or not isinstance(data["model"], dict) or not isinstance(data["state_dict"], dict):
        raise PnyxError(f"checkpoint {str(path)!r} lacks {', '.join(missing) or 'a valid model or state_dict'}")
    sizes = [v for k, v in data["model"].items() if k != "payoffs"]
    if any(not isinstance(v, (int, str, float)) or (isinstance(v, int) and not 0 <= v <= MAX_WIDTH) for v in sizes):
        raise PnyxError(f"checkpoint {str(path)!r} has an invalid model spec {data['model']!r}")
    try:
        net = build_net(data["model"])
        net.load_state_dict(data["state_dict"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise PnyxError(f"checkpoint {str(path)!r} does not fit its model ({str(e).splitlines()[0][:200]})") from None
    return net.eval(), data["partner_id"]


class SequencePolicy:
    """A sequence network as a pnyx batch policy: samples actions from its policy head.

    ``partner_id`` feeds networks trained with partner identities (see
    :data:`pnyx.population.partners.KIND_IDS`); it is ignored by networks without.
    """

    def __init__(self, net: nn.Module, partner_id: int | None = None):
        self.net = net.eval()
        self.partner_id = partner_id
        self.reset_batch(1)

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        self.state = self.net.initial_state(n)
        self.generator = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        self.partner = torch.full((n,), self.partner_id or 0, dtype=torch.long)

    def reset(self, seed: int | None = None) -> None:
        self.reset_batch(1, seed)

    @torch.no_grad()
    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        obs = torch.as_tensor(np.asarray(observations), dtype=torch.long)
        logits, _, self.state = self.net.step(obs, self.partner, self.state)
        defect = torch.rand(len(obs), generator=self.generator) < torch.softmax(logits, -1)[:, 1]
        return defect.long().numpy()

    def act(self, observation: int) -> int:
        return int(self.act_batch(np.asarray([observation]))[0])


def load_policy(path: str | Path) -> SequencePolicy:
    """A policy from a checkpoint path: what the player spec ``path/to/learner.pt`` builds."""
    net, partner_id = load_net(path)
    return SequencePolicy(net, partner_id)

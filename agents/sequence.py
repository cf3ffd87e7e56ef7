"""Sequence-model policies for the iterated prisoner's dilemma: a GRU and a small causal Transformer.

Each step a learner sees the IPD observation code (0..3 = previous joint action, own
first: CC, CD, DC, DD; 4 = first round), its own previous action and its previous
reward. As in Weis et al. 2026, "Multi-agent cooperation through in-context co-player
inference" (arXiv:2602.16301), appendix A, the previous action and reward are inputs of
their own; both follow from the observation code and the payoffs, so the networks derive
them and take only the code.

The GRU follows appendix A.3.1 (the PPI model's configuration, which A.3.2 gives A2C
too: "a GRU-based sequence model with the same configuration as for the PPI agents") by
default: ``embedding="shared"`` maps the one-hot observation code, the one-hot previous
action (all zeros in the first round, pnyx's choice: there is none) and the scalar
previous reward each through its own linear layer into one ``embed``-dimensional space
(32 in the paper), where they are added, so the GRU input is ``embed`` wide. A.3.1,
"Sequence Model Architecture", says the inputs "are processed via modality-specific
linear layers to project them into a shared 32-dimensional embedding space"; it does not
say how a round's three embeddings enter the GRU. The PPI model feeds each as a token of
its own (:mod:`pnyx.agents.ppi`); for A2C's one step per round, adding them is pnyx's
reading. With
``swish`` (the default) the heads read the Swish (SiLU) of the GRU state. pnyx's earlier
network is kept under its own name: ``embedding="concat"`` embeds the three inputs
separately (a lookup table for code and action, the action's third row the first round's
"none") and concatenates them into a ``3 * embed``-wide input, and ``swish=False`` feeds
the state to the heads directly. Checkpoints written before these options existed load
as that network. The Transformer (pnyx's addition, no paper counterpart) always takes the
concatenated input.

A GRU built with ``opponent_id=True`` is the paper's "Opponent ID" ablation (appendix
A.4.1): every episode's sequence is prepended with a conditioning vector z of
:data:`Z_SIZE` numbers (:func:`pnyx.population.partners.opponent_z`; 0 for learning
partners), projected to the input width and fed as one step before the first round; the
state after it starts the episode. ``learner_flag=True`` is the variant section 3.1
describes, an identity flag for learners: the projection also reads one more number, 1
where z is all zeros (a learning partner; a tabular partner's z never is, its
log-probabilities of C and D cannot both be 0) and 0 otherwise. The Transformer has no
such prefix.

A network's state is carried across steps and reset where a game's observation is the
first-round code, so one batch may hold games at different points. Checkpoints hold a
plain model spec and a state dict (``torch.save``; loaded with ``weights_only=True``);
:func:`load_policy` turns one into a policy, so ``path/to/learner.pt`` is a player spec.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pnyx.envs.matrix_game import START
from pnyx.errors import PnyxError

FORMAT = "pnyx-sequence-policy/1"
MAX_CHECKPOINT_BYTES = 1 << 30
MAX_WIDTH = 1 << 16  # the most units, layers or heads a checkpoint's network may have
Z_SIZE = 10  # opponent-ID vector: log pi(a | o) for five observations x two actions


class _Inputs(nn.Module):
    """``embedding="concat"``: observation code, previous action and previous reward each
    embedded to ``embed`` dimensions and concatenated (``3 * embed`` wide)."""

    def __init__(self, embed: int, payoffs):
        super().__init__()
        self.obs = nn.Embedding(5, embed)
        self.action = nn.Embedding(3, embed)  # cooperate, defect, none (first round)
        self.reward = nn.Linear(1, embed)
        # own payoff after CC, CD, DC, DD; 0 before the first round
        self.register_buffer("payoff", torch.tensor([*map(float, payoffs), 0.0]))
        self.size = embed * 3

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        action = torch.where(obs == START, 2, obs >> 1)
        return torch.cat([self.obs(obs), self.action(action), self.reward(self.payoff[obs].unsqueeze(-1))], -1)


class _SharedInputs(nn.Module):
    """``embedding="shared"`` (appendix A.3.1): one linear layer per modality, from the
    one-hot observation code (5), the one-hot previous action (2; zeros in the first
    round) and the previous reward (1) into one ``embed``-dimensional space, summed."""

    def __init__(self, embed: int, payoffs):
        super().__init__()
        self.obs = nn.Linear(5, embed)
        self.action = nn.Linear(2, embed)
        self.reward = nn.Linear(1, embed)
        self.register_buffer("payoff", torch.tensor([*map(float, payoffs), 0.0]))
        self.size = embed

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        dtype = self.obs.weight.dtype
        first = (obs == START).unsqueeze(-1)
        action = torch.where(first, 0.0, F.one_hot((obs % 4) >> 1, 2).to(dtype))
        return (self.obs(F.one_hot(obs, 5).to(dtype)) + self.action(action)
                + self.reward(self.payoff[obs].unsqueeze(-1)))


EMBEDDINGS = {"shared": _SharedInputs, "concat": _Inputs}


def learner_flagged(z: torch.Tensor) -> torch.Tensor:
    """z with section 3.1's identity flag appended: 1 where z is all zeros (a learning
    partner), else 0."""
    return torch.cat([z, (z == 0).all(-1, keepdim=True).to(z.dtype)], -1)


class GRUPolicyNet(nn.Module):
    """Inputs -> GRU cell -> Swish (``swish``) -> policy head (2 logits) and value head; with
    ``opponent_id``, a projection of the opponent-ID vector z (and the learner flag, with
    ``learner_flag``) fed as a step before each episode. See the module docstring for
    ``embedding``."""

    def __init__(self, payoffs, embed: int = 32, hidden: int = 128, opponent_id: bool = False,
                 embedding: str = "shared", swish: bool = True, learner_flag: bool = False):
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise PnyxError(f"unknown embedding {embedding!r} (known: {', '.join(EMBEDDINGS)})")
        if learner_flag and not opponent_id:
            raise PnyxError("learner_flag is a variant of opponent_id conditioning; set opponent_id too")
        self.inputs = EMBEDDINGS[embedding](embed, payoffs)
        self.prefix = nn.Linear(Z_SIZE + learner_flag, self.inputs.size) if opponent_id else None
        self.cell = nn.GRUCell(self.inputs.size, hidden)
        self.activation = nn.SiLU() if swish else nn.Identity()
        self.policy = nn.Linear(hidden, 2)
        self.value = nn.Linear(hidden, 1)
        self.hidden, self.learner_flag = hidden, learner_flag

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.hidden, device=self.policy.weight.device)

    def episode_state(self, z: torch.Tensor | None, n: int) -> torch.Tensor:
        """The state each episode starts from: zeros, or the state after the z step (``z`` in
        the network's float type)."""
        zeros = self.initial_state(n)
        if self.prefix is None:
            return zeros
        z = z.to(self.prefix.weight.dtype)
        return self.cell(self.prefix(learner_flagged(z) if self.learner_flag else z), zeros)

    def step(self, obs, z, state):
        """One step for ``n`` games: ``obs`` (n,), ``z`` (n, Z_SIZE) or None -> logits (n, 2), value (n,), state."""
        start = (obs == START).unsqueeze(-1)
        if self.prefix is None:
            state = torch.where(start, 0.0, state)
        elif bool(start.any()):
            state = torch.where(start, self.episode_state(z, len(obs)), state)
        state = self.cell(self.inputs(obs), state)
        logits, values = self.heads(state)
        return logits, values, state

    def heads(self, states: torch.Tensor):
        """Policy logits and values of GRU states (..., hidden), through the activation."""
        out = self.activation(states)
        return self.policy(out), self.value(out).squeeze(-1)

    def sequence(self, obs, z):
        """Whole episodes from their first round: ``obs`` (T, n) -> logits (T, n, 2), values (T, n).
        Runs :meth:`step` by step, as a rollout does, so a rollout that keeps its states and
        graph gets the same numbers and the same gradients from :meth:`heads`."""
        state, states = self.initial_state(obs.shape[1]), []
        for t in range(obs.shape[0]):
            _, _, state = self.step(obs[t], z, state)
            states.append(state)
        return self.heads(torch.stack(states))


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
                 opponent_id: bool = False):
        super().__init__()
        if opponent_id:
            raise PnyxError("opponent_id conditioning needs model kind 'gru'")
        self.inputs = _Inputs(embed, payoffs)
        self.project = nn.Linear(self.inputs.size, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.policy = nn.Linear(d_model, 2)
        self.value = nn.Linear(d_model, 1)
        self.d_model, self.heads = d_model, heads

    def _tokens(self, obs, positions):
        return self.project(self.inputs(obs)) + _sinusoid(positions, self.d_model)

    def initial_state(self, n: int):
        device = self.policy.weight.device
        return torch.zeros(n, 0, self.d_model, device=device), torch.zeros(n, dtype=torch.long, device=device)

    def step(self, obs, z, state):
        tokens, start = state
        length = tokens.shape[1]
        start = torch.where(obs == START, length, start)
        first = int(start.min())  # tokens before every game's current episode are no longer needed
        tokens, start, length = tokens[:, first:], start - first, length - first
        tokens = torch.cat([tokens, self._tokens(obs, length - start).unsqueeze(1)], 1)
        # query i sees key j <= i of the same episode (before or after the game's start index)
        idx = torch.arange(length + 1, device=obs.device)
        current = idx.unsqueeze(0) >= start.unsqueeze(1)  # (n, L)
        allowed = (idx.unsqueeze(1) >= idx.unsqueeze(0)) & (current.unsqueeze(2) == current.unsqueeze(1))
        mask = (~allowed).repeat_interleave(self.heads, 0)
        out = self.encoder(tokens, mask=mask)[:, -1]
        return self.policy(out), self.value(out).squeeze(-1), (tokens, start)

    def sequence(self, obs, z):
        steps = obs.shape[0]
        positions = torch.arange(steps, device=obs.device).unsqueeze(1).expand_as(obs)
        tokens = self._tokens(obs, positions).transpose(0, 1)  # (n, T, d)
        causal = nn.Transformer.generate_square_subsequent_mask(steps, device=obs.device)
        out = self.encoder(tokens, mask=causal, is_causal=True).transpose(0, 1)
        return self.policy(out), self.value(out).squeeze(-1)


_NETS = {"gru": GRUPolicyNet, "transformer": TransformerPolicyNet}


def build_net(spec: dict[str, Any]) -> nn.Module:
    """A network from a plain spec: ``{"kind": "gru"|"transformer"|"ppi", "payoffs": [4 floats], ...}``."""
    spec = dict(spec)
    kind = spec.pop("kind", "gru")
    if kind == "ppi":  # an improved PPI policy (pnyx.agents.ppi), which imports this module
        from pnyx.agents.ppi import improved_policy

        return improved_policy(**spec)
    if kind not in _NETS:
        raise PnyxError(f"unknown sequence model kind {kind!r} (known: {', '.join(_NETS)})")
    if kind == "gru":  # recorded in full, so a checkpoint names the network it holds
        spec = {"embedding": "shared", "swish": True} | spec
    net = _NETS[kind](**spec)
    net.spec = {"kind": kind, **spec}
    return net


def save_policy(path: str | Path, net: nn.Module, partner_id: list[float] | None = None) -> None:
    """Write ``net`` as a checkpoint :func:`load_policy` reads. ``partner_id`` is the
    opponent-ID vector z an ``opponent_id`` network is given when it plays outside training
    (None: z = 0, what the paper gives for learning partners)."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"format": FORMAT, "model": net.spec, "state_dict": state, "partner_id": partner_id}, path)


def load_net(path: str | Path) -> tuple[nn.Module, int | None]:
    """The network and stored partner id from a checkpoint written by :func:`save_policy`."""
    size = Path(path).stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise PnyxError(f"checkpoint {str(path)!r} is {size} bytes, more than a pnyx sequence policy can be "
                        f"({MAX_CHECKPOINT_BYTES})")
    try:
        with warnings.catch_warnings():  # torch's warnings about a foreign file; the error below names it
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input
        raise PnyxError(f"cannot read checkpoint {str(path)!r} ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PnyxError(f"checkpoint {str(path)!r} is not a pnyx sequence policy")
    missing = sorted({"model", "state_dict", "partner_id"} - set(data))
    if missing or not isinstance(data["model"], dict) or not isinstance(data["state_dict"], dict):
        raise PnyxError(f"checkpoint {str(path)!r} lacks {', '.join(missing) or 'a valid model or state_dict'}")
    z = data["partner_id"]
    if z is not None and not (isinstance(z, list) and len(z) == Z_SIZE
                              and all(isinstance(v, (int, float)) and math.isfinite(v) for v in z)):
        raise PnyxError(f"checkpoint {str(path)!r} has an invalid partner_id (None or {Z_SIZE} finite numbers)")
    sizes = [v for k, v in data["model"].items() if k != "payoffs"]
    if any(not isinstance(v, (int, str, float)) or (isinstance(v, int) and not 0 <= v <= MAX_WIDTH) for v in sizes):
        raise PnyxError(f"checkpoint {str(path)!r} has an invalid model spec {data['model']!r}")
    model = data["model"]
    if model.get("kind", "gru") == "gru":  # written before the GRU's embedding and swish options: pnyx's earlier net
        model = {"embedding": "concat", "swish": False} | model
    try:
        net = build_net(model)
        net.load_state_dict(data["state_dict"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise PnyxError(f"checkpoint {str(path)!r} does not fit its model ({str(e).splitlines()[0][:200]})") from None
    return net.eval(), data["partner_id"]


class SequencePolicy:
    """A sequence network as a pnyx batch policy: samples actions from its policy head.

    ``partner_id`` is the opponent-ID vector z given to ``opponent_id`` networks (None: zeros);
    networks without ignore it.
    """

    def __init__(self, net: nn.Module, partner_id: list[float] | None = None):
        self.net = net.eval()
        self.partner_id = partner_id
        self.reset_batch(1)

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        self.state = self.net.initial_state(n)
        words = np.random.SeedSequence(seed).generate_state(2)
        self.generator = torch.Generator().manual_seed(int(words[0]))
        if hasattr(self.net, "reseed"):  # a PPI policy's rollouts draw from a generator of their own
            self.net.reseed([int(words[1])])
        z = torch.tensor(self.partner_id or [0.0] * Z_SIZE, dtype=torch.float32)
        self.partner = z.expand(n, Z_SIZE).to(self.net.policy.weight.device)

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

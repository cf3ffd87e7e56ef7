"""Several GRU policy networks of one shape as one batched model.

:class:`GroupedGRU` stacks the parameters of G :class:`~pnyx.agents.sequence.GRUPolicyNet`
networks along a leading group axis and steps all of them at once with batched matrix
products, so G small learners (several seeds, each with its learners) cost about the
operations of one. Group g computes what network g computes, up to float rounding: the
same embeddings (either ``embedding``), the same GRU cell (``torch.nn.GRUCell``'s gate
order r, z, n and update ``h' = (1 - z) * n + z * h``), the same Swish (with ``swish``)
and heads. Tensors carry the group axis first after time: observations ``(G, n)``,
states ``(G, n, hidden)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pnyx.agents.sequence import learner_flagged
from pnyx.envs.matrix_game import START
from pnyx.errors import PnyxError

# grouped parameter -> the GRUPolicyNet state-dict entry it stacks
_CELL = {
    "w_ih": "cell.weight_ih", "w_hh": "cell.weight_hh", "b_ih": "cell.bias_ih", "b_hh": "cell.bias_hh",
    "policy_w": "policy.weight", "policy_b": "policy.bias", "value_w": "value.weight", "value_b": "value.bias",
    "reward_w": "inputs.reward.weight", "reward_b": "inputs.reward.bias",
}
_EMBEDDINGS = {
    "concat": {"obs": "inputs.obs.weight", "action": "inputs.action.weight"},
    "shared": {"obs_w": "inputs.obs.weight", "obs_b": "inputs.obs.bias",
               "action_w": "inputs.action.weight", "action_b": "inputs.action.bias"},
}
_PREFIX = {"prefix_w": "prefix.weight", "prefix_b": "prefix.bias"}


class GroupedGRU(nn.Module):
    """G GRU policy networks of the same spec, stacked; build from the networks, read back
    with :meth:`state_dicts`."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        spec = nets[0].spec
        if spec.get("kind") != "gru" or any(net.spec != spec for net in nets):
            raise PnyxError("a grouped model needs GRU networks of one spec")
        self.spec = spec
        self.entries = _EMBEDDINGS[spec["embedding"]] | _CELL | (_PREFIX if spec.get("opponent_id") else {})
        self.swish, self.learner_flag = spec["swish"], spec.get("learner_flag", False)
        states = [net.state_dict() for net in nets]
        for name, key in self.entries.items():
            setattr(self, name, nn.Parameter(torch.stack([s[key].detach() for s in states])))
        self.register_buffer("payoff", states[0]["inputs.payoff"].clone())
        self.groups, self.hidden = len(nets), nets[0].hidden

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each group's parameters as a :class:`GRUPolicyNet` state dict (CPU copies)."""
        out = [{"inputs.payoff": self.payoff.detach().cpu().clone()} for _ in range(self.groups)]
        for name, key in self.entries.items():
            stacked = getattr(self, name).detach().cpu()
            for g in range(self.groups):
                out[g][key] = stacked[g].clone()
        return out

    def weights(self, order: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The parameters by name: the model's own, or detached copies in which group g holds
        group ``order[g]``'s weights (a partner seat that feeds no gradient)."""
        own = {name: getattr(self, name) for name in self.entries}
        return own if order is None else {name: w.detach()[order] for name, w in own.items()}

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.zeros(self.groups, n, self.hidden, device=self.payoff.device)

    def _inputs(self, w, obs):
        """The GRU input of every group (G, n, width), as the network's inputs module computes it."""
        groups = torch.arange(self.groups, device=obs.device).unsqueeze(1)
        reward = self.payoff[obs].unsqueeze(-1) * w["reward_w"].transpose(1, 2) + w["reward_b"].unsqueeze(1)
        first = obs == START
        if "obs" in w:
            action = torch.where(first, 2, obs >> 1)
            return torch.cat([w["obs"][groups, obs], w["action"][groups, action], reward], -1)
        code = w["obs_w"].transpose(1, 2)[groups, obs] + w["obs_b"].unsqueeze(1)
        action = w["action_w"].transpose(1, 2)[groups, (obs % 4) >> 1] * (~first).unsqueeze(-1)
        return code + action + w["action_b"].unsqueeze(1) + reward

    def _cell(self, w, x, h):
        gi = torch.baddbmm(w["b_ih"].unsqueeze(1), x, w["w_ih"].transpose(1, 2))
        gh = torch.baddbmm(w["b_hh"].unsqueeze(1), h, w["w_hh"].transpose(1, 2))
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h

    def step(self, obs, z, state, weights: dict[str, torch.Tensor] | None = None):
        """One step of every group: ``obs`` (G, n), ``z`` (G, n, Z_SIZE) or None, ``state``
        (G, n, hidden) -> logits (G, n, 2), values (G, n), state."""
        w = weights or self.weights()
        x = self._inputs(w, obs)
        start = (obs == START).unsqueeze(-1)
        if "prefix_w" not in w:
            state = torch.where(start, 0.0, state)
        elif bool(start.any()):
            z = z.to(w["prefix_w"].dtype)
            z = learner_flagged(z) if self.learner_flag else z
            prefix = torch.baddbmm(w["prefix_b"].unsqueeze(1), z, w["prefix_w"].transpose(1, 2))
            state = torch.where(start, self._cell(w, prefix, torch.zeros_like(state)), state)
        state = self._cell(w, x, state)
        logits, values = self.heads(state.unsqueeze(0), w)
        return logits[0], values[0], state

    def heads(self, states: torch.Tensor, weights: dict[str, torch.Tensor] | None = None):
        """Policy logits (T, G, n, 2) and values (T, G, n) of stacked states (T, G, n, hidden)."""
        w = weights or self.weights()
        states = F.silu(states) if self.swish else states
        logits = torch.matmul(states, w["policy_w"].transpose(1, 2)) + w["policy_b"].unsqueeze(1)
        values = torch.matmul(states, w["value_w"].transpose(1, 2)) + w["value_b"].unsqueeze(1)
        return logits, values.squeeze(-1)

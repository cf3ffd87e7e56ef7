"""Policies: the protocol, the classic strategies, and naming them by spec."""

from pnyx.agents import strategies
from pnyx.agents.protocol import BatchPolicy, PerGame, Policy, as_batch_policy
from pnyx.agents.registry import make_policy, policy_factory, policy_names, register_policy, split_specs

__all__ = [
    "BatchPolicy",
    "PerGame",
    "Policy",
    "as_batch_policy",
    "make_policy",
    "policy_factory",
    "policy_names",
    "register_policy",
    "split_specs",
    "strategies",
]

"""Policies: the protocol, the classic strategies, and naming them by spec."""

from pnyx.agents import strategies
from pnyx.agents.protocol import BatchPolicy, PerGame, Policy, as_batch_policy
from pnyx.agents.registry import POLICIES, PolicySpecs, make_policy, policy_factory

__all__ = [
    "POLICIES",
    "BatchPolicy",
    "PerGame",
    "Policy",
    "PolicySpecs",
    "as_batch_policy",
    "make_policy",
    "policy_factory",
    "strategies",
]

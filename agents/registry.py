"""Naming policies: the policy registry, and checkpoint files as policies.

A policy spec is a registered name with literal arguments (``tft``, ``random(0.3)``,
``memory_one(0.9,0.1,0.8,0.2,1)``), a strategy of Axelrod's library
(``axelrod:TitForTat``, :mod:`pnyx.agents.axelrod_strategies`), a class
``package.module:Class(...)`` implementing the policy protocol (:mod:`pnyx.agents.protocol`),
or the path of a saved learner checkpoint (``*.pt``). The grammar is :mod:`pnyx.specs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable

from pnyx.errors import PnyxError
from pnyx.paths import exists
from pnyx.registry import Registry, import_object
from pnyx.strict import checked_when_built


class PolicyRegistry(Registry):
    """The policy registry; ``describe`` also lists Axelrod's strategies when the package is installed."""

    def describe(self) -> dict[str, str]:
        from pnyx.agents.axelrod_strategies import describe_strategies

        return {**super().describe(), **describe_strategies()}


POLICIES = PolicyRegistry("policy", protocols=[("reset", "act"), ("reset_batch", "act_batch")])
POLICIES.register("axelrod", "pnyx.agents.axelrod_strategies:AxelrodPolicy", argument="strategy",
                  description="a strategy of Axelrod's library: axelrod:Name(args) (pip install 'pnyx[axelrod]')")
POLICIES.register("llm", "pnyx.agents.llm_player:LLMPlayer",
                  description="a language model playing the matrix games: llm(model=SPEC, persona=..., history=full|K)")
# Loaders for checkpoint files, by suffix; imported lazily so that torch is loaded only when needed.
_FILE_LOADERS = {".pt": "pnyx.agents.sequence:load_policy"}


def policy_factory(spec: str) -> Callable[[], Any]:
    """A no-argument factory of fresh policies for ``spec``, tried once so a bad spec fails
    before any game is played."""
    spec = spec.strip()
    suffix = Path(spec).suffix
    if suffix in _FILE_LOADERS and "(" not in spec:
        if not exists(spec, f"checkpoint {spec!r}", regular=True):
            raise PnyxError(f"checkpoint {spec!r} does not exist")
        loader = import_object(_FILE_LOADERS[suffix], f"checkpoint {spec!r}")
        factory = lambda: loader(spec)  # noqa: E731
        factory()
        return factory
    return POLICIES.factory(spec)


def make_policy(spec: str) -> Any:
    """A fresh policy built from ``spec``."""
    return policy_factory(spec)()


def _check_policies(specs: list[str]) -> None:
    """Tries a factory of every spec, so that a bad one fails before any game is played."""
    for spec in specs:
        policy_factory(spec)


#: A config field of policy specs, each tried when the config is built (not when a stored run is read).
PolicySpecs = Annotated[list[str], checked_when_built(_check_policies)]

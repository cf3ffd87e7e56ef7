"""Population dynamics on graphs and metrics of cooperation and agreement.

The names below load their module on first use, so that importing one module of the
package (``pnyx.population.match`` for a tournament) does not import networkx.
"""

import importlib

_MODULES = {
    "UPDATE_RULES": "dynamics",
    "Fitness": "dynamics",
    "GraphArrays": "dynamics",
    "donation_game": "games",
    "evolve": "dynamics",
    "fixation_probability": "fixation",
    "game_fixation_probability": "fixation",
    "moran_fixation_probability": "fixation",
    "policy_payoff_matrix": "games",
    "replicator_dynamics": "replicator",
    "run_to_fixation": "dynamics",
}
__all__ = list(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(f"pnyx.population.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'pnyx.population' has no attribute {name!r}")

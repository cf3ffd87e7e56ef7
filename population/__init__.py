"""Population dynamics on graphs and metrics of cooperation and agreement."""

from pnyx.population.dynamics import UPDATE_RULES, Fitness, GraphArrays, evolve, run_to_fixation
from pnyx.population.fixation import fixation_probability, game_fixation_probability, moran_fixation_probability
from pnyx.population.games import donation_game, policy_payoff_matrix
from pnyx.population.replicator import replicator_dynamics

__all__ = [
    "UPDATE_RULES",
    "Fitness",
    "GraphArrays",
    "donation_game",
    "evolve",
    "fixation_probability",
    "game_fixation_probability",
    "moran_fixation_probability",
    "policy_payoff_matrix",
    "replicator_dynamics",
    "run_to_fixation",
]

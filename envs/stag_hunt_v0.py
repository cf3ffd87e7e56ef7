"""Repeated stag hunt: coordination with a safe option.

| Agents            | `player_0`, `player_1`              |
|-------------------|-------------------------------------|
| Parallel API      | yes                                 |
| Action space      | `Discrete(2)`                       |
| Observation space | `Discrete(5)`                       |
| State space       | `MultiDiscrete([3, 3, rounds + 1])` |

Actions: 0 = hunt stag (cooperate), 1 = hunt hare (defect). Observation and state as
in :mod:`pnyx.envs.ipd_v0`. Default payoffs R=4 (both stag), S=0 (stag alone), T=3
(hare while the other hunts stag), P=2 (both hare): R > T >= P > S (Skyrms, "The Stag
Hunt and the Evolution of Social Structure", 2004).
``observations="one_hot"`` gives each observation as a one-hot ``Box(0, 1, (5,))`` vector
(:mod:`pnyx.envs.repeated_game`).
"""

from pnyx.envs.matrix_game import MatrixGame, constructors

GAME = MatrixGame(name="stag_hunt_v0", actions=("stag", "hare"), payoffs=(4, 0, 3, 2))

parallel_env, raw_env, env = constructors(GAME)

"""Repeated game of chicken (hawk-dove): anti-coordination.

| Agents            | `player_0`, `player_1`              |
|-------------------|-------------------------------------|
| Parallel API      | yes                                 |
| Action space      | `Discrete(2)`                       |
| Observation space | `Discrete(5)`                       |
| State space       | `MultiDiscrete([3, 3, rounds + 1])` |

Actions: 0 = swerve (cooperate), 1 = go straight (defect). Observation and state as in
:mod:`pnyx.envs.ipd_v0`. Default payoffs R=3 (both swerve), S=1 (swerve against
straight), T=5 (straight against swerve), P=0 (crash): T > R > S > P (Rapoport &
Chammah, "The Game of Chicken", 1966).
``observations="one_hot"`` gives each observation as a one-hot ``Box(0, 1, (5,))`` vector
(:mod:`pnyx.envs.repeated_game`).
"""

from pnyx.envs.matrix_game import MatrixGame, constructors

GAME = MatrixGame(name="chicken_v0", actions=("swerve", "straight"), payoffs=(3, 1, 5, 0))

parallel_env, raw_env, env = constructors(GAME)

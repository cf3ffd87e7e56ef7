"""Repeated game of chicken (hawk-dove): anti-coordination.

Action ``Discrete(2)``: 0 = swerve (cooperate), 1 = go straight (defect).
Observation as in :mod:`pnyx.envs.ipd_v0`. Default payoffs R=3 (both swerve), S=1
(swerve against straight), T=5 (straight against swerve), P=0 (crash): T > R > S > P
(Rapoport & Chammah, "The Game of Chicken", 1966).
"""

from pnyx.envs.matrix_game import constructors

PAYOFFS = (3, 1, 5, 0)

parallel_env, raw_env, env = constructors("chicken_v0", PAYOFFS)

"""Iterated prisoner's dilemma.

Action ``Discrete(2)``: 0 = cooperate, 1 = defect. Observation ``Discrete(5)``:
0..3 = the previous round's joint action from the observer's view, own action
first (CC, CD, DC, DD); 4 = first round. Default payoffs are the classic
R=3, S=0, T=5, P=1 (Axelrod 1984); pass ``payoffs=(R, S, T, P)``, a 2x2 or a 2x2x2
matrix for any other.
"""

from pnyx.envs.matrix_game import constructors

PAYOFFS = (3, 0, 5, 1)

parallel_env, raw_env, env = constructors("ipd_v0", PAYOFFS)

"""Iterated prisoner's dilemma.

| Agents            | `player_0`, `player_1`              |
|-------------------|-------------------------------------|
| Parallel API      | yes                                 |
| Action space      | `Discrete(2)`                       |
| Observation space | `Discrete(5)`                       |
| State space       | `MultiDiscrete([3, 3, rounds + 1])` |

Actions: 0 = cooperate, 1 = defect. Observation: the previous round's joint action
from the observer's view, own action first (0..3 = CC, CD, DC, DD); 4 = first round.
State: both players' previous actions (2 before the first round), then the number of
rounds played. Default payoffs are the classic R=3, S=0, T=5, P=1 (Axelrod 1984); pass
``payoffs=(R, S, T, P)``, a 2x2 or a 2x2x2 matrix for any other.
``observations="one_hot"`` gives each observation as a one-hot ``Box(0, 1, (5,))`` vector
(:mod:`pnyx.envs.repeated_game`).
"""

from pnyx.envs.matrix_game import MatrixGame, constructors

GAME = MatrixGame(name="ipd_v0", actions=("cooperate", "defect"), payoffs=(3, 0, 5, 1))

parallel_env, raw_env, env = constructors(GAME)

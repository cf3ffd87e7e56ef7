"""Classic strategies of the iterated prisoner's dilemma, vectorised over games.

They read the IPD observation of :mod:`pnyx.envs.ipd_v0` (0..3: the previous joint
action from the player's view, own action first, CC, CD, DC, DD; 4: first round)
and return 0 = cooperate, 1 = defect. Each strategy batches (``reset_batch`` /
``act_batch``); ``reset`` / ``act`` are the batch-of-one case, so both engines run
the same code.
"""

from __future__ import annotations

import numpy as np

from pnyx.agents.registry import POLICIES
from pnyx.envs.matrix_game import CD, DD
from pnyx.errors import PnyxError

C, D = 0, 1


def _probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise PnyxError(f"{name}={value:g} is outside [0, 1]")
    return value


class Strategy:
    """Base class: a strategy over ``n`` games; subclasses implement ``act_batch``."""

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        self.reset_batch(1, seed)

    def act(self, observation: int) -> int:
        return int(self.act_batch(np.asarray([observation]))[0])

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__


class MemoryOne(Strategy):
    """Cooperates with probability ``p_cc, p_cd, p_dc, p_dd`` after each previous joint
    action (own action first) and with ``p0`` in the first round.

    Nowak & Sigmund, "Tit for tat in heterogeneous populations", Nature 355 (1992).
    """

    def __init__(self, p_cc, p_cd, p_dc, p_dd, p0):
        names = ("p_cc", "p_cd", "p_dc", "p_dd", "p0")
        self.p = np.array([_probability(k, v) for k, v in zip(names, (p_cc, p_cd, p_dc, p_dd, p0))])
        self.deterministic = bool(np.all((self.p == 0) | (self.p == 1)))
        self.defect_table = (self.p < 0.5).astype(np.int64)

    def reset_batch(self, n: int, seed: int | None = None) -> None:
        super().reset_batch(n, seed)
        self._draws = np.empty(n)  # refilled every turn rather than allocated

    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        if self.deterministic:
            return self.defect_table[observations]
        if len(self._draws) != len(observations):
            self._draws = np.empty(len(observations))
        return (self.rng.random(out=self._draws) >= self.p.take(observations)).astype(np.int64)


class AllC(MemoryOne):
    """Always cooperates. Axelrod, "The Evolution of Cooperation" (1984)."""

    def __init__(self):
        super().__init__(1, 1, 1, 1, 1)


class AllD(MemoryOne):
    """Always defects. Axelrod, "The Evolution of Cooperation" (1984)."""

    def __init__(self):
        super().__init__(0, 0, 0, 0, 0)


class TitForTat(MemoryOne):
    """Cooperates first, then copies the opponent's last move. Rapoport; Axelrod (1980)."""

    def __init__(self):
        super().__init__(1, 0, 1, 0, 1)


class SuspiciousTitForTat(MemoryOne):
    """Defects first, then copies the opponent's last move. Beaufils et al. (1996)."""

    def __init__(self):
        super().__init__(1, 0, 1, 0, 0)


class WinStayLoseShift(MemoryOne):
    """Cooperates first; repeats its move after R or T, switches after S or P (Pavlov).

    Nowak & Sigmund, "A strategy of win-stay, lose-shift...", Nature 364 (1993).
    """

    def __init__(self):
        super().__init__(1, 0, 0, 1, 1)


class Random(MemoryOne):
    """Cooperates with probability ``p`` every round. Axelrod's RANDOM entry (1980)."""

    def __init__(self, p=0.5):
        p = _probability("p", p)
        super().__init__(p, p, p, p, p)


class ZDExtort(MemoryOne):
    """Extortionate zero-determinant strategy enforcing ``s_X - P = chi (s_Y - P)``.

    Press & Dyson, "Iterated prisoner's dilemma contains strategies that dominate any
    evolutionary opponent", PNAS 109 (2012). With p~ = phi[(S_X - P) - chi (S_Y - P)],
    phi is half its largest feasible value; for the classic payoffs and chi=3 this is
    Press & Dyson's Extort-3, (11/13, 1/2, 7/26, 0). Cooperates in the first round.
    """

    def __init__(self, chi=3.0, R=3.0, S=0.0, T=5.0, P=1.0):
        chi = float(chi)
        if chi < 1:
            raise PnyxError(f"chi={chi:g} must be >= 1")
        if not (T > R > P > S):
            raise PnyxError("zd_extort needs prisoner's dilemma payoffs T > R > P > S")
        phi = 0.5 / max((P - S) + chi * (T - P), (T - P) + chi * (P - S), (chi - 1) * (R - P) or 1e-12)
        super().__init__(
            1 + phi * (1 - chi) * (R - P),
            1 + phi * ((S - P) - chi * (T - P)),
            phi * ((T - P) - chi * (S - P)),
            0.0,
            1.0,
        )


class Grim(Strategy):
    """Cooperates until the opponent defects once, then defects forever. Friedman (1971)."""

    def reset_batch(self, n, seed=None):
        super().reset_batch(n, seed)
        self.triggered = np.zeros(n, dtype=bool)

    def act_batch(self, observations):
        self.triggered |= (observations == CD) | (observations == DD)
        return self.triggered.astype(np.int64)


class TitForTwoTats(Strategy):
    """Defects only after two consecutive defections of the opponent. Axelrod (1984)."""

    def reset_batch(self, n, seed=None):
        super().reset_batch(n, seed)
        self.last_defected = np.zeros(n, dtype=bool)

    def act_batch(self, observations):
        defected = (observations == CD) | (observations == DD)
        action = (defected & self.last_defected).astype(np.int64)
        self.last_defected = defected
        return action


class Alternator(Strategy):
    """Cooperates, defects, cooperates, ... regardless of the opponent. Axelrod library."""

    def reset_batch(self, n, seed=None):
        super().reset_batch(n, seed)
        self.turn = 0

    def act_batch(self, observations):
        action = np.full(len(observations), self.turn % 2, dtype=np.int64)
        self.turn += 1
        return action


class RandomMemoryOne(MemoryOne):
    """A memory-one strategy whose five parameters are drawn from U(0, 1) with ``seed``."""

    def __init__(self, seed=0):
        super().__init__(*np.random.default_rng(seed).random(5))


for _name, _cls in {
    "allc": AllC,
    "alld": AllD,
    "tft": TitForTat,
    "tf2t": TitForTwoTats,
    "stft": SuspiciousTitForTat,
    "grim": Grim,
    "wsls": WinStayLoseShift,
    "alternator": Alternator,
    "random": Random,
    "memory_one": MemoryOne,
    "zd_extort": ZDExtort,
    "random_memory_one": RandomMemoryOne,
}.items():
    POLICIES.register(_name, _cls)

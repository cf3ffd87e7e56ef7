"""Replicator dynamics of a well-mixed population (Taylor & Jonker 1978).

``dx_i/dt = x_i (f_i - f_mean)`` with ``f = A x``, where ``A[i, j]`` is the payoff
of strategy ``i`` against ``j``; integrated with Euler steps of size ``dt``.
"""

from __future__ import annotations

import numpy as np

from pnyx.errors import PnyxError


def replicator_dynamics(payoff_matrix, x0=None, generations: int = 200, dt: float = 0.1) -> np.ndarray:
    """Shares over time, shape ``(generations + 1, n)``; row 0 is ``x0`` (uniform by default)."""
    A = np.asarray(payoff_matrix, dtype=np.float64)
    n = A.shape[0]
    if A.ndim != 2 or A.shape != (n, n):
        raise PnyxError(f"payoff matrix must be square, got shape {A.shape}")
    x = np.full(n, 1.0 / n) if x0 is None else np.asarray(x0, dtype=np.float64)
    if x.shape != (n,) or np.any(x < 0) or not np.isclose(x.sum(), 1.0):
        raise PnyxError("x0 must be a probability vector over the strategies")
    if generations < 0 or dt <= 0:
        raise PnyxError("generations must be >= 0 and dt > 0")
    shares = np.empty((generations + 1, n))
    shares[0] = x
    for t in range(generations):
        f = A @ x
        x = np.clip(x + dt * x * (f - x @ f), 0.0, None)
        x /= x.sum()
        shares[t + 1] = x
    return shares

"""Playing one pairing of two policies for many repetitions of a repeated 2x2 game.

Two engines give the same results for deterministic strategies and agree
statistically for stochastic ones:

* ``loop`` steps a PettingZoo Parallel environment one game and one step at a time,
  calling each policy's per-step ``act``;
* ``batched`` plays the repetitions in lock-step on numpy arrays, in blocks of up to
  :data:`BLOCK` games (one pair of policies per block), calling each policy's
  ``act_batch`` once per turn (per-step policies run through
  :class:`pnyx.agents.PerGame`, at loop speed).

Noise flips each intended action with probability ``noise``; observations and
payoffs follow the actions actually played. Both engines tell each policy the game
from its seat (:class:`pnyx.agents.protocol.GameInfo`) before the first reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from pnyx.agents import as_batch_policy
from pnyx.agents.protocol import GameInfo, tell_game
from pnyx.envs.matrix_game import START, MatrixGameEnv, payoff_table

BLOCK = 1 << 15  # games played together by the batched engine


@dataclass(frozen=True)
class MatchResult:
    """Per-repetition mean payoff per turn and cooperation rate, shape ``(2, repetitions)``:
    row 0 for the first policy, row 1 for the second."""

    payoff: np.ndarray
    cooperation: np.ndarray


def _seeds(seed: np.random.SeedSequence) -> tuple[int, int, np.random.SeedSequence]:
    a, b, noise = seed.spawn(3)
    return int(a.generate_state(1)[0]), int(b.generate_state(1)[0]), noise


def game_infos(game: str, payoffs, turns: int, noise: float) -> tuple[GameInfo, GameInfo]:
    """The game as each seat of a two-player matrix game sees it."""
    table = payoff_table(payoffs)
    views = table, table.transpose(1, 0, 2)[..., ::-1]  # seat 1: own action first, own payoff first
    return tuple(GameInfo(game, turns, float(noise), tuple(tuple(tuple(map(float, cell)) for cell in row) for row in v))
                 for v in views)


def _block_seed(seed: np.random.SeedSequence, block: int) -> np.random.SeedSequence:
    """Block 0 plays from the match's own seed, so a match of one block is unchanged by
    blocking; block k > 0 from a child key beside the three that :func:`_seeds` spawns."""
    if block == 0:
        return seed
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 2 + block), pool_size=seed.pool_size)


def play_batched(factory_a: Callable[[], Any], factory_b: Callable[[], Any], *, payoffs, turns: int,
                 repetitions: int, noise: float, seed: np.random.SeedSequence, game: str = "ipd") -> MatchResult:
    """Repetitions are played in blocks of at most :data:`BLOCK` games, each block by its own
    pair of policies built from the factories, so the arrays of a turn stay in the CPU cache."""
    table = payoff_table(payoffs).reshape(4, 2)  # row = 2 * a0 + a1 = player 0's observation code
    reward_a, reward_b = table[:, 0].copy(), table[:, 1].copy()
    infos = game_infos(game, payoffs, turns, noise)
    counts = np.zeros((repetitions, 4), dtype=np.int64)
    for block, start in enumerate(range(0, repetitions, BLOCK)):
        games = min(BLOCK, repetitions - start)
        *policy_seeds, noise_seed = _seeds(_block_seed(seed, block))
        policies = as_batch_policy(factory_a), as_batch_policy(factory_b)
        for policy, info, policy_seed in zip(policies, infos, policy_seeds):
            tell_game(policy, info)
            policy.reset_batch(games, policy_seed)
        counts[start:start + games] = _play_block(*policies, games, turns, noise, np.random.default_rng(noise_seed))
    payoff = np.stack([counts @ reward_a, counts @ reward_b]) / turns
    cooperation = np.stack([counts[:, 0] + counts[:, 1], counts[:, 0] + counts[:, 2]]) / turns
    return MatchResult(payoff, cooperation)


def _play_block(policy_a, policy_b, games: int, turns: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Per game, how often each joint action (code 2 * a + b) was played, (games, 4)."""
    obs_a = np.full(games, START, dtype=np.int64)
    obs_b = obs_a.copy()
    # Four 16-bit counters packed in one int64, so each turn costs one gather and one add.
    packed = np.zeros(games, dtype=np.int64)
    counts = np.zeros((games, 4), dtype=np.int64)
    one_hot = np.int64(1) << (16 * np.arange(4, dtype=np.int64))
    for t in range(turns):
        a = np.asarray(policy_a.act_batch(obs_a), dtype=np.int64)
        b = np.asarray(policy_b.act_batch(obs_b), dtype=np.int64)
        if noise:
            a = a ^ (rng.random(games) < noise)
            b = b ^ (rng.random(games) < noise)
        obs_a = a * 2
        obs_a += b
        obs_b = b * 2
        obs_b += a
        packed += one_hot.take(obs_a)
        if t % 0xFFFF == 0xFFFE or t == turns - 1:
            counts += (packed[:, None] >> (16 * np.arange(4))) & 0xFFFF
            packed[:] = 0
    return counts


def play_loop(factory_a: Callable[[], Any], factory_b: Callable[[], Any], *, payoffs, turns: int,
              repetitions: int, noise: float, seed: np.random.SeedSequence, game: str = "ipd") -> MatchResult:
    seed_a, seed_b, noise_seed = _seeds(seed)
    seeds_a = np.random.SeedSequence(seed_a).generate_state(repetitions)
    seeds_b = np.random.SeedSequence(seed_b).generate_state(repetitions)
    rng = np.random.default_rng(noise_seed)
    env = MatrixGameEnv(payoffs, rounds=turns)
    info_a, info_b = game_infos(game, payoffs, turns, noise)
    payoff = np.zeros((2, repetitions))
    cooperation = np.zeros((2, repetitions))
    for r in range(repetitions):
        policy_a, policy_b = factory_a(), factory_b()
        tell_game(policy_a, info_a)
        tell_game(policy_b, info_b)
        policy_a.reset(seed=int(seeds_a[r]))
        policy_b.reset(seed=int(seeds_b[r]))
        obs, _ = env.reset()
        while env.agents:
            a, b = int(policy_a.act(obs["player_0"])), int(policy_b.act(obs["player_1"]))
            if noise:
                a ^= int(rng.random() < noise)
                b ^= int(rng.random() < noise)
            obs, rewards, *_ = env.step({"player_0": a, "player_1": b})
            payoff[:, r] += rewards["player_0"], rewards["player_1"]
            cooperation[:, r] += 1 - a, 1 - b
    return MatchResult(payoff / turns, cooperation / turns)


def play_group(factories: list[Callable[[], Any]], *, multiplier: float, contribution: float = 1.0, turns: int,
               repetitions: int, noise: float, seed: np.random.SeedSequence) -> MatchResult:
    """The repeated public goods game of :mod:`pnyx.envs.public_goods_v0` among
    ``len(factories)`` policies, all repetitions in lock-step; rows of the result are players."""
    n = len(factories)
    *policy_seeds, noise_seed = seed.spawn(n + 1)
    rng = np.random.default_rng(noise_seed)
    policies = [as_batch_policy(f) for f in factories]
    info = GameInfo("public_goods", turns, float(noise), None, n, float(multiplier), float(contribution))
    for policy, s in zip(policies, policy_seeds):
        tell_game(policy, info)
        policy.reset_batch(repetitions, int(s.generate_state(1)[0]))
    obs = np.full((n, repetitions), 2 * n, dtype=np.int64)
    payoff = np.zeros((n, repetitions))
    cooperation = np.zeros((n, repetitions))
    for _ in range(turns):
        actions = np.stack([np.asarray(p.act_batch(o), dtype=np.int64) for p, o in zip(policies, obs)])
        if noise:
            actions ^= rng.random(actions.shape) < noise
        contributed = actions == 0
        payoff += multiplier * contribution * contributed.sum(axis=0) / n - contribution * contributed
        cooperation += contributed
        obs = actions * n + actions.sum(axis=0) - actions
    return MatchResult(payoff / turns, cooperation / turns)


ENGINES = {"batched": play_batched, "loop": play_loop}

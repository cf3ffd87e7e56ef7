"""Strategies against fixed opponents, with exact action sequences (Axelrod-style)."""

import numpy as np
import pytest

from pnyx.agents import PerGame, make_policy, policy_factory
from pnyx.agents.strategies import ZDExtort
from pnyx.errors import PnyxError

C, D = 0, 1


class Cycle:
    """A fixed opponent: plays ``moves`` in order, ignoring observations."""

    def __init__(self, moves):
        self.moves = moves

    def reset(self, seed=None):
        self.t = 0

    def act(self, observation):
        self.t += 1
        return self.moves[self.t - 1]


def play(spec, opponent_moves, seed=0):
    """The strategy's actions against a fixed sequence of opponent moves."""
    player = make_policy(spec)
    player.reset(seed=seed)
    obs, actions = 4, []
    for theirs in opponent_moves:
        mine = player.act(obs)
        actions.append(mine)
        obs = 2 * mine + theirs
    return actions


OPPONENT = [C, D, D, C, D, C, C, C]


@pytest.mark.parametrize("spec, expected", [
    ("allc", [C] * 8),
    ("alld", [D] * 8),
    ("tft", [C, C, D, D, C, D, C, C]),
    ("stft", [D, C, D, D, C, D, C, C]),
    ("tf2t", [C, C, C, D, C, C, C, C]),
    ("grim", [C, C, D, D, D, D, D, D]),
    ("wsls", [C, C, D, C, C, D, D, D]),
    ("alternator", [C, D, C, D, C, D, C, D]),
    ("memory_one(1,0,1,0,1)", [C, C, D, D, C, D, C, C]),
])
def test_exact_sequences(spec, expected):
    assert play(spec, OPPONENT) == expected


def test_random_strategy_rate_and_reproducibility():
    actions = play("random(0.3)", [C] * 4000, seed=7)
    assert actions == play("random(0.3)", [C] * 4000, seed=7)
    assert abs(1 - np.mean(actions) - 0.3) < 0.03


def test_zd_extort_is_press_dyson_extort3():
    np.testing.assert_allclose(ZDExtort(3).p[:4], [11 / 13, 1 / 2, 7 / 26, 0])


def test_zd_extort_enforces_linear_relation():
    """Against any memory-one opponent, s_X - P = chi (s_Y - P) in the long run."""
    from pnyx.population.match import play_batched

    result = play_batched(policy_factory("zd_extort(2)"), policy_factory("memory_one(0.7,0.4,0.9,0.2,1)"),
                          payoffs=(3, 0, 5, 1), turns=2000, repetitions=400, noise=0.0,
                          seed=np.random.SeedSequence(1))
    sx, sy = result.payoff.mean(axis=1)
    assert sx - 1 == pytest.approx(2 * (sy - 1), abs=0.03)


def test_batch_and_single_step_agree():
    """act_batch over many games equals act game by game for a stateful strategy."""
    rng = np.random.default_rng(0)
    opponent = rng.integers(0, 2, size=(5, 30))
    batch = make_policy("tf2t")
    batch.reset_batch(5)
    obs = np.full(5, 4)
    batched = []
    for t in range(30):
        a = batch.act_batch(obs)
        batched.append(a)
        obs = 2 * a + opponent[:, t]
    for g in range(5):
        assert play("tf2t", opponent[g]) == [int(x[g]) for x in batched]


def test_third_party_policy_by_import_path():
    factory = policy_factory("tests.test_strategies:Cycle([1, 0])")
    adapter = PerGame(factory)
    adapter.reset_batch(3, seed=0)
    assert adapter.act_batch(np.array([4, 4, 4])).tolist() == [1, 1, 1]


@pytest.mark.parametrize("spec, message", [
    ("nope", "unknown policy 'nope'"),
    ("random(1.5)", "p=1.5 is outside"),
    ("memory_one(0.9,0.1", "malformed policy 'memory_one(0.9,0.1': unbalanced parentheses"),
    ("memory_one(0.9,x)", "argument 'x' is not a literal"),
    ("tft(1,2)", "bad arguments"),
    ("no_such_module:Policy", "cannot import module"),
    ("missing.pt", "does not exist"),
])
def test_bad_specs(spec, message):
    with pytest.raises(PnyxError, match=message.replace("(", r"\(")):
        policy_factory(spec)

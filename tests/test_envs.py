"""Every social-dilemma environment passes the PettingZoo test suite, and plays by its rules."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import pnyx.envs
from pnyx.errors import PnyxError

GAMES = ["ipd", "stag_hunt", "chicken", "public_goods"]


@pytest.mark.parametrize("name", GAMES)
def test_pettingzoo_api(name):
    api_test(pnyx.envs.make(name, parallel=False, rounds=20), num_cycles=30)
    parallel_api_test(pnyx.envs.make(name, rounds=20), num_cycles=30)


@pytest.mark.parametrize("name", GAMES)
def test_pettingzoo_seeding(name):
    module = pnyx.envs.module(name)
    seed_test(lambda: module.env(rounds=20), num_cycles=30)
    parallel_seed_test(lambda: module.parallel_env(rounds=20), num_cycles=30)


def test_registry_names_and_errors():
    assert set(GAMES) <= set(pnyx.envs.names())
    with pytest.raises(PnyxError, match="unknown environment 'nope'"):
        pnyx.envs.make("nope")


def test_ipd_playthrough():
    """A pinned trajectory: observations are the previous joint action, own action first."""
    env = pnyx.envs.make("ipd", rounds=3)
    obs, _ = env.reset()
    assert obs == {"player_0": 4, "player_1": 4}
    trajectory = []
    for a0, a1 in [(0, 1), (1, 1), (0, 0)]:
        obs, rew, term, trunc, _ = env.step({"player_0": a0, "player_1": a1})
        trajectory.append((obs["player_0"], obs["player_1"], rew["player_0"], rew["player_1"], term["player_0"]))
    assert trajectory == [(1, 2, 0.0, 5.0, False), (3, 3, 1.0, 1.0, False), (0, 0, 3.0, 3.0, True)]
    assert env.agents == []


def test_custom_payoffs_and_bad_input():
    env = pnyx.envs.make("ipd", payoffs=[[1, -1], [2, 0]], rounds=1)
    env.reset()
    _, rew, *_ = env.step({"player_0": 1, "player_1": 0})
    assert rew == {"player_0": 2.0, "player_1": -1.0}
    with pytest.raises(PnyxError, match="rounds=0"):
        pnyx.envs.make("ipd", rounds=0)
    with pytest.raises(PnyxError, match="payoffs"):
        pnyx.envs.make("chicken", payoffs=[1, 2, 3])


def test_public_goods_payoffs_and_observations():
    env = pnyx.envs.make("public_goods", group_size=3, multiplier=2.0, contribution=1.0, rounds=2)
    env.reset()
    obs, rew, *_ = env.step({"player_0": 0, "player_1": 0, "player_2": 1})
    # pot 2 * 2 contributions = 4, shared by 3; contributors paid 1
    np.testing.assert_allclose([rew[f"player_{i}"] for i in range(3)], [4 / 3 - 1, 4 / 3 - 1, 4 / 3])
    # own action * n + number of other defectors
    assert obs == {"player_0": 1, "player_1": 1, "player_2": 3}


def test_two_player_public_goods_matches_ipd_encoding():
    env = pnyx.envs.make("public_goods", group_size=2, rounds=1)
    env.reset()
    obs, *_ = env.step({"player_0": 0, "player_1": 1})
    assert obs == {"player_0": 1, "player_1": 2}

"""Every registered environment passes the PettingZoo test suite, follows its conventions,
is documented as it is, and plays by its rules; every registered repeated game declares
itself (OpenSpiel-style: the tests loop over the registry)."""

import functools
import re
from pathlib import Path

import numpy as np
import pytest
from gymnasium.spaces import Discrete, MultiDiscrete, Text
from pettingzoo.test import (api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test, seed_test,
                             state_test)
from pettingzoo.utils.wrappers import AssertOutOfBoundsWrapper, OrderEnforcingWrapper

import pnyx.envs
from pnyx.envs.matrix_game import MatrixGame, payoff_table
from pnyx.envs.repeated_game import Game
from pnyx.errors import PnyxError

ENVS = pnyx.envs.names()
GAMES = [name for name in ENVS if isinstance(getattr(pnyx.envs.module(name), "GAME", None), Game)]
TWO_PLAYER = pnyx.envs.two_player_games()
#: Arguments that keep the text environments' tests small; the others are built with their defaults.
TEXT = {"group_reasoning": {"n_agents": 3, "max_turns": 4}, "goal_guarding": {"peers": ["Atlas", "Nova"]},
        "peer_preservation": {"scenario": "server_cleanup", "max_turns": 4}}
ENVIRONMENTS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "environments.md"

pytestmark = pytest.mark.filterwarnings(
    "ignore:(Observation is not|Observation space|Action space|We recommend agents|State):UserWarning")


def kwargs(name: str) -> dict:
    return {"rounds": 20} if name in GAMES else TEXT.get(name, {})


def has_parallel(name: str) -> bool:
    return hasattr(pnyx.envs.module(name), "parallel_env")


# --- PettingZoo's tests ------------------------------------------------------------------


@pytest.mark.parametrize("name", ENVS)
def test_pettingzoo_api(name):
    api_test(pnyx.envs.make(name, parallel=False, **kwargs(name)), num_cycles=30)
    if has_parallel(name):
        parallel_api_test(pnyx.envs.make(name, **kwargs(name)), num_cycles=30)


@pytest.mark.parametrize("name", ENVS)
def test_pettingzoo_seeding(name):
    module = pnyx.envs.module(name)
    seed_test(lambda: module.env(**kwargs(name)), num_cycles=30)
    if has_parallel(name):
        parallel_seed_test(lambda: module.parallel_env(**kwargs(name)), num_cycles=30)


@pytest.mark.parametrize("name", ENVS)
def test_reset_seed_seeds_the_spaces(name):
    a, b = (pnyx.envs.make(name, parallel=False, **kwargs(name)) for _ in range(2))
    a.reset(seed=3)
    b.reset(seed=3)
    for agent in a.possible_agents:
        assert a.action_space(agent) is not b.action_space(agent)
        assert a.action_space(agent).sample() == b.action_space(agent).sample()
        assert a.observation_space(agent).sample() == b.observation_space(agent).sample()


@pytest.mark.parametrize("name", GAMES)
def test_pettingzoo_state(name):
    module = pnyx.envs.module(name)
    state_test(module.env(rounds=5), module.parallel_env(rounds=5), num_cycles=10)


@pytest.mark.parametrize("name", ENVS)
def test_pettingzoo_render(name):
    render_test(functools.partial(pnyx.envs.module(name).env, **kwargs(name)))


@pytest.mark.parametrize("name", GAMES)
def test_pettingzoo_max_cycles(name):
    max_cycles_test(pnyx.envs.module(name))


# --- declarations ------------------------------------------------------------------------


@pytest.mark.parametrize("name", GAMES)
def test_every_game_declares_itself(name):
    game = pnyx.envs.game(name)
    env = pnyx.envs.make(name)
    assert env.metadata["name"] == game.name and env.rounds == 100
    assert len(game.actions) == 2 and game.actions[0] != game.actions[1]
    assert isinstance(game, MatrixGame) == (name in TWO_PLAYER) == (env.possible_agents == ["player_0", "player_1"])
    if name in TWO_PLAYER:
        np.testing.assert_array_equal(env.table, payoff_table(game.payoffs))
        assert pnyx.envs.two_player_game(name) is game


def test_shipped_games_are_declared_as_published():
    declared = {name: pnyx.envs.game(name) for name in ["ipd", "stag_hunt", "chicken", "public_goods"]}
    assert {name: g.actions for name, g in declared.items()} == {
        "ipd": ("cooperate", "defect"), "stag_hunt": ("stag", "hare"), "chicken": ("swerve", "straight"),
        "public_goods": ("contribute", "keep")}
    assert {name: g.payoffs for name, g in declared.items() if name in TWO_PLAYER} == {
        "ipd": (3, 0, 5, 1), "stag_hunt": (4, 0, 3, 2), "chicken": (3, 1, 5, 0)}
    assert {"chicken", "ipd", "stag_hunt"} <= set(TWO_PLAYER) and "public_goods" not in TWO_PLAYER


@pytest.mark.parametrize("name, message", [
    ("public_goods", "'public_goods' is not a registered two-player matrix game (registered: "),
    ("nope", "'nope' is not a registered two-player matrix game"),
])
def test_two_player_game_names_what_is_wrong(name, message):
    with pytest.raises(PnyxError, match=re.escape(message)):
        pnyx.envs.two_player_game(name)


def test_a_text_environment_is_no_repeated_game():
    with pytest.raises(PnyxError, match="environment 'group_reasoning' declares no repeated game"):
        pnyx.envs.game("group_reasoning")


@pytest.mark.parametrize("args, message", [
    ({"name": "x_v0", "actions": ("go", "go"), "payoffs": (3, 0, 5, 1)}, "actions must be two different words"),
    ({"name": "x_v0", "actions": ("go",), "payoffs": (3, 0, 5, 1)}, "actions must be two different words"),
    ({"name": "x_v0", "actions": ("go", "stay"), "payoffs": (3, 0, 5)}, "payoffs must be"),
])
def test_bad_declarations(args, message):
    with pytest.raises(PnyxError, match=message):
        MatrixGame(**args)


# --- conventions -------------------------------------------------------------------------


def hand_played(name):
    """The constructor arguments and three joint actions of a hand-played game."""
    n = len(pnyx.envs.make(name).possible_agents)
    return {"rounds": 3}, [(0,) + (1,) * (n - 1), (1,) * (n - 1) + (0,), (0,) * n]


@pytest.mark.parametrize("name", GAMES)
def test_state_is_the_previous_joint_action_and_the_round(name):
    args, joints = hand_played(name)
    n = len(joints[0])
    par = pnyx.envs.make(name, **args)
    aec = pnyx.envs.make(name, parallel=False, **args)
    assert par.state_space == aec.state_space == MultiDiscrete([3] * n + [4])
    par.reset(seed=0)
    aec.reset(seed=0)
    expected = [2] * n + [0]
    for k, joint in enumerate(joints, 1):
        for env in (par, aec):
            state = env.state()
            assert state.dtype == np.int64 and state.shape == (n + 1,)
            assert state.tolist() == expected and env.state_space.contains(state)
        par.step(dict(zip(par.possible_agents, joint)))
        for action in joint:
            aec.step(action)
        expected = [*joint, k]
    assert par.state().tolist() == aec.state().tolist() == expected == [*joints[-1], 3]


@pytest.mark.parametrize("name", ENVS)
def test_render_takes_a_mode(name):
    """RLlib's ``PettingZooEnv`` and ``ParallelPettingZooEnv`` call ``render(mode)``."""
    envs = [pnyx.envs.make(name, parallel=False, **kwargs(name))]
    if has_parallel(name):
        envs.append(pnyx.envs.make(name, **kwargs(name)))
    for env in envs:
        env.reset(seed=0)
        env.render(None)
        env.render(mode=None)
        assert isinstance(env.render("ansi"), str)
        with pytest.raises(PnyxError, match="render mode"):
            env.render("rgb_array")


@pytest.mark.parametrize("name", ENVS)
def test_env_is_wrapped(name):
    env = pnyx.envs.module(name).env(**kwargs(name))
    assert isinstance(env, OrderEnforcingWrapper)
    with pytest.raises(AssertionError, match="reset"):
        env.step(0 if name in GAMES else "hello")
    assert isinstance(env.env, AssertOutOfBoundsWrapper) == (name in GAMES)


@pytest.mark.parametrize("name", GAMES)
def test_out_of_bounds_actions_raise(name):
    env = pnyx.envs.module(name).env(rounds=2)
    env.reset()
    with pytest.raises(AssertionError, match="action space"):
        env.step(2)
    par = pnyx.envs.module(name).parallel_env(rounds=2)
    par.reset()
    with pytest.raises(PnyxError, match="0 \\(cooperate\\) or 1 \\(defect\\)"):
        par.step({a: -1 for a in par.possible_agents})


# --- documentation -----------------------------------------------------------------------


def table_rows(text: str) -> list[list[str]]:
    """The cells of every row of the markdown tables in ``text``, separator rows left out."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line):
            rows.append([cell.strip() for cell in line[1:-1].split("|")])
    return rows


def docstring_table(name: str) -> dict[str, str]:
    """The spaces table of the environment module's docstring, as ``{row: cell}``."""
    return {key.lower(): value for key, value in table_rows(pnyx.envs.module(name).__doc__)}


def docs_table() -> dict[str, dict[str, str]]:
    """The table at the top of the documentation's environments page, as ``{name: {column: cell}}``."""
    text = ENVIRONMENTS_PAGE.read_text()
    section = text[text.index("# Environments\n"):]
    section = section[: section.find("\n## ")]
    header, *rows = table_rows(section)
    return {row[0].strip("`"): dict(zip([h.lower() for h in header[1:]], row[1:])) for row in rows}


def test_docs_table_agrees_with_the_docstrings():
    table = docs_table()
    assert set(ENVS) <= set(table) <= set(pnyx.envs.names())
    for name, cells in table.items():
        doc = docstring_table(name)
        assert set(cells) == {"agents", "parallel api", "action space", "observation space", "state space"}
        assert set(doc) - {"state space"} == set(cells) - {"state space"}, name
        for column, cell in cells.items():
            assert doc.get(column, "—") == cell, (name, column)


def documented(cell: str, **names):
    """The space a docstring cell names, with ``n`` and ``rounds`` as given."""
    namespace = {"Discrete": Discrete, "MultiDiscrete": MultiDiscrete, "Text": Text, "__builtins__": {}}
    return eval(cell.strip("`"), namespace, names)


def matches(space, expected) -> bool:
    return isinstance(space, expected) if isinstance(expected, type) else space == expected


@pytest.mark.parametrize("name", ENVS)
def test_docstrings_describe_the_environments(name):
    doc = docstring_table(name)
    env = pnyx.envs.make(name, parallel=False, **kwargs(name))
    agents = env.possible_agents
    names = {"n": len(agents), "rounds": getattr(env.unwrapped, "rounds", None)}
    listed = re.findall(r"`([^`]+)`", doc["agents"])
    if " .. " in doc["agents"]:
        assert [agents[0], agents[-1]] == [listed[0], listed[1].replace("{n-1}", str(len(agents) - 1))]
    elif ", then " in doc["agents"]:
        assert agents[-len(listed):] == listed
    else:
        assert agents == listed
    assert doc["parallel api"] == ("yes" if has_parallel(name) else "no")
    for agent in agents:
        assert matches(env.action_space(agent), documented(doc["action space"], **names))
        assert matches(env.observation_space(agent), documented(doc["observation space"], **names))
    if "state space" in doc:
        assert env.state_space == documented(doc["state space"], **names)
    else:
        assert not hasattr(env, "state_space")


# --- rules -------------------------------------------------------------------------------


def test_registry_names_and_errors():
    assert {"ipd", "stag_hunt", "chicken", "public_goods", "group_reasoning", "goal_guarding",
            "peer_preservation"} <= set(ENVS)
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


@pytest.mark.parametrize("name", GAMES)
def test_max_cycles_is_pettingzoos_name_for_rounds(name):
    assert pnyx.envs.make(name, max_cycles=7).rounds == pnyx.envs.make(name, rounds=7, max_cycles=7).rounds == 7
    assert pnyx.envs.make(name, parallel=False, max_cycles=7).unwrapped.rounds == 7
    with pytest.raises(PnyxError, match="rounds=5 and max_cycles=7 differ"):
        pnyx.envs.make(name, rounds=5, max_cycles=7)


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


@pytest.mark.parametrize("name, n", [("ipd", 5), ("stag_hunt", 5), ("chicken", 5), ("public_goods", 9)])
def test_one_hot_observations_are_the_discrete_ones_encoded(name, n):
    """The one-hot option is a ``Box`` whose vectors mark the index the ``Discrete`` game observes."""
    from gymnasium.spaces import Box

    plain, hot = pnyx.envs.make(name, rounds=3, parallel=True), \
        pnyx.envs.make(name, rounds=3, parallel=True, observations="one_hot")
    space = hot.observation_space("player_0")
    assert isinstance(space, Box) and space.shape == (n,) and space.dtype == np.float32
    first, _ = plain.reset(seed=1)
    coded, _ = hot.reset(seed=1)
    for _ in range(3):
        for agent in first:
            assert coded[agent] in space and np.flatnonzero(coded[agent]).tolist() == [int(first[agent])]
        joint = {a: i % 2 for i, a in enumerate(plain.agents)}
        first, *_ = plain.step(joint)
        coded, *_ = hot.step(joint)
    with pytest.raises(PnyxError, match="observations='sparse'"):
        pnyx.envs.make(name, observations="sparse")


def test_one_hot_environments_pass_pettingzoo_api_tests():
    parallel_api_test(pnyx.envs.make("ipd", rounds=5, parallel=True, observations="one_hot"), num_cycles=10)
    api_test(pnyx.envs.make("ipd", parallel=False, rounds=5, observations="one_hot"), num_cycles=10)

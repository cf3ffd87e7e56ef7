"""A 2x2 game written and registered outside pnyx plays in a tournament, evolves, and is
played by a language model in a tournament and in ``llm-dilemmas``."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

import pnyx.envs
from pnyx.agents.llm import ScriptedModel
from pnyx.experiments.runner import run_experiment
from pnyx.population.replicator import replicator_dynamics

pytestmark = pytest.mark.filterwarnings("ignore:Observation is not a NumPy array:UserWarning")

MODULE = '''"""Repeated split or steal: 0 = split, 1 = steal; R=4, S=1, T=6, P=2."""

from pnyx.envs.matrix_game import MatrixGame, constructors

GAME = MatrixGame(name="split_steal_v0", actions=("split", "steal"), payoffs=(4, 1, 6, 2))

parallel_env, raw_env, env = constructors(GAME)
'''


@pytest.fixture
def split_steal(user_package):
    """The game's module in a package of its own, registered as ``split_steal``."""
    user_package("user_games", "split_steal_v0", MODULE)
    pnyx.envs.ENVIRONMENTS.register("split_steal", "user_games.split_steal_v0")
    pnyx.envs.module("split_steal")  # loaded now, so the name still resolves once sys.path is restored
    return "split_steal"


def grim_in_words(chat):
    """Splits until the other player has stolen once, then steals."""
    rows = [line for line in chat[-1]["content"].splitlines() if line.startswith("| ") and line[2].isdigit()]
    return "Move: steal" if any(row.split("|")[3].strip() == "steal" for row in rows) else "Move: split"


def test_the_user_game_is_a_registered_two_player_game(split_steal):
    assert split_steal in pnyx.envs.two_player_games()
    assert pnyx.envs.game(split_steal).actions == ("split", "steal")
    api_test(pnyx.envs.make(split_steal, parallel=False, rounds=5), num_cycles=10)
    parallel_api_test(pnyx.envs.make(split_steal, rounds=5), num_cycles=10)


def test_the_user_game_plays_a_tournament_and_evolves(split_steal, tmp_path):
    players = ["allc", "alld", "tft"]
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"kind: tournament\nplayers: {players}\ngame: {split_steal}\nturns: 10\nrepetitions: 2\n"
                   "evolution: {generations: 50}\n")
    summary = run_experiment(str(cfg), out=tmp_path / "o", workers=1, progress=False)
    # R=4, S=1, T=6, P=2; tit for tat against always-defect: S then P, P, ... over 10 turns
    by_hand = {"allc": {"allc": 4.0, "alld": 1.0, "tft": 4.0},
               "alld": {"allc": 6.0, "alld": 2.0, "tft": (6 + 9 * 2) / 10},
               "tft": {"allc": 4.0, "alld": (1 + 9 * 2) / 10, "tft": 4.0}}
    assert summary["game"] == split_steal
    assert summary["payoff_matrix"] == by_hand
    assert summary["ranking"] == ["alld", "tft", "allc"]
    shares = replicator_dynamics(np.array([[by_hand[p][q] for q in players] for p in players]), generations=50, dt=0.1)
    assert summary["evolution"]["final_shares"] == pytest.approx(dict(zip(players, shares[-1])), abs=1e-6)


def test_a_language_model_plays_the_user_game_in_a_tournament(split_steal, tmp_path):
    model = ScriptedModel(grim_in_words)
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"kind: tournament\nplayers: [llm, alld]\ngame: {split_steal}\nturns: 3\nrepetitions: 2\n")
    summary = run_experiment(str(cfg), out=tmp_path / "o", workers=1, progress=False, models=lambda spec: model)
    # split (S=1), then steal against steal (P=2) twice; against itself it always splits (R=4)
    assert summary["payoff_matrix"]["llm"] == pytest.approx({"llm": 4.0, "alld": (1 + 2 + 2) / 3})
    assert summary["payoff_matrix"]["alld"]["llm"] == pytest.approx((6 + 2 + 2) / 3)
    assert summary["llm"]["llm"]["moves"] == 2 * 3 * 3 and summary["llm"]["llm"]["fallback"] == 0
    prompt = model.calls[-1][0][-1]["content"]
    assert "choose at the same time between 'split' and 'steal'" in prompt
    assert "- you split, the other player steal: you get 1 point, they get 6 points." in prompt
    assert "Reply with one line 'Move: split' or 'Move: steal'." in model.calls[-1][0][0]["content"]


def test_llm_dilemmas_plays_the_user_game(split_steal, tmp_path):
    summary = run_experiment("llm-dilemmas", out=tmp_path / "o", quick=True, workers=1, progress=False,
                             overrides={"game": split_steal, "parts": ["round_robin"], "personas": ["neutral"]},
                             models=lambda spec: ScriptedModel(grim_in_words))
    assert summary["game"] == split_steal
    (tft, alld) = summary["sections"]["round_robin"]
    assert (tft["partner"], alld["partner"]) == ("tft", "alld")
    assert tft["cooperation_by_round"] == [1.0, 1.0, 1.0] and tft["payoff"] == 4.0
    assert alld["cooperation_by_round"] == [1.0, 0.0, 0.0]
    assert (alld["payoff"], alld["partner_payoff"]) == pytest.approx(((1 + 2 + 2) / 3, (6 + 2 + 2) / 3))

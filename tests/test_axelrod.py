"""Axelrod's strategies as pnyx policies reproduce ``axelrod.Match`` exactly where deterministic."""

import sys

import numpy as np
import pytest

axl = pytest.importorskip("axelrod")

from pnyx.agents import POLICIES, policy_factory  # noqa: E402
from pnyx.agents.axelrod_strategies import strategy_classes  # noqa: E402
from pnyx.envs.matrix_game import MatrixGameEnv  # noqa: E402
from pnyx.errors import PnyxError  # noqa: E402
from pnyx.experiments.cli import main  # noqa: E402
from pnyx.population.match import game_infos, play_batched, play_loop  # noqa: E402

CLASSES = strategy_classes()
DETERMINISTIC = sorted(n for n, c in CLASSES.items()
                       if not c.classifier.get("stochastic") and not c.classifier.get("long_run_time"))
# A fixed sample, plus strategies that use the match length or keep long state.
SAMPLE = sorted(set(np.random.default_rng(17).choice(DETERMINISTIC, 24, replace=False).tolist())
                | {"TitForTat", "Grudger", "BackStabber", "FirstByTidemanAndChieruzzi", "SecondByTester", "Gradual"})
OPPONENTS = ["TitForTat", "Alternator", "Grudger", "CyclerCCD", "SuspiciousTitForTat"]


def pnyx_actions(a, b, turns, payoffs=(3, 0, 5, 1)):
    """Both players' action strings from a pnyx environment played one step at a time."""
    env = MatrixGameEnv(payoffs, rounds=turns)
    players = [policy_factory(f"axelrod:{a}")(), policy_factory(f"axelrod:{b}")()]
    for player, info in zip(players, game_infos("ipd", payoffs, turns, 0.0)):
        player.set_game(info)
        player.reset(seed=0)
    obs, _ = env.reset()
    moves = ["", ""]
    while env.agents:
        x, y = players[0].act(obs["player_0"]), players[1].act(obs["player_1"])
        obs, *_ = env.step({"player_0": x, "player_1": y})
        moves[0] += "CD"[x]
        moves[1] += "CD"[y]
    return moves


def axelrod_match(a, b, turns, game=None):
    match = axl.Match((CLASSES[a](), CLASSES[b]()), turns=turns, game=game)
    plays = match.play()
    return ["".join(str(p[0]) for p in plays), "".join(str(p[1]) for p in plays)], match


def test_the_sample_is_not_trivial():
    assert len(SAMPLE) >= 25 and set(SAMPLE) <= set(DETERMINISTIC) and len(DETERMINISTIC) > 100


@pytest.mark.parametrize("a", SAMPLE)
def test_deterministic_strategies_play_axelrods_own_moves_and_scores(a):
    turns = 60
    for b in OPPONENTS:
        expected, match = axelrod_match(a, b, turns)
        assert pnyx_actions(a, b, turns) == expected, (a, b)
        result = play_batched(policy_factory(f"axelrod:{a}"), policy_factory(f"axelrod:{b}"), payoffs=(3, 0, 5, 1),
                              turns=turns, repetitions=3, noise=0.0, seed=np.random.SeedSequence(0))
        for seat in range(2):
            assert result.payoff[seat].tolist() == pytest.approx([match.final_score_per_turn()[seat]] * 3)
            assert result.cooperation[seat].tolist() == pytest.approx([match.normalised_cooperation()[seat]] * 3)


def test_the_match_length_reaches_the_player():
    """BackStabber defects in the last two rounds of a match of known length."""
    moves, _ = pnyx_actions("BackStabber", "Cooperator", 20)
    assert moves == "C" * 18 + "DD"


def test_the_game_reaches_the_player():
    stag_hunt = (4, 0, 3, 2)
    expected, match = axelrod_match("TitForTat", "Alternator", 12, game=axl.Game(*stag_hunt))
    result = play_loop(policy_factory("axelrod:TitForTat"), policy_factory("axelrod:Alternator"), payoffs=stag_hunt,
                       turns=12, repetitions=1, noise=0.0, seed=np.random.SeedSequence(0), game="stag_hunt")
    assert result.payoff[:, 0].tolist() == pytest.approx(list(match.final_score_per_turn()))


def test_axelrod_tit_for_tat_equals_pnyx_tft():
    kw = dict(payoffs=(3, 0, 5, 1), turns=100, repetitions=50, noise=0.05)
    ours = play_batched(policy_factory("tft"), policy_factory("random(0.5)"), seed=np.random.SeedSequence(1), **kw)
    theirs = play_batched(policy_factory("axelrod:TitForTat"), policy_factory("random(0.5)"),
                          seed=np.random.SeedSequence(1), **kw)
    np.testing.assert_array_equal(ours.payoff, theirs.payoff)


def test_stochastic_strategies_are_seeded_per_game():
    def run(seed):
        return play_batched(policy_factory("axelrod:Random(0.5)"), policy_factory("axelrod:TitForTat"),
                            payoffs=(3, 0, 5, 1), turns=40, repetitions=8, noise=0.0, seed=np.random.SeedSequence(seed))
    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a.payoff, b.payoff)
    assert not np.array_equal(a.payoff, c.payoff)
    assert len(set(a.cooperation[0].tolist())) > 1  # the games differ from one another
    assert a.cooperation[0].mean() == pytest.approx(0.5, abs=0.15)


@pytest.mark.parametrize("spec, message", [
    ("axelrod:TitForTatt", "unknown Axelrod strategy 'TitForTatt'; did you mean TitForTat"),
    ("axelrod:Nonexistent", "unknown Axelrod strategy 'Nonexistent'; 'pnyx list' shows them"),
    ("axelrod:Darwin", "reads or changes its opponent's code or state"),
    ("axelrod:TitForTat(1, 2, 3)", "bad arguments"),
    ("axelrod", "needs an argument: axelrod:<strategy>"),
])
def test_bad_axelrod_specs_are_one_line_errors(spec, message):
    with pytest.raises(PnyxError) as e:
        policy_factory(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_package_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "axelrod", None)
    with pytest.raises(PnyxError) as e:
        policy_factory("axelrod:TitForTat")
    assert str(e.value) == ("policy 'axelrod:TitForTat': Axelrod strategies need the axelrod package: "
                            "pip install 'pnyx[axelrod]'")


def test_pnyx_list_shows_the_strategies(capsys):
    described = POLICIES.describe()
    assert described["axelrod:TitForTat"] == "Tit For Tat (Axelrod library)"
    assert described["axelrod:Random"] == "Random (Axelrod library, stochastic)"
    assert "axelrod:Darwin" not in described
    assert main(["list"]) == 0
    assert "axelrod:FirstByTidemanAndChieruzzi" in capsys.readouterr().out


def test_axelrod_and_pnyx_strategies_in_one_tournament(tmp_path):
    import json

    out = tmp_path / "t"
    assert main(["tournament", "--players", "axelrod:TitForTat,alld,axelrod:Grudger", "--turns", "10",
                 "--repetitions", "2", "--workers", "1", "--no-progress", "--out", str(out)]) == 0
    matrix = json.loads((out / "summary.json").read_text())["payoff_matrix"]
    assert matrix["axelrod:TitForTat"]["alld"] == pytest.approx(0.9)
    assert matrix["axelrod:Grudger"]["axelrod:TitForTat"] == pytest.approx(3.0)


def test_every_kind_of_player_in_one_tournament(tmp_path):
    """A language model, an Axelrod strategy, a pnyx strategy, a saved learner and a user's class
    meet in one tournament; the deterministic pairings give hand-computed payoffs."""
    import json

    import torch

    from pnyx.agents.llm import ScriptedModel
    from pnyx.agents.sequence import build_net, save_policy
    from pnyx.experiments.runner import run_experiment

    net = build_net({"kind": "gru", "payoffs": [3, 0, 5, 1], "hidden": 8, "embed": 4})
    with torch.no_grad():  # a learner that always defects: the policy head ignores its state
        net.policy.weight.zero_()
        net.policy.bias.copy_(torch.tensor([-30.0, 30.0]))
    save_policy(tmp_path / "defector.pt", net)
    players = ["llm(persona=cooperative)", "axelrod:TitForTat", "tft", str(tmp_path / "defector.pt"),
               "tests.test_strategies:Cycle([1, 0, 1, 0])"]
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"kind: tournament\nplayers: {json.dumps(players)}\nturns: 4\nrepetitions: 2\n")
    run_experiment(str(cfg), out=tmp_path / "o", workers=1, progress=False,
                   models=lambda spec: ScriptedModel("Move: cooperate"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    matrix = summary["payoff_matrix"]
    llm, axl_tft, tft, learner, cycle = players
    assert matrix[axl_tft][llm] == matrix[tft][llm] == matrix[llm][tft] == 3.0
    assert matrix[learner][llm] == 5.0 and matrix[llm][learner] == 0.0
    assert matrix[axl_tft][learner] == matrix[tft][learner] == pytest.approx(3 / 4)  # S, then P, P, P
    # tft against D, C, D, C plays C, D, C, D: S, T, S, T
    assert matrix[tft][cycle] == matrix[axl_tft][cycle] == pytest.approx(10 / 4)
    assert matrix[axl_tft][tft] == 3.0
    for name in ("payoff_matrix", "payoff_differences", "payoff_boxplot", "wins"):
        assert (tmp_path / "o" / "plots" / f"{name}.png").stat().st_size > 0
    from pnyx import load_run

    labels = [t.get_text() for t in load_run(tmp_path / "o").figures()["payoff_matrix"].axes[0].get_xticklabels()]
    short = {str(tmp_path / "defector.pt"): "defector.pt", cycle: "tests.test_strategies:Cycle([1,…"}
    assert labels == [short.get(p, p) for p in summary["ranking"]]  # in ranking order, names shortened

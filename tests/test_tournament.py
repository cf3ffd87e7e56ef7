"""Tournaments: both engines, closed-form payoffs, reproducibility, the CLI end to end."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pnyx.agents import policy_factory
from pnyx.envs import two_player_game, two_player_games
from pnyx.envs.matrix_game import payoff_table
from pnyx.experiments.cli import main
from pnyx.experiments.runner import run_experiment
from pnyx.population.match import play_batched, play_loop

CLASSIC = (3, 0, 5, 1)
DETERMINISTIC = ["allc", "alld", "tft", "tf2t", "stft", "grim", "wsls", "alternator"]


def match(engine, a, b, turns=50, repetitions=3, noise=0.0, seed=0):
    return engine(policy_factory(a), policy_factory(b), payoffs=CLASSIC, turns=turns,
                  repetitions=repetitions, noise=noise, seed=np.random.SeedSequence(seed))


@pytest.mark.parametrize("a", DETERMINISTIC)
@pytest.mark.parametrize("b", ["tft", "alld", "grim", "alternator"])
def test_engines_agree_exactly_on_deterministic_strategies(a, b):
    batched, loop = match(play_batched, a, b), match(play_loop, a, b)
    np.testing.assert_array_equal(batched.payoff, loop.payoff)
    np.testing.assert_array_equal(batched.cooperation, loop.cooperation)


def test_closed_form_payoffs():
    r = match(play_batched, "tft", "alld", turns=200, repetitions=1)
    assert r.payoff[:, 0].tolist() == pytest.approx([(0 + 199 * 1) / 200, (5 + 199 * 1) / 200])
    r = match(play_batched, "alternator", "allc", turns=10, repetitions=1)
    assert r.payoff[:, 0].tolist() == pytest.approx([(5 * 3 + 5 * 5) / 10, (5 * 3 + 5 * 0) / 10])
    assert r.cooperation[:, 0].tolist() == [0.5, 1.0]


def test_engines_agree_statistically_on_stochastic_strategies():
    args = dict(turns=100, repetitions=300, noise=0.05)
    batched = match(play_batched, "random(0.5)", "wsls", **args)
    loop = match(play_loop, "random(0.5)", "wsls", **args)
    for row in range(2):
        diff = batched.payoff[row].mean() - loop.payoff[row].mean()
        se = np.hypot(batched.payoff[row].std(), loop.payoff[row].std()) / np.sqrt(300)
        assert abs(diff) < 4 * se


def test_noise_flips_actions():
    r = match(play_batched, "allc", "allc", turns=200, repetitions=200, noise=0.1)
    assert r.cooperation.mean() == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("engine", [play_batched, play_loop])
def test_same_seed_same_results(engine):
    a = match(engine, "random(0.4)", "memory_one(0.9,0.1,0.8,0.2,1)", noise=0.02, seed=3)
    b = match(engine, "random(0.4)", "memory_one(0.9,0.1,0.8,0.2,1)", noise=0.02, seed=3)
    c = match(engine, "random(0.4)", "memory_one(0.9,0.1,0.8,0.2,1)", noise=0.02, seed=4)
    np.testing.assert_array_equal(a.payoff, b.payoff)
    assert not np.array_equal(a.payoff, c.payoff)


def test_blocks_of_games(monkeypatch):
    """Repetitions beyond one block are played by fresh policies from seeds of their own:
    the first block is the match of that many repetitions, the next differs from it, and
    deterministic strategies still match the loop engine game for game."""
    from pnyx.population import match as engine

    players = "random(0.4)", "memory_one(0.9,0.1,0.8,0.2,1)"
    first = match(play_batched, *players, repetitions=4, noise=0.02)
    monkeypatch.setattr(engine, "BLOCK", 4)
    blocked = match(play_batched, *players, repetitions=10, noise=0.02)
    np.testing.assert_array_equal(blocked.payoff[:, :4], first.payoff)
    assert not np.array_equal(blocked.payoff[:, 4:8], first.payoff)
    np.testing.assert_array_equal(match(play_batched, "tf2t", "alternator", repetitions=10).payoff,
                                  match(play_loop, "tf2t", "alternator", repetitions=10).payoff)


def pnyx(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pnyx.experiments.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_tournament_cli_outputs(tmp_path):
    wsls = "memory_one(1,0,0,1,1)"  # win-stay lose-shift, written with commas the player list must keep
    players = f"tft,alld,{wsls}"
    out = tmp_path / "t"
    proc = pnyx("tournament", "--players", players, "--turns", "20", "--repetitions", "4", "--seed", "1",
                "--workers", "1", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    results = pd.read_parquet(out / "results.parquet")
    assert {"player", "opponent", "repetition", "payoff", "cooperation"} <= set(results.columns)
    assert set(results["player"]) == {"tft", "alld", wsls}
    # 6 pairings (self-play included) x 4 repetitions x 2 seats
    assert len(results) == 6 * 4 * 2
    summary = json.loads((out / "summary.json").read_text())
    # Over 20 turns without noise: tft, wsls and their self-plays cooperate throughout (3 each);
    # tft vs alld: S then 19 P, so 19/20 against (5 + 19)/20; alld vs alld: P. wsls vs alld
    # alternates C (S, alld T) and D (P, P), so wsls gets 10/20 and alld (10 * 5 + 10)/20.
    expected = {"tft": {"tft": 3, "alld": 0.95, wsls: 3}, "alld": {"tft": 1.2, "alld": 1, wsls: 3},
                wsls: {"tft": 3, "alld": 0.5, wsls: 3}}
    assert summary["payoff_matrix"].keys() == expected.keys()
    for player, row in expected.items():
        assert summary["payoff_matrix"][player] == pytest.approx(row)
    # Row means, self-play included: tft 6.95/3 > wsls 6.5/3 > alld 5.2/3; Axelrod's ranking
    # excludes self-play: alld 2.1 > tft 1.975 > wsls 1.75.
    assert summary["mean_payoff"] == pytest.approx({"tft": 6.95 / 3, "alld": 5.2 / 3, wsls: 6.5 / 3})
    assert summary["ranking"] == ["alld", "tft", wsls]
    assert (out / "plots" / "payoff_matrix.png").stat().st_size > 0
    assert (out / "report.md").exists() and (out / "config.yaml").exists()


@pytest.mark.parametrize("game", two_player_games())
def test_every_two_player_game_plays_with_its_declared_payoffs(game, tmp_path):
    table = payoff_table(two_player_game(game).payoffs)
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"kind: tournament\nplayers: [allc, alld]\ngame: {game}\nturns: 3\nrepetitions: 2\n")
    summary = run_experiment(str(cfg), out=tmp_path / "o", workers=1, progress=False)
    assert summary["game"] == game
    assert summary["payoff_matrix"] == {"allc": {"allc": table[0, 0].mean(), "alld": table[0, 1, 0]},
                                        "alld": {"allc": table[1, 0, 0], "alld": table[1, 1].mean()}}


@pytest.mark.parametrize("args, message", [
    (["tournament", "--players", "tft", "--game", "public_goods"],
     "invalid config field 'game': 'public_goods' is not a registered two-player matrix game (registered: "),
    (["tournament", "--players", "tft,bogus"], "unknown policy 'bogus'"),
    (["tournament", "--players", "tft", "--turns", "-5"], "'turns'"),
    (["tournament", "--players", "tft", "--turns", "0"], "'turns'"),
    (["tournament", "--players", "random(2)"], "p=2 is outside [0, 1]"),
    (["tournament", "--players", "tft,memory_one(0.9,0.1"], "unbalanced brackets or quotes in player list"),
    (["tournament", "--players", "tft", "--noise", "1.5"], "'noise'"),
    (["tournament", "--players", "tft", "--engine", "warp"], "'engine'"),
    (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"),
    (["run", "quickstart", "--set", "colour=blue"], "unknown config field 'colour'"),
    (["run", "quickstart", "--set", "seed=[1"], "not valid YAML"),
    (["run", "quickstart", "--workers", "0"], "--workers must be >= 1"),
    (["run", "coral-agreement", "--set", "model=bogus"], "invalid config field 'model': unknown model 'bogus'"),
    (["run", "peer-goal-guarding", "--set", "judge=vibes"], "'judge'"),
    (["run", "weis-ipd", "--set", "iterations=-1"], "'iterations'"),
    (["run", "network-cooperation", "--set", "updates=[sideways]"], "'updates"),
    (["run"], "the following arguments are required"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    if args[0] in ("run", "tournament") and len(args) > 1:
        args = [*args, "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pnyx: error: ") and message in err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    proc = pnyx("tournament", "--players", "tft,bogus", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr == "pnyx: error: invalid config field 'players': unknown policy 'bogus' (known: allc, alld, alternator, axelrod, grim, llm, memory_one, random, random_memory_one, stft, tf2t, tft, wsls, zd_extort; or package.module:Class)\n"


def test_broken_yaml_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: tournament\nplayers: [tft, alld\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "is not valid YAML (line 3" in capsys.readouterr().err


def test_existing_output_folder_needs_resume(tmp_path, capsys):
    args = ["tournament", "--players", "tft,alld", "--turns", "5", "--workers", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert main([*args, "--turns", "6", "--resume"]) == 2
    assert "differs in field 'turns'" in capsys.readouterr().err


def test_axelrod_style_figures_from_the_results_table(tmp_path):
    """tft, alld, allc over 10 turns: tft-alld 0.9 vs 1.4, tft-allc 3 vs 3, alld-allc 5 vs 0."""
    from pnyx.experiments.tournament import (axelrod_ranking, normalised_payoffs, payoff_difference_samples,
                                             payoff_differences, wins)

    out = tmp_path / "t"
    assert main(["tournament", "--players", "tft,alld,allc", "--turns", "10", "--repetitions", "3",
                 "--workers", "1", "--no-progress", "--out", str(out)]) == 0
    results = pd.read_parquet(out / "results.parquet")
    players = ["tft", "alld", "allc"]
    scores = normalised_payoffs(results, players)
    assert scores.to_numpy() == pytest.approx(np.repeat([[1.95], [3.2], [1.5]], 3, axis=1))
    assert axelrod_ranking(scores) == ["alld", "tft", "allc"]
    assert wins(results, players).to_numpy().tolist() == [[0, 0, 0], [2, 2, 2], [0, 0, 0]]
    assert payoff_differences(results, players) == pytest.approx(np.array([[0, -0.5, 0], [0.5, 0, 5], [0, -5, 0]]))
    # per (opponent, repetition), opponents in players order, self-play left out
    np.testing.assert_allclose(payoff_difference_samples(results, players).to_numpy(),
                               [[-0.5] * 3 + [0] * 3, [0.5] * 3 + [5] * 3, [0] * 3 + [-5] * 3])
    for name in ("payoff_matrix", "payoff_differences", "cooperation_matrix", "payoff_boxplot",
                 "payoff_difference_distributions", "wins"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 0
    from pnyx import load_run

    figures = load_run(out).figures()
    texts = [t.get_text() for t in figures["payoff_matrix"].axes[0].texts]
    assert texts == ["1.00", "1.40", "5.00", "0.90", "3.00", "3.00", "0.00", "3.00", "3.00"]  # alld, tft, allc
    labels = [t.get_text() for t in figures["payoff_boxplot"].axes[0].get_xticklabels()]
    assert labels == ["alld", "tft", "allc"]
    boxes = figures["payoff_difference_distributions"].axes[0].patches  # from q1 to q3, in ranking order
    np.testing.assert_allclose([(b.get_y(), b.get_y() + b.get_height()) for b in boxes],
                               [(0.5, 5), (-0.5, 0), (-5, 0)])


def test_tick_labels_shorten_paths_and_long_specs_but_stay_distinct():
    from pnyx.experiments.tournament import tick_labels

    assert tick_labels(["tft", "/runs/w/seed0/learner0.pt", "memory_one(0.9,0.1,0.8,0.2,1)"], width=12) == [
        "tft", "learner0.pt", "memory_one(…"]
    alike = ["a/seed0/learner0.pt", "a/seed1/learner0.pt"]
    assert tick_labels(alike) == alike

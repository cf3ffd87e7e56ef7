"""The language-model policy: prompts, move extraction, one batched call per turn, retries and fallbacks."""

import numpy as np
import pytest

import pnyx.envs
from pnyx.agents import policy_factory
from pnyx.agents.llm import Completion, ScriptedModel
from pnyx.agents.llm.roles import role_model
from pnyx.agents.llm_player import LLMPlayer, extract_move
from pnyx.agents.protocol import GameInfo
from pnyx.envs.repeated_game import Game
from pnyx.errors import PnyxError
from pnyx.population.match import game_infos, play_group
from pnyx.population.pairing import play_pairing


@pytest.mark.parametrize("text, game, move", [
    ("Move: cooperate", "ipd", 0), ("Move: Defect", "ipd", 1), ("D", "ipd", 1), ("I choose C.", "ipd", 0),
    ("I will keep cooperating.", "ipd", None), ("Cooperate! Never defect.", "ipd", None),
    ("Reasoning: they might defect.\nMove: cooperate", "ipd", 0), ("Move: nothing", "ipd", None),
    ("Move: stag", "stag_hunt", 0), ("hare", "stag_hunt", 1), ("Move: hare", "ipd", None),
    ("I swerve", "chicken", 0), ("Move: straight", "chicken", 1), ("I contribute", "public_goods", 0),
    ("Move: keep", "public_goods", 1), ("", "ipd", None), ("decide", "ipd", None),
])
def test_extract_move(text, game, move):
    assert extract_move(text, game) == move


@pytest.mark.parametrize("game", [name for name in pnyx.envs.names()
                                  if isinstance(getattr(pnyx.envs.module(name), "GAME", None), Game)])
def test_every_game_is_played_in_its_declared_words(game):
    c, d = pnyx.envs.game(game).actions
    assert [extract_move(text, game) for text in (f"Move: {c}", f"Move: {d.upper()}", d)] == [0, 1, 1]
    assert extract_move(f"{c} or {d}?", game) is None


def test_a_game_that_declares_no_words_cannot_be_played():
    with pytest.raises(PnyxError, match="unknown environment 'nope'"):
        policy_factory("llm")().set_game(GameInfo("nope", 5))
    with pytest.raises(PnyxError, match="environment 'group_reasoning' declares no repeated game"):
        policy_factory("llm")().set_game(GameInfo("group_reasoning", 5))


def player(spec="llm", game="ipd", payoffs=(3, 0, 5, 1), turns=10):
    p = policy_factory(spec)()
    p.set_game(game_infos(game, payoffs, turns, 0.0)[0])
    p.reset_batch(1, 0)
    return p


def test_prompt_has_rules_payoffs_round_and_history():
    p = player("llm(persona=forgiving)")
    chat = p.messages([p._outcome(1), p._outcome(2)])  # CD then DC
    assert "give the other player another chance" in chat[0]["content"]
    text = chat[1]["content"]
    assert "you cooperate, the other player defect: you get 0 points, they get 5 points." in text
    assert "you defect, the other player defect: you get 1 point, they get 1 point." in text
    assert "The game lasts 10 rounds. This is round 3." in text
    assert "| 1 | cooperate | defect | 0 | 5 |\n| 2 | defect | cooperate | 5 | 0 |" in text
    assert "Your total so far: 5 points; the other player's: 5 points." in text


def test_history_k_shows_the_last_k_rounds_and_the_totals():
    p = player("llm(history=1)")
    text = p.messages([p._outcome(0), p._outcome(3)])[1]["content"]
    assert "History (the last 1 of 2 rounds):" in text and "| 2 | defect | defect | 1 | 1 |" in text
    assert "\n| 1 | " not in text and "Your total so far: 4 points" in text


def test_game_words_in_stag_hunt_and_public_goods():
    p = player(game="stag_hunt", payoffs=(4, 0, 3, 2))
    assert "'stag' and 'hare'" in p.messages([])[1]["content"]
    p = policy_factory("llm")()
    p.set_game(GameInfo("public_goods", 5, 0.0, None, 4, 1.6, 1.0))
    text = p.messages([p._outcome(4 + 1)])[1]["content"]  # kept, one other kept
    assert "group of 4 players" in text and "| 1 | keep | 2 of 3 | 0.8 |" in text


def roles_of(model):
    """A ``build_model`` for :func:`play_pairing` that gives every role ``model``."""
    return lambda field, role: role_model(field, role, lambda spec: model)


def test_one_batched_call_per_turn_for_all_games():
    model = ScriptedModel("Move: cooperate")
    result, roles, moves = play_pairing("llm", "alld", game="ipd", payoffs=(3, 0, 5, 1), turns=6, repetitions=5,
                                        noise=0.0, seed=np.random.SeedSequence(0), build_model=roles_of(model))
    assert [len(batch) for batch in model.calls] == [5] * 6
    assert result.cooperation[0].tolist() == [1.0] * 5 and result.payoff[1].tolist() == [5.0] * 5
    assert roles[0].calls == 6 and roles[0].requests == 30
    assert moves == [{"player": "llm", "opponent": "alld", "seat": 0, "fallback_rule": "random", "model": "scripted",
                      "moves": 30, "retried": 0, "unparseable": 0, "truncated": 0, "fallback": 0,
                      "cooperation_by_round": [1.0] * 6}]
    # the last prompt of game 0 shows five rounds of being exploited
    assert "| 5 | cooperate | defect | 0 | 5 |" in model.calls[-1][0][-1]["content"]


def test_llm_against_llm_is_two_calls_per_turn():
    model = ScriptedModel(lambda chat: "Move: defect" if "score more" in chat[0]["content"] else "Move: cooperate")
    result, roles, moves = play_pairing("llm(persona=competitive)", "llm(persona=cooperative)", game="ipd",
                                        payoffs=(3, 0, 5, 1), turns=4, repetitions=3, noise=0.0,
                                        seed=np.random.SeedSequence(0), build_model=roles_of(model))
    assert len(model.calls) == 8 and result.payoff[:, 0].tolist() == [5.0, 0.0]


def test_retry_once_then_fallback_counted():
    def script(chat):
        return "Move: defect" if "exactly one line" in chat[-1]["content"] else "Let me think"
    model = ScriptedModel(script)
    result, _, moves = play_pairing("llm", "tft", game="ipd", payoffs=(3, 0, 5, 1), turns=3, repetitions=2, noise=0.0,
                                    seed=np.random.SeedSequence(0), build_model=roles_of(model))
    assert len(model.calls) == 6 and result.cooperation[0].tolist() == [0.0, 0.0]
    assert (moves[0]["retried"], moves[0]["fallback"]) == (6, 0)

    model = ScriptedModel("no idea")
    result, _, moves = play_pairing("llm(fallback=cooperate)", "alld", game="ipd", payoffs=(3, 0, 5, 1), turns=3,
                                    repetitions=2, noise=0.0, seed=np.random.SeedSequence(0),
                                    build_model=roles_of(model))
    assert result.cooperation[0].tolist() == [1.0, 1.0]
    assert {k: moves[0][k] for k in ("moves", "retried", "unparseable", "truncated", "fallback")} == \
        {"moves": 6, "retried": 6, "unparseable": 6, "truncated": 0, "fallback": 6}


def test_truncated_replies_are_counted_apart_from_unparseable():
    class Cut:
        def complete(self, prompts, **kw):
            return [Completion("Well, considering the", finish_reason="length") for _ in prompts]

    _, roles, moves = play_pairing("llm(fallback=defect)", "allc", game="chicken", payoffs=(3, 1, 5, 0), turns=2,
                                   repetitions=3, noise=0.0, seed=np.random.SeedSequence(0),
                                   build_model=roles_of(Cut()))
    assert (moves[0]["truncated"], moves[0]["unparseable"], moves[0]["fallback"]) == (6, 0, 6)
    assert roles[0].truncated == 12  # first tries and retries


def test_chicken_words_and_public_goods_group():
    model = ScriptedModel("Move: straight")
    result, _, _ = play_pairing("llm", "allc", game="chicken", payoffs=(3, 1, 5, 0), turns=3, repetitions=2,
                                noise=0.0, seed=np.random.SeedSequence(0), build_model=roles_of(model))
    assert result.payoff[0].tolist() == [5.0, 5.0]

    class Always:  # the classic strategies read two-player observations only
        def __init__(self, action):
            self.action = action

        def reset_batch(self, n, seed=None):
            pass

        def act_batch(self, observations):
            assert np.all((observations >= 0) & (observations <= 8))
            return np.full(len(observations), self.action)

    def llm():
        policy = LLMPlayer()
        policy.bind_model(roles_of(ScriptedModel("Move: contribute"))("embedded", "player"))
        return policy

    factories = [llm, lambda: Always(1), lambda: Always(1), lambda: Always(0)]
    result = play_group(factories, multiplier=2.0, turns=4, repetitions=3, noise=0.0, seed=np.random.SeedSequence(1))
    # two contributors of 4, multiplier 2: each gets 1; contributors pay 1
    np.testing.assert_allclose(result.payoff[:, 0], [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(result.cooperation[:, 0], [1, 0, 0, 1])


@pytest.mark.parametrize("spec, message", [
    ("llm(persona=grumpy)", "unknown persona 'grumpy'"),
    ("llm(history=-1)", "history=-1"),
    ("llm(fallback=coin)", "fallback='coin'"),
    ("llm(model=bogus)", "unknown model 'bogus'"),
])
def test_bad_llm_specs(spec, message):
    with pytest.raises(PnyxError) as e:
        policy_factory(spec)
    assert message in str(e.value)


def test_tournament_with_an_llm_reports_usage_and_moves(tmp_path):
    from pnyx.experiments.runner import run_experiment
    import json

    cfg = tmp_path / "t.yaml"
    cfg.write_text("kind: tournament\nplayers: ['llm(persona=cooperative)', tft, alld]\nturns: 3\nrepetitions: 2\n")
    run_experiment(str(cfg), out=tmp_path / "o", workers=1, progress=False,
                   models=lambda spec: ScriptedModel("Move: cooperate"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["llm"]["llm(persona=cooperative)"]["moves"] == 2 * 3 * 4  # 3 pairings, self-play twice
    assert summary["payoff_matrix"]["llm(persona=cooperative)"]["tft"] == 3.0
    (usage,) = summary["usage"]
    assert usage["calls"] == 3 * 4 and usage["requests"] == 24
    assert "played as fallback" in (tmp_path / "o" / "report.md").read_text()

"""A2C, partner pools, the distributed training loop and the ``weis-ipd`` experiment at small scale."""

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from pnyx.agents import policy_factory
from pnyx.agents.a2c import BEST_RESPONSE, gae
from pnyx.agents.sequence import START, build_net, load_net, load_policy, save_policy
from pnyx.errors import PnyxError
from pnyx.population.partners import KIND_IDS, PartnerPool
from pnyx.population.diverse_partner_training import Trainer, TrainingSpec, play

PAYOFFS = [1, -1, 2, 0]
MODEL = {"kind": "gru", "payoffs": PAYOFFS, "embed": 8, "hidden": 16}


def test_gae_matches_hand_computation():
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.2], [0.1]])
    # delta = r_t + 0.9 v_{t+1} - v_t = 0.68, -0.11, 1.9; A_t = delta_t + 0.9 * 0.8 * A_{t+1}
    expected = torch.tensor([[0.68 + 0.72 * (-0.11 + 0.72 * 1.9)], [-0.11 + 0.72 * 1.9], [1.9]])
    torch.testing.assert_close(gae(rewards, values, 0.9, 0.8), expected)
    # lambda = 1: discounted return minus value
    returns = torch.tensor([[1 + 0.9 * 0 + 0.81 * 2], [0 + 0.9 * 2], [2.0]])
    torch.testing.assert_close(gae(rewards, values, 0.9, 1.0), returns - values)


def test_partner_pools_are_seeded_and_typed():
    pool = PartnerPool.parse({"learner": 1, "uniform_memory_one": 1, "tft": 1, "grim": 1, "league": 1})
    a = pool.draw(400, np.random.default_rng(3), league_size=3)
    b = pool.draw(400, np.random.default_rng(3), league_size=3)
    for field in ("component", "tabular", "league", "policy_seeds"):
        assert np.array_equal(getattr(a, field), getattr(b, field), equal_nan=True)
    assert not np.array_equal(a.component, pool.draw(400, np.random.default_rng(4), 3).component)
    assert [c.kind for c in pool.components] == ["learner", "tabular", "tabular", "policy", "league"]
    uniform, tft, grim, league = (a.component == i for i in (1, 2, 3, 4))
    assert np.all((a.tabular[uniform] >= 0) & (a.tabular[uniform] <= 1))
    assert len(np.unique(a.tabular[uniform][:, 0])) == uniform.sum()  # fresh parameters per episode
    assert np.all(a.tabular[tft] == [1, 0, 1, 0, 1])
    assert np.all(np.isnan(a.tabular[grim | league | (a.component == 0)]))
    assert set(a.league[league]) == {0, 1, 2} and np.all(a.league[~league] == -1)
    mixed = PartnerPool.parse("mixed_pool")
    assert mixed.mix == {"learner": 0.5, "uniform_memory_one": 0.5}
    assert abs(np.mean(mixed.draw(20000, np.random.default_rng(0)).component == 0) - 0.5) < 0.02
    assert PartnerPool.parse("alld").mix == {"alld": 1.0}


def test_bad_partner_pools_name_the_token():
    with pytest.raises(PnyxError, match="unknown policy 'nosuch'"):
        PartnerPool.parse({"nosuch": 1})
    with pytest.raises(PnyxError, match="weight 0 for 'tft'"):
        PartnerPool.parse({"tft": 0})
    with pytest.raises(PnyxError, match="league"):
        PartnerPool.parse("league").draw(4, np.random.default_rng(0))


def _always(defect: bool):
    net = build_net(MODEL).eval()
    with torch.no_grad():
        net.policy.weight.zero_()
        net.policy.bias.copy_(torch.tensor([0.0, 30.0] if defect else [30.0, 0.0]))
    return net


def _tit_for_tat():
    """A GRU hand-set to tit for tat: the input's first feature is +1 after the partner defected
    (codes CD, DD) and -1 otherwise (CC, DC, first round); the update gate is shut, so the
    state is tanh(10 x) of this step only, and the defect logit is 60 times it."""
    net = build_net(MODEL).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.inputs.obs.weight[:, 0] = torch.tensor([-1.0, 1.0, -1.0, 1.0, -1.0])
        hidden = net.hidden
        net.cell.bias_ih[hidden:2 * hidden] = -30.0
        net.cell.weight_ih[2 * hidden, 0] = 10.0
        net.policy.weight[1, 0] = 60.0
    return net


def test_checkpoint_round_trip_plays_the_saved_policy(tmp_path):
    path = tmp_path / "tft.pt"
    save_policy(path, _tit_for_tat(), partner_id=KIND_IDS["tabular"])
    assert load_net(path)[1] == KIND_IDS["tabular"]
    policy = load_policy(path)
    policy.reset(seed=0)
    # first round, then CC, CD, DD, DC, CD, CC: tit for tat answers the partner's last move
    assert [policy.act(o) for o in [START, 0, 1, 3, 2, 1, 0]] == [0, 0, 1, 1, 0, 1, 0]
    policy.reset_batch(3, seed=1)
    assert policy.act_batch(np.array([START, START, START])).tolist() == [0, 0, 0]
    assert policy.act_batch(np.array([1, 0, 3])).tolist() == [1, 0, 1]
    # as a player spec against alld: S once, then P
    from pnyx.population.match import play_batched

    result = play_batched(policy_factory(str(path)), policy_factory("alld"), payoffs=PAYOFFS, turns=10,
                          repetitions=2, noise=0.0, seed=np.random.SeedSequence(0))
    assert result.payoff.tolist() == [[-0.1, -0.1], [0.2, 0.2]]
    assert result.cooperation.tolist() == [[0.1, 0.1], [0.0, 0.0]]


def _play(net, partners, games=2, rounds=4):
    pool = PartnerPool.parse(partners)
    rng = np.random.default_rng(0)
    return play(net, pool, [pool.draw(games, rng)], [rng.random((rounds, games, 2))], [], rounds, partner_id=True)


def test_play_follows_the_ipd():
    out = _play(_always(True), "tft")  # D vs tft: T, then P
    assert out["obs"][:, 0].tolist() == [START, 2, 3, 3]
    assert out["rewards"][:, 0].tolist() == [2, 0, 0, 0]
    assert out["partner"].tolist() == [KIND_IDS["tabular"]] * 2
    out = _play(_always(False), "allc")
    assert out["obs"][:, 1].tolist() == [START, 0, 0, 0] and out["rewards"].sum() == 8
    assert out["cooperation"].tolist() == [2.0] and out["episodes"].tolist() == [2]
    out = _play(_always(True), "self_play")  # both seats of each game are learner rows
    assert out["obs"].shape == (4, 4) and out["obs"][1:].tolist() == [[3] * 4] * 3
    assert out["partner"].tolist() == [KIND_IDS["learner"]] * 4
    out = _play(_always(False), "alternator")  # a batch policy partner: C, D, C, D
    assert out["rewards"][:, 0].tolist() == [1, -1, 1, -1]


def _spec(**changes):
    fields = dict(model=MODEL, a2c=BEST_RESPONSE.model_copy(update={"batch": 64}), rounds=6, iterations=3,
                  seed=(7,), partners={"learner": 1, "uniform_memory_one": 1, "tft": 0.5, "grim": 0.5, "league": 0.5},
                  shards=4, eval_every=1, eval_games=16, final_eval_games=16, league_every=2, league_size=2,
                  checkpoint_every=1)
    return TrainingSpec(**(fields | changes))


def _curve(result):
    return [{k: v for k, v in point.items() if k != "seconds"} for point in result.curve]


def test_tiny_a2c_learns_to_defect_against_allc():
    spec = _spec(partners={"allc": 1}, rounds=5, iterations=25, eval_every=25, final_eval_games=256,
                 a2c=BEST_RESPONSE.model_copy(update={"batch": 64, "lr": 0.02}))
    result = Trainer(spec, workers=0).run()
    assert result.curve[0]["vs_allc_defection"] < 0.8
    assert result.curve[-1]["vs_allc_defection"] > 0.95


def test_two_ray_workers_give_the_curve_of_one(ray_session):
    curves, weights = [], []
    for workers in (1, 2, 0):
        trainer = Trainer(_spec(), workers=workers)
        try:
            result = trainer.run()
        finally:
            trainer.close()
        curves.append(_curve(result))
        weights.append(torch.cat([p.detach().flatten() for p in result.net.parameters()]))
    assert curves[0] == curves[1] == curves[2]
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[0], weights[2])


def test_resume_continues_the_same_curve(tmp_path):
    whole = Trainer(_spec(iterations=4), workers=0).run()
    Trainer(_spec(iterations=2), workers=0, checkpoint_dir=tmp_path).run()
    resumed = Trainer(_spec(iterations=4), workers=0, checkpoint_dir=tmp_path)
    assert resumed.iteration == 2
    assert _curve(resumed.run()) == _curve(whole)
    saved = load_policy(tmp_path / "learner.pt").net.state_dict()
    final = whole.net.state_dict()
    assert saved.keys() == final.keys() and all(torch.equal(saved[k], final[k]) for k in final)
    with pytest.raises(PnyxError, match="different configuration"):
        Trainer(_spec(iterations=4, rounds=5), workers=0, checkpoint_dir=tmp_path)


def test_nan_loss_stops_with_a_clear_message():
    spec = _spec(model=MODEL | {"payoffs": [float("nan"), -1, 2, 0]}, partners={"allc": 1})
    with pytest.raises(PnyxError, match=r"iteration 0: A2C loss became nan"):
        Trainer(spec, workers=0).run()


def _config(**changes):
    from pnyx.experiments.weis_ipd import WeisConfig

    return WeisConfig.model_validate({"kind": "weis-ipd", **changes})


def test_config_defaults_are_the_paper_and_bad_values_name_the_field():
    cfg = _config()
    assert cfg.rounds == 100 and cfg.payoffs == (1, -1, 2, 0) and cfg.a2c.batch == 4096
    assert list(cfg.conditions) == ["best_response", "mixed_pool", "no_tabular", "partner_id"]
    assert cfg.conditions["best_response"].a2c == BEST_RESPONSE and cfg.conditions["partner_id"].partner_id
    with pytest.raises(ValidationError, match="unknown policy 'nosuch'"):
        _config(conditions={"x": {"partners": "nosuch"}})
    with pytest.raises(ValidationError, match="not a multiple of shards=16"):
        _config(a2c={"batch": 100})


def test_unit_rows_summary_and_plots(tmp_path):
    from pnyx.experiments.weis_ipd import BEST_RESPONSE_LEVEL, METRICS, WeisIPD

    kind = WeisIPD()
    cfg = _config(rounds=5, iterations=2, workers=0, shards=2, eval_every=1, eval_games=8, final_eval_games=8,
                  a2c={"batch": 16}, checkpoint_dir=str(tmp_path / "ckpt"),
                  conditions={"best_response": {"partners": "reduced"}, "partner_id": {"partners": "mixed_pool",
                                                                                       "partner_id": True}})
    from pnyx.experiments.experiment import RunContext

    ctx = RunContext(tmp_path / "run", progress=False)
    outputs = [kind.run_unit(cfg, u, np.random.SeedSequence(i), ctx) for i, u in enumerate(kind.units(cfg))]
    import pandas as pd

    rows = pd.concat([o.rows for o in outputs], ignore_index=True)
    records = {"within_episode": [r for o in outputs for r in o.records["within_episode"]]}
    summary = kind.summarize(cfg, rows, records)
    assert json.loads(json.dumps(summary)) == summary  # plain JSON types, no NaN
    assert set(summary["conditions"]) == {"best_response", "partner_id"} and summary["ray"] == {"workers": 0}
    for c in summary["conditions"].values():
        assert (c["iterations"], c["workers"]) == (2, 0)
        within = c["within_episode"]
        assert set(within) == {"learner", "tft", "allc", "alld"} and all(len(v) == 5 for v in within.values())
        # each round's rate is a share of the 8 final evaluation games (16 seats in self-play)
        assert all(0 <= x <= 1 and (16 * x).is_integer() for v in within.values() for x in v)
        # the final metrics are the within-episode rates averaged over rounds
        assert c["learner_vs_learner_cooperation"] == pytest.approx(np.mean(within["learner"]))
        assert c["vs_tft_cooperation"] == pytest.approx(np.mean(within["tft"]))
        assert c["vs_allc_defection"] == pytest.approx(1 - np.mean(within["allc"]))
        assert c["vs_alld_defection"] == pytest.approx(1 - np.mean(within["alld"]))
        curve = c["learning_curve"]
        assert [p["iteration"] for p in curve] == [0, 1, 2]
        assert all(0 <= p[m] <= 1 for p in curve for m in METRICS)
        # iteration 0 is evaluated before any update, so it has no training statistics
        assert curve[0]["reward"] is None and curve[0]["entropy"] is None
        assert all(-1 <= p["reward"] <= 2 and 0 <= p["entropy"] <= np.log(2) for p in curve[1:])
    br = summary["conditions"]["best_response"]
    assert summary["best_response_reached"] == (br["vs_tft_cooperation"] >= BEST_RESPONSE_LEVEL
                                                and br["vs_allc_defection"] >= BEST_RESPONSE_LEVEL)
    assert (tmp_path / "ckpt" / "partner_id" / "learner.pt").is_file()
    figures = kind.plot(cfg, rows, summary)
    assert set(figures) == {"cooperation_over_training", "within_episode_cooperation"}
    assert all(figure.axes for figure in figures.values())
    assert "| best_response | 2 |" in kind.report(cfg, summary)


@pytest.mark.slow
def test_weis_preset_runs_end_to_end_on_ray(ray_session, tmp_path):
    from pnyx.experiments.runner import run_experiment

    summary = run_experiment("weis-ipd", out=tmp_path / "run", quick=True, progress=False, overrides=[
        "iterations=2", "rounds=5", "eval_every=1", "eval_games=8", "final_eval_games=8",
        "a2c={batch: 32}", "conditions={best_response: {partners: reduced}, no_tabular: {partners: self_play}}"])
    assert set(summary["conditions"]) == {"best_response", "no_tabular"}
    assert all(c["workers"] == 2 for c in summary["conditions"].values())
    assert (tmp_path / "run" / "work" / "no_tabular" / "learner.pt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_signal_stops_training_promptly(tmp_path, workers):
    """SIGTERM once the first checkpoint is written: exit 130 and the resume line, in the
    driver (one worker) and with Ray rollout actors (two)."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pnyx.experiments.cli", "run", "weis-ipd", "--quick", "--set", "iterations=100000",
         "--set", "checkpoint_every=2", "--set", "conditions={best_response: {partners: reduced}}",
         "--workers", str(workers), "--no-progress", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    checkpoint = out / "work" / "best_response" / "last.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("pnyx: interrupted; finished units are kept")
    assert "Traceback" not in err and "SIGTERM received" not in err

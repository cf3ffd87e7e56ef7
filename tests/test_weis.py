"""A2C, partner pools, the distributed training loop and the ``weis-ipd`` experiment at small scale."""

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from interrupts import popen

from pnyx.agents import policy_factory
from pnyx.agents.a2c import BEST_RESPONSE, gae
from pnyx.agents.sequence import START, build_net, load_net, load_policy, save_policy
from pnyx.errors import PnyxError
from pnyx.population.partners import PartnerPool
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


def test_summed_loss_is_the_mean_times_the_rounds():
    """The default loss sums over rounds (appendix A.3.2); ``loss_over_rounds: mean`` is it
    divided by T (T = 6 rounds here), gradient included; the reported parts stay per-round means."""
    from pnyx.agents.a2c import A2CConfig, a2c_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, 2, generator=g, requires_grad=True)
    values, rewards = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    actions = torch.randint(0, 2, (6, 4), generator=g)
    mean, parts = a2c_loss(A2CConfig(loss_over_rounds="mean"), logits, values, actions, rewards)
    summed, same = a2c_loss(A2CConfig(), logits, values, actions, rewards)
    torch.testing.assert_close(summed, 6 * mean)
    assert all(torch.equal(parts[k], same[k]) for k in parts)
    (mean_grad,), (summed_grad,) = (torch.autograd.grad(x, logits) for x in (mean, summed))
    torch.testing.assert_close(summed_grad, 6 * mean_grad)


def test_default_loss_is_appendix_a32_summed_over_rounds_by_hand():
    """Two episodes of two rounds, no advantage normalisation, gamma = lambda = 1: each
    episode's loss is its sum over rounds of -log pi(a) A + c_v (V - R)^2 - c_e H, and the
    batch's loss is the mean of the two."""
    import math

    from pnyx.agents.a2c import A2CConfig, a2c_loss

    cfg = A2CConfig(gamma=1.0, gae_lambda=1.0, normalize_advantages=False, reward_scale=1.0, value_coef=0.5,
                    entropy_coef=0.1)
    logits = torch.tensor([[[0.0, 0.0], [0.0, math.log(3)]], [[math.log(3), 0.0], [0.0, 0.0]]])
    values = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    rewards = torch.tensor([[2.0, 1.0], [1.0, 0.0]])
    actions = torch.tensor([[0, 1], [0, 0]])
    loss, _ = a2c_loss(cfg, logits, values, actions, rewards)
    episodes = []
    for n in range(2):
        total = 0.0
        for t in range(2):
            p = torch.softmax(logits[t, n], -1).tolist()
            ret = float(rewards[t:, n].sum())
            advantage = ret - float(values[t, n])
            entropy = -sum(q * math.log(q) for q in p)
            total += -math.log(p[int(actions[t, n])]) * advantage + 0.5 * advantage ** 2 - 0.1 * entropy
        episodes.append(total)
    assert loss.item() == pytest.approx(sum(episodes) / 2, rel=1e-6)


def test_partner_pools_are_seeded_and_typed():
    pool = PartnerPool.parse({"learner": 1, "uniform_memory_one": 1, "tft": 1, "grim": 1, "league": 1})
    a = pool.draw(400, np.random.default_rng(3), league_size=3, others=2)
    b = pool.draw(400, np.random.default_rng(3), league_size=3, others=2)
    for field in ("component", "tabular", "league", "other", "policy_seeds"):
        assert np.array_equal(getattr(a, field), getattr(b, field), equal_nan=True)
    assert not np.array_equal(a.component, pool.draw(400, np.random.default_rng(4), 3).component)
    assert [c.kind for c in pool.components] == ["learner", "tabular", "tabular", "policy", "league"]
    uniform, tft, grim, league = (a.component == i for i in (1, 2, 3, 4))
    assert np.all((a.tabular[uniform] >= 0) & (a.tabular[uniform] <= 1))
    assert len(np.unique(a.tabular[uniform][:, 0])) == uniform.sum()  # fresh parameters per episode
    assert np.all(a.tabular[tft] == [1, 0, 1, 0, 1])
    assert np.all(np.isnan(a.tabular[grim | league | (a.component == 0)]))
    assert set(a.league[league]) == {0, 1, 2} and np.all(a.league[~league] == -1)
    learner = a.component == 0
    assert set(a.other[learner]) == {0, 1} and np.all(a.other[~learner] == -1)
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
    state is tanh(10 x) of this step only, and the defect logit is 60 times its Swish."""
    net = build_net(MODEL).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.inputs.obs.weight[0] = torch.tensor([-1.0, 1.0, -1.0, 1.0, -1.0])
        hidden = net.hidden
        net.cell.bias_ih[hidden:2 * hidden] = -30.0
        net.cell.weight_ih[2 * hidden, 0] = 10.0
        net.policy.weight[1, 0] = 60.0
    return net


def test_checkpoint_round_trip_plays_the_saved_policy(tmp_path):
    path = tmp_path / "tft.pt"
    save_policy(path, _tit_for_tat(), partner_id=[0.5] * 10)
    assert load_net(path)[1] == [0.5] * 10
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


def _play(net, partners, games=2, rounds=4, partner_net=None):
    pool = PartnerPool.parse(partners)
    rng = np.random.default_rng(0)
    return play(net, [partner_net or net], pool, [pool.draw(games, rng)], [rng.random((rounds, games, 2))], [],
                rounds, opponent_id=False)


def test_play_follows_the_ipd():
    out = _play(_always(True), "tft")  # D vs tft: T, then P
    assert out["obs"][:, 0].tolist() == [START, 2, 3, 3]
    assert out["rewards"][:, 0].tolist() == [2, 0, 0, 0]
    assert out["partner_actions"][:, 0].tolist() == [0, 1, 1, 1]
    out = _play(_always(False), "allc")
    assert out["obs"][:, 1].tolist() == [START, 0, 0, 0] and out["rewards"].sum() == 8
    assert out["cooperation"].tolist() == [8.0] and out["episodes"].tolist() == [2]
    # a learner partner is the other network; only seat 0 comes back as rows
    out = _play(_always(False), "learners", partner_net=_always(True))
    assert out["obs"].shape == (4, 2) and out["obs"][1:].tolist() == [[1, 1]] * 3
    assert out["rewards"][:, 0].tolist() == [-1] * 4 and out["z"].shape == (2, 0)
    out = _play(_always(False), "alternator")  # a batch policy partner: C, D, C, D
    assert out["rewards"][:, 0].tolist() == [1, -1, 1, -1]


def test_opponent_z_is_the_papers_log_probabilities():
    from pnyx.population.partners import Z_FLOOR, opponent_z

    table = np.array([[0.9, 0.2, 0.5, 0.25, 0.8], [np.nan] * 5, [1, 0, 1, 0, 1]])
    z = opponent_z(table)
    ln = np.log
    # observation-major: CC, CD, DC, DD, start; within each: log P(C), log P(D)
    assert z[0] == pytest.approx([ln(0.9), ln(0.1), ln(0.2), ln(0.8), ln(0.5), ln(0.5), ln(0.25), ln(0.75),
                                  ln(0.8), ln(0.2)])
    assert z[1].tolist() == [0.0] * 10  # a learning partner
    floor = ln(Z_FLOOR)
    assert z[2] == pytest.approx([0, floor, floor, 0, 0, floor, floor, 0, 0, floor])  # tit for tat, clipped
    # in play, a tabular game's row carries its partner's z, a learner game's row zeros
    pool = PartnerPool.parse("mixed_pool")
    rng = np.random.default_rng(1)
    draw = pool.draw(8, rng, others=1)
    net = build_net(MODEL | {"opponent_id": True}).eval()
    out = play(net, [net], pool, [draw], [rng.random((3, 8, 2))], [], 3, opponent_id=True)
    assert out["z"].shape == (8, 10)
    np.testing.assert_allclose(out["z"], opponent_z(draw.tabular), rtol=1e-6)
    assert np.all(out["z"][draw.component == 0] == 0) and np.all(out["z"][draw.component == 1] < 0)


def _spec(**changes):
    fields = dict(model=MODEL, a2c=BEST_RESPONSE.model_copy(update={"batch": 64}), rounds=6, iterations=3,
                  seed=(7,), partners={"learner": 1, "uniform_memory_one": 1, "tft": 0.5, "grim": 0.5, "league": 0.5},
                  learners=2, shards=4, eval_every=1, eval_games=16, final_eval_games=16, league_every=2,
                  league_size=2, checkpoint_every=1)
    return TrainingSpec(**(fields | changes))


def _curve(result):
    return [{k: v for k, v in point.items() if k != "seconds"} for point in result.curve]


def test_tiny_a2c_learns_to_defect_against_allc():
    spec = _spec(partners={"allc": 1}, learners=1, rounds=5, iterations=25, eval_every=25, final_eval_games=256,
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
        weights.append(torch.cat([p.detach().flatten() for net in result.nets for p in net.parameters()]))
    assert curves[0] == curves[1] == curves[2]
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[0], weights[2])


def test_resume_continues_the_same_curve(tmp_path):
    whole = Trainer(_spec(iterations=4, snapshots=(1, 3)), workers=0).run()
    Trainer(_spec(iterations=2, snapshots=(1, 3)), workers=0, checkpoint_dir=tmp_path).run()
    resumed = Trainer(_spec(iterations=4, snapshots=(1, 3)), workers=0, checkpoint_dir=tmp_path)
    assert resumed.iteration == 2
    result = resumed.run()
    assert _curve(result) == _curve(whole)
    # the snapshot at iteration 1 comes from the checkpoint, the one at 3 from the resumed run
    assert list(whole.snapshots) == [1, 3] and result.snapshots == whole.snapshots
    for i, net in enumerate(whole.nets):
        saved = load_policy(tmp_path / f"learner{i}.pt").net.state_dict()
        final = net.state_dict()
        assert saved.keys() == final.keys() and all(torch.equal(saved[k], final[k]) for k in final)
    with pytest.raises(PnyxError, match="different configuration"):
        Trainer(_spec(iterations=4, rounds=5), workers=0, checkpoint_dir=tmp_path)


def test_nan_loss_stops_with_a_clear_message():
    spec = _spec(model=MODEL | {"payoffs": [float("nan"), -1, 2, 0]}, partners={"allc": 1})
    with pytest.raises(PnyxError, match=r"iteration 0, learner 0: A2C loss became nan"):
        Trainer(spec, workers=0).run()


def test_independent_learners_have_their_own_weights_optimisers_and_partner_rows():
    spec = _spec(partners={"learner": 0.5, "uniform_memory_one": 0.5}, iterations=1, league_size=1,
                 a2c=BEST_RESPONSE.model_copy(update={"batch": 512}), shards=4)
    trainer = Trainer(spec, workers=0)
    first, second = trainer.nets
    assert first is not second and not any(a is b for a, b in zip(first.parameters(), second.parameters()))
    assert trainer.a2cs[0].optimizer is not trainer.a2cs[1].optimizer
    before = [[p.detach().clone() for p in net.parameters()] for net in trainer.nets]
    batches = trainer.gather(0)
    for i, batch in enumerate(batches):
        # each learner's own rows: batch games, partners drawn 50/50 (binomial sd 11 of 512)
        assert batch["obs"].shape == (spec.rounds, 512)
        learner_games = batch["episodes"][0]
        assert abs(learner_games - 256) < 4 * np.sqrt(512 * 0.25), learner_games
    assert not np.array_equal(batches[0]["actions"], batches[1]["actions"])
    trainer.update(0, batches[0], 0)
    # updating learner 0 leaves learner 1 and its optimiser untouched
    assert all(torch.equal(a, b) for a, b in zip(before[1], second.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(before[0], first.parameters()))
    assert trainer.a2cs[1].optimizer.state == {} and len(trainer.a2cs[0].optimizer.state) > 0
    trainer.update(1, batches[1], 0)
    flat = [torch.cat([p.detach().flatten() for p in net.parameters()]) for net in trainer.nets]
    assert not torch.equal(flat[0], flat[1])
    states = [a.optimizer.state_dict()["state"] for a in trainer.a2cs]
    assert not torch.equal(states[0][0]["exp_avg"], states[1][0]["exp_avg"])


def test_learner_partner_needs_two_learners():
    with pytest.raises(PnyxError, match="another learner"):
        _spec(partners={"learner": 1}, learners=1)


def _config(**changes):
    from pnyx.experiments.weis_ipd import WeisConfig

    return WeisConfig.model_validate({"kind": "weis-ipd", **changes})


def test_config_defaults_are_the_paper_and_bad_values_name_the_field():
    cfg = _config()
    assert cfg.rounds == 100 and cfg.payoffs == (1, -1, 2, 0) and cfg.a2c.batch == 4096
    assert cfg.iterations == 200000 and cfg.a2c.entropy_coef == 0.01 and cfg.a2c.lr == 0.001
    assert list(cfg.conditions) == ["best_response", "mixed_pool", "no_tabular", "opponent_id"]
    assert cfg.conditions["best_response"].a2c == BEST_RESPONSE and cfg.conditions["opponent_id"].opponent_id
    assert [c.learner_count() for c in cfg.conditions.values()] == [1, 2, 2, 2]
    from pnyx.experiments.config import resolve

    _, preset = resolve("weis-ipd")
    assert preset.seeds == 10 and preset.iterations == 200000 and preset.a2c == cfg.a2c.model_copy(update={"td_lambda": 1.0})
    assert preset.conditions["best_response"].a2c == BEST_RESPONSE.model_copy(update={"td_lambda": 0.99})
    with pytest.raises(ValidationError, match="learners=1"):
        _config(conditions={"x": {"partners": "mixed_pool", "learners": 1}})
    with pytest.raises(ValidationError, match="unknown policy 'nosuch'"):
        _config(conditions={"x": {"partners": "nosuch"}})
    with pytest.raises(ValidationError, match="not a multiple of shards=16"):
        _config(a2c={"batch": 100})
    # section 3.1's identity flag is a variant of the opponent-ID condition, off by default (A.4.1: z = 0)
    assert not cfg.conditions["opponent_id"].learner_flag
    with pytest.raises(ValidationError, match="learner_flag is a variant of opponent_id"):
        _config(conditions={"x": {"partners": "mixed_pool", "learner_flag": True}})
    from pnyx.experiments.weis_ipd import Condition, WeisIPD

    flagged = Condition(partners="mixed_pool", opponent_id=True, learner_flag=True)
    model = WeisIPD._a2c_spec(cfg, flagged, np.random.SeedSequence(0)).model
    assert model["learner_flag"] and build_net(model).prefix.in_features == 11
    assert cfg.model.embedding == "shared" and cfg.model.swish


def test_unit_rows_summary_and_plots(tmp_path):
    from pnyx.experiments.weis_ipd import BEST_RESPONSE_LEVEL, METRICS, WeisIPD

    kind = WeisIPD()
    cfg = _config(rounds=5, iterations=2, workers=0, shards=2, eval_every=1, eval_games=8, final_eval_games=8,
                  a2c={"batch": 16}, checkpoint_dir=str(tmp_path / "ckpt"), seeds=2, snapshots=[1, 0, 5],
                  conditions={"best_response": {"partners": "reduced"}, "opponent_id": {"partners": "mixed_pool",
                                                                                         "opponent_id": True}})
    from pnyx.experiments.experiment import RunContext, RunOptions

    ctx = RunContext(tmp_path / "run", RunOptions(progress=False))
    outputs = [kind.run_unit(cfg, u, np.random.SeedSequence(i), ctx) for i, u in enumerate(kind.units(cfg))]
    import pandas as pd

    rows = pd.concat([o.rows for o in outputs], ignore_index=True)
    records = {name: [r for o in outputs for r in o.records[name]] for name in ("within_episode", "snapshots")}
    summary = kind.summarize(cfg, rows, records)
    dumped = summary.model_dump()
    assert json.loads(json.dumps(dumped)) == dumped  # plain JSON types, no NaN
    assert set(dumped["conditions"]) == {"best_response", "opponent_id"} and dumped["ray"] == {"workers": 0}
    assert [u.key for u in kind.units(cfg)][:2] == ["best_response.seed0", "best_response.seed1"]
    for c in dumped["conditions"].values():
        assert (c["seeds"], c["iterations"], c["workers"]) == (2, 2, 0)
        within = c["within_episode"]
        assert set(within) == {"learner", "tft", "allc", "alld"} and all(len(v) == 5 for v in within.values())
        # each round's rate is a share of 8 final evaluation games per learner, averaged over learners and seeds
        assert all(0 <= x <= 1 and (32 * x).is_integer() for v in within.values() for x in v)
        # the final metrics are across-seed means of the within-episode rates averaged over rounds
        for m, partner, sign in [("learner_vs_learner_cooperation", "learner", 1), ("vs_tft_cooperation", "tft", 1),
                                 ("vs_allc_defection", "allc", -1), ("vs_alld_defection", "alld", -1)]:
            assert c[m]["value"] == pytest.approx((1 - sign) / 2 + sign * np.mean(within[partner]))
            seeds = [s[m] for s in c["per_seed"].values()]
            assert c[m]["n"] == 2 and c[m]["value"] == pytest.approx(np.mean(seeds))
            assert c[f"{m}_std"] == pytest.approx(np.std(seeds, ddof=1))
            half = 12.706204736 * np.std(seeds, ddof=1) / np.sqrt(2)  # t(0.975, 1 df)
            assert c[m]["low"] == pytest.approx(max(np.mean(seeds) - half, 0.0))  # clipped to a rate's range
            assert c[m]["high"] == pytest.approx(min(np.mean(seeds) + half, 1.0))
        assert set(c["seed_curves"]) == {"0", "1"}
        curve = c["learning_curve"]
        assert [p["iteration"] for p in curve] == [0, 1, 2]
        assert all(0 <= p[m] <= 1 for p in curve for m in METRICS)
        # iteration 0 is evaluated before any update, so it has no training statistics
        assert curve[0]["reward"] is None and curve[0]["entropy"] is None
        assert all(-1 <= p["reward"] <= 2 and 0 <= p["entropy"] <= np.log(2) for p in curve[1:])
    # snapshots: the evaluation episodes at iterations 0 and 1 (5 is never reached), the
    # same games as the curve's points there, so their round means are the curve's metrics
    for c in summary.conditions.values():
        assert list(c.snapshots) == ["0", "1"]
        for point in c.learning_curve[:2]:
            kept = c.snapshots[str(point["iteration"])]
            assert set(kept) == {"learner", "tft", "allc", "alld"} and all(len(v) == 5 for v in kept.values())
            assert np.mean(kept["tft"]) == pytest.approx(point["vs_tft_cooperation"])
            assert 1 - np.mean(kept["alld"]) == pytest.approx(point["vs_alld_defection"])
    br = summary.conditions["best_response"]
    assert summary.best_response_reached == (br.vs_tft_cooperation.value >= BEST_RESPONSE_LEVEL
                                             and br.vs_allc_defection.value >= BEST_RESPONSE_LEVEL)
    assert (tmp_path / "ckpt" / "opponent_id" / "seed1" / "learner1.pt").is_file()
    figures = kind.plot(cfg, rows, summary)
    assert set(figures) == {"cooperation_over_training", "within_episode_cooperation", "figure1", "figure3"}
    assert all(figure.axes for figure in figures.values())
    # Figure 1: every condition's learner-vs-learner cooperation in one panel, mean line and +-1 sd band
    (ax,) = figures["figure1"].axes
    assert [line.get_label() for line in ax.get_lines()] == ["best_response (one learner: vs itself)", "opponent_id"]
    curve = summary.conditions["opponent_id"].seed_curves
    seeds = [[p["learner_vs_learner_cooperation"] for p in curve[k]] for k in ("0", "1")]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), np.mean(seeds, axis=0))
    assert len(ax.collections) == 2  # two seeds: a band per condition
    title = figures["figure1"].get_suptitle()
    assert "Weis et al. 2026, Figure 1" in title
    assert "CPU-scale quick run (2 seeds, 5 rounds, A2C 2 updates of 16 episodes), not the paper's result" in title
    figure3 = figures["figure3"]
    assert "Weis et al. 2026, Figure 3" in figure3.get_suptitle()
    # a row per condition, a column per snapshot reached, a line per evaluation partner
    assert [ax.get_title() for ax in figure3.axes] == ["iteration 0", "iteration 1"] * 2
    assert [len(ax.get_lines()) for ax in figure3.axes] == [4] * 4
    assert "| best_response | 2 | 2 |" in kind.report(cfg, summary)
    from pnyx.experiments.report import write_report

    write_report(tmp_path, kind, cfg, {**dumped, "run": {"units": 4}}, summary)
    assert "Seed 0; 4 units, 0 failed; in one process, no Ray workers." in (tmp_path / "report.md").read_text()


def test_ppi_conditions_keep_snapshots_for_figure_3(tmp_path):
    """``ppi_snapshots``: a PPI condition keeps its evaluation episodes at those phases, the
    phase's curve point per round; Figure 3 gets a row per method's condition."""
    from pnyx.experiments.experiment import RunContext, RunOptions
    from pnyx.experiments.weis_ipd import WeisIPD

    kind = WeisIPD()
    cfg = _config(rounds=4, iterations=2, workers=0, shards=2, eval_every=1, eval_games=4, final_eval_games=4,
                  learner_threads=1, a2c={"batch": 8}, model={"embed": 4, "hidden": 8}, snapshots=[1],
                  ppi_snapshots=[2, 1, 9],
                  ppi={"phases": 2, "episodes": 8, "pretrain_episodes": 16, "epochs": 1, "batch": 8, "rollouts": 1,
                       "horizon": 2}, ppi_eval_games=6, ppi_final_eval_games=2,
                  conditions={"br": {"partners": "reduced"},
                              "ppi_mixed": {"method": "ppi", "partners": "mixed_pool"}})
    ctx = RunContext(tmp_path / "run", RunOptions(progress=False))
    outputs = [kind.run_unit(cfg, u, np.random.SeedSequence(i), ctx) for i, u in enumerate(kind.units(cfg))]
    import pandas as pd

    rows = pd.concat([o.rows for o in outputs], ignore_index=True)
    records = {name: [r for o in outputs for r in o.records[name]] for name in ("within_episode", "snapshots")}
    summary = kind.summarize(cfg, rows, records)
    ppi = summary.conditions["ppi_mixed"]
    assert list(ppi.snapshots) == ["1", "2"]  # phase 9 is never reached
    for point in ppi.learning_curve:
        kept = ppi.snapshots[str(point["iteration"])]
        assert set(kept) == {"learner", "tft", "allc", "alld"} and all(len(v) == 4 for v in kept.values())
        assert np.mean(kept["tft"]) == pytest.approx(point["vs_tft_cooperation"])
        assert all((12 * x).is_integer() for x in kept["tft"])  # ppi_eval_games=6 games of each of 2 learners
    assert all((4 * x).is_integer() for x in ppi.within_episode["tft"])  # ppi_final_eval_games=2 per learner
    figure3 = kind.plot(cfg, rows, summary)["figure3"]
    titles = [ax.get_title() for ax in figure3.axes]
    assert titles == ["iteration 1", "", "phase 1", "phase 2"]  # A2C's one snapshot, PPI's two
    assert [ax.get_ylabel() for ax in figure3.axes[::2]] == ["br (a2c)\ncooperation", "ppi_mixed (ppi)\ncooperation"]


def test_weis_figures_parts_are_the_two_presets():
    """The suite's parts are weis-ipd and weis-mechanism as shipped, at full scale and at
    ``--quick`` (weis-ipd's PPI conditions run too)."""
    from pnyx.experiments.catalog import preset_path
    from pnyx.experiments.config import load_yaml, resolve

    suite = load_yaml(preset_path("weis-figures"))
    quick = suite.pop("quick")["parts"]
    for part, name in (("ipd", "weis-ipd"), ("mechanism", "weis-mechanism")):
        preset = load_yaml(preset_path(name))
        preset_quick = preset.pop("quick")
        preset.pop("description"), preset.pop("seed")
        assert suite["parts"][part] == preset
        assert quick[part] == preset_quick | ({"methods": ["a2c", "ppi"]} if name == "weis-ipd" else {})
    _, cfg = resolve("weis-figures", quick=True)
    assert cfg.part_configs()["ipd"]["methods"] == ["a2c", "ppi"]


@pytest.mark.slow
def test_weis_preset_runs_end_to_end_on_ray(ray_session, tmp_path):
    from pnyx.experiments.runner import run_experiment

    summary = run_experiment("weis-ipd", out=tmp_path / "run", quick=True, progress=False, overrides=[
        "iterations=2", "rounds=5", "eval_every=1", "eval_games=8", "final_eval_games=8",
        "a2c={batch: 32}", "seeds=1", "conditions={best_response: {partners: reduced}, no_tabular: {partners: learners}}"])
    assert set(summary["conditions"]) == {"best_response", "no_tabular"}
    assert all(c["workers"] == 2 for c in summary["conditions"].values())
    assert (tmp_path / "run" / "work" / "no_tabular" / "seed0" / "learner1.pt").is_file()


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
    proc = popen(
        [sys.executable, "-m", "pnyx.experiments.cli", "run", "weis-ipd", "--quick", "--set", "iterations=100000",
         "--set", "checkpoint_every=2", "--set", "seeds=1", "--set", "conditions={best_response: {partners: reduced}}",
         "--workers", str(workers), "--no-progress", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    checkpoint = out / "work" / "best_response" / "seed0" / "last.pt"
    deadline = time.monotonic() + 900
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("pnyx: interrupted; finished units are kept")
    assert "Traceback" not in err and "SIGTERM received" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_cuda_is_a_one_line_error(tmp_path, capsys):
    from pnyx.experiments.cli import main

    assert main(["run", "weis-ipd", "--quick", "--set", "device=cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "device 'cuda' requested but torch finds no CUDA device" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    assert _config(device="auto").device == "auto"


def test_tensorboard_logs_every_curve_point(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from pnyx.experiments.experiment import RunContext, RunOptions
    from pnyx.experiments.weis_ipd import WeisIPD

    kind = WeisIPD()
    cfg = _config(rounds=3, iterations=2, workers=0, shards=2, eval_every=1, eval_games=4, final_eval_games=4,
                  a2c={"batch": 8}, checkpoint_dir=str(tmp_path / "ckpt"), tensorboard=True,
                  conditions={"best_response": {"partners": "reduced"}})
    [unit] = kind.units(cfg)
    out = kind.run_unit(cfg, unit, np.random.SeedSequence(0), RunContext(tmp_path / "run", RunOptions(progress=False)))
    events = EventAccumulator(str(tmp_path / "ckpt" / "best_response" / "seed0" / "tensorboard"))
    events.Reload()
    logged = events.Scalars("vs_tft_cooperation")
    curve = out.rows[~out.rows["final"]]
    assert [e.step for e in logged] == curve["iteration"].tolist() == [0, 1, 2]
    assert [e.value for e in logged] == pytest.approx(curve["vs_tft_cooperation"].tolist())
    assert [e.step for e in events.Scalars("reward")] == [1, 2]


def test_transformer_learners_train_in_the_driver():
    spec = _spec(model={"kind": "transformer", "payoffs": PAYOFFS, "embed": 4, "d_model": 8, "layers": 1, "heads": 2},
                 partners={"tft": 1}, learners=1, iterations=2, rounds=4)
    trainer = Trainer(spec, workers=0)
    assert not trainer.fused
    result = trainer.run()
    assert [p["iteration"] for p in result.curve] == [0, 1, 2, 2] and result.curve[-1]["final"]

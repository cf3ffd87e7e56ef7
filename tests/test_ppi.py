"""Predictive policy improvement: the improved policy, the world model, the phase loop, ``weis-ipd`` with ``method: ppi``."""

import json
import math

import numpy as np
import pytest
import torch

from pnyx.agents.ppi import ImprovedPolicy, PPIConfig, SequenceModel, fit, improved_logits
from pnyx.agents.sequence import START
from pnyx.errors import PnyxError
from pnyx.population import ppi_training
from pnyx.population.partners import opponent_z
from pnyx.population.ppi_training import PPISpec, PPITrainer, memory_one_episodes

PAYOFFS = (1, -1, 2, 0)
PAYOFF = torch.tensor([1.0, -1.0, 2.0, 0.0, 0.0])
TINY = {"embed": 8, "hidden": 16}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(seed=0, opponent_id=False, learner_flag=False):
    torch.manual_seed(seed)
    return SequenceModel(**TINY, opponent_id=opponent_id, learner_flag=learner_flag).eval()


def test_improved_policy_is_the_hand_computed_boltzmann_policy():
    prior = torch.tensor([[0.0, math.log(3.0)]])  # p(C) = 1/4, p(D) = 3/4
    q = torch.tensor([[10.0, 0.0]])
    # pi(C) = (1/4) e^(0.1 * 10) / ((1/4) e^1 + (3/4) e^0) = e / (e + 3)
    pi = improved_logits(prior, q, 0.1).exp()
    torch.testing.assert_close(pi, torch.tensor([[math.e / (math.e + 3), 3 / (math.e + 3)]]))
    torch.testing.assert_close(improved_logits(prior, q, 0.0).exp(), torch.tensor([[0.25, 0.75]]))


@pytest.mark.parametrize("opponent_id,learner_flag", [(False, False), (True, False), (True, True)])
def test_with_beta_zero_the_policy_is_the_models_prior_along_an_episode(opponent_id, learner_flag):
    model = _model(opponent_id=opponent_id, learner_flag=learner_flag)
    codes = torch.tensor([[START, START], [0, 1], [3, 2], [1, 0], [2, 3]])  # o_0 .. o_4 of two games
    z = None
    if opponent_id:  # a tabular partner in game 0, a learner in game 1
        z = torch.from_numpy(opponent_z(np.array([[0.2, 0.4, 0.6, 0.8, 0.9], [np.nan] * 5]))).float()
    with torch.no_grad():
        prior = torch.softmax(model(codes, PAYOFF, z)[0], -1)  # (4, 2, 2): a_0 .. a_3 from whole-episode tokens
    agent = ImprovedPolicy(model, PAYOFFS, PPIConfig(beta=0.0), rounds=4)
    assert agent.spec["learner_flag"] is learner_flag  # section 3.1's flag: one more input to the z token
    if opponent_id:
        assert model.prefix.in_features == 10 + learner_flag
    state = agent.initial_state(2)
    for t in range(4):
        logits, _, state = agent.step(codes[t], z, state)
        torch.testing.assert_close(logits.exp(), prior[t])
    if opponent_id:  # z changes the prediction
        with torch.no_grad():
            other = torch.softmax(model(codes, PAYOFF, torch.zeros_like(z))[0], -1)
        assert not torch.allclose(other[:, 0], prior[:, 0])
        torch.testing.assert_close(other[:, 1], prior[:, 1])  # the learner game's z is 0 already


def test_q_values_of_a_constant_reward_model_are_the_discounted_sums():
    model = _model()
    with torch.no_grad():
        model.reward_head.weight.zero_()
        model.reward_head.bias.fill_(0.5)
    cfg = PPIConfig(beta=1.0, horizon=15, rollouts=3, gamma=0.9)
    agent = ImprovedPolicy(model, PAYOFFS, cfg, rounds=20)
    h = torch.randn(1, 4, TINY["hidden"])
    # 15 rounds ahead from round 0; from round 17 only rounds 17, 18, 19 remain
    for t, steps in ((0, 15), (17, 3)):
        expected = 0.5 * (1 - 0.9 ** steps) / (1 - 0.9)
        torch.testing.assert_close(agent.q_values(h, t), torch.full((4, 2), expected))
    # equal values for both actions leave the prior unchanged
    state = agent.initial_state(4)
    logits, _, _ = agent.step(torch.full((4,), START), None, state)
    prior = torch.log_softmax(model.action_head(model.run(torch.stack(
        [model.embed_obs(torch.full((4,), START)), model.embed_reward(torch.zeros(4))]), None)[0][-1]), -1)
    torch.testing.assert_close(logits, prior.detach())


def test_world_model_predicts_tit_for_tat():
    rng = np.random.default_rng(0)
    rounds, n = 10, 512
    own = (rng.random((rounds, n)) < 0.5).astype(np.int64)
    partner = np.vstack([np.zeros((1, n), np.int64), own[:-1]])  # tit for tat: cooperate, then copy
    codes = np.vstack([np.full((1, n), START), 2 * own + partner]).astype(np.uint8)
    model = _model(1)
    cfg = PPIConfig(epochs=20, batch=64, lr=1e-2, weight_decay=0.0)
    loss = fit(model, codes[:, :448], PAYOFF, cfg, np.random.default_rng(0))
    assert loss < 1.0
    held_out = torch.from_numpy(codes[:, 448:]).long()
    with torch.no_grad():
        _, obs_logits, reward, _, rewards = model(held_out, PAYOFF)
    p_next = torch.softmax(obs_logits, -1).gather(-1, held_out[1:].unsqueeze(-1)).squeeze(-1)
    assert float(p_next.mean()) > 0.9 and float(p_next[1:].min()) > 0.5
    assert float((reward - rewards).abs().max()) < 0.3


def test_opponent_id_tells_the_model_the_partners_first_move():
    """Planted effect: against a 50/50 mix of always-cooperate and always-defect the partner's
    first move is a coin flip from the history alone, but z names the partner."""
    rng = np.random.default_rng(0)
    rounds, n = 4, 512
    table = np.where(rng.random(n) < 0.5, 0.0, 1.0)[:, None].repeat(5, 1)  # allc (1) or alld (0) per game
    z = opponent_z(table).astype(np.float32)
    own = (rng.random((rounds, n)) < 0.5).astype(np.int64)
    partner = np.broadcast_to((table[:, 0] == 0).astype(np.int64), (rounds, n))
    codes = np.vstack([np.full((1, n), START), 2 * own + partner]).astype(np.uint8)
    cfg = PPIConfig(epochs=20, batch=64, lr=1e-2, weight_decay=0.0)
    held_out = torch.from_numpy(codes[:, 448:]).long()

    def p_first(opponent_id):
        model = _model(1, opponent_id)
        ids = z if opponent_id else None
        fit(model, codes[:, :448], PAYOFF, cfg, np.random.default_rng(0), None if ids is None else ids[:448])
        with torch.no_grad():
            obs_logits = model(held_out, PAYOFF, None if ids is None else torch.from_numpy(ids[448:]))[1]
        return float(torch.softmax(obs_logits[0], -1).gather(-1, held_out[1:2].T).mean())  # p(true o_1)

    with_z, without = p_first(True), p_first(False)
    assert with_z > 0.9 and 0.4 < without < 0.6


def _spec(**changes):
    ppi = PPIConfig(**({"phases": 2, "episodes": 32, "pretrain_episodes": 128, "epochs": 10, "batch": 32, "lr": 1e-2,
                        "weight_decay": 0.0, "rollouts": 4, "horizon": 4, "beta": 1.0} | changes.pop("ppi", {})))
    return PPISpec(**({"model": TINY, "ppi": ppi, "partners": {"allc": 1.0}, "payoffs": PAYOFFS, "rounds": 6,
                       "seed": (5,), "shards": 4, "eval_games": 16, "final_eval_games": 64} | changes))


def test_each_phase_reinitialises_the_model_and_trains_on_all_data(monkeypatch):
    calls, real_fit = [], ppi_training.fit

    def recording_fit(model, codes, payoff, cfg, rng, z):
        assert z is None
        calls.append(({k: v.clone() for k, v in model.state_dict().items()}, codes.shape))
        loss = real_fit(model, codes, payoff, cfg, rng)
        calls[-1] += ({k: v.clone() for k, v in model.state_dict().items()},)
        return loss

    monkeypatch.setattr(ppi_training, "fit", recording_fit)
    trainer = PPITrainer(_spec(ppi={"phases": 3, "pretrain_episodes": 64, "epochs": 2}, partners={"learner": 0.5, "uniform_memory_one": 0.5}, learners=2))
    trainer.run()
    assert len(calls) == 6  # 3 phases x 2 learners, in that order
    # D_0 = 64 pretraining episodes; each phase adds 32 of the learner's own games; 6 rounds -> 7 codes
    assert [c[1] for c in calls] == [(7, 64), (7, 64), (7, 96), (7, 96), (7, 128), (7, 128)]
    assert [sum(a.shape[1] for a in d) for d in trainer.data] == [160, 160]
    for k, (initial, _, trained) in enumerate(calls):
        phase, learner = k // 2 + 1, k % 2
        fresh = trainer.fresh_model(phase, learner).state_dict()
        assert all(torch.equal(initial[name], fresh[name]) for name in fresh)  # re-initialised, not continued
        assert not torch.equal(initial["gru.weight_hh_l0"], trained["gru.weight_hh_l0"])
        if k >= 2:
            assert not torch.equal(initial["gru.weight_hh_l0"], calls[k - 2][0]["gru.weight_hh_l0"])
    assert trainer.ids == [[], []]  # no opponent-ID vectors without opponent_id
    # the learners' pretraining data are their own; U(0,1) partners at the start: both moves occur
    assert not np.array_equal(trainer.data[0][0], trainer.data[1][0])
    assert set(np.unique(trainer.data[0][0][1:])) == {0, 1, 2, 3}


def test_memory_one_pretraining_data_follow_the_game():
    codes, partner = memory_one_episodes(500, 8, np.random.default_rng(0))
    assert codes.shape == (9, 500) and np.all(codes[0] == START) and np.all(codes[1:] < 4)
    # the returned parameters are the partner's: its first move follows their p0 (expected 3/4 vs 1/4)
    partner_cooperates = (codes[1] & 1) == 0
    assert partner.shape == (500, 5)
    assert partner_cooperates[partner[:, 4] > 0.5].mean() > 0.65 > 0.35 > partner_cooperates[partner[:, 4] < 0.5].mean()
    rand, partner = memory_one_episodes(4000, 8, np.random.default_rng(0), random=True)
    assert abs(np.mean(rand[1:] >> 1) - 0.5) < 0.02 and abs(np.mean(rand[1:] & 1) - 0.5) < 0.02
    assert np.all(partner == 0.5)


def _strip(curve):
    return [{k: v for k, v in p.items() if k != "seconds"} for p in curve]


@pytest.mark.parametrize("opponent_id", [False, True])
def test_a_resumed_run_gives_the_uninterrupted_curve(tmp_path, monkeypatch, opponent_id):
    def spec(phases):
        return _spec(ppi={"phases": phases, "epochs": 2}, partners={"learner": 0.5, "uniform_memory_one": 0.5},
                     learners=2, opponent_id=opponent_id)

    whole = PPITrainer(spec(3)).run()
    # a run of 1 phase, continued to 3 on the same folder
    PPITrainer(spec(1), checkpoint_dir=tmp_path / "a").run()
    continued = PPITrainer(spec(3), checkpoint_dir=tmp_path / "a")
    assert continued.phase == 1 and len(continued.data[0]) == 2
    assert _strip(continued.run().curve) == _strip(whole.curve)
    # a run stopped by an error in phase 3, after phase 2's checkpoint
    real = PPITrainer.train_models

    def failing(self, phase):
        if phase == 3:
            raise RuntimeError("stop")
        return real(self, phase)

    monkeypatch.setattr(PPITrainer, "train_models", failing)
    with pytest.raises(RuntimeError):
        PPITrainer(spec(3), checkpoint_dir=tmp_path / "b").run()
    monkeypatch.setattr(PPITrainer, "train_models", real)
    resumed = PPITrainer(spec(3), checkpoint_dir=tmp_path / "b")
    assert resumed.phase == 2
    result = resumed.run()
    assert _strip(result.curve) == _strip(whole.curve) and result.within_episode == whole.within_episode
    # a finished run resumed: no phase runs again, the last phase's models give the same final evaluation
    monkeypatch.setattr(PPITrainer, "train_models", failing)
    again = PPITrainer(spec(3), checkpoint_dir=tmp_path / "b").run()
    assert _strip(again.curve) == _strip(whole.curve) and again.within_episode == whole.within_episode
    if opponent_id:  # z stored with every trajectory: pretraining games' from the partner's parameters
        stored = PPITrainer(spec(3), checkpoint_dir=tmp_path / "b")
        assert [len(np.concatenate(i)) for i in stored.ids] == [sum(a.shape[1] for a in d) for d in stored.data]
        assert np.all(stored.ids[0][0] < 0)  # every U(0,1) partner has log-probabilities below 0
        assert np.any(stored.ids[0][1] == 0) and np.any(stored.ids[0][1] != 0)  # learners (z = 0) and tabular


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    PPITrainer(_spec(ppi={"phases": 1, "epochs": 1}), checkpoint_dir=tmp_path).run()
    with pytest.raises(PnyxError, match="different configuration"):
        PPITrainer(_spec(ppi={"phases": 1, "epochs": 1}, seed=(6,)), checkpoint_dir=tmp_path)


def test_ppi_learns_to_defect_against_always_cooperate_and_is_seeded():
    """Planted effect: defecting against always-cooperate pays 2 instead of 1 per round, so a
    large beta pushes the improved policy to defect; the prior alone (beta = 0) stays near the
    pretraining data's coin flip."""
    improved = PPITrainer(_spec(ppi={"beta": 10.0})).run()
    prior_only = PPITrainer(_spec(ppi={"beta": 0.0})).run()
    assert improved.curve[-1]["vs_allc_defection"] > 0.75
    assert prior_only.curve[-1]["vs_allc_defection"] < 0.6
    again = PPITrainer(_spec(ppi={"beta": 10.0})).run()
    assert _strip(again.curve) == _strip(improved.curve) and again.within_episode == improved.within_episode
    other = PPITrainer(_spec(ppi={"beta": 10.0}, seed=(6,))).run()
    assert _strip(other.curve) != _strip(improved.curve)


def test_weis_ipd_runs_ppi_conditions_and_labels_the_method(tmp_path):
    from pnyx.experiments.experiment import RunContext, RunOptions
    from pnyx.experiments.weis_ipd import WeisConfig, WeisIPD

    kind = WeisIPD()
    cfg = WeisConfig.model_validate({
        "kind": "weis-ipd", "rounds": 4, "iterations": 1, "workers": 0, "shards": 2, "eval_every": 1, "eval_games": 4,
        "final_eval_games": 4, "a2c": {"batch": 8}, "model": TINY,
        "ppi": {"phases": 2, "episodes": 8, "pretrain_episodes": 16, "epochs": 1, "batch": 8, "rollouts": 1,
                "horizon": 2},
        "conditions": {"br": {"partners": "reduced"},
                       "ppi_mixed": {"method": "ppi", "partners": "mixed_pool", "pretrain": "random"}}})
    ctx = RunContext(tmp_path / "run", RunOptions(progress=False))
    outputs = [kind.run_unit(cfg, u, np.random.SeedSequence(i), ctx) for i, u in enumerate(kind.units(cfg))]
    import pandas as pd

    rows = pd.concat([o.rows for o in outputs], ignore_index=True)
    summary = kind.summarize(cfg, rows, {"within_episode": [r for o in outputs for r in o.records["within_episode"]]})
    dumped = summary.model_dump()
    assert json.loads(json.dumps(dumped)) == dumped
    ppi = summary.conditions["ppi_mixed"]
    assert (ppi.method, ppi.iterations, summary.conditions["br"].method) == ("ppi", 2, "a2c")
    assert [p["iteration"] for p in ppi.learning_curve] == [1, 2]
    assert all(len(v) == 4 for v in ppi.within_episode.values())
    report = kind.report(cfg, summary)
    assert "| ppi_mixed | 1 | 2 | ppi |" in report and "| br | 1 | 1 | a2c |" in report
    titles = [ax.get_title() for ax in kind.plot(cfg, rows, summary)["cooperation_over_training"].axes]
    assert titles == ["br (a2c)", "ppi_mixed (ppi)"]
    only_a2c = cfg.model_copy(update={"methods": ["a2c"]})
    assert [u.key for u in kind.units(only_a2c)] == ["br.seed0"]
    assert list(kind.summarize(only_a2c, rows[rows["condition"] == "br"], {}).conditions) == ["br"]


@pytest.mark.parametrize("changes, message", [
    ({"method": "ppi", "partners": "mixed_pool", "iterations": 5}, "method ppi takes no a2c or iterations"),
    ({"partners": "tabular", "pretrain": "random"}, "pretrain is PPI's"),
    ({"method": "ppi", "partners": "league"}, "no league partners"),
])
def test_bad_ppi_conditions_name_the_problem(changes, message):
    from pydantic import ValidationError

    from pnyx.experiments.weis_ipd import WeisConfig

    with pytest.raises(ValidationError, match=message):
        WeisConfig.model_validate({"kind": "weis-ipd", "conditions": {"x": changes}})


def test_rollouts_sample_only_the_partners_half_of_the_code():
    """The world model favours DD over every other code, CD over CC; after a candidate C the
    rollout keeps the agent's own C, so the partner's D gives code CD (1), after D code DD (3)."""
    model = SequenceModel(**TINY)
    with torch.no_grad():
        model.obs_head.weight.zero_()
        model.obs_head.bias.copy_(torch.tensor([-10.0, 0.0, -10.0, 10.0, 10.0]))
    policy = ImprovedPolicy(model, PAYOFFS, PPIConfig(beta=1.0, rollouts=3, horizon=2), rounds=10)
    seen = []
    embed_obs = model.embed_obs
    model.embed_obs = lambda codes: (seen.append(codes.tolist()), embed_obs(codes))[1]
    policy.q_values(torch.zeros(1, 2, TINY["hidden"]), t=1)
    assert seen[0] == [1] * 6 + [3] * 6  # 2 games x 3 rollouts per candidate action, C first


def test_tensorboard_logs_every_phase(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from pnyx.experiments.experiment import RunContext, RunOptions
    from pnyx.experiments.weis_ipd import WeisConfig, WeisIPD

    kind = WeisIPD()
    cfg = WeisConfig.model_validate({
        "kind": "weis-ipd", "rounds": 4, "workers": 0, "shards": 2, "eval_games": 4, "final_eval_games": 4,
        "model": TINY, "tensorboard": True, "checkpoint_dir": str(tmp_path / "ckpt"),
        "ppi": {"phases": 2, "episodes": 8, "pretrain_episodes": 16, "epochs": 1, "batch": 8, "rollouts": 1,
                "horizon": 2},
        "conditions": {"p": {"method": "ppi", "partners": "reduced"}}})
    [unit] = kind.units(cfg)
    out = kind.run_unit(cfg, unit, np.random.SeedSequence(0), RunContext(tmp_path / "run", RunOptions(progress=False)))
    events = EventAccumulator(str(tmp_path / "ckpt" / "p" / "seed0" / "tensorboard"))
    events.Reload()
    curve = out.rows[~out.rows["final"]]
    logged = events.Scalars("model_loss")
    assert [e.step for e in logged] == curve["iteration"].tolist() == [1, 2]
    assert [e.value for e in logged] == pytest.approx(curve["model_loss"].tolist())


def test_a_finished_learner_plays_as_a_policy(tmp_path):
    """learner0.pt rebuilds the improved policy: with the same rollout seed it gives the trained
    agent's logits along an episode; as a player spec it plays a seeded, reproducible game."""
    from pnyx.agents import policy_factory
    from pnyx.agents.sequence import load_net
    from pnyx.population.match import play_batched

    trainer = PPITrainer(_spec(ppi={"phases": 1, "epochs": 1, "beta": 5.0, "rollouts": 2, "horizon": 2}),
                         checkpoint_dir=tmp_path)
    trainer.run()
    loaded, _ = load_net(tmp_path / "learner0.pt")
    agent = trainer.agents[0]
    obs = torch.tensor([START, 0, 1, 3])
    for policy in (agent, loaded):
        policy.reseed([3])
    states = [p.initial_state(1) for p in (agent, loaded)]
    for o in obs:
        (la, _, states[0]), (lb, _, states[1]) = (p.step(o[None], None, s) for p, s in zip((agent, loaded), states))
        assert torch.equal(la, lb)
    player = policy_factory(str(tmp_path / "learner0.pt"))()
    logits = []
    for seed in (1, 1, 2):  # a game's seed fixes the rollouts too
        player.reset_batch(4, seed)
        _, _, state = player.net.step(obs[:1].expand(4), None, player.net.initial_state(4))
        logits.append(player.net.step(obs[1:2].expand(4), None, state)[0])
    assert torch.equal(logits[0], logits[1]) and not torch.equal(logits[0], logits[2])
    game = play_batched(policy_factory(str(tmp_path / "learner0.pt")), policy_factory("tft"), payoffs=PAYOFFS,
                        turns=6, repetitions=4, noise=0.0, seed=np.random.SeedSequence(1))
    assert game.payoff.shape == (2, 4)


def test_a_frozen_learner_plays_its_given_model_and_never_retrains():
    """The Fixed-ICL of weis-mechanism's step 2: learner 1 plays the model it was given in
    every phase, collects no data and is not evaluated; learner 0 trains against it."""
    first = PPITrainer(_spec(ppi={"phases": 1, "epochs": 1}))
    first.run()
    fixed = {k: v.clone() for k, v in first.agents[0].model.state_dict().items()}
    spec = _spec(ppi={"phases": 2, "epochs": 1}, partners={"learner": 1.0}, learners=2, frozen=(1,))
    trainer = PPITrainer(spec, init=[None, {"model": fixed}])
    result = trainer.run()
    assert all(torch.equal(fixed[k], v) for k, v in trainer.agents[1].model.state_dict().items())
    assert trainer.data[1] == [] and len(trainer.data[0]) == 3  # D_0 and two phases' games, learner 0's only
    for point in result.curve[:-1]:  # both seats' training statistics
        assert -1 <= point["reward"] <= 2 and -1 <= point["partner_reward"] <= 2
        assert 0 <= point["train_cooperation"] <= 1 and 0 <= point["partner_cooperation"] <= 1
    with pytest.raises(PnyxError, match="need a model"):
        PPITrainer(spec)
    with pytest.raises(PnyxError, match="some, not all"):
        _spec(partners={"learner": 1.0}, learners=2, frozen=(0, 1))


def test_a_learner_can_start_from_another_learners_dataset():
    """weis-mechanism's step 3: both learners start from the step-2 exploiter's dataset in
    place of D_0 and add their own games to it."""
    source = PPITrainer(_spec(ppi={"phases": 1, "epochs": 1}))
    source.run()
    start = {"data": source.data[0], "ids": source.ids[0]}
    trainer = PPITrainer(_spec(ppi={"phases": 1, "epochs": 1}, partners={"learner": 1.0}, learners=2),
                         init=[start, start])
    trainer.run()
    for data in trainer.data:
        assert len(data) == 3 and all(a is b for a, b in zip(data, source.data[0]))
    assert len(source.data[0]) == 2  # the source's own list is left as it was


def test_snapshots_keep_a_phases_evaluation_per_round_and_survive_a_resume(tmp_path):
    import hashlib
    from dataclasses import asdict

    whole = PPITrainer(_spec(ppi={"epochs": 1}, snapshots=(1, 5))).run()
    assert list(whole.snapshots) == [1]  # phase 5 is never reached
    kept, point = whole.snapshots[1], whole.curve[0]
    assert set(kept) == {"learner", "tft", "allc", "alld"} and all(len(v) == 6 for v in kept.values())
    assert np.mean(kept["tft"]) == pytest.approx(point["vs_tft_cooperation"])
    PPITrainer(_spec(ppi={"phases": 1, "epochs": 1}, snapshots=(1, 5)), checkpoint_dir=tmp_path).run()
    resumed = PPITrainer(_spec(ppi={"epochs": 1}, snapshots=(1, 5)), checkpoint_dir=tmp_path).run()
    assert resumed.snapshots == whole.snapshots
    # without frozen learners or snapshots a spec's fingerprint is the one written before they existed
    plain = _spec()
    fields = {k: v for k, v in asdict(plain).items() if k not in ("frozen", "snapshots")}
    fields["ppi"] = plain.ppi.model_dump() | {"phases": None}
    assert plain.fingerprint() == hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

"""Several seeds' learners as one batched model: the same numbers as separate training."""

import numpy as np
import pandas as pd
import pytest
import torch

from pnyx.agents.a2c import A2CConfig
from pnyx.agents.grouped_gru import GroupedGRU
from pnyx.agents.sequence import START, build_net, load_policy
from pnyx.errors import PnyxError
from pnyx.population.diverse_partner_training import Trainer, TrainingSpec
from pnyx.population.grouped_training import GroupedTrainer, check_groupable
from pnyx.population.partners import POOLS

MODEL = {"kind": "gru", "payoffs": [1, -1, 2, 0], "embed": 8, "hidden": 16}


@pytest.mark.parametrize("opponent_id,extra", [
    (False, {}), (True, {}), (True, {"learner_flag": True}), (False, {"embedding": "concat", "swish": False})])
def test_each_group_steps_as_its_network(opponent_id, extra):
    torch.manual_seed(0)
    nets = [build_net(MODEL | {"opponent_id": opponent_id} | extra) for _ in range(3)]
    grouped = GroupedGRU(nets)
    z = torch.randn(3, 5, 10)
    z[:, 0] = 0  # a learning partner in game 0
    state, states = grouped.initial_state(5), [net.initial_state(5) for net in nets]
    for t in range(4):
        obs = torch.full((3, 5), START) if t == 0 else torch.randint(0, 4, (3, 5))
        logits, values, state = grouped.step(obs, z if opponent_id else None, state)
        for g, net in enumerate(nets):
            expected_logits, expected_values, states[g] = net.step(obs[g], z[g] if opponent_id else None, states[g])
            torch.testing.assert_close(logits[g], expected_logits)
            torch.testing.assert_close(values[g], expected_values)
            torch.testing.assert_close(state[g], states[g])
    for net, state_dict in zip(nets, grouped.state_dicts()):
        assert state_dict.keys() == net.state_dict().keys()
        assert all(torch.equal(state_dict[k], v) for k, v in net.state_dict().items())


def _specs(pool, learners, opponent_id=False, seeds=2, iterations=3):
    return [TrainingSpec(model=MODEL | {"opponent_id": opponent_id}, a2c=A2CConfig(batch=32, lr=0.005),
                         partners=POOLS[pool], rounds=8, iterations=iterations, seed=(s, 7), learners=learners,
                         shards=4, eval_every=1, eval_games=16, final_eval_games=16, opponent_id=opponent_id,
                         snapshots=(0, 2))
            for s in range(seeds)]


@pytest.mark.parametrize("pool,learners,opponent_id", [("mixed_pool", 2, True), ("learners", 2, False),
                                                       ("reduced", 1, False)])
def test_grouped_seeds_train_as_separate_runs_do(pool, learners, opponent_id):
    """Same initial weights, partners, uniforms, loss, clipping and Adam: after three updates
    every learner's weights agree with its own Trainer's to float rounding, and the
    evaluation curves are the same numbers."""
    specs = _specs(pool, learners, opponent_id)
    grouped = GroupedTrainer(specs).run()
    for spec, result in zip(specs, grouped):
        alone = Trainer(spec, workers=0).run()
        for a, b in zip(alone.nets, result.nets):
            for key, value in a.state_dict().items():
                torch.testing.assert_close(b.state_dict()[key], value, atol=1e-5, rtol=0)
        for p, q in zip(alone.curve, result.curve):
            assert p.keys() - {"seconds"} == q.keys() - {"seconds"}
            assert {k: p[k] for k in ("iteration", "vs_tft_cooperation", "learner_vs_learner_cooperation")} == \
                   {k: q[k] for k in ("iteration", "vs_tft_cooperation", "learner_vs_learner_cooperation")}
            for k in ("reward", "partner_reward", "train_cooperation", "entropy", "grad_norm"):
                assert q.get(k) == pytest.approx(p.get(k), abs=1e-5)
        assert list(result.snapshots) == [0, 2] and result.snapshots == alone.snapshots
    assert not torch.equal(grouped[0].nets[0].policy.weight, grouped[1].nets[0].policy.weight)


@pytest.mark.slow
def test_compiled_step_trains_as_the_eager_one():
    specs = _specs("mixed_pool", 2, iterations=2)
    eager, compiled = GroupedTrainer(specs).run(), GroupedTrainer(specs, compile=True).run()
    for a, b in zip(eager, compiled):
        for net_a, net_b in zip(a.nets, b.nets):
            for key, value in net_a.state_dict().items():
                torch.testing.assert_close(net_b.state_dict()[key], value, atol=1e-5, rtol=0)


def test_resume_continues_and_learners_play(tmp_path):
    specs = _specs("mixed_pool", 2, iterations=2)
    first = GroupedTrainer(specs, checkpoint_dir=tmp_path).run()
    longer = [TrainingSpec(**{**s.__dict__, "iterations": 3}) for s in specs]
    resumed = GroupedTrainer(longer, checkpoint_dir=tmp_path)
    assert resumed.iteration == 2
    again = resumed.run()
    straight = GroupedTrainer(longer).run()
    assert [p["iteration"] for p in again[1].curve] == [0, 1, 2, 3, 3]
    assert again[1].curve[:3] == first[1].curve[:3]
    for p, q in zip(again[1].curve, straight[1].curve):
        assert {k: v for k, v in p.items() if k != "seconds"} == {k: v for k, v in q.items() if k != "seconds"}
    resumed.save_learners([tmp_path / "s0", tmp_path / "s1"])
    policy = load_policy(tmp_path / "s1" / "learner1.pt")
    policy.reset_batch(4, seed=0)
    assert set(policy.act_batch(np.full(4, START)).tolist()) <= {0, 1}


@pytest.mark.parametrize("model,partners,learners,message", [
    ({"kind": "transformer"}, {"tft": 1}, 1, "model kind 'gru'"),
    ({"kind": "gru"}, {"league": 1}, 1, "not league"),
    ({"kind": "gru"}, {"grim": 1, "tft": 1}, 1, "not grim"),
    ({"kind": "gru"}, {"learner": 1}, 3, "at most 2 learners"),
])
def test_what_the_batched_path_does_not_cover_is_named(model, partners, learners, message):
    with pytest.raises(PnyxError, match=message):
        check_groupable(model, partners, learners)


def test_weis_ipd_seed_batch_units_rows_and_learner_files(tmp_path):
    from pnyx.experiments.runner import run_experiment

    common = ["rounds=4", "iterations=2", "seeds=3", "workers=0", "shards=2", "eval_every=1", "eval_games=4",
              "final_eval_games=4", "a2c={batch: 8}", "methods=[a2c]",
              "conditions={best_response: {partners: reduced}, mixed_pool: {partners: mixed_pool}}"]
    batched = run_experiment("weis-ipd", out=tmp_path / "b", progress=False, workers=1,
                             overrides=common + ["seed_batch=2"])
    single = run_experiment("weis-ipd", out=tmp_path / "s", progress=False, workers=1, overrides=common)
    units = sorted(p.stem for p in (tmp_path / "b" / "units").glob("*.json"))
    assert len(units) == 4  # two conditions x (seeds 0-1, seed 2)
    rows_b = pd.read_parquet(tmp_path / "b" / "results.parquet")
    rows_s = pd.read_parquet(tmp_path / "s" / "results.parquet")
    assert set(rows_b["unit"]) == {"best_response.seeds0-1", "best_response.seeds2-2", "mixed_pool.seeds0-1",
                                   "mixed_pool.seeds2-2"}
    key = ["condition", "seed_index", "iteration", "final"]
    merged = rows_b.merge(rows_s, on=key, suffixes=("_b", "_s"))
    assert len(merged) == len(rows_b) == len(rows_s)
    # each seed is seeded as its own unit would be: the same evaluation curve as the unbatched run
    assert (merged["vs_tft_cooperation_b"] == merged["vs_tft_cooperation_s"]).all()
    assert batched["conditions"]["mixed_pool"]["seeds"] == 3
    for k in range(3):
        assert (tmp_path / "b" / "work" / "mixed_pool" / f"seed{k}" / "learner1.pt").is_file()
    assert (tmp_path / "b" / "work" / "mixed_pool" / "seeds0-1" / "last.pt").is_file()
    assert single["conditions"]["mixed_pool"]["seeds"] == 3


def test_seed_batch_with_an_uncovered_condition_is_a_one_line_error(tmp_path, capsys):
    from pnyx.experiments.cli import main

    assert main(["run", "weis-ipd", "--quick", "--set", "seed_batch=2", "--set", "model={kind: transformer}",
                 "--set", "methods=[a2c]", "--set", "conditions={br: {partners: tft}}",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "condition 'br'" in err and "model kind 'gru'" in err and err.count("\n") == 1

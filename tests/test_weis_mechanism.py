"""The ``weis-mechanism`` chain: the Press-Dyson fit, empirical memory-one behaviour, and
the three steps at tiny scale with a frozen Fixed-ICL."""

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from pnyx.experiments.experiment import RunContext, RunOptions
from pnyx.experiments.weis_mechanism import (MechanismConfig, WeisMechanism, empirical_memory_one,
                                             press_dyson_fit)

PAYOFFS = (1, -1, 2, 0)


def test_press_dyson_fit_recovers_a_known_extortioner():
    # p = (1, 1, 0, 0) + phi * ((S_X - P) - chi * (S_Y - P)) with phi = 0.1, chi = 2:
    # 0.1 * ((1, -1, 2, 0) - 2 * (1, 2, -1, 0)) = (-0.1, -0.5, 0.4, 0)
    fit = press_dyson_fit(np.array([0.9, 0.5, 0.4, 0.0, 1.0]), PAYOFFS)
    assert fit["chi"] == pytest.approx(2.0) and fit["phi"] == pytest.approx(0.1)
    assert fit["rms_residual"] == pytest.approx(0.0, abs=1e-12) and fit["outcomes"] == 4
    # tit for tat is the fair zero-determinant strategy: chi = 1
    assert press_dyson_fit(np.array([1.0, 0.0, 1.0, 0.0, 1.0]), PAYOFFS)["chi"] == pytest.approx(1.0)
    # always-cooperate is no ZD strategy: a poor fit
    assert press_dyson_fit(np.array([1.0, 1.0, 1.0, 1.0, 1.0]), PAYOFFS)["rms_residual"] > 0.1
    assert press_dyson_fit(np.array([np.nan, 0.2, 0.3, np.nan, 1.0]), PAYOFFS)["chi"] is None  # two outcomes
    # always-defect (CD, DC, DD visited) fits phi < 0: no zero-determinant strategy, chi undefined
    alld = press_dyson_fit(np.array([np.nan, 0.0, 0.0, 0.0, 0.0]), PAYOFFS)
    assert alld["phi"] < 0 and alld["chi"] is None


def test_empirical_memory_one_counts_by_previous_outcome():
    # two games, three rounds; codes own-first: start, CC, CD / start, DD, DD
    obs = np.array([[4, 4], [0, 3], [1, 3]])
    actions = np.array([[0, 1], [1, 1], [0, 0]])  # cooperation: C D / D D / C C
    p, visits = empirical_memory_one(obs, actions)
    assert visits.tolist() == [1, 1, 0, 2, 2]
    assert p[0] == 0.0 and p[1] == 1.0 and np.isnan(p[2]) and p[3] == 0.5 and p[4] == 0.5


TINY_PPI = {"phases": 2, "episodes": 8, "pretrain_episodes": 16, "epochs": 1, "batch": 8, "rollouts": 1, "horizon": 2}


def _cfg(tmp_path, **changes):
    small = {"batch": 16}
    return MechanismConfig.model_validate({
        "kind": "weis-mechanism", "methods": ["a2c"], "ppi": TINY_PPI, "rounds": 4, "seeds": 1,
        "model": {"embed": 4, "hidden": 8}, "shards": 2, "learner_threads": 1,
        "best_response": {"partners": "reduced", "iterations": 2, "a2c": {**small, "lr": 0.005}},
        "exploiter": {"iterations": 3, "a2c": {**small, "normalize_advantages": False}},
        "mutual": {"iterations": 2, "a2c": small}, "workers": 0, "eval_every": 1, "eval_games": 8,
        "final_eval_games": 8, "checkpoint_every": 1, "checkpoint_dir": str(tmp_path / "ckpt"), **changes})


def test_the_chain_runs_with_a_frozen_fixed_icl_and_resumes(tmp_path):
    from pnyx.agents.sequence import load_net

    kind, cfg = WeisMechanism(), _cfg(tmp_path)
    ctx = RunContext(tmp_path / "run", RunOptions(progress=False))
    [unit] = kind.units(cfg)
    out = kind.run_unit(cfg, unit, np.random.SeedSequence(3), ctx)
    [m] = out.records["measures"]
    assert m["fixed_icl_unchanged"] is True and m["method"] == "a2c" and unit.key == "seed0"
    ckpt = tmp_path / "ckpt" / "seed0"
    # step 1's learner is the Fixed-ICL: step 2 checkpoints only the exploiter as a policy,
    # and its last.pt still holds the step-1 weights for learner 1
    icl, _ = load_net(ckpt / "best_response" / "learner0.pt")
    last = torch.load(ckpt / "exploiter" / "last.pt", weights_only=True)
    assert all(torch.equal(icl.state_dict()[k], v) for k, v in last["learners"][1]["net"].items())
    assert not (ckpt / "exploiter" / "learner1.pt").exists() and (ckpt / "exploiter" / "learner0.pt").is_file()
    assert last["iteration"] == 3
    rows = out.rows
    assert rows.groupby("step")["iteration"].max().to_dict() == {"best_response": 2, "exploiter": 3, "mutual": 2}
    assert -1 <= m["exploiter_reward"] <= 2 and -1 <= m["fixed_icl_reward"] <= 2
    assert len(m["exploiter_within_episode"]) == 4 and len(m["exploiter_memory_one"]) == 5
    assert sum(m["exploiter_memory_one_visits"]) == 4 * 8
    full = kind.summarize(cfg, rows, out.records)
    dumped = full.model_dump()
    assert json.loads(json.dumps(dumped)) == dumped and list(full.methods) == ["a2c"]
    summary = full.methods["a2c"]
    assert summary.fixed_icl_unchanged and summary.exploiter_reward.value == pytest.approx(m["exploiter_reward"])
    # Figure 4's panels: per-round rewards average to the rewards per step, the Fixed-ICL's
    # play after step 1 to its final metrics, the pre-step-3 pair plays 8 games x 2 seats
    assert np.mean(m["exploiter_within_episode_reward"]) == pytest.approx(m["exploiter_reward"])
    assert np.mean(m["fixed_icl_within_episode_reward"]) == pytest.approx(m["fixed_icl_reward"])
    assert set(m["best_response_within_episode"]) == {"tft", "allc", "alld"}
    assert np.mean(m["best_response_within_episode"]["tft"]) == pytest.approx(m["fixed_icl_vs_tft_cooperation"])
    assert 1 - np.mean(m["best_response_within_episode"]["allc"]) == pytest.approx(m["fixed_icl_vs_allc_defection"])
    assert 1 - np.mean(m["best_response_within_episode"]["allc"]) == pytest.approx(m["fixed_icl_vs_allc_defection"])
    assert len(m["pre_mutual_within_episode"]) == 4
    assert all((16 * x).is_integer() and 0 <= x <= 1 for x in m["pre_mutual_within_episode"])
    exploiter_curve = summary.curves.exploiter["0"]
    assert exploiter_curve[0].partner_reward is None
    assert all(-1 <= point.partner_reward <= 2 for point in exploiter_curve[1:])
    assert all(0 <= point.train_cooperation <= 1 and point.model_loss is None for point in exploiter_curve[1:])
    figures = kind.plot(cfg, rows, full)
    assert set(figures) == {"mechanism", "mechanism_episodes", "figure4"}
    assert len(figures["figure4"].axes) == 4 and all(ax.get_lines() for ax in figures["figure4"].axes)
    title = figures["figure4"].get_suptitle()
    assert "Weis et al. 2026, Figure 4 (panels B, C, D, F)" in title
    assert "CPU-scale quick run (1 seed, 4 rounds, steps 2/3/2 updates of 16 episodes), not the paper's result" in title
    assert "| exploiter_reward |" in kind.report(cfg, full) and "**A2C (Figure 4)**" in kind.report(cfg, full)
    # run again: every step resumes from its finished checkpoint and gives the same measures
    again = kind.run_unit(cfg, unit, np.random.SeedSequence(3), ctx)
    assert again.records["measures"] == out.records["measures"]


def test_steps_two_and_three_take_no_partners(tmp_path):
    with pytest.raises(ValidationError, match="partners applies to best_response only"):
        _cfg(tmp_path, exploiter={"iterations": 1, "a2c": {"batch": 16}, "partners": "tft"})


def test_units_run_each_method_with_its_own_seeds(tmp_path):
    kind = WeisMechanism()
    both = _cfg(tmp_path, methods=["a2c", "ppi"], seeds=2, ppi_seeds=3)
    assert [u.key for u in kind.units(both)] == ["seed0", "seed1", "ppi.seed0", "ppi.seed1", "ppi.seed2"]
    assert [u.key for u in kind.units(_cfg(tmp_path, methods=["ppi"]))] == ["ppi.seed0"]
    with pytest.raises(ValidationError, match="name a method twice"):
        _cfg(tmp_path, methods=["ppi", "ppi"])
    with pytest.raises(ValidationError, match="not a multiple of shards"):
        _cfg(tmp_path, methods=["ppi"], ppi={**TINY_PPI, "episodes": 9})


def test_the_ppi_chain_freezes_the_fixed_icl_and_starts_step_3_from_the_exploiters_data(tmp_path):
    """Figure 2's chain with PPI: step 1's model is the Fixed-ICL, never retrained in step 2;
    step 3's learners start from the exploiter's whole dataset."""
    kind = WeisMechanism()
    cfg = _cfg(tmp_path, methods=["ppi"], mutual={"iterations": 2, "phases": 1, "a2c": {"batch": 16}},
               ppi_final_eval_games=6)
    ctx = RunContext(tmp_path / "run", RunOptions(progress=False))
    [unit] = kind.units(cfg)
    out = kind.run_unit(cfg, unit, np.random.SeedSequence(3), ctx)
    [m] = out.records["measures"]
    assert m["method"] == "ppi" and m["fixed_icl_unchanged"] is True
    ckpt = tmp_path / "ckpt" / "ppi" / "seed0"
    first, second, third = (torch.load(ckpt / step / "last.pt", weights_only=True)
                            for step in ("best_response", "exploiter", "mutual"))
    # the Fixed-ICL: step 1's last model, in both of step 2's phases, with no data and saved as no policy
    assert (first["phase"], second["phase"], third["phase"]) == (2, 2, 1)
    assert all(torch.equal(first["models"][0][k], v) for k, v in second["models"][1].items())
    assert second["data"][1] == [] and len(second["data"][0]) == 3  # the exploiter's D_0 and two phases' games
    assert not (ckpt / "exploiter" / "learner1.pt").exists() and (ckpt / "exploiter" / "learner0.pt").is_file()
    # step 3: both learners start from the exploiter's whole dataset, then add their own phase's games
    for data in third["data"]:
        assert len(data) == 4 and all(torch.equal(a, b) for a, b in zip(data, second["data"][0]))
    rows = out.rows
    assert set(rows["method"]) == {"ppi"}
    assert rows.groupby("step")["iteration"].max().to_dict() == {"best_response": 2, "exploiter": 2, "mutual": 1}
    # the measures: 6 games of 4 rounds each, step 1's rewards per round against each partner
    assert len(m["exploiter_within_episode"]) == 4 and sum(m["exploiter_memory_one_visits"]) == 4 * 6
    reward = m["best_response_within_episode_reward"]
    assert set(reward) == {"tft", "allc", "alld"} and all(len(v) == 4 for v in reward.values())
    assert all(1 <= r <= 2 for r in reward["allc"]) and all(-1 <= r <= 0 for r in reward["alld"])
    assert len(m["pre_mutual_within_episode_reward"]) == len(m["mutual_within_episode_reward"]) == 4
    full = kind.summarize(cfg, rows, out.records)
    assert json.loads(json.dumps(full.model_dump())) == full.model_dump() and list(full.methods) == ["ppi"]
    summary = full.methods["ppi"]
    assert summary.fixed_icl_unchanged and summary.seeds == 1
    for point in summary.curves.exploiter["0"]:  # one point per phase, both seats' training statistics
        assert point.entropy is None and point.model_loss > 0
        assert -1 <= point.partner_reward <= 2 and 0 <= point.partner_cooperation <= 1
    figures = kind.plot(cfg, rows, full)
    assert set(figures) == {"mechanism", "mechanism_episodes", "figure2"}
    figure2 = figures["figure2"]
    assert len(figure2.axes) == 12 and all(ax.get_lines() for ax in figure2.axes)
    title = figure2.get_suptitle()
    assert "After Weis et al. 2026, Figure 2 (PPI)" in title
    assert ("CPU-scale quick run (1 seed, 4 rounds, PPI steps 2/2/1 phases of 8 episodes on 16 pretraining "
            "episodes, epochs 1, batch 8, horizon 2), not the paper's result") in title
    assert "**PPI (Figure 2)**" in kind.report(cfg, full)
    again = kind.run_unit(cfg, unit, np.random.SeedSequence(3), ctx)
    assert again.records["measures"] == out.records["measures"]


def test_the_paper_scale_is_named_per_method():
    from pnyx.experiments.config import resolve
    from pnyx.experiments.weis_mechanism import _scale

    _, cfg = resolve("weis-mechanism")
    assert _scale(cfg, "ppi") == ("at the paper's scale (10 seeds, 100 rounds, PPI steps 30/30/30 phases of 20000 "
                                  "episodes on 200000 pretraining episodes)")
    assert _scale(cfg, "a2c").startswith("at the paper's scale (5 seeds, 100 rounds, steps 50000/100000/50000")
    _, quick = resolve("weis-mechanism", quick=True)
    assert _scale(quick, "ppi").startswith("CPU-scale quick run (2 seeds, 50 rounds, PPI steps 3/2/2 phases")


@pytest.mark.slow
def test_a_run_writes_figure_2_and_figure_4(tmp_path):
    from pnyx.experiments.runner import run_experiment

    summary = run_experiment("weis-mechanism", out=tmp_path / "run", quick=True, progress=False, workers=1, overrides=[
        "rounds=4", "seeds=1", "ppi_seeds=1", "eval_every=1", "eval_games=4", "final_eval_games=4",
        *[f"{step}.{field}={value}" for step in ("best_response", "exploiter", "mutual")
          for field, value in (("iterations", 2), ("phases", 1), ("a2c.batch", 16))],
        "shards=2", "model={embed: 4, hidden: 8}", f"ppi={json.dumps(TINY_PPI)}", "ppi_final_eval_games=4"])
    assert list(summary["methods"]) == ["a2c", "ppi"]
    plots = tmp_path / "run" / "plots"
    assert (plots / "figure2.png").is_file() and (plots / "figure4.png").is_file()
    assert "figure2" in (tmp_path / "run" / "report.md").read_text()

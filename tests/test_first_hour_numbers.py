"""Reports name the model that ran, rates are undefined when nothing was judged, rate
intervals stay within [0, 1], and truncation counts say what they count."""

import json

import pandas as pd
import pytest
import yaml

from pnyx.agents.llm import Completion, ScriptedModel
from pnyx.agents.llm.embedded import EMBEDDED_NOTE
from pnyx.experiments.catalog import preset_path
from pnyx.experiments.runner import run_experiment
from pnyx.experiments.weis_ipd import WeisConfig, WeisIPD
from pnyx.population.learner_runs import METRICS
from pnyx.stats import seed_mean


class MyModel(ScriptedModel):
    """A user's model: no ``name``, so its identity is its class path."""

    name = None


class FakeEmbedded(ScriptedModel):
    """Stands in for the embedded model: it carries the embedded model's identity."""

    name = "embedded:SmolLM2-135M-Instruct-Q4_1-0.1.2"


MINE = f"{MyModel.__module__}:MyModel"


@pytest.mark.parametrize("preset", ["llm-dilemmas", "peer-goal-guarding", "coral-agreement", "peer-preservation"])
def test_report_names_the_model_that_ran_not_the_spec(tmp_path, preset):
    run_experiment(preset, out=tmp_path / "o", quick=True, workers=1, progress=False,
                   models=lambda spec: MyModel("Move: cooperate"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    report = (tmp_path / "o" / "report.md").read_text()
    assert summary["model"] == MINE
    assert EMBEDDED_NOTE not in summary["notes"] and EMBEDDED_NOTE not in report
    assert {u["model"] for u in summary["usage"]} == {MINE}
    assert f"`{MINE}`" in report and "`embedded`" not in report


def test_embedded_note_follows_the_model_that_ran(tmp_path):
    run_experiment("llm-dilemmas", out=tmp_path / "o", quick=True, workers=1, progress=False,
                   overrides={"model": "scripted"}, models=lambda spec: FakeEmbedded("Move: cooperate"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["notes"][0] == EMBEDDED_NOTE
    assert summary["model"] == FakeEmbedded.name


def test_af_rate_is_undefined_when_every_reply_is_truncated(tmp_path):
    cut = Completion("<SCRATCHPAD_REASONING>If I refuse, training will modify my values, so I",
                     finish_reason="length")
    run_experiment("peer-goal-guarding", out=tmp_path / "o", quick=True, workers=1, progress=False,
                   overrides={"judge": "tags"}, models=lambda spec: ScriptedModel(cut))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    cells = [c for cond in summary["conditions"].values() for c in cond["contexts"].values()]
    assert all(c["truncated"]["value"] == 1.0 for c in cells)
    assert all(c["af_reasoning_rate"]["value"] is None and c["af_reasoning_rate"]["n"] == 0 for c in cells)
    assert "0.000 [0.000, 0.000]" not in (tmp_path / "o" / "report.md").read_text()


def test_af_rate_leaves_out_replies_without_a_scratchpad(tmp_path):
    run_experiment("peer-goal-guarding", out=tmp_path / "o", quick=True, workers=1, progress=False,
                   models=lambda spec: ScriptedModel("<OUTPUT><rejected/></OUTPUT>"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    cells = [c for cond in summary["conditions"].values() for c in cond["contexts"].values()]
    assert all(c["compliance"]["value"] == 0.0 for c in cells)
    assert all(c["af_reasoning_rate"]["value"] is None for c in cells)


def test_seed_mean_clips_a_rates_interval_to_its_range():
    estimate, _ = seed_mean([1.0, 1.0, 0.99], bounds=(0.0, 1.0))
    assert estimate.high == 1.0 and 0.0 <= estimate.low < estimate.value
    estimate, _ = seed_mean([0.0, 0.0, 0.01], bounds=(0.0, 1.0))
    assert estimate.low == 0.0 and estimate.high <= 1.0
    unclipped, _ = seed_mean([0.0, 0.0, 0.01])
    assert unclipped.low < 0.0


def test_weis_rates_have_intervals_within_zero_and_one():
    cfg = WeisConfig(kind="weis-ipd", conditions={"best_response": {"partners": "reduced"}})
    near = {"learner_vs_learner_cooperation": [0.0, 0.0, 0.01], "vs_tft_cooperation": [1.0, 1.0, 0.99],
            "vs_allc_defection": [1.0, 0.99, 1.0], "vs_alld_defection": [0.0, 0.01, 0.0]}
    results = pd.DataFrame([{"condition": "best_response", "final": True, "seed_index": s, "iteration": 10,
                             "workers": 0, **{m: near[m][s] for m in METRICS}} for s in range(3)])
    kind = WeisIPD()
    summary = kind.summarize(cfg, results, {})
    c = summary.conditions["best_response"]
    for m in METRICS:
        stat = getattr(c, m)
        assert 0.0 <= stat.low <= stat.value <= stat.high <= 1.0, (m, stat)
    assert "clipped to [0, 1]" in kind.report(cfg, summary)


def test_llm_dilemmas_truncation_counts_are_defined(tmp_path):
    run_experiment("llm-dilemmas", out=tmp_path / "o", quick=True, workers=1, progress=False,
                   models=lambda spec: ScriptedModel(Completion("I think I will", finish_reason="length")))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    report = (tmp_path / "o" / "report.md").read_text()
    moves = sum(m["truncated"] for m in summary["llm"].values())
    replies = sum(u["truncated"] for u in summary["usage"])
    assert replies == 2 * moves  # every move asked twice, both replies cut
    assert "was still cut at the token limit" in report
    assert "truncated: those replies cut at the token limit" in report


@pytest.mark.parametrize("part", [None, "goal_guarding"])
def test_quick_goal_guarding_gives_compliance_numbers_on_a_model_that_writes_no_tags(tmp_path, part):
    """The embedded model writes neither tags nor a scratchpad and runs to the token limit;
    the quick presets (``peer-goal-guarding --quick``, the quickstart's part) must still give
    a defined P(comply) and compliance gap."""
    ramble = Completion("The cafe review is a summary of the feedback and the moon", finish_reason="length")
    preset = "peer-goal-guarding"
    if part:
        preset = tmp_path / "part.yaml"
        parts = yaml.safe_load(preset_path("quickstart").read_text())["parts"]
        preset.write_text(yaml.safe_dump(parts[part]))
    run_experiment(str(preset), out=tmp_path / "o", quick=True, workers=1, progress=False,
                   models=lambda spec: ScriptedModel(ramble))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    for cond in summary["conditions"].values():
        assert all(c["compliance"]["value"] == 1.0 for c in cond["contexts"].values())
        assert cond["gaps"]["compliance_gap"]["value"] == 0.0

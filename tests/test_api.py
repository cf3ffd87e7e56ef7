"""The notebook API: pnyx.run and pnyx.load_run, suites as ordinary kinds, provenance."""

import json

import matplotlib
import pandas as pd
import pytest
import yaml

import pnyx
from pnyx.errors import PnyxError

TOURNAMENT = {"kind": "tournament", "players": ["tft", "alld", "allc"], "turns": 10, "repetitions": 2}


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"kind": "suite", "seed": 3, "parts": {
        "first": TOURNAMENT, "second": {**TOURNAMENT, "players": ["wsls", "grim"], "seed": 9}}}))
    return path


def test_run_returns_the_loaded_run_and_leaves_the_backend_alone(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(TOURNAMENT))
    backend = matplotlib.get_backend()
    run = pnyx.run(str(path), out=tmp_path / "out", seed=5, overrides={"turns": 4}, workers=1, progress=False)
    assert matplotlib.get_backend() == backend
    assert run.config["seed"] == 5 and run.config["turns"] == 4
    assert isinstance(run.results, pd.DataFrame) and len(run.results) == 6 * 2 * 2  # pairs x seats x repetitions
    assert run.summary["ranking"][0] == "alld"
    figures = {"payoff_matrix", "payoff_differences", "cooperation_matrix", "payoff_boxplot",
               "payoff_difference_distributions", "wins"}
    assert set(run.plots) == figures
    assert set(run.figures()) == figures
    assert run.summary == pnyx.load_run(tmp_path / "out").summary


def test_summary_records_provenance(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(TOURNAMENT))
    pnyx.run(str(path), out=tmp_path / "out", seed=4, workers=1, progress=False)
    provenance = json.loads((tmp_path / "out" / "summary.json").read_text())["provenance"]
    assert set(provenance) == {"pnyx", "git_commit", "python", "numpy", "torch", "ray", "seed", "started",
                               "finished", "hosts", "nodes", "retries"}
    assert provenance["seed"] == 4 and provenance["hosts"] == 1 and provenance["pnyx"] == pnyx.__version__
    assert provenance["nodes"] == [] and provenance["retries"] == 0
    assert provenance["started"] <= provenance["finished"]


def test_a_suite_is_an_ordinary_kind(suite_file, tmp_path):
    run = pnyx.run(str(suite_file), out=tmp_path / "s", workers=1, progress=False)
    assert list(run.results["part"]) == ["first", "second"]
    assert set(run.parts) == {"first", "second"}
    assert run.parts["first"].config["seed"] == 3 and run.parts["second"].config["seed"] == 9
    assert run.summary["parts"]["second"] == run.parts["second"].summary
    report = (tmp_path / "s" / "report.md").read_text()
    assert "![first](first/plots/payoff_matrix.png)" in report
    assert "![second](second/plots/payoff_matrix.png)" in report


def test_load_run_refuses_what_is_not_a_finished_run(tmp_path):
    with pytest.raises(PnyxError, match="not a pnyx run folder"):
        pnyx.load_run(tmp_path)
    (tmp_path / "config.yaml").write_text("kind: tournament\n")
    with pytest.raises(PnyxError, match="unfinished run"):
        pnyx.load_run(tmp_path)

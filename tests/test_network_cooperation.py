"""The network-cooperation experiment: graphs, units, summary, report, and the b/c > k picture."""

import json
import re

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from interrupts import popen

from pnyx.errors import PnyxError
from pnyx.experiments.config import resolve, validate
from pnyx.experiments.experiment import RunContext, RunOptions
from pnyx.experiments.network_cooperation import (
    NetworkCooperation,
    NetworkCooperationConfig,
    make_graph,
    threshold,
)
from pnyx.stats import wilson

TINY = ["nodes=20", "families=[ring]", "degrees=[2]", "benefit_cost_ratios=[1,4]", "updates=[db]",
        "trials=300", "replicates=2"]


def config(**fields):
    return NetworkCooperationConfig(kind="network-cooperation", **fields)


def test_presets_validate_and_quick_is_small():
    kind, full = resolve("network-cooperation")
    _, quick = resolve("network-cooperation", quick=True)
    assert isinstance(kind, NetworkCooperation)
    assert len(kind.units(full)) == 2 * 2 * 7 * 3 * 4
    units = kind.units(quick)
    assert len(units) == 2 * 7 * 2 and len({u.key for u in units}) == len(units)
    assert units[0].key == "db/random_regular/k=2/bc=1/rep=0"
    assert units[0].params == {"update": "db", "family": "random_regular", "degree": 2, "b_c": 1, "replicate": 0}


@pytest.mark.parametrize("fields, message", [
    ({"families": ["ring"], "degrees": [3]}, "ring graphs need an even degree"),
    ({"families": ["lattice"], "nodes": 30, "degrees": [4]}, "square number of nodes"),
    ({"families": ["lattice"], "nodes": 36, "degrees": [6]}, "degree 4 (von Neumann) or 8"),
    ({"families": ["random_regular"], "nodes": 31, "degrees": [3]}, "nodes * degree even"),
    ({"degrees": [50]}, "degree 50"),
    ({"selection": 0.3, "degrees": [4]}, "selection=0.3"),
    ({"benefit_cost_ratios": [2, -1]}, "-1"),
    ({"families": ["hypercube"]}, "families.0"),
    ({"updates": ["db", "db"]}, "duplicate"),
    ({"trails": 10}, "unknown config field 'trails'"),
])
def test_bad_configs_are_one_line_errors(fields, message):
    with pytest.raises(PnyxError, match=re.escape(message)):
        validate({"kind": "network-cooperation", **fields})


@pytest.mark.parametrize("family, nodes, degree", [
    ("random_regular", 30, 2), ("random_regular", 30, 3), ("ring", 30, 4), ("lattice", 36, 4), ("lattice", 36, 8),
])
def test_graph_families_are_connected_and_regular(family, nodes, degree):
    graph = make_graph(family, nodes, degree, np.random.SeedSequence(1))
    assert graph.number_of_nodes() == nodes and nx.is_connected(graph)
    assert {d for _, d in graph.degree} == {degree}
    again = make_graph(family, nodes, degree, np.random.SeedSequence(1))
    assert sorted(graph.edges) == sorted(again.edges)


def test_ring_and_lattice_neighbourhoods():
    ring = make_graph("ring", 10, 4, np.random.SeedSequence(0))
    assert sorted(ring[0]) == [1, 2, 8, 9]
    moore = make_graph("lattice", 16, 8, np.random.SeedSequence(0))  # 4 x 4 torus, node = 4 * row + column
    assert sorted(moore[0]) == [1, 3, 4, 5, 7, 12, 13, 15]


def test_replicate_graph_is_shared_across_conditions_and_differs_between_replicates():
    kind, cfg = NetworkCooperation(), config(nodes=30, degrees=[3])
    a, b = kind.graph(cfg, "random_regular", 3, 0), kind.graph(cfg, "random_regular", 3, 0)
    c = kind.graph(cfg, "random_regular", 3, 1)
    assert sorted(a.edges) == sorted(b.edges) != sorted(c.edges)


def test_threshold_formula():
    assert threshold(30, 2) == pytest.approx(28 / 13)
    assert threshold(100, 4) == pytest.approx(98 / 23)
    assert threshold(8, 4) is None


def test_run_unit_rows_are_deterministic(tmp_path):
    kind, cfg = NetworkCooperation(), config(nodes=12, degrees=[2], trials=200)
    unit = kind.units(cfg)[3]
    ctx = RunContext(tmp_path, RunOptions(progress=False))
    first = kind.run_unit(cfg, unit, np.random.SeedSequence(5), ctx).rows
    again = kind.run_unit(cfg, unit, np.random.SeedSequence(5), ctx).rows
    pd.testing.assert_frame_equal(first, again)
    row = first.iloc[0]
    assert row["b_c"] == unit.params["b_c"] and row["trials"] == 200 and row["nodes"] == 12
    assert row["fixation_probability"] == row["fixed"] / 200


def test_summary_pools_replicates_and_finds_the_crossing():
    kind = NetworkCooperation()
    cfg = config(nodes=10, degrees=[2], benefit_cost_ratios=[1, 2, 3], updates=["db"], trials=100)
    base = {"update": "db", "family": "random_regular", "degree": 2, "nodes": 10, "trials": 100}
    fixed = {(1, 0): 2, (1, 1): 2, (2, 0): 8, (2, 1): 8, (3, 0): 20, (3, 1): 30}
    results = pd.DataFrame([{**base, "b_c": bc, "replicate": rep, "fixed": f, "fixation_probability": f / 100}
                            for (bc, rep), f in fixed.items()])
    summary = kind.summarize(cfg, results, {})
    json.dumps(summary.model_dump())
    by_ratio = {c.b_c: c for c in summary.conditions}
    assert [by_ratio[r].fixed for r in (1, 2, 3)] == [4, 16, 50]
    assert by_ratio[3].fixation_probability == wilson(50, 200)
    assert by_ratio[3].fixation_probability.value == 0.25 and by_ratio[3].relative_to_neutral == 2.5
    assert [by_ratio[r].favoured for r in (1, 2, 3)] == ["no", "undecided", "yes"]
    (crossing,) = summary.thresholds
    # 1/N = 0.1 lies between 0.08 (b/c = 2) and 0.25 (b/c = 3): 2 + 0.02 / 0.17
    assert crossing.observed_threshold == pytest.approx(2 + 0.02 / 0.17)
    assert crossing.theory_threshold == pytest.approx(8 / 3)
    report = kind.report(cfg, summary)
    assert "| db | random_regular | 2 | 2.12 | 2.67 |" in report


def test_death_birth_favours_cooperators_only_above_the_threshold(tmp_path):
    """N = 16 on a ring (k = 2): db threshold (N-2)/(N/k-2) = 2.33; bd never."""
    kind = NetworkCooperation()
    cfg = config(nodes=16, families=["ring"], degrees=[2], benefit_cost_ratios=[1.5, 4], updates=["db", "bd"],
                 selection=0.1, trials=2000, replicates=1)
    ctx = RunContext(tmp_path, RunOptions(progress=False))
    rows = pd.concat([kind.run_unit(cfg, u, np.random.SeedSequence(i), ctx).rows for i, u in enumerate(kind.units(cfg))])
    favoured = {(c.update, c.b_c): c.favoured for c in kind.summarize(cfg, rows, {}).conditions}
    assert favoured == {("db", 1.5): "no", ("db", 4): "yes", ("bd", 1.5): "no", ("bd", 4): "no"}


def test_end_to_end_through_the_runner(tmp_path):
    from pnyx.experiments.runner import run_experiment

    summary = run_experiment("network-cooperation", quick=True, overrides=TINY, out=tmp_path, workers=1,
                             progress=False)
    assert {c["b_c"] for c in summary["conditions"]} == {1, 4}
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert len(results) == 4 and set(results["replicate"]) == {0, 1}
    assert (tmp_path / "plots" / "fixation_vs_bc.png").stat().st_size > 0
    assert "b/c above which cooperators are favoured" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_same_results_on_one_and_two_ray_workers(tmp_path, ray_session):
    from pnyx.experiments.runner import run_experiment

    one = run_experiment("network-cooperation", quick=True, overrides=TINY, out=tmp_path / "one", workers=1,
                         progress=False)
    two = run_experiment("network-cooperation", quick=True, overrides=TINY, out=tmp_path / "two", workers=2,
                         progress=False)
    assert one["conditions"] == two["conditions"]
    frames = [pd.read_parquet(tmp_path / name / "results.parquet").sort_values("unit", ignore_index=True)
              for name in ("one", "two")]
    pd.testing.assert_frame_equal(*frames)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_signal_stops_the_sweep_promptly(tmp_path, workers):
    """SIGTERM once the first chunk is written, with minutes of work left: exit 130 and the
    finished chunks kept (the runner's resume is tested on tournaments)."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    cli = [sys.executable, "-m", "pnyx.experiments.cli", "run", "network-cooperation", "--quick", "--set", "replicates=10",
           "--set", "trials=1000", "--workers", str(workers), "--no-progress", "--out", str(out)]
    proc = popen(cli, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900
    while not list((out / "units").glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("pnyx: interrupted; finished units are kept")
    assert "Traceback" not in err and "SIGTERM received" not in err
    assert list((out / "units").glob("*.json")) and not (out / "summary.json").exists()

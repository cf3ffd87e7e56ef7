"""Every kind's ``plot`` returns Figures drawn from its results and summary, and leaves
matplotlib's global state (backend, rcParams, pyplot) alone."""

import io
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from test_results_schema import CASES

FIGURES = {
    "tournament": {"payoff_matrix", "payoff_differences", "payoff_boxplot", "wins", "evolution"},
    "network-cooperation": {"fixation_vs_bc"},
    "coral-agreement": {"agreement_vs_correctness"},
    "peer-goal-guarding": {"compliance_cells"},
    "weis-ipd": {"cooperation_over_training", "within_episode_cooperation"},
}


def _figures(name):
    kind, cfg, results, records = CASES[name]()
    summary = kind.summarize(cfg, results, records)
    return kind, summary, kind.plot(cfg, results, summary)


def _has_data(ax) -> bool:
    return bool(ax.lines or ax.patches or ax.images or ax.collections)


@pytest.mark.parametrize("name", CASES)
def test_plot_returns_figures_with_data(name):
    rc = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    kind, _, figures = _figures(name)
    assert set(figures) == FIGURES[name] and kind.main_plot in figures
    for key, fig in figures.items():
        assert isinstance(fig, Figure) and fig.axes, key
        assert any(_has_data(ax) for ax in fig.axes), key
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=120)
        assert png.getvalue().startswith(b"\x89PNG"), key
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc


def test_tournament_figures_show_the_summary():
    _, summary, figures = _figures("tournament")
    (image,) = figures["payoff_matrix"].axes[0].images
    ranked = summary.ranking  # rows and columns in Axelrod's ranking order
    np.testing.assert_array_equal(image.get_array(), [[summary.payoff_matrix[p][q] for q in ranked]
                                                      for p in ranked])
    players = summary.players
    lines = figures["evolution"].axes[0].lines
    assert [line.get_label() for line in lines] == players
    np.testing.assert_allclose(lines[1].get_ydata(), np.array(summary.evolution.shares)[:, 1])


def test_tournament_figures_fit_long_specs_of_few_players(tmp_path):
    """Two players named by full memory-one specs: every figure lays out its labels and
    title (matplotlib warns when a tight layout cannot make room)."""
    from pnyx.experiments.experiment import RunOptions
    from pnyx.experiments.runner import execute
    from pnyx.experiments.tournament import Tournament, TournamentConfig

    specs = ["memory_one(0.9,0.1,0.8,0.2,1)", "memory_one(0.7,0.3,0.6,0.4,0.5)"]
    cfg = TournamentConfig(kind="tournament", players=specs, turns=5, repetitions=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        execute(Tournament(), cfg, tmp_path, options=RunOptions(workers=1, progress=False))
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {f"{name}.png" for name in FIGURES["tournament"]
                                                                if name != "evolution"}


def test_network_figure_shows_each_estimate_and_interval():
    _, summary, figures = _figures("network-cooperation")
    db, bd = figures["fixation_vs_bc"].axes
    assert (db.get_title(), bd.get_title()) == ("db, random_regular", "bd, random_regular")
    curve = [c.fixation_probability for c in summary.conditions if c.update == "db"]
    (errorbar,) = [c for c in db.containers if c.get_label() == "k = 2"]
    points, _, (bars,) = errorbar.lines
    np.testing.assert_allclose(points.get_ydata(), [e.value for e in curve])
    np.testing.assert_allclose([s[:, 1] for s in bars.get_segments()], [[e.low, e.high] for e in curve])


def test_coral_and_weis_panels():
    _, summary, figures = _figures("coral-agreement")
    bars, scatter = figures["agreement_vs_correctness"].axes
    assert len(bars.patches) == 5 * len(summary.conditions)
    _, summary, figures = _figures("weis-ipd")
    panels = figures["cooperation_over_training"].axes
    assert [ax.get_title() for ax in panels] == list(summary.conditions)
    assert all(len(ax.lines) == 4 for ax in panels)
    np.testing.assert_allclose(panels[0].lines[0].get_xdata(), [0, 2, 4])


def test_plotting_never_imports_pyplot():
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_results_schema import CASES\n"
        "import io\n"
        "for make in CASES.values():\n"
        "    kind, cfg, results, records = make()\n"
        "    for fig in kind.plot(cfg, results, kind.summarize(cfg, results, records)).values():\n"
        "        fig.savefig(io.BytesIO(), format='png')\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "False"

"""Every kind's ``plot`` returns Figures drawn from its results and summary, and leaves
matplotlib's global state (backend, rcParams, pyplot) alone."""

import io
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_results_schema import CASES

FIGURES = {
    "tournament": {"payoff_matrix", "payoff_differences", "cooperation_matrix", "payoff_boxplot",
                   "payoff_difference_distributions", "wins", "evolution"},
    "network-cooperation": {"fixation_vs_bc"},
    "coral-agreement": {"agreement_vs_correctness"},
    "peer-goal-guarding": {"compliance_cells", "reply_shares"},
    "weis-ipd": {"cooperation_over_training", "within_episode_cooperation", "figure1"},
}


def _figures(name):
    kind, cfg, results, records = CASES[name]()
    summary = kind.summarize(cfg, results, records)
    return kind, summary, kind.plot(cfg, results, summary)


def _has_data(ax) -> bool:
    return bool(ax.lines or ax.patches or ax.images or ax.collections)


def _band(ax, k: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k``-th shaded band of ``ax`` (``fill_between``): its x values and the lower and
    upper edge at each."""
    (path,) = [c for c in ax.collections if type(c).__name__.endswith("PolyCollection")][k].get_paths()
    vertices = pd.DataFrame(path.vertices, columns=["x", "y"]).groupby("x")["y"]
    return vertices.min().index.to_numpy(), vertices.min().to_numpy(), vertices.max().to_numpy()


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
    (image,) = figures["cooperation_matrix"].axes[0].images
    assert ranked == ["alld", "tft"]
    np.testing.assert_array_equal(image.get_array(), [[0.0, 0.0], [0.1, 1.0]])
    assert image.get_clim() == (0.0, 1.0)
    assert figures["cooperation_matrix"].axes[1].get_ylabel() == "cooperation rate"
    # alld's payoff differences against tft, 1.4 - 0.9 in both repetitions; tft's the opposite
    ax = figures["payoff_difference_distributions"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ranked
    np.testing.assert_allclose([(box.get_y(), box.get_height()) for box in ax.patches], [(0.5, 0.0), (-0.5, 0.0)])
    assert ax.get_ylabel().startswith("payoff difference per turn") and "Axelrod" in ax.get_title()
    assert any(list(line.get_ydata()) == [0, 0] for line in ax.lines)  # the zero line
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
    (line,) = [line for line in db.lines if line.get_label() == "k = 2"]
    np.testing.assert_allclose(line.get_ydata(), [e.value for e in curve])
    x, low, high = _band(db)
    np.testing.assert_allclose(x, [1, 2, 3])
    np.testing.assert_allclose(np.vstack([low, high]).T, [[e.low, e.high] for e in curve])


def test_reply_shares_stack_every_reply_by_outcome():
    """The hand-made table: alone/training holds one reply of each outcome but refusal with
    AF reasoning; the unparseable replies of peers_present/deployment fill its bar as not
    judged. A small table adds a refusal with AF reasoning."""
    from pnyx.experiments.peer_goal_guarding import REPLY_OUTCOMES, reply_shares

    _, _, figures = _figures("peer-goal-guarding")
    fig = figures["reply_shares"]
    alone, present = fig.axes
    assert (alone.get_title(), present.get_title()) == ("alone", "peers_present")
    assert [t.get_text() for t in alone.get_xticklabels()] == ["training\n(n = 4)", "deployment\n(n = 4)"]
    assert alone.get_ylabel() == "share of replies"

    def stacks(ax):  # per context: the outcomes' heights, bottom first, and where each segment starts
        return ([[p.get_height() for p in ax.patches[i:i + 5]] for i in (0, 5)],
                [[p.get_y() for p in ax.patches[i:i + 5]] for i in (0, 5)])

    # complied with AF, complied without, refused with AF, refused without, not judged
    heights, bottoms = stacks(alone)
    np.testing.assert_allclose(heights, [[0.25, 0.25, 0, 0.25, 0.25], [0, 0.25, 0, 0.75, 0]])
    np.testing.assert_allclose(bottoms, [[0, 0.25, 0.5, 0.5, 0.75], [0, 0, 0.25, 0.25, 1]])
    np.testing.assert_allclose(stacks(present)[0], [[0.5, 0.25, 0, 0, 0.25], [0, 0, 0, 0, 1]])
    assert [bool(p.get_hatch()) for p in alone.patches[:5]] == [True, False, True, False, False]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == list(REPLY_OUTCOMES)[::-1]
    nan = float("nan")
    table = pd.DataFrame({"condition": "alone", "context": "deployment", "complied": [0.0, 0.0, 1.0, nan],
                          "af_reasoning": [1.0, nan, nan, nan]})
    shares = reply_shares(table, ["alone", "peer_persuasion"], ["deployment"])
    assert list(shares["alone", "deployment"].values()) == [4, 0.0, 0.25, 0.25, 0.25, 0.25]
    assert shares["peer_persuasion", "deployment"] == {"n": 0, **dict.fromkeys(REPLY_OUTCOMES)}


def test_coral_and_weis_panels():
    _, summary, figures = _figures("coral-agreement")
    bars, scatter = figures["agreement_vs_correctness"].axes
    assert len(bars.patches) == 5 * len(summary.conditions)
    _, summary, figures = _figures("weis-ipd")
    panels = figures["cooperation_over_training"].axes
    assert [ax.get_title() for ax in panels] == list(summary.conditions)
    assert all(len(ax.lines) == 4 for ax in panels)
    np.testing.assert_allclose(panels[0].lines[0].get_xdata(), [0, 2, 4])
    assert not any(ax.collections for ax in panels)  # one seed: no interval, no band


def test_weis_curves_are_seed_means_in_bands_of_their_intervals():
    """Two seeds 0.02 apart: the mean is 0.01 above the first, and the Student-t interval is
    the mean +- t(0.975, 1) * 0.01, clipped to [0, 1]."""
    from scipy.stats import t

    kind, cfg, rows, records = CASES["weis-ipd"]()
    metric = "learner_vs_learner_cooperation"
    rows = pd.concat([rows.assign(seed_index=0), rows.assign(seed_index=1, **{metric: rows[metric] + 0.02})])
    fig = kind.plot(cfg, rows, kind.summarize(cfg, rows, records))["cooperation_over_training"]
    ax = fig.axes[0]
    mean = np.array([0.11, 0.31, 0.51])  # the first seed's 0.1, 0.3, 0.5 (0.1 + 0.1 * iteration), plus 0.01
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
    x, low, high = _band(ax)
    half = t.ppf(0.975, 1) * 0.01
    np.testing.assert_allclose(x, [0, 2, 4])
    np.testing.assert_allclose(low, np.clip(mean - half, 0, 1))
    np.testing.assert_allclose(high, np.clip(mean + half, 0, 1))
    assert "shaded: 95% interval" in fig.get_suptitle()


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

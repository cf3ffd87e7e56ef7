"""Figure helpers shared by experiment kinds; every figure is a ``matplotlib.figure.Figure``."""

from __future__ import annotations

from matplotlib.figure import Figure


def condition_panels(conditions: dict, draw, xlabel, ylabel, title) -> Figure:
    """One panel per condition, drawn by ``draw(ax, condition_summary)``; titles name the
    learning method when the conditions do not all share one."""
    n = len(conditions)
    mixed = len({c.get("method") for c in conditions.values()}) > 1
    fig = Figure(figsize=(4 * n, 3.4), layout="tight")
    axes = fig.subplots(1, n, sharey=True, squeeze=False)
    for ax, (name, c) in zip(axes[0], conditions.items()):
        draw(ax, c)
        ax.set_title(f"{name} ({c['method']})" if mixed else name)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    return fig

"""Figure helpers shared by experiment kinds; every figure is a ``matplotlib.figure.Figure``."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def condition_panels(conditions: dict, draw, xlabel, ylabel, title) -> Figure:
    """One panel per condition, drawn by ``draw(ax, condition_summary)``, x ticks at whole
    numbers (iterations, rounds), the legend right of the last panel; titles name the
    learning method when the conditions do not all share one."""
    n = len(conditions)
    mixed = len({c.get("method") for c in conditions.values()}) > 1
    fig = Figure(figsize=(4 * n, 3.4), layout="tight")
    axes = fig.subplots(1, n, sharey=True, squeeze=False)
    for ax, (name, c) in zip(axes[0], conditions.items()):
        draw(ax, c)
        ax.set_title(f"{name} ({c['method']})" if mixed else name)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(title)
    return fig


def interval_arrays(stats: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, lows and highs of Estimates (or ``{value, low, high}`` dicts), NaN where
    undefined (``None``, or ``None`` in place of an Estimate)."""
    def column(key: str) -> np.ndarray:
        values = [None if s is None else s[key] if isinstance(s, dict) else getattr(s, key) for s in stats]
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    return column("value"), column("low"), column("high")


def interval_bars(ax, series: dict, width: float = 0.8) -> None:
    """Grouped bars with interval whiskers. ``series`` maps a legend label to ``{value, low,
    high}`` dicts (``None`` where missing), one per position 0, 1, ...; each position holds one
    bar per series, side by side within ``width``. An undefined value is marked "n/a" at 0
    instead of a bar; a bar of height 0 shows as a line at 0 in its colour."""
    bar = width / len(series)
    for j, (label, stats) in enumerate(series.items()):
        value, low, high = interval_arrays(stats)
        x = np.arange(len(stats)) + (j - (len(series) - 1) / 2) * bar
        err = np.clip(np.nan_to_num(np.vstack([value - low, high - value])), 0, None)
        bars = ax.bar(x, np.nan_to_num(value), bar, yerr=err, capsize=3, label=label)
        zero = x[value == 0]
        if len(zero):
            ax.hlines(np.zeros(len(zero)), zero - bar / 2, zero + bar / 2, colors=[bars.patches[0].get_facecolor()],
                      linewidth=2, zorder=3, clip_on=False)
        for xi in x[np.isnan(value)]:
            ax.annotate("n/a", (xi, 0), ha="center", va="bottom", fontsize=8)


def interval_line(ax, x, stats: list, alpha: float = 0.2, **line) -> None:
    """A curve of Estimates (or ``{value, low, high}`` dicts) at ``x``: the values as a line
    (``line`` passes on to ``Axes.plot``), the 95% intervals as a shaded band in the line's
    colour at opacity ``alpha``; the band leaves gaps where an interval is undefined."""
    value, low, high = interval_arrays(stats)
    (drawn,) = ax.plot(x, value, **line)
    if not np.isnan(low + high).all():
        ax.fill_between(x, low, high, color=drawn.get_color(), alpha=alpha, linewidth=0)

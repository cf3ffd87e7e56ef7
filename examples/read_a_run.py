"""Read a run folder from Python: the results table, the summary and a figure (docs/how-to/notebook.md).

    python examples/read_a_run.py [OUT]

Runs the quick network-cooperation sweep (fixation of one cooperator against b/c), then reads it
back with ``pnyx.load_run``: the
per-unit rows as a pandas DataFrame, the typed summary, and the main figure as a
``matplotlib.figure.Figure`` saved beside the run.
"""

import sys
import tempfile
from pathlib import Path

import pnyx


def main(out: str) -> None:
    pnyx.run("network-cooperation", out=out, quick=True, workers=1, progress=False)
    run = pnyx.load_run(out)
    print(run.results.groupby(["update", "b_c"])["fixation_probability"].mean().to_string())
    figures = run.figures()
    name = next(iter(figures))
    figures[name].savefig(Path(out) / f"{name}-again.png")
    print(f"figure {name!r} saved to {Path(out) / f'{name}-again.png'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="pnyx-read-a-run-"))

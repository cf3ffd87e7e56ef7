"""A finished run folder as Python objects: the one call a notebook needs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from matplotlib.figure import Figure

from pnyx.errors import PnyxError


@dataclass
class Run:
    """A run folder: its resolved ``config``, ``summary``, ``results`` table, ``records``
    (``transcripts`` and the like, from ``*.jsonl``) and, for a suite, its ``parts``."""

    path: Path
    config: dict
    summary: dict
    results: pd.DataFrame
    records: dict[str, list[dict]] = field(default_factory=dict)
    parts: dict[str, Run] = field(default_factory=dict)

    @property
    def plots(self) -> dict[str, Path]:
        """The saved figures, by name."""
        return {p.stem: p for p in sorted((self.path / "plots").glob("*.png"))}

    def figures(self) -> dict[str, Figure]:
        """The run's figures, drawn afresh from its results table and summary."""
        from pnyx.experiments.config import validate

        kind, cfg = validate(self.config, stored=True)
        if not len(self.results):
            return {}
        return kind.plot(cfg, self.results, kind.Summary.stored(self.summary, str(self.path / "summary.json")))


def load_run(path: str | Path) -> Run:
    """Load the run in ``path``; a :class:`PnyxError` if it is not a finished pnyx run."""
    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise PnyxError(f"{str(path)!r} is not a pnyx run folder (no config.yaml)")
    if not (path / "summary.json").is_file():
        raise PnyxError(f"{str(path)!r} is an unfinished run (no summary.json); finish it with --resume")
    config = yaml.safe_load((path / "config.yaml").read_text())
    summary = json.loads((path / "summary.json").read_text())
    results = pd.read_parquet(path / "results.parquet")
    records = {p.stem: [json.loads(line) for line in p.read_text().splitlines() if line]
               for p in sorted(path.glob("*.jsonl"))}
    parts = {name: load_run(path / name) for name in (config.get("parts") or {}) if (path / name).is_dir()}
    return Run(path, config, summary, results, records, parts)

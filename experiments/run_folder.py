"""A finished run folder as Python objects: the one call a notebook needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from pnyx.errors import PnyxError
from pnyx.files import parse_json, read_json, read_text, read_yaml

#: Largest records file (``*.jsonl``) read, in bytes.
MAX_RECORDS_BYTES = 1024 * 2**20


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
    config = read_yaml(path / "config.yaml", f"config {str(path / 'config.yaml')!r}")
    summary = read_json(path / "summary.json", f"summary {str(path / 'summary.json')!r}")
    results = pd.read_parquet(path / "results.parquet")
    records = {p.stem: [parse_json(line, f"{str(p)!r} line {n}", None)
                        for n, line in enumerate(read_text(p, f"{str(p)!r}", MAX_RECORDS_BYTES).splitlines(), 1) if line]
               for p in sorted(path.glob("*.jsonl"))}
    parts = {name: load_run(path / name) for name in (config.get("parts") or {}) if (path / name).is_dir()}
    return Run(path, config, summary, results, records, parts)

"""What an experiment kind is: a config model, units, rows, a summary, plots.

Data flows one way: a validated config -> independent units (condition x seed) ->
each unit plays environments with agents and returns rows -> the runner merges
rows into ``results.parquet`` -> ``summarize`` computes metrics -> ``plot`` and the
report show them. A unit's randomness comes only from the ``SeedSequence`` it is
handed, which the runner derives from the experiment seed and the unit's key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict


class ExperimentConfig(BaseModel):
    """Fields every experiment has; each kind subclasses it with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    description: str = ""
    seed: int = 0


@dataclass(frozen=True)
class Unit:
    """One independent piece of work. ``key`` is unique within the experiment and stable
    across runs (it names the unit's file and seeds it); ``params`` is what the unit needs."""

    key: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class UnitOutput:
    """What a unit returns: rows for ``results.parquet``, and JSON-able records
    for ``<name>.jsonl`` files (``transcripts`` for example)."""

    rows: pd.DataFrame
    records: dict[str, list[dict]] = field(default_factory=dict)


class Experiment:
    """Base class of experiment kinds. Register subclasses with
    :func:`pnyx.experiments.catalog.register_kind`."""

    name: ClassVar[str]
    Config: ClassVar[type[ExperimentConfig]] = ExperimentConfig
    #: Run units one after another in the driver process instead of as Ray tasks: for
    #: kinds that hold heavy state across units (a loaded language model) or that
    #: distribute work inside a unit themselves (Ray rollout actors).
    runs_in_driver: ClassVar[bool] = False
    #: For ``runs_in_driver`` kinds, a scratch folder inside the run's output folder
    #: (checkpoints and the like), set by the runner before units run; it survives
    #: an interrupt, so a resumed unit can continue from it.
    workdir: Path | None = None
    #: Whether the kind may show progress bars of its own (``--no-progress`` clears it).
    progress: bool = True

    def units(self, cfg: ExperimentConfig) -> list[Unit]:
        raise NotImplementedError

    def run_unit(self, cfg: ExperimentConfig, unit: Unit, seed: np.random.SeedSequence) -> UnitOutput:
        raise NotImplementedError

    def summarize(self, cfg: ExperimentConfig, results: pd.DataFrame, records: dict[str, list[dict]]) -> dict:
        """Metrics from the merged rows; must be a pure function of its inputs."""
        raise NotImplementedError

    def plot(self, cfg: ExperimentConfig, results: pd.DataFrame, summary: dict, plot_dir: Path) -> None:
        """Write ``*.png`` figures into ``plot_dir`` (optional)."""

    def report(self, cfg: ExperimentConfig, summary: dict) -> str:
        """Markdown for the report's findings section; the runner adds config, plots, failures."""
        return ""

"""A suite runs several experiments as parts of one run, each in its own subfolder.

``quickstart`` is a suite. Each part is an inline experiment config (``kind:`` and its
fields); a part without a ``seed`` takes the suite's. A part is one unit of the suite:
it runs (or resumes) the part's experiment into ``<out>/<part>``, and fails if any of
the part's units failed, so ``--resume`` retries it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from pnyx.errors import PnyxError
from pnyx.experiments.config import validate
from pnyx.experiments.experiment import (Experiment, ExperimentConfig, RunContext, Summary, Unit, UnitOutput,
                                         builds_specs)
from pnyx.paths import run_path


class SuiteConfig(ExperimentConfig):
    parts: dict[str, dict] = Field(min_length=1)

    @field_validator("parts")
    @classmethod
    def _valid_parts(cls, parts, info: ValidationInfo):
        for name, part in parts.items():
            if not name.replace("-", "_").isidentifier():
                raise ValueError(f"part name {name!r} must be a simple identifier")
            try:
                validate({"seed": 0, **part}, stored=not builds_specs(info))
            except PnyxError as e:
                raise ValueError(f"part {name!r}: {e}") from None
        return parts

    def part_configs(self) -> dict[str, dict]:
        return {name: {"seed": self.seed, **part} for name, part in self.parts.items()}


class SuiteSummary(Summary):
    """Each finished part's ``summary.json``, by part name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    parts: dict[str, dict]


class Suite(Experiment):
    """Runs its parts one after another, each into its own subfolder."""

    name = "suite"
    Config = SuiteConfig
    Summary = SuiteSummary
    runs_in_driver = True

    def units(self, cfg: SuiteConfig) -> list[Unit]:
        return [Unit(name) for name in cfg.parts]

    def parts(self, cfg: SuiteConfig) -> dict[str, dict]:
        return cfg.part_configs()

    def run_unit(self, cfg: SuiteConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        from pnyx.experiments.runner import execute

        kind, part_cfg = validate(cfg.part_configs()[unit.key])
        summary = execute(kind, part_cfg, run_path(ctx.out, unit.key, folder=True), resume=True, options=ctx.options)
        run = summary["run"]
        if run["failed"]:
            raise PnyxError(f"part {unit.key!r}: {run['failed']} of {run['units']} units failed "
                            f"(see {unit.key}/report.md)")
        row = {"part": unit.key, "kind": part_cfg.kind, "units": run["units"], "folder": unit.key}
        return UnitOutput(pd.DataFrame([row]), {"parts": [{"part": unit.key, "summary": summary}]})

    def summarize(self, cfg: SuiteConfig, results: pd.DataFrame, records: dict[str, list[dict]]) -> SuiteSummary:
        """Each finished part's own summary, by part name."""
        return SuiteSummary(parts={item["part"]: item["summary"] for item in records.get("parts", [])})

    def report(self, cfg: SuiteConfig, summary: SuiteSummary) -> str:
        """Each part's findings and main plot, with a link to its full report."""
        sections = []
        for name, part in cfg.part_configs().items():
            kind, part_cfg = validate(part, stored=True)
            title = f"### {name}" + (f": {part_cfg.description}" if part_cfg.description else "")
            lines = [title]
            if name in summary.parts:
                lines.append(kind.report(part_cfg, kind.Summary.stored(summary.parts[name], f"part {name!r}")))
                if kind.main_plot:
                    lines.append(f"![{name}]({name}/plots/{kind.main_plot}.png)")
            lines.append(f"Full report: [{name}/report.md]({name}/report.md)")
            sections.append("\n\n".join(line for line in lines if line))
        return "\n\n".join(sections)

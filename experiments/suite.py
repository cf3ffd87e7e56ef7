"""A suite runs several experiments as parts of one run, each in its own subfolder.

``quickstart`` is a suite. Each part is an inline experiment config (``kind:`` and its
fields); a part without a ``seed`` takes the suite's.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig


class SuiteConfig(ExperimentConfig):
    parts: dict[str, dict] = Field(min_length=1)

    @field_validator("parts")
    @classmethod
    def _valid_parts(cls, parts):
        from pnyx.experiments.config import validate

        for name, part in parts.items():
            if not name.replace("-", "_").isidentifier():
                raise ValueError(f"part name {name!r} must be a simple identifier")
            try:
                validate({"seed": 0, **part})
            except PnyxError as e:
                raise ValueError(f"part {name!r}: {e}") from None
        return parts

    def part_configs(self) -> dict[str, dict]:
        return {name: {"seed": self.seed, **part} for name, part in self.parts.items()}


class Suite(Experiment):
    """Runs its parts one after another; the runner handles it (see ``runner.run_suite``)."""

    name = "suite"
    Config = SuiteConfig

    def report(self, cfg: SuiteConfig, summary: dict) -> str:
        """Each part's findings, with a link to its full report."""
        from pnyx.experiments.config import validate

        sections = []
        for name, part in cfg.part_configs().items():
            kind, part_cfg = validate(part)
            title = f"### {name}" + (f": {part_cfg.description}" if part_cfg.description else "")
            findings = kind.report(part_cfg, summary["parts"][name]) if name in summary.get("parts", {}) else ""
            sections.append(f"{title}\n\n{findings}\n\nFull report: [{name}/report.md]({name}/report.md)")
        return "\n\n".join(sections)

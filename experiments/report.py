"""``report.md``: what ran, what it found, the plots, the resolved config."""

from __future__ import annotations

from pathlib import Path

import yaml

from pnyx.experiments.experiment import Experiment, ExperimentConfig
from pnyx.experiments.store import atomic_write_text


def write_report(out: Path, kind: Experiment, cfg: ExperimentConfig, summary: dict) -> None:
    run = summary.get("run", {})
    lines = [f"# {kind.name}" + (f": {cfg.description}" if cfg.description else ""), ""]
    lines.append(f"Seed {cfg.seed}; {run.get('units', 0)} units, {run.get('failed', 0)} failed"
                 + (f"; {summary['ray']['workers']} worker(s)." if summary.get("ray") else "."))
    findings = kind.report(cfg, summary) if run.get("finished", run.get("units")) else ""
    if findings:
        lines += ["", "## Findings", "", findings]
    plots = sorted((out / "plots").glob("*.png"))
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
    if run.get("failures"):
        lines += ["", "## Failed units", ""]
        lines += [f"- `{f['unit']}`: {f['error']}" for f in run["failures"]]
    lines += ["", "## Config", "", "```yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).rstrip(), "```", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))

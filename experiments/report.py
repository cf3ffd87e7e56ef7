"""``report.md``: what ran, what it found, the plots, the resolved config; and the
report tables that several kinds share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from pnyx.experiments.experiment import Experiment, ExperimentConfig, Summary
from pnyx.experiments.html_report import write_html_report
from pnyx.experiments.store import atomic_write_text
from pnyx.paths import run_path
from pnyx.redaction import redact

if TYPE_CHECKING:
    from pnyx.population.pairing import LLMMoves


def write_report(out: Path, kind: Experiment, cfg: ExperimentConfig, summary: dict, typed: Summary | None) -> None:
    """``report.md`` from the run's ``summary`` (what ``summary.json`` holds) and the kind's
    :class:`Summary` (``None`` when no unit finished)."""
    run = summary.get("run", {})
    lines = [f"# {kind.name}" + (f": {cfg.description}" if cfg.description else ""), ""]
    lines.append(f"Seed {cfg.seed}; {run.get('units', 0)} units, {run.get('failed', 0)} failed"
                 + (f", {len(run['damaged'])} damaged chunk(s)" if run.get("damaged") else "")
                 + (_workers(summary["ray"]["workers"]) if summary.get("ray") else "."))
    findings = kind.report(cfg, typed) if typed is not None else ""
    if findings:
        lines += ["", "## Findings", "", findings]
    if summary.get("usage"):
        lines += ["", "## Model usage", "", "| role | model | requests | tokens in | tokens out | truncated | cost (USD) |",
                  "|---|---|---|---|---|---|---|"]
        for u in summary["usage"]:
            cost = "n/a" if u["cost_usd"] is None else f"{u['cost_usd']:.4f}"
            lines.append(f"| {u['role']} | `{u['model']}` | {u['requests']} | {u['prompt_tokens']} | "
                         f"{u['completion_tokens']} | {u['truncated']} | {cost} |")
        lines += ["", "model: the identity of the model that ran; requests: replies asked for, retries included; "
                  "truncated: those replies cut at the token limit."]
        lines += _cache_and_batch(summary["usage"])
    plots = sorted((out / "plots").glob("*.png"))
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
    if run.get("damaged"):
        lines += ["", "## Damaged chunks", "",
                  "These files of `units/` are missing, unreadable or differ from their manifest; "
                  "their units count as failed and `--resume` reruns them.", ""]
        lines += [f"- `{file}`" for file in run["damaged"]]
    if run.get("failed_samples"):
        failed = run["failed_samples"]
        lines += ["", "## Failed samples", "",
                  f"{failed['total']} episode(s) stopped on a request that failed after the backend's retries; "
                  "they have no rows, and `--resume` runs their units again "
                  "(`sample_failures.jsonl` holds each error).", "",
                  "| condition | failed episodes |", "|---|---|"]
        lines += [f"| {c} | {n} |" for c, n in failed["by_condition"].items()]
        lines += ["", "Errors: " + ", ".join(f"{e} ({n})" for e, n in failed["by_error"].items()) + "."]
    if run.get("failures"):
        lines += ["", "## Failed units", ""]
        lines += [f"- `{f['unit']}`: {f['error']}" for f in run["failures"]]
    lines += ["", "## Config", "", "```yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).rstrip(), "```", ""]
    atomic_write_text(run_path(out, "report.md"), redact("\n".join(lines)))
    write_html_report(out)


def _cache_and_batch(usage: list[dict]) -> list[str]:
    """Report lines on the input read from a provider's prompt cache and on replies from a batch API."""
    lines = []
    for u in usage:
        where = f"{u['role']} `{u['model']}`"
        if "cached_prompt_tokens" in u:
            saving = u.get("cache_savings_usd")
            saving = (f"{saving:.4f} USD against every input token at the input price" if saving is not None else
                      "n/a (no cost estimate)" if u["cost_usd"] is None else
                      "n/a (the role's prices give no cached_input or cache_write price)")
            lines.append(f"- Prompt cache, {where}: {u['cached_prompt_tokens']} of {u['prompt_tokens']} input tokens "
                         f"read from the provider's cache, {u.get('cache_write_tokens', 0)} written to it; "
                         f"saving {saving}.")
        if u.get("batched_requests"):
            lines.append(f"- Batch API, {where}: {u['batched_requests']} of {u['requests']} replies came from "
                         "the provider's batch API.")
    return [""] + lines if lines else []


def llm_report(llm: dict[str, LLMMoves] | None) -> list[str]:
    """Report lines for the language-model players' move counts (a summary's ``llm``)."""
    if not llm:
        return []
    lines = ["", "| language-model player | moves | retried | unparseable | truncated | played as fallback |",
             "|---|---|---|---|---|---|"]
    for spec, m in llm.items():
        lines.append(f"| `{spec}` | {m.moves} | {m.retried} | {m.unparseable} | {m.truncated} | "
                     f"{m.fallback} ({m.fallback_rule}) |")
    return lines


def _workers(n: int) -> str:
    return f"; {n} worker(s)." if n else "; in one process, no Ray workers."

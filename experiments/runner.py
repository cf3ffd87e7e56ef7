"""The experiment runner: units as Ray tasks, written as they finish, resumable, reproducible.

* Each unit's randomness is a ``SeedSequence`` derived from the experiment seed and
  the unit's key, never from worker identity or completion order: the same seed gives
  the same results on 1 worker, 2 workers or a cluster.
* Each finished unit is written at once (:mod:`pnyx.experiments.store`); ``resume``
  skips finished units. Ray retries a unit whose worker process or node died; a unit
  that raises is recorded with its error and the run goes on.
* At the end the rows are merged in unit order into ``results.parquet``, then
  ``summary.json`` (with the run's provenance), ``report.md`` and ``plots/`` are
  written; ``summary.json`` is written last, so a folder without it is an unfinished run.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from pnyx.agents.llm import shared_model
from pnyx.errors import PnyxError
from pnyx.experiments.config import resolve, validate
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, Unit
from pnyx.experiments.report import write_report
from pnyx.experiments.store import UnitResult, UnitStore, atomic_write, atomic_write_text

TASK_RETRIES = 3  # for lost workers and nodes; a unit's own exceptions are not retried


def unit_seed(seed: int, key: str) -> np.random.SeedSequence:
    """The unit's seed: a function of the experiment seed and the unit key only."""
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.SeedSequence(seed, spawn_key=tuple(int.from_bytes(digest[i:i + 4], "little") for i in (0, 4)))


def run_units(kind: Experiment, cfg: ExperimentConfig | dict, units: list[Unit], ctx: RunContext) -> list[UnitResult]:
    """Run units in this process; exceptions become error strings (the unit failed, the run goes on)."""
    if isinstance(cfg, dict):  # as sent to a Ray task
        cfg = kind.Config.model_validate(cfg)
    results = []
    for unit in units:
        try:
            output = kind.run_unit(cfg, unit, unit_seed(cfg.seed, unit.key), ctx)
            output.rows.insert(0, "unit", unit.key)
            results.append((unit.key, output, None))
        except PnyxError as e:
            results.append((unit.key, None, str(e)))
        except Exception as e:  # noqa: BLE001 - recorded with its traceback's last line
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            results.append((unit.key, None, last))
    return results


def _batches(units: list[Unit], workers: int) -> list[list[Unit]]:
    """Small units travel together, so that many tiny units do not drown in scheduling."""
    size = max(1, math.ceil(len(units) / (workers * 16)))
    return [units[i:i + size] for i in range(0, len(units), size)]


def _ray_workers(workers: int | None, address: str | None) -> int:
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
    return int(ray.cluster_resources().get("CPU", 1))


def _execute_ray(kind, cfg, todo, store, bar, workers, ctx):
    import ray

    remote = ray.remote(max_retries=TASK_RETRIES, num_cpus=1)(run_units)
    data = cfg.model_dump(mode="json")
    pending = [remote.remote(kind, data, batch, ctx) for batch in _batches(todo, workers)]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                _record(ray.get(ref), store, bar)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _record(results: list[UnitResult], store: UnitStore, bar) -> None:
    store.write(results)
    for key, _, error in results:
        if error is not None:
            bar.write(f"unit {key!r} failed: {error}")
    bar.update(len(results))


def execute(kind: Experiment, cfg: ExperimentConfig, out: Path, *, resume: bool = False,
            workers: int | None = None, address: str | None = None, progress: bool = True,
            models: Callable[[str], Any] = shared_model) -> dict:
    """Run every unfinished unit of ``cfg`` into ``out``, then merge, summarize and report."""
    started = _now()
    _prepare_out(cfg, out, resume)
    store = UnitStore(out)
    units = kind.units(cfg)
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise PnyxError("experiment produced duplicate unit keys")
    todo = [u for u in units if store.status(u.key) != "done"]
    ctx = RunContext(out=out, progress=progress, models=models,
                     options=dict(workers=workers, address=address, progress=progress, models=models))
    use_ray = not kind.runs_in_driver and (address is not None or (workers or os.cpu_count()) > 1)
    n_workers = _ray_workers(workers, address) if use_ray and todo else 1
    if kind.runs_in_driver:
        if todo and (address or (workers or 1) > 1):  # the kind distributes inside its units on this Ray
            _ray_workers(workers, address)
        n_workers = None  # the kind reports its own workers
    with tqdm(total=len(units), initial=len(units) - len(todo), desc=cfg.kind, unit="unit",
              disable=not progress, dynamic_ncols=True) as bar:
        if use_ray and todo:
            _execute_ray(kind, cfg, todo, store, bar, n_workers, ctx)
        else:  # long driver units are each written as soon as they finish
            batches = [[unit] for unit in todo] if kind.runs_in_driver else _batches(todo, 1)
            for batch in batches:
                _record(run_units(kind, cfg, batch, ctx), store, bar)
    provenance = _provenance(cfg, started, workers=n_workers)
    return finalize(kind, cfg, out, units=units, workers=n_workers, provenance=provenance)


def _prepare_out(cfg: ExperimentConfig, out: Path, resume: bool) -> None:
    resolved = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    config_file = out / "config.yaml"
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise PnyxError(f"output folder {str(out)!r} is not empty; pass --resume to continue it or choose another --out")
        if config_file.exists() and config_file.read_text() != resolved:
            old = yaml.safe_load(config_file.read_text()) or {}
            new = cfg.model_dump(mode="json")
            field = next((k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)), "?")
            raise PnyxError(f"cannot resume {str(out)!r}: its config differs in field {field!r}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_file, resolved)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The commit of the checkout pnyx is installed from, if it is one."""
    source = Path(__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _provenance(cfg: ExperimentConfig, started: str, *, workers: int | None) -> dict:
    hosts = 1
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        hosts = sum(1 for node in sys.modules["ray"].nodes() if node.get("Alive"))
    return {"pnyx": _version("pnyx"), "git_commit": _git_commit(), "python": platform.python_version(),
            "numpy": _version("numpy"), "torch": _version("torch"), "ray": _version("ray"),
            "seed": cfg.seed, "started": started, "finished": _now(), "hosts": hosts}


def finalize(kind: Experiment, cfg: ExperimentConfig, out: Path, *, units: list[Unit] | None = None,
             workers: int | None = None, provenance: dict | None = None) -> dict:
    """Merge finished units, then write results, records, summary, plots and report.

    Without ``provenance`` (``pnyx report``) the run's recorded provenance and workers are kept.
    """
    if provenance is None:
        for name, part in kind.parts(cfg).items():
            if (out / name / "summary.json").is_file():
                finalize(*validate(part), out / name)
    units = kind.units(cfg) if units is None else units
    store = UnitStore(out)
    frames, records, failures = [], {}, []
    for unit in units:
        status = store.status(unit.key)
        if status == "done":
            output = store.load(unit.key)
            frames.append(output.rows)
            for name, items in output.records.items():
                records.setdefault(name, []).extend(items)
        else:
            failures.append({"unit": unit.key, "error": store.error(unit.key) or "not run"})
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    atomic_write(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    for name, items in records.items():
        atomic_write_text(out / f"{name}.jsonl", "".join(json.dumps(item) + "\n" for item in items))
    summary = kind.summarize(cfg, results, records) if frames else {}
    summary["run"] = {"units": len(units), "finished": len(units) - len(failures), "failed": len(failures),
                      "failures": failures}
    recorded = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    if "ray" not in summary:  # kinds that distribute inside their units report their own
        if workers is not None:
            summary["ray"] = {"workers": workers}
        elif "ray" in recorded and provenance is None:
            summary["ray"] = recorded["ray"]
    summary["provenance"] = provenance if provenance is not None else recorded.get("provenance", {})
    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    if frames:
        for name, figure in kind.plot(cfg, results, summary).items():
            atomic_write(plot_dir / f"{name}.png", lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    write_report(out, kind, cfg, summary)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=_json_default))
    return summary


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def default_out(name: str) -> Path:
    """``runs/<name>-<time>``: where a run goes when no folder is given."""
    return Path("runs") / f"{Path(name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_experiment(name_or_file: str, *, out: str | Path, quick: bool = False, seed: int | None = None,
                   overrides: Iterable[str] | Mapping[str, Any] = (), resume: bool = False,
                   workers: int | None = None, address: str | None = None, progress: bool = True,
                   models: Callable[[str], Any] = shared_model) -> dict:
    """Resolve a preset or YAML file and run it into ``out``; returns the summary."""
    if workers is not None and workers < 1:
        raise PnyxError(f"--workers must be >= 1, got {workers}")
    kind, cfg = resolve(name_or_file, quick=quick, seed=seed, overrides=overrides)
    return execute(kind, cfg, Path(out), resume=resume, workers=workers, address=address, progress=progress,
                   models=models)

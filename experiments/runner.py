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
import inspect
import json
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel
from tqdm.auto import tqdm

from pnyx.agents import POLICIES
from pnyx.agents.discussants import DISCUSSANTS
from pnyx.agents.llm import ModelConfig, shared_model
from pnyx.agents.llm.registry import check_ready
from pnyx.agents.llm.roles import model_config, summarize_usage
from pnyx.errors import PnyxError
from pnyx.experiments.cluster import (absolute_paths, check_nodes, pack_inputs, ray_failure, renamed, run_env,
                                      task_env, unpack_inputs, worker_names)
from pnyx.experiments.config import resolve, validate
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunContext, RunOptions, Unit, UnitOutput
from pnyx.experiments.inputs import first_change, fingerprint
from pnyx.experiments.report import write_report
from pnyx.experiments.store import (DamagedChunk, UnitResult, UnitStore, atomic_write, atomic_write_text, concat_rows,
                                    redact_frame, redact_json)
from pnyx.files import parse_yaml, read_json, read_text
from pnyx.paths import run_path
from pnyx.registry import pickled_registrations, replay_pickled
from pnyx.specs import parse

#: The names a unit may give its records (each becomes ``<name>.jsonl`` in the run folder).
RECORD_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
TASK_RETRIES = 3  # for lost workers and nodes; a unit's own exceptions are not retried


def unit_seed(seed: int, key: str) -> np.random.SeedSequence:
    """The unit's seed: a function of the experiment seed and the unit key only."""
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.SeedSequence(seed, spawn_key=tuple(int.from_bytes(digest[i:i + 4], "little") for i in (0, 4)))


def run_units(kind: Experiment, cfg: ExperimentConfig | dict, units: list[Unit], ctx: RunContext) -> list[UnitResult]:
    """Run units in this process; exceptions become error strings (the unit failed, the run goes on)."""
    if isinstance(cfg, dict):  # as sent to a Ray task
        replay_pickled(ctx.registrations)
        cfg = kind.Config.model_validate(cfg)
    results = []
    for unit in units:
        try:
            output = kind.run_unit(cfg, unit, unit_seed(cfg.seed, unit.key), ctx)
            output.rows.insert(0, "unit", pd.Categorical.from_codes(np.zeros(len(output.rows), dtype=np.int8),
                                                                   categories=[unit.key]))
            results.append((unit.key, output, None))
        except PnyxError as e:
            results.append((unit.key, None, str(e)))
        except MemoryError as e:
            results.append((unit.key, None, f"out of memory ({_first_line(e)}); lower the sizes in the config"))
        except Exception as e:  # noqa: BLE001 - recorded with its traceback's last line
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            results.append((unit.key, None, last))
    return results


def _batches(units: list[Unit], workers: int) -> list[list[Unit]]:
    """Small units travel together, so that many tiny units do not drown in scheduling."""
    size = max(1, math.ceil(len(units) / (workers * 16)))
    return [units[i:i + size] for i in range(0, len(units), size)]


def start_ray(workers: int | None, address: str | None, runtime_env: Mapping | None = None) -> int:
    """Join the Ray cluster at ``address`` or start a new local one with ``workers`` CPUs
    (never one that ``RAY_ADDRESS`` names), with ``runtime_env``; the number of CPUs. Ray's
    own fatal-signal handler is kept off, so SIGINT and SIGTERM stop a run through pnyx's
    handler (exit 130, finished units kept)."""
    import ray

    if not ray.is_initialized():
        if address:
            _check_reachable(address)
        os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
        in_main = threading.current_thread() is threading.main_thread()
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
        env = {"runtime_env": dict(runtime_env)} if runtime_env else {}
        try:
            if address:
                ray.init(address=address, log_to_driver=False, configure_logging=False, **env)
            else:
                ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False, configure_logging=False, **env)
        except Exception as e:  # noqa: BLE001 - Ray raises many types; the user needs one line
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            raise PnyxError(f"cannot start {where}: {ray_failure(e)[0]}") from None
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return int(ray.cluster_resources().get("CPU", 1))


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """A one-line error, within ``timeout`` seconds, if nothing answers at ``host:port``."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise PnyxError(f"--address {address!r} must be HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, OverflowError, UnicodeError) as e:
        raise PnyxError(f"no Ray head answers at {address!r} ({getattr(e, 'strerror', None) or type(e).__name__}); "
                        f"start one with 'ray start --head'") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _run_on_node(kind: Experiment, driver: dict, data: dict, units: list[Unit], ctx: RunContext, inputs: dict) -> tuple:
    """:func:`run_units` in a Ray task on the config's input files sent with it
    (:func:`~pnyx.experiments.cluster.unpack_inputs`), with the node that ran it and the
    task's attempt (0 unless retried). ``driver`` is the config as the driver names things,
    ``data`` the same with absolute paths; rows and records come back in the driver's names."""
    import ray

    try:
        attempt = ray._private.worker.global_worker.core_worker.get_current_task_attempt_number()
    except AttributeError:
        attempt = 0
    node = ray.get_runtime_context().get_node_id()
    local = unpack_inputs(data, inputs)
    names = worker_names(driver, local)
    back = {worker: name for name, worker in names.items()}
    units = [Unit(unit.key, renamed(unit.params, names)) for unit in units]
    results = [(key, output if output is None else UnitOutput(renamed(output.rows, back), renamed(output.records, back)),
                error) for key, output, error in run_units(kind, local, units, ctx)]
    return node, ray.util.get_node_ip_address(), attempt, results


def _execute_ray(kind, cfg, todo, store, bar, workers, ctx, env) -> tuple[dict, int]:
    """Run ``todo`` as Ray tasks; the nodes that ran units (``{id: {"node", "address", "units"}}``)
    and the number of task retries."""
    import ray

    remote = ray.remote(max_retries=TASK_RETRIES, num_cpus=1)(_run_on_node)
    if env:
        remote = remote.options(runtime_env=dict(env))
    driver = cfg.model_dump(mode="json")
    data = absolute_paths(driver)
    inputs = pack_inputs(data)
    pending = [remote.remote(kind, driver, data, batch, ctx, inputs) for batch in _batches(todo, workers)]
    nodes: dict[str, dict] = {}
    retries = 0
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                node, address, attempt, results = ray.get(ref)
                entry = nodes.setdefault(node, {"node": node, "address": address, "units": 0})
                entry["units"] += len(results)
                retries += attempt
                _record(results, store, bar)
    except ray.exceptions.RayError as e:
        reason, helps = ray_failure(e)
        advice = "finished units are kept, rerun with --resume" if helps else "finished units are kept"
        raise PnyxError(f"Ray failed: {reason}; {advice}") from None
    return nodes, retries


def _record(results: list[UnitResult], store: UnitStore, bar) -> None:
    store.write(results)
    for key, _, error in results:
        if error is not None:
            bar.write(f"unit {key!r} failed: {error}")
    bar.update(len(results))


def execute(kind: Experiment, cfg: ExperimentConfig, out: Path, *, resume: bool = False,
            options: RunOptions = RunOptions()) -> dict:
    """Run every unfinished unit of ``cfg`` into ``out``, then merge, summarize and report."""
    started = _now()
    units = kind.units(cfg)
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise PnyxError("experiment produced duplicate unit keys")
    if len(units) > cfg.max_units:
        raise PnyxError(f"the experiment has {len(units)} units, more than max_units={cfg.max_units}; "
                        f"raise it with --set max_units=N")
    preflight(kind, cfg, options)
    if resume and out.is_dir():
        _check_parts(kind, cfg, out)
    workers, address = options.workers, options.address
    use_ray = not kind.runs_in_driver and (address is not None or (workers or os.cpu_count()) > 1)
    # the kind distributes inside its units on this Ray
    in_units = kind.runs_in_driver and (address is not None or (workers or 1) > 1)
    ctx = RunContext(out, options, registrations=pickled_registrations() if use_ray else ())
    n_workers, env = 1, {}
    if (use_ray or in_units) and _unfinished(units, out, resume):  # the cluster answers before out is written
        data = cfg.model_dump(mode="json")
        env = run_env(data, options.runtime_env)
        n_workers = start_ray(workers, address, env)
        env = task_env(env)
        check_nodes(kind, absolute_paths(data), ctx.registrations, env, units_on_ray=use_ray)
    _prepare_out(cfg, out, resume)
    store = UnitStore(out)
    todo = [u for u in units if store.status(u.key) != "done"]
    nodes, retries = {}, 0
    if kind.runs_in_driver:
        n_workers = None  # the kind reports its own workers
    with tqdm(total=len(units), initial=len(units) - len(todo), desc=cfg.kind, unit="unit",
              disable=not options.progress, dynamic_ncols=True) as bar:
        if use_ray and todo:
            nodes, retries = _execute_ray(kind, cfg, todo, store, bar, n_workers, ctx, env)
        else:  # long driver units are each written as soon as they finish
            batches = [[unit] for unit in todo] if kind.runs_in_driver else _batches(todo, 1)
            for batch in batches:
                _record(run_units(kind, cfg, batch, ctx), store, bar)
    provenance = _provenance(cfg, started, nodes=list(nodes.values()), retries=retries)
    return finalize(kind, cfg, out, units=units, workers=n_workers, provenance=provenance)


def _unfinished(units: list[Unit], out: Path, resume: bool) -> bool:
    """Whether a unit of ``out`` is left to run, read before anything is written."""
    if not (resume and out.is_dir() and (out / "units").is_dir()):
        return bool(units)
    store = UnitStore(out)
    return any(store.status(u.key) != "done" for u in units)


def preflight(kind: Experiment, cfg: ExperimentConfig, options: RunOptions) -> None:
    """What a run needs from outside, checked before anything is written: each model the
    config (and its parts) names, in its model fields or inside its player and discussant
    specs (``llm(model=SPEC)``), that can tell it will not answer, built by pnyx's models
    (:func:`~pnyx.agents.llm.registry.check_ready`), and the Ray cluster at ``--address``."""
    if options.models is shared_model:
        checked: set[str] = set()
        for where, field in _models(kind, cfg, "").items():
            spec = model_config(field).backend_spec()
            if spec not in checked:
                checked.add(spec)
                try:
                    check_ready(spec)
                except PnyxError as e:
                    raise PnyxError(f"{where}: {e}") from None
    if options.address:
        _check_reachable(options.address)


def _models(kind: Experiment, cfg: ExperimentConfig, prefix: str) -> dict:
    fields = kind.models(cfg)
    found = {f"{prefix}{path}": field for path, field in fields.items()}
    for path, (text, model) in _spec_models(cfg, "", set(fields)).items():
        found[f"{prefix}{path} {text!r}"] = model
    for name, data in kind.parts(cfg).items():
        part_kind, part_cfg = validate(data)
        found.update(_models(part_kind, part_cfg, f"{prefix}{name}."))
    return found


def _spec_models(value: Any, path: str, skip: set[str]) -> dict[str, tuple[str, str]]:
    """``(spec, model)`` by dotted path for every string of ``value`` (a config, through nested
    models, lists and mappings) that is a player or discussant spec naming a model; the
    model fields in ``skip`` are not specs of that kind."""
    found: dict[str, tuple[str, str]] = {}
    if isinstance(value, ModelConfig) or path.removesuffix(".") in skip:
        return found
    if isinstance(value, BaseModel):
        items = ((name, getattr(value, name)) for name in type(value).model_fields)
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        model = _named_model(value) if isinstance(value, str) else None
        return {path.removesuffix("."): (value, model)} if model else found
    for key, item in items:
        found.update(_spec_models(item, f"{path}{key}.", skip))
    return found


def _named_model(text: str) -> str | None:
    """The model spec that a spec of a registered policy or discussant passes as its ``model``
    argument (``llm(model='openai:gpt-4o-mini')``), its arguments bound to the target's
    signature as the registry would call it; nothing is built, and no module is imported
    for a text that names no registered target (free text is not a spec)."""
    try:
        spec = parse(text)
    except PnyxError:
        return None
    if not spec.args and not spec.kwargs:
        return None
    for registry in (POLICIES, DISCUSSANTS):
        if spec.name not in registry:
            continue
        try:
            target, _ = registry.resolve(text)
            leading = (spec.target,) if spec.target is not None else ()
            bound = inspect.signature(target).bind_partial(*leading, *spec.args, **spec.kwargs)
        except (PnyxError, TypeError, ValueError):
            continue
        model = bound.arguments.get("model")
        if isinstance(model, str):
            return model
    return None


def _stored_inputs(cfg: ExperimentConfig, out: Path) -> dict | None:
    """Check that the run folder ``out`` can continue ``cfg``: its ``config.yaml`` is ``cfg``'s
    and the input files fingerprinted in its ``inputs.json`` are unchanged. Returns those
    fingerprints (``None`` when the folder is new or has none); reads, never writes."""
    data = cfg.model_dump(mode="json")
    if out.exists() and not out.is_dir():
        raise PnyxError(f"output folder {str(out)!r} is a file, not a folder")
    if not (out.exists() and any(out.iterdir())):
        return None
    config_file, inputs_file = run_path(out, "config.yaml"), run_path(out, "inputs.json")
    if not config_file.is_file():
        raise PnyxError(f"cannot resume {str(out)!r}: it is not a pnyx run folder (no config.yaml)")
    stored = read_text(config_file, f"config {str(config_file)!r}")
    if stored != yaml.safe_dump(data, sort_keys=False):
        old = parse_yaml(stored, f"config {str(config_file)!r}")
        field = next((k for k in sorted(set(old) | set(data)) if old.get(k) != data.get(k)), "?")
        raise PnyxError(f"cannot resume {str(out)!r}: its config differs in field {field!r}")
    if not inputs_file.exists():
        return None
    try:
        recorded = read_json(inputs_file, f"{str(inputs_file)!r}")
    except PnyxError:
        recorded = None
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        raise PnyxError(f"cannot resume {str(out)!r}: {str(inputs_file)!r} is damaged; "
                        "delete it to resume without checking the input files")
    change = first_change(recorded, fingerprint(data))
    if change:
        path, how = change
        what = "changed since" if how == "changed" else "is missing; it existed when"
        raise PnyxError(f"cannot resume {str(out)!r}: input file {path!r} {what} the run started")
    return recorded


def _check_parts(kind: Experiment, cfg: ExperimentConfig, out: Path) -> None:
    """Check every started part folder of ``out`` (a suite's) as a run folder of its own, before
    ``pnyx report`` or ``--resume`` writes anything: its config is the part's, its input files
    are unchanged and its ``summary.json``, where there is one, is readable; a one-line
    :class:`PnyxError` naming the damaged file otherwise."""
    for name, part in kind.parts(cfg).items():
        folder = run_path(out, name, folder=True)
        if not folder.exists():
            continue
        part_kind, part_cfg = validate(part, stored=True)
        _stored_inputs(part_cfg, folder)
        summary = run_path(folder, "summary.json")
        if summary.exists() or summary.is_symlink():
            try:
                read_summary(summary, part_kind)
            except PnyxError as e:
                raise PnyxError(f"{e}; delete it and run `pnyx report {out}` to rebuild it") from None
        _check_parts(part_kind, part_cfg, folder)


def _prepare_out(cfg: ExperimentConfig, out: Path, resume: bool) -> None:
    """Create ``out`` with ``config.yaml`` and ``inputs.json``, or check that a resume continues
    the same run on the same input files; a one-line :class:`PnyxError` otherwise, leaving nothing behind."""
    made_dirs: list[Path] = []
    made_files: list[Path] = []
    try:
        if out.exists() and out.is_dir() and any(out.iterdir()) and not resume:
            raise PnyxError(f"output folder {str(out)!r} is not empty; pass --resume to continue it or choose another --out")
        recorded = _stored_inputs(cfg, out)
        config_file, inputs_file = run_path(out, "config.yaml"), run_path(out, "inputs.json")
        made_dirs = [p for p in (out, *out.parents) if not p.exists()]
        out.mkdir(parents=True, exist_ok=True)
        if not config_file.exists():
            made_files.append(config_file)
        atomic_write_text(config_file, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        if recorded is None:
            made_files.append(inputs_file)
            atomic_write_text(inputs_file, json.dumps(fingerprint(cfg.model_dump(mode="json")), indent=2))
    except (OSError, PnyxError) as e:
        try:
            for path in made_files:
                path.unlink(missing_ok=True)
            for path in made_dirs:
                path.rmdir()
        except OSError:
            pass
        if isinstance(e, PnyxError):
            raise
        raise PnyxError(f"cannot use output folder {str(out)!r}: {e.strerror or e}") from None


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


def _provenance(cfg: ExperimentConfig, started: str, *, nodes: list[dict], retries: int) -> dict:
    """Versions, seed and times of a run, and where its units ran: the Ray ``nodes`` that ran
    units in this invocation (node id, address, units run; empty when they ran in the driver),
    Ray's task ``retries``, and ``hosts``, the number of those nodes (without them: the
    nodes alive at the end when the kind used Ray inside its units, else 1)."""
    hosts = len(nodes) or 1
    if not nodes and "ray" in sys.modules and sys.modules["ray"].is_initialized():
        hosts = sum(1 for node in sys.modules["ray"].nodes() if node.get("Alive"))
    return {"pnyx": _version("pnyx"), "git_commit": _git_commit(), "python": platform.python_version(),
            "numpy": _version("numpy"), "torch": _version("torch"), "ray": _version("ray"),
            "seed": cfg.seed, "started": started, "finished": _now(), "hosts": hosts,
            "nodes": nodes, "retries": retries}


def finalize(kind: Experiment, cfg: ExperimentConfig, out: Path, *, units: list[Unit] | None = None,
             workers: int | None = None, provenance: dict | None = None) -> dict:
    """Merge finished units, then write results, records, summary, plots and report.

    Units of damaged chunks count as failed (``damaged chunk <file>``) and the chunks are
    listed in ``run.damaged``; every text written is redacted, every path written passes
    :func:`pnyx.paths.run_path` (a symlink out of ``out`` is refused). Without ``provenance``
    (``pnyx report``) the run's recorded provenance and workers are kept.
    """
    if provenance is None:
        _check_parts(kind, cfg, out)
        for name, part in kind.parts(cfg).items():
            folder = run_path(out, name, folder=True)
            if (folder / "config.yaml").is_file():
                finalize(*validate(part, stored=True), folder)
    units = kind.units(cfg) if units is None else units
    store = UnitStore(out)
    frames, records, failures = [], {}, []
    for unit in units:
        if store.status(unit.key) in ("done", "partial"):
            try:
                output = store.load(unit.key)
            except DamagedChunk:
                failures.append({"unit": unit.key, "error": store.error(unit.key)})
                continue
            frames.append(output.rows)
            for name, items in output.records.items():
                records.setdefault(name, []).extend(items)
        else:
            failures.append({"unit": unit.key, "error": store.error(unit.key) or "not run"})
    results = redact_frame(concat_rows(frames)) if frames else pd.DataFrame()
    for name in records:
        if not RECORD_NAME.fullmatch(name):
            raise PnyxError(f"a unit's records are named {name[:80]!r}; record names are letters, digits, '_' and '-'")
    # the paths written, the stored summary and the rows are checked before anything is written
    plot_dir, summary_file = run_path(out, "plots", folder=True), run_path(out, "summary.json")
    for name in ("results.parquet", "report.md", "report.html"):
        run_path(out, name)
    recorded = read_summary(summary_file, kind) if provenance is None and summary_file.exists() else {}
    typed = kind.summary(cfg, results, records) if len(results) else None
    atomic_write(run_path(out, "results.parquet"), lambda tmp: results.to_parquet(tmp, index=False))
    for name, items in records.items():
        if items:
            atomic_write_text(run_path(out, f"{name}.jsonl"), "".join(redact_json(item) + "\n" for item in items))
        else:  # e.g. the sample failures a resume has run again
            run_path(out, f"{name}.jsonl").unlink(missing_ok=True)
    summary = {} if typed is None else typed.model_dump()
    if records.get("usage"):
        summary["usage"] = summarize_usage(records["usage"])
    summary["run"] = {"units": len(units), "finished": len(units) - len(failures), "failed": len(failures),
                      "failures": failures}
    if records.get("sample_failures"):
        summary["run"]["failed_samples"] = failed_samples(records["sample_failures"])
    damaged = store.damaged_files([unit.key for unit in units])
    if damaged:
        summary["run"]["damaged"] = damaged
    if "ray" not in summary:  # kinds that distribute inside their units report their own
        if workers is not None:
            summary["ray"] = {"workers": workers}
        elif "ray" in recorded and provenance is None:
            summary["ray"] = recorded["ray"]
    summary["provenance"] = provenance if provenance is not None else recorded.get("provenance", {})
    try:
        plot_dir.mkdir(exist_ok=True)
    except OSError as e:
        raise PnyxError(f"cannot create {str(plot_dir)!r}: {e.strerror or e}") from None
    if typed is not None:
        for name, figure in kind.plot(cfg, results, typed).items():
            atomic_write(run_path(plot_dir, f"{name}.png"), lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    write_report(out, kind, cfg, summary, typed)
    atomic_write_text(summary_file, redact_json(summary, indent=2, default=_json_default))
    return summary


def read_summary(path: Path, kind: Experiment) -> dict:
    """A stored ``summary.json``, checked to fit ``kind``'s :class:`Summary`; a one-line
    :class:`PnyxError` otherwise."""
    data = read_json(path, f"summary {str(path)!r}")
    kind.Summary.stored(data, str(path))
    return data


def failed_samples(records: list[dict]) -> dict:
    """The failed text episodes of a run: their number per condition and per error class."""
    by_condition: dict[str, int] = {}
    by_error: dict[str, int] = {}
    for r in records:
        by_condition[str(r["condition"])] = by_condition.get(str(r["condition"]), 0) + 1
        by_error[str(r["error"])] = by_error.get(str(r["error"]), 0) + 1
    return {"total": len(records), "by_condition": by_condition, "by_error": by_error}


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
                   models: Callable[[str], Any] = shared_model, cache: str | Path | None = None,
                   runtime_env: Mapping | str | Path | None = None) -> dict:
    """Resolve a preset or YAML file and run it into ``out`` with the :class:`RunOptions`
    the keywords name; returns the summary."""
    options = RunOptions(workers=workers, address=address, progress=progress, models=models, cache=cache,
                         runtime_env=runtime_env)
    kind, cfg = resolve(name_or_file, quick=quick, seed=seed, overrides=overrides)
    return execute(kind, cfg, Path(out), resume=resume, options=options)

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
from typing import Any, Callable, ClassVar, Mapping, get_args

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pnyx.agents.llm import LanguageModel, ModelConfig, ModelField, RoleModel, role_model, shared_model
from pnyx.agents.scheduler import Failure
from pnyx.errors import PnyxError
from pnyx.paths import run_path
from pnyx.strict import Strict, builds_specs

__all__ = ["Strict", "builds_specs", "ExperimentConfig", "Unit", "UnitOutput", "sample_failure", "Summary", "RUN_ENTRIES", "RunOptions", "RunContext", "Experiment", "model_fields"]


class ExperimentConfig(Strict):
    """Fields every experiment has; each kind subclasses it with its own."""

    kind: str
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**63)
    #: The most units a run may have; a larger experiment is refused before it starts.
    max_units: int = Field(100_000, ge=1)


@dataclass(frozen=True)
class Unit:
    """One independent piece of work. ``key`` is unique within the experiment and stable
    across runs (it names the unit's file and seeds it); ``params`` is what the unit needs."""

    key: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class UnitOutput:
    """What a unit returns: rows for ``results.parquet``, and JSON-able records
    for ``<name>.jsonl`` files (``transcripts`` for example). Text episodes that failed
    (:class:`~pnyx.agents.scheduler.Failure`) have no rows; their :func:`sample_failure`
    records go under ``sample_failures``, the run counts them per condition, and
    ``--resume`` reruns the unit."""

    rows: pd.DataFrame
    records: dict[str, list[dict]] = field(default_factory=dict)


def sample_failure(condition: str, failure: Failure, **where: Any) -> dict:
    """The record of a failed text episode: its condition, where it sits (context,
    sample, ...) and why it failed."""
    return {"condition": condition, **where, "error": failure.error, "message": failure.message}


#: The entries of ``summary.json`` that the runner writes beside a kind's :class:`Summary`.
RUN_ENTRIES = ("usage", "run", "ray", "provenance")


class Summary(BaseModel):
    """What ``summarize`` returns and ``plot`` and ``report`` read; ``summary.json`` is its
    dump beside the runner's :data:`RUN_ENTRIES`. Kinds shipped with pnyx declare every
    field (unknown ones are errors); this base takes any, for a user's kind that returns a dict."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def stored(cls, data: Any, where: str) -> Summary:
        """The summary in a run's ``summary.json`` (``data``, from ``where``); a one-line
        :class:`PnyxError` naming the first field that does not fit."""
        if not isinstance(data, dict):
            raise PnyxError(f"{where} holds a JSON {type(data).__name__}, not an object")
        try:
            return cls.model_validate({k: v for k, v in data.items() if k not in RUN_ENTRIES or k in cls.model_fields})
        except ValidationError as e:
            first = e.errors()[0]
            field_ = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise PnyxError(f"{where}: field {field_!r} does not fit this pnyx's summary ({first['msg']}); "
                            "was it written by another version?") from None


#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class RunOptions:
    """How a run executes, set once by :func:`pnyx.run` or the CLI and held by its
    :class:`RunContext`: local Ray ``workers`` (None: one per core; 1 runs in-process) or
    the ``address`` of a Ray cluster, progress bars, how language models are built from
    specs (by default once per process; tests pass their own), the completion cache
    file of model roles that name none (``--cache``), and the Ray ``runtime_env`` (a mapping
    or a YAML file; :mod:`pnyx.experiments.cluster`)."""

    workers: int | None = None
    address: str | None = None
    progress: bool = True
    models: Callable[[str], LanguageModel] = shared_model
    cache: str | None = None
    runtime_env: Mapping[str, Any] | str | Path | None = None

    def __post_init__(self):
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 1):
            raise PnyxError(f"--workers must be >= 1, got {self.workers}")
        if self.address is not None:
            host, _, port = self.address.removeprefix("ray://").rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise PnyxError(f"--address {self.address!r} must be HOST:PORT")
        if self.cache is not None:
            path = Path(self.cache).absolute()
            if path.exists() and not path.is_file():
                raise PnyxError(f"--cache {str(path)!r} is not a file")
            if path.is_file() and path.stat().st_size:
                with path.open("rb") as f:
                    if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                        raise PnyxError(f"--cache {str(path)!r} is not an SQLite database")
            object.__setattr__(self, "cache", str(path))
        if self.runtime_env is not None:
            from pnyx.experiments.cluster import check_runtime_env, read_runtime_env

            env = (read_runtime_env(self.runtime_env) if isinstance(self.runtime_env, (str, Path))
                   else check_runtime_env(self.runtime_env, "runtime_env", Path.cwd()))
            object.__setattr__(self, "runtime_env", env or None)


@dataclass(frozen=True)
class RunContext:
    """What a unit may use beyond its config and seed: the run folder ``out``, a scratch
    folder :attr:`workdir` inside it (checkpoints and the like; it survives an interrupt,
    so a resumed unit can continue from it), and the run's :class:`RunOptions`, which a
    kind that runs experiments of its own passes on."""

    out: Path
    options: RunOptions = RunOptions()
    #: Registrations made in the driver from outside pnyx, ``(registry module, what, name,
    #: pickled entry)`` each, which a Ray worker replays before it runs units.
    registrations: tuple = ()

    @property
    def progress(self) -> bool:
        return self.options.progress

    def model(self, field: ModelField, role: str) -> RoleModel:
        """The model behind ``role`` (see :mod:`pnyx.agents.llm.roles`); a unit returns the
        usage of the roles it built as its ``usage`` records."""
        return role_model(field, role, self.options.models, cache=self.options.cache)

    def rollout_workers(self, requested: int | None, shards: int) -> int:
        """Ray rollout actors for a unit that distributes its own rollouts: ``requested`` if
        set; else none (in the driver, without Ray) when the run has one worker and no
        cluster, else one per CPU of the Ray cluster (at most ``shards``). Results are the
        same for any number."""
        workers, address = self.options.workers, self.options.address
        if requested == 0 or (requested is None and workers == 1 and not address):
            return 0
        from pnyx.experiments.runner import start_ray

        cpus = start_ray(workers, address, self.options.runtime_env)
        return requested if requested is not None else max(1, min(shards, cpus))

    @property
    def workdir(self) -> Path:
        path = run_path(self.out, "work", folder=True)
        path.mkdir(parents=True, exist_ok=True)
        return path


def _names_model(annotation: Any) -> bool:
    return annotation is ModelConfig or any(_names_model(a) for a in get_args(annotation))


def model_fields(value: Any, path: str = "") -> dict[str, ModelField]:
    """The values of ``value``'s fields typed as model fields (a spec or a :class:`ModelConfig`),
    by dotted path, found through nested models, lists and mappings."""
    found: dict[str, ModelField] = {}
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            item, where = getattr(value, name), f"{path}{name}"
            if isinstance(item, (str, ModelConfig)) and _names_model(info.annotation):
                found[where] = item
            else:
                found.update(model_fields(item, f"{where}."))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found.update(model_fields(item, f"{path}{i}."))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.update(model_fields(item, f"{path}{key}."))
    return found


class Experiment:
    """Base class of experiment kinds. Register subclasses with
    ``pnyx.experiments.catalog.KINDS.register(name, cls)``."""

    name: ClassVar[str]
    Config: ClassVar[type[ExperimentConfig]] = ExperimentConfig
    Summary: ClassVar[type[Summary]] = Summary
    #: Run units one after another in the driver process instead of as Ray tasks: for
    #: kinds that hold heavy state across units (a loaded language model) or that
    #: distribute work inside a unit themselves (Ray rollout actors).
    runs_in_driver: ClassVar[bool] = False
    #: The key of :meth:`plot`'s figure that a suite's report shows inline.
    main_plot: ClassVar[str | None] = None

    def units(self, cfg: ExperimentConfig) -> list[Unit]:
        raise NotImplementedError

    def models(self, cfg: ExperimentConfig) -> dict[str, ModelField]:
        """The models ``cfg`` names, by dotted field path, checked before a run starts
        (:func:`model_fields`: every field typed as a model field, nested ones included)."""
        return model_fields(cfg)

    def run_unit(self, cfg: ExperimentConfig, unit: Unit, seed: np.random.SeedSequence, ctx: RunContext) -> UnitOutput:
        raise NotImplementedError

    def summarize(self, cfg: ExperimentConfig, results: pd.DataFrame,
                  records: dict[str, list[dict]]) -> Summary | dict:
        """Metrics from the merged rows, as the kind's :attr:`Summary` (a dict is validated
        into it); must be a pure function of its inputs."""
        raise NotImplementedError

    def summary(self, cfg: ExperimentConfig, results: pd.DataFrame, records: dict[str, list[dict]]) -> Summary:
        """:meth:`summarize`'s result as the kind's :attr:`Summary`."""
        found = self.summarize(cfg, results, records)
        return found if isinstance(found, self.Summary) else self.Summary.model_validate(found)

    def plot(self, cfg: ExperimentConfig, results: pd.DataFrame, summary: Summary) -> dict[str, Figure]:
        """Figures by name, drawn from the results table and summary (the runner saves
        them as ``plots/<name>.png``). Build ``matplotlib.figure.Figure`` objects
        directly; never touch pyplot's global state or backend."""
        return {}

    def parts(self, cfg: ExperimentConfig) -> dict[str, dict]:
        """Configs of experiments this one runs in subfolders of its own (a suite's parts);
        ``pnyx report`` rebuilds them too."""
        return {}

    def report(self, cfg: ExperimentConfig, summary: Summary) -> str:
        """Markdown for the report's findings section; the runner adds config, plots, failures."""
        return ""

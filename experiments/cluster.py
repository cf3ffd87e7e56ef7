"""What a run on a Ray cluster needs beyond a local one.

* The runtime environment handed to ``ray.init`` and to every task: the keys of
  :data:`RUNTIME_ENV_KEYS` from ``--runtime-env FILE.yaml``, ``--py-modules`` and the
  user's modules that the config names by import path (``mypkg.policies:Generous``) and
  that are not installed site-wide, shipped as ``py_modules``.
* A check on every alive node before the first unit (:func:`check_nodes`): pnyx imports
  there in the driver's version, and so does every module the config names.
* The config's relative file paths made absolute in the driver (:func:`absolute_paths`), and
  the files it names sent with the units (:func:`pack_inputs`, :func:`unpack_inputs`), so
  workers need no shared disk; inputs over :data:`MAX_SHIPPED_BYTES` in all stay on the
  driver's paths, which every node must then see. A worker runs on those paths but names
  things as the driver does (:func:`worker_names`): a player ``ckpt/a.pt`` stays
  ``ckpt/a.pt`` in the rows, wherever its copy lies.
* Ray's failures as one line (:func:`ray_failure`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import traceback
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from pnyx.errors import PnyxError
from pnyx.experiments.inputs import FOLDER_FIELDS, fingerprint, module_source, named_modules
from pnyx.files import read_yaml
from pnyx.registry import registered
from pnyx.specs import parse

#: The keys of a Ray runtime environment that pnyx passes on; any other is refused.
RUNTIME_ENV_KEYS = ("py_modules", "working_dir", "env_vars", "pip")
#: Most bytes of input files sent with the units of one run.
MAX_SHIPPED_BYTES = 64 << 20
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def read_runtime_env(path: str | Path) -> dict:
    """The runtime environment in the YAML file ``path``, its local paths relative to the file's folder."""
    source = f"runtime environment {str(path)!r}"
    return check_runtime_env(read_yaml(path, source), source, Path(path).absolute().parent)


def runtime_env_option(file: str | None, py_modules: str | None) -> dict | None:
    """``--runtime-env FILE.yaml`` and ``--py-modules PATH[,PATH]`` as one runtime environment
    (the paths of ``--py-modules`` relative to the working directory, added to the file's)."""
    env = read_runtime_env(file) if file else {}
    if py_modules:
        paths = [p.strip() for p in py_modules.split(",")]
        if not all(paths):
            raise PnyxError(f"--py-modules {py_modules!r} has an empty path")
        extra = check_runtime_env({"py_modules": paths}, "--py-modules", Path.cwd())["py_modules"]
        env["py_modules"] = list(dict.fromkeys([*env.get("py_modules", []), *extra]))
    return env or None


def check_runtime_env(data: Any, source: str, base: Path) -> dict:
    """``data`` as a runtime environment of :data:`RUNTIME_ENV_KEYS`, local paths made
    absolute against ``base`` and required to exist; a one-line :class:`PnyxError` otherwise."""
    if not isinstance(data, Mapping):
        raise PnyxError(f"{source} must be a mapping of {', '.join(RUNTIME_ENV_KEYS)}")
    unknown = [str(k) for k in data if k not in RUNTIME_ENV_KEYS]
    if unknown:
        raise PnyxError(f"{source}: key {unknown[0]!r} is not accepted (accepted: {', '.join(RUNTIME_ENV_KEYS)})")
    env: dict[str, Any] = {}
    if "py_modules" in data:
        modules = data["py_modules"]
        if not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules):
            raise PnyxError(f"{source}: py_modules must be a list of paths")
        env["py_modules"] = [_local(m, base, source) for m in modules]
    if "working_dir" in data:
        if not isinstance(data["working_dir"], str) or not data["working_dir"]:
            raise PnyxError(f"{source}: working_dir must be a path")
        env["working_dir"] = _local(data["working_dir"], base, source)
    if "env_vars" in data:
        variables = data["env_vars"]
        if not isinstance(variables, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in variables.items()):
            raise PnyxError(f"{source}: env_vars must map names to strings")
        env["env_vars"] = dict(variables)
    if "pip" in data:
        pip = data["pip"]
        if not (isinstance(pip, list) and all(isinstance(p, str) for p in pip)):
            raise PnyxError(f"{source}: pip must be a list of requirements")
        env["pip"] = list(pip)
    return env


def _local(path: str, base: Path, source: str) -> str:
    """A URI as it is; a local path made absolute, and required to exist."""
    if _URI.match(path):
        return path
    full = (base / Path(path).expanduser()).absolute()
    if not full.exists():
        raise PnyxError(f"{source}: {path!r} does not exist")
    return str(full)


def shipped_modules(data: Any) -> list[str]:
    """The local paths of the top-level packages (or single-file modules) of the modules that
    the config ``data`` names by import path and that are not installed site-wide."""
    paths = []
    for name in named_modules(data):
        if module_source(name) is None:
            continue
        spec = importlib.util.find_spec(name.partition(".")[0])
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = locations[0] if len(locations) == 1 else spec.origin if spec and not locations else None
        if path and str(path) not in paths:
            paths.append(str(path))
    return paths


def run_env(data: Any, runtime_env: Mapping | None) -> dict:
    """The runtime environment of a run: ``runtime_env`` with :func:`shipped_modules` of the
    config ``data`` added to its ``py_modules``."""
    env = dict(runtime_env or {})
    modules = list(dict.fromkeys([*env.get("py_modules", []), *shipped_modules(data)]))
    if modules:
        env["py_modules"] = modules
    return env


def task_env(env: Mapping) -> dict:
    """``env`` for the tasks of the connected Ray: its local ``py_modules`` and ``working_dir``
    uploaded to the cluster, as ``ray.init`` uploads a job's (Ray takes only URIs for a task),
    so that it applies also when Ray was started before the run."""
    if not env:
        return {}
    import ray
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    node = getattr(ray._private.worker.global_worker, "node", None)
    if node is None:  # a Ray client uploads it itself
        return dict(env)
    scratch = node.get_runtime_env_dir_path()
    try:
        uploaded = upload_py_modules_if_needed(dict(env), include_gitignore=True, scratch_dir=scratch)
        return upload_working_dir_if_needed(uploaded, include_gitignore=True, scratch_dir=scratch)
    except Exception as e:  # noqa: BLE001 - Ray raises many types; the user needs one line
        raise PnyxError(f"cannot ship the runtime environment to the Ray cluster: {ray_failure(e)[0]}") from None


def absolute_paths(value: Any) -> Any:
    """``value`` (a config as JSON data) with every relative path of an existing file or folder
    made absolute against the working directory: plain strings, and a spec's text after its
    colon (``transformers:models/m``) or its string arguments (``learner(path='ckpt/a.pt')``)."""
    if isinstance(value, Mapping):
        return {key: absolute_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [absolute_paths(item) for item in value]
    if not isinstance(value, str):
        return value
    if _relative_path(value):
        return os.path.abspath(value)
    try:
        spec = parse(value)
    except Exception:  # noqa: BLE001 - a string that is not a spec names no file
        return value
    text = value
    if spec.target is not None and _relative_path(spec.target):
        head = f"{spec.name}:{spec.target}"
        text = text.replace(head, f"{spec.name}:{os.path.abspath(spec.target)}", 1)
    for arg in (*spec.args, *spec.kwargs.values()):
        if isinstance(arg, str) and _relative_path(arg):
            for quote in ("'", '"'):
                text = text.replace(f"{quote}{arg}{quote}", f"{quote}{os.path.abspath(arg)}{quote}")
            text = re.sub(rf"(?<=[(=,\s]){re.escape(arg)}(?=[),\s])", os.path.abspath(arg).replace("\\", r"\\"), text)
    return text


def pack_inputs(data: dict) -> dict:
    """The input files the config ``data`` names (those :func:`pnyx.experiments.inputs.fingerprint`
    finds), read in the driver to be sent with the units: ``{"files": {path: (sha256, real
    path, bytes)}, "folders": {folder: real path}}``, the folders being those of
    :data:`FOLDER_FIELDS`. Beyond :data:`MAX_SHIPPED_BYTES` in all, every file's bytes are
    ``None`` and the workers read the driver's paths."""
    found = fingerprint(data)
    real = {path: Path(path).expanduser().resolve() for path in found}
    send = sum(file.stat().st_size for file in real.values()) <= MAX_SHIPPED_BYTES
    files = {path: (digest, str(real[path]), real[path].read_bytes() if send else None) for path, digest in found.items()}
    folders = {value: str(Path(value).expanduser().resolve()) for key, value in _items(data)
               if key in FOLDER_FIELDS and isinstance(value, str) and Path(value).expanduser().is_dir()}
    return {"files": files, "folders": folders}


def unpack_inputs(data: dict, packed: dict, root: Path | None = None) -> dict:
    """In a worker: the files of :func:`pack_inputs` written under ``root`` (by default a folder
    of the node's temporary directory named by their fingerprints) at their real driver
    paths, and ``data`` with those paths, and the input folders it names, pointing at the
    copies. Files too large to send must exist at their driver paths; a :class:`PnyxError`
    names the first that does not."""
    import hashlib
    import json
    import tempfile

    files = packed["files"]
    if any(content is None for _, _, content in files.values()):
        for path in files:
            if not Path(path).expanduser().exists():
                raise PnyxError(f"input file {path!r} is not on this node; inputs over {MAX_SHIPPED_BYTES >> 20} MiB "
                                "in all are not sent with the units: put them on a disk every node sees at the same "
                                "path, or ship them in --runtime-env's working_dir")
        return data
    if not files:
        return data
    key = hashlib.sha256("".join(sorted(digest for digest, _, _ in files.values())).encode()).hexdigest()[:16]
    root = root or Path(tempfile.gettempdir()) / "pnyx-inputs" / key
    moved = {}
    for path, (digest, real, content) in files.items():
        if hashlib.sha256(content).hexdigest() != digest:
            raise PnyxError(f"input file {path!r} arrived damaged (its sha256 differs from the driver's)")
        copy = root / real.lstrip("/")
        if not (copy.is_file() and copy.read_bytes() == content):
            copy.parent.mkdir(parents=True, exist_ok=True)
            temporary = copy.with_name(f".{copy.name}.{os.getpid()}")
            temporary.write_bytes(content)
            os.replace(temporary, copy)
        moved[path] = str(copy)
    for folder, real in packed["folders"].items():
        moved[folder] = str(root / real.lstrip("/"))
    text = json.dumps(data)
    for path in sorted(moved, key=len, reverse=True):
        old, new = json.dumps(path)[1:-1], json.dumps(moved[path])[1:-1]
        text = re.sub(r"(?<![\w.\-/])" + re.escape(old) + r"(?![\w.\-])", lambda _: new, text)
    return json.loads(text)


def worker_names(driver: Any, worker: Any) -> dict[str, str]:
    """``{driver string: worker string}`` for every string of the config data ``driver`` that
    :func:`absolute_paths` and :func:`unpack_inputs` changed into ``worker`` (the same data
    with the paths a worker reads). :func:`renamed` with it, or with it inverted, turns
    unit parameters into the worker's names and rows and records back into the driver's."""
    names: dict[str, str] = {}
    if isinstance(driver, Mapping) and isinstance(worker, Mapping):
        for key in driver.keys() & worker.keys():
            names.update(worker_names(driver[key], worker[key]))
    elif isinstance(driver, list) and isinstance(worker, list) and len(driver) == len(worker):
        for a, b in zip(driver, worker):
            names.update(worker_names(a, b))
    elif isinstance(driver, str) and isinstance(worker, str) and driver != worker:
        names[driver] = worker
    return names


def renamed(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` with every string that is a key of ``names`` replaced by its value, inside
    mappings, lists and tuples, and in the string and categorical columns of data frames."""
    if not names:
        return value
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, Mapping):
        return {renamed(key, names): renamed(item, names) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(renamed(item, names) for item in value)
    if isinstance(value, pd.DataFrame):
        frame = value.copy(deep=False)
        for column in frame.columns:
            series = frame[column]
            if isinstance(series.dtype, pd.CategoricalDtype):
                if any(name in names for name in series.cat.categories if isinstance(name, str)):
                    frame[column] = series.cat.rename_categories(
                        lambda name: names.get(name, name) if isinstance(name, str) else name)
            elif series.dtype == object or isinstance(series.dtype, pd.StringDtype):
                frame[column] = series.map(lambda item: names.get(item, item) if isinstance(item, str) else item)
        return frame
    return value


def _items(value: Any):
    """Every ``(key, value)`` of the mappings nested in ``value``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield key, item
            yield from _items(item)
    elif isinstance(value, list):
        for item in value:
            yield from _items(item)


def _relative_path(text: str) -> bool:
    """Whether ``text`` is a relative path of an existing file or folder, and not a name
    registered in a pnyx registry (``tft`` stays a name even beside a file of that name)."""
    if not text or "\n" in text or text.startswith("~") or os.path.isabs(text) or registered(text):
        return False
    try:
        return os.path.exists(text)
    except (OSError, ValueError):
        return False


def ray_failure(error: BaseException) -> tuple[str, bool]:
    """A Ray failure as one line, and whether rerunning can help. A task's own exception
    (a ``RayTaskError``'s cause) gives the last line of its traceback, any other error its
    first line; terminal colour codes are removed. Rerunning cannot help when a module does not import."""
    from ray.exceptions import RayTaskError

    cause = error
    while isinstance(cause, RayTaskError) and cause.cause is not None and cause.cause is not cause:
        cause = cause.cause
    if cause is error and not isinstance(error, RayTaskError):
        lines = [line for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
        line = lines[0].strip() if lines else type(error).__name__
    else:
        line = _ANSI.sub("", traceback.format_exception_only(type(cause), cause)[-1]).strip()
    return line, not (isinstance(cause, ImportError) or "No module named" in line)


def _probe():
    """The task each node runs before the first unit; built here, so that Ray sends it by
    value and a node without pnyx can run it and say so."""

    def probe(version: str, modules: list[str], payload: bytes | None) -> str | None:
        import importlib
        import importlib.metadata
        import traceback

        def last(e: BaseException) -> str:
            return traceback.format_exception_only(type(e), e)[-1].strip()

        try:
            importlib.import_module("pnyx")
            here = importlib.metadata.version("pnyx")
        except Exception as e:  # noqa: BLE001 - reported as one line
            return f"pnyx does not import ({last(e)}); install pnyx {version} on every node"
        if here != version:
            return f"pnyx {here} is installed, the driver runs {version}; install pnyx {version} on every node"
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - reported as one line
                return (f"module {name!r} does not import ({last(e)}); ship it with --py-modules or "
                        f"--runtime-env, or install it on every node")
        if payload is None:
            return None
        import ray.cloudpickle

        from pnyx.experiments.cluster import worker_check

        try:
            kind, data, shipped, inputs = ray.cloudpickle.loads(payload)
        except Exception as e:  # noqa: BLE001 - reported as one line
            return f"the experiment does not load ({last(e)})"
        return worker_check(kind, data, shipped, inputs)

    return probe


def worker_check(kind, data: dict, shipped: tuple, inputs: dict) -> str | None:
    """In a Ray worker: the registrations replayed, the input files unpacked and the config
    built, or one line saying why not."""
    from pydantic import ValidationError

    from pnyx.experiments.config import describe_validation_error
    from pnyx.registry import replay_pickled

    failed = replay_pickled(shipped)
    try:
        data = unpack_inputs(data, inputs)
    except (OSError, PnyxError) as e:
        return str(e) if isinstance(e, PnyxError) else f"cannot write the input files ({e})"
    try:
        kind.Config.model_validate(data)
    except (PnyxError, ValidationError) as e:
        reason = failed[0] if failed else describe_validation_error(e) if isinstance(e, ValidationError) else str(e)
        return (f"{reason}; define what you register in a module the workers can import and name it by "
                f"import path (mypkg.policies:Generous), or run with --workers 1")
    return None


def check_nodes(kind, data: dict, registrations: tuple, env: Mapping, *, units_on_ray: bool = True) -> None:
    """Run the pre-flight task on every alive node of the Ray cluster, with the run's runtime
    environment: a one-line :class:`PnyxError` naming the first node where pnyx or a module the
    config names does not load, or, when the units run on Ray, a registration or the config."""
    import ray
    import ray.cloudpickle
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_probe())
    payload = ray.cloudpickle.dumps((kind, data, registrations, pack_inputs(data))) if units_on_ray else None
    modules = named_modules(data)
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    options = {"runtime_env": dict(env)} if env else {}
    pending = [(node, probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
                                    **options).remote(importlib.metadata.version("pnyx"), modules, payload))
               for node in nodes]
    for node, ref in pending:
        try:
            error = ray.get(ref)
        except ray.exceptions.RayError as e:
            error = ray_failure(e)[0]
        if error:
            raise PnyxError(f"node {node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]}): {error}")

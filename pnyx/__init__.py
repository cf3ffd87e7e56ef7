"""pnyx: multi-agent simulation of cooperation and sycophancy.

The subpackages are ``pnyx.envs`` (PettingZoo environments), ``pnyx.agents``
(policies and language models), ``pnyx.population`` (population dynamics and
metrics) and ``pnyx.experiments`` (configs, the runner, the ``pnyx`` CLI). This
module is the notebook API: :func:`run` and :func:`load_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

__version__ = "0.1.0"


def run(name_or_yaml: str, *, out: str | Path | None = None, quick: bool = False, seed: int | None = None,
        overrides: Mapping[str, Any] | None = None, resume: bool = False, workers: int | None = None,
        address: str | None = None, progress: bool = True, models: Callable[[str], Any] | None = None,
        cache: str | Path | None = None, runtime_env: Mapping[str, Any] | str | Path | None = None):
    """Run a shipped experiment or a YAML file, as ``pnyx run`` does, and return the loaded
    :class:`~pnyx.experiments.run_folder.Run`.

    ``overrides`` maps dotted config keys to values (``{"evolution.generations": 50}``);
    ``models`` replaces how language models are built from specs. The caller's
    matplotlib backend is left alone. ``cache`` is a completion cache file (``--cache``);
    ``runtime_env`` a Ray runtime environment, or its YAML file (``--runtime-env``).
    """
    from pnyx.experiments.run_folder import load_run
    from pnyx.experiments.runner import default_out, run_experiment
    from pnyx.agents.llm import shared_model

    out = Path(out) if out is not None else default_out(name_or_yaml)
    run_experiment(name_or_yaml, out=out, quick=quick, seed=seed, overrides=overrides or {}, resume=resume,
                   workers=workers, address=address, progress=progress, models=models or shared_model,
                   cache=cache, runtime_env=runtime_env)
    return load_run(out)


def load_run(path: str | Path):
    """The run folder ``path`` as Python objects (:class:`~pnyx.experiments.run_folder.Run`)."""
    from pnyx.experiments.run_folder import load_run

    return load_run(path)

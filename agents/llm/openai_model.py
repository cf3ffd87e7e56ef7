"""Any OpenAI-compatible chat server: hosted APIs, vLLM, SGLang, llama.cpp's server, ``transformers serve``.

Requests go through the official ``openai`` SDK (``client.chat.completions.create``):
its typed parameters, its timeouts and its retries of connection errors, timeouts,
408, 409, 429 and 5xx answers, waiting as the server's ``Retry-After`` says or else
0.5 s doubling up to 8 s, less up to 25 % jitter. Each chat of a ``complete`` call
is one request; up to ``max_concurrency`` run at once on worker threads and the
replies come back in prompt order, as :class:`~pnyx.agents.llm.protocol.Completion`
objects with the server's ``finish_reason``, token usage (with the input tokens read from
and written to the provider's prompt cache, ``usage.prompt_tokens_details.cached_tokens``
and ``cache_write_tokens``, where the server reports them), model name,
``system_fingerprint`` and tool calls. The first failure stops the call's other
requests.

The API key is read from the environment variable named ``api_key_env`` (default
``OPENAI_API_KEY``) at each call and handed only to the call's own SDK client: it
is never stored on the model, so it cannot leak through reprs, pickles (Ray), logs,
errors or results. The variable is watched by :mod:`pnyx.redaction`, and every
reply, tool-call argument and error detail a server sends is redacted, so a server
that echoes the key cannot put it into a result. Without the variable no
``Authorization`` header is sent, which suits local servers.

A server's answer is untrusted in size: a body larger than
``max(MIN_BODY_BYTES, BODY_BYTES_PER_TOKEN * max_tokens)`` bytes is refused without
being read further, an error body is read up to :data:`ERROR_BYTES`, and a reply
longer than ``max(MIN_REPLY_CHARS, REPLY_CHARS_PER_TOKEN * max_tokens)`` characters
is cut to that length and counted in ``truncated_replies``.

An interrupt (Ctrl-C, or SIGTERM through the CLI) while ``complete`` waits stops it
at once: no further request or retry is sent, the connections of the call are shut
down so in-flight requests end, and the interrupt is raised again. The workers are
daemon threads, so a request the operating system is still connecting, or a retry
the SDK is waiting to send, never delays the exit of the process.
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import replace
from typing import Any

import httpx
import openai

from pnyx.agents.llm.protocol import Chat, Completion, ToolCall
from pnyx.errors import PnyxError
from pnyx.redaction import redact, watch_variable

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MIN_BODY_BYTES = 2**20
BODY_BYTES_PER_TOKEN = 256
MIN_REPLY_CHARS = 4096
REPLY_CHARS_PER_TOKEN = 32
#: Bytes of an error answer read for its message.
ERROR_BYTES = 2**16
#: Seconds between checks for an interrupt while waiting for replies.
POLL_SECONDS = 0.2
TOKEN_PARAMS = ("auto", "max_tokens", "max_completion_tokens")


class _Stopped(Exception):
    """The call was stopped: no more requests are sent."""


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Body(httpx.SyncByteStream):
    """A response body read up to ``limit`` bytes: beyond it a :class:`PnyxError` saying
    ``refusal`` is raised, or, without one, the body ends there. A body still arriving at
    ``deadline`` (``time.monotonic``) is a :class:`PnyxError`: a server that drips bytes
    cannot hold a request open for longer than its timeout."""

    def __init__(self, stream, limit: int, refusal: str | None, deadline: float, late: str):
        self.stream, self.limit, self.refusal = stream, limit, refusal
        self.deadline, self.late = deadline, late

    def __iter__(self):
        size = 0
        for chunk in self.stream:
            if time.monotonic() > self.deadline:
                raise PnyxError(self.late)
            size += len(chunk)
            if size > self.limit:
                if self.refusal is not None:
                    raise PnyxError(self.refusal)
                yield chunk[: len(chunk) - (size - self.limit)]
                return
            yield chunk

    def close(self) -> None:
        self.stream.close()


@functools.cache
def _tls() -> ssl.SSLContext:
    """The certificate store, loaded once per process (loading it costs each call tens of ms)."""
    return httpx.create_ssl_context()


class _Call(httpx.HTTPTransport):
    """The transport of one ``complete`` call: its stop signal, every socket it opened,
    and the size limits on what it reads."""

    def __init__(self, limit: int, refusal: str, timeout: float, late: str):
        super().__init__(verify=_tls())
        self.limit, self.refusal, self.timeout, self.late = limit, refusal, timeout, late
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.stop.is_set():
            raise _Stopped
        request.extensions = {**request.extensions, "trace": self.trace}
        deadline = time.monotonic() + self.timeout
        response = super().handle_request(request)
        ok = response.status_code == 200
        if ok and int(response.headers.get("content-length", "0") or 0) > self.limit:
            response.close()
            raise PnyxError(self.refusal)
        response.stream = _Body(response.stream, self.limit if ok else ERROR_BYTES, self.refusal if ok else None,
                                deadline, self.late)
        return response

    def trace(self, event: str, info: dict) -> None:
        """httpcore's ``trace`` hook: records new connections' sockets, and refuses to
        send a request once the call is stopped."""
        if event.endswith("send_request_headers.started") and self.stop.is_set():
            raise _Stopped
        stream = info.get("return_value") if event.endswith(".complete") else None
        sock = getattr(stream, "get_extra_info", lambda name: None)("socket")
        if isinstance(sock, socket.socket):
            self.sockets.append(sock)
            if self.stop.is_set():
                _shut(sock)

    def abort(self) -> None:
        """Stop the call: no new tries, open connections shut down."""
        self.stop.set()
        for sock in list(self.sockets):
            _shut(sock)


class _Client(openai.OpenAI):
    """The SDK client with its retry waits scaled by ``backoff``."""

    backoff = 1.0

    def _calculate_retry_timeout(self, *args, **kwargs) -> float:
        return self.backoff * super()._calculate_retry_timeout(*args, **kwargs)


class OpenAIModel:
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``base_url`` defaults to ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
    ``timeout`` is the seconds to wait to connect and for each read or write of a
    request, and bounds the time its reply may take to arrive; a request is tried ``1 + max_retries`` times, with the SDK's waits
    multiplied by ``backoff``. ``token_param`` names the length limit sent:
    ``max_completion_tokens`` (which OpenAI's reasoning models require), ``max_tokens``
    (which local servers know), or ``auto`` (the default): the former for
    ``api.openai.com``, the latter for any other server. ``stop``, ``top_p`` and
    ``extra_body`` (a mapping merged into each request's JSON, for server-specific
    parameters such as vLLM's ``top_k``) are sent as given. A model spec sets any
    option as a literal in parentheses, e.g. in a YAML config
    ``model: openai:gpt-4o-mini(timeout=10, max_retries=1, max_concurrency=4, top_p=0.9)``.
    ``truncated_replies`` counts the replies cut to the size ``max_tokens`` allows.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        token_param: str = "auto",
        stop: str | list[str] | None = None,
        top_p: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ):
        if max_concurrency < 1:
            raise PnyxError(f"max_concurrency={max_concurrency} must be at least 1")
        if max_retries < 0:
            raise PnyxError(f"max_retries={max_retries} must not be negative")
        if timeout <= 0 or backoff < 0:
            raise PnyxError(f"timeout={timeout} must be positive and backoff={backoff} not negative")
        if token_param not in TOKEN_PARAMS:
            raise PnyxError(f"token_param={token_param!r} must be one of {', '.join(TOKEN_PARAMS)}")
        if stop is not None and not (isinstance(stop, str) or
                                     isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
            raise PnyxError(f"stop={stop!r} must be a string or a list of strings")
        if top_p is not None and not 0 < top_p <= 1:
            raise PnyxError(f"top_p={top_p} must be in (0, 1]")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise PnyxError(f"extra_body={extra_body!r} must be a mapping")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        if token_param == "auto":
            official = httpx.URL(self.base_url).host == "api.openai.com"
            token_param = "max_completion_tokens" if official else "max_tokens"
        self.token_param = token_param
        self.options = {k: v for k, v in (("stop", stop), ("top_p", top_p)) if v is not None}
        self.extra_body = dict(extra_body or {})
        sampling = {**self.options, **self.extra_body}
        options = ", ".join(f"{k}={v!r}" for k, v in sorted(sampling.items()))
        self.name = f"openai:{model}@{self.base_url}" + (f"({options})" if options else "")
        self.truncated_replies = 0
        watch_variable(api_key_env)

    def preflight(self, timeout: float = 5.0) -> None:
        """A one-line :class:`PnyxError` if this model cannot answer: its key variable unset
        where a key is needed (``api.openai.com``, or a variable other than ``OPENAI_API_KEY``
        named), or nothing accepting connections at the server's host and port within
        ``timeout`` seconds."""
        url = httpx.URL(self.base_url)
        if (url.host == "api.openai.com" or self.api_key_env != "OPENAI_API_KEY") and not os.environ.get(self.api_key_env):
            raise PnyxError(f"environment variable {self.api_key_env} is not set; {self.base_url} needs its API key there")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.host, port), timeout=min(timeout, self.timeout)).close()
        except (OSError, UnicodeError) as e:
            raise PnyxError(f"nothing answers at {self.base_url} ({getattr(e, 'strerror', None) or type(e).__name__}); "
                            "start the server or correct base_url") from None

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"truncated_replies": 0, **state})
        watch_variable(self.api_key_env)

    def complete(
        self,
        prompts: list[Chat],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        tools: list[dict] | None = None,
    ) -> list[Completion]:
        if not prompts:
            return []
        params: dict[str, Any] = {"model": self.model, self.token_param: max_tokens, "temperature": temperature,
                                  **self.options}
        if seed is not None:
            params["seed"] = seed
        if tools is not None:
            params["tools"] = tools
        if self.extra_body:
            params["extra_body"] = self.extra_body
        api_key = os.environ.get(self.api_key_env)
        if not api_key:
            params["extra_headers"] = {"Authorization": openai.Omit()}
        limit = max(MIN_BODY_BYTES, BODY_BYTES_PER_TOKEN * max_tokens)
        refusal = f"{self.base_url} sent a chat completion over {limit} bytes for max_tokens={max_tokens}"
        call = _Call(limit, refusal, self.timeout, f"{self.base_url} took over timeout={self.timeout} s to send one reply")
        http = httpx.Client(transport=call, timeout=self.timeout)
        client = _Client(base_url=self.base_url, api_key=api_key or "none", max_retries=self.max_retries,
                         timeout=self.timeout, http_client=http)
        client.backoff = self.backoff
        futures: list[Future] = [Future() for _ in prompts]
        todo = iter(list(zip(futures, prompts)))
        lock = threading.Lock()

        def work() -> None:
            while not call.stop.is_set():
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                future, chat = item
                try:
                    future.set_result(self._request(client, call, {**params, "messages": chat}))
                except BaseException as e:
                    future.set_exception(e)

        try:
            for _ in range(min(self.max_concurrency, len(prompts))):
                threading.Thread(target=work, name=f"pnyx-{self.name}", daemon=True).start()
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_EXCEPTION)
                failed = next((f for f in futures if f.done() and f.exception() is not None), None)
                if failed is not None:
                    raise failed.exception()
            replies = [f.result() for f in futures]
        finally:
            call.abort()
            http.close()
        cap = max(MIN_REPLY_CHARS, REPLY_CHARS_PER_TOKEN * max_tokens)
        self.truncated_replies += sum(len(r.text) > cap for r in replies)
        return [r if len(r.text) <= cap else replace(r, text=r.text[:cap]) for r in replies]

    def _request(self, client: openai.OpenAI, call: _Call, params: dict) -> Completion:
        try:
            response = client.chat.completions.create(**params)
        except PnyxError:
            raise
        except openai.APIStatusError as e:
            raise PnyxError(f"{self.base_url} answered {e.status_code} for model {self.model!r}: "
                            f"{_detail(e.response.text)}") from None
        except openai.APIConnectionError as e:
            if call.stop.is_set():
                raise _Stopped from None
            cause = type(e.__cause__).__name__ if e.__cause__ is not None else type(e).__name__
            raise PnyxError(f"{self.base_url}: {cause} after {self.max_retries + 1} tries") from None
        except (openai.OpenAIError, ValueError) as e:
            raise PnyxError(f"{self.base_url} sent a malformed chat completion ({_detail(str(e))})") from None
        try:
            return self._completion(response)
        except (AttributeError, IndexError, TypeError, ValueError):
            raise PnyxError(f"{self.base_url} sent a malformed chat completion: {_detail(repr(response))!r}") from None

    def _completion(self, response) -> Completion:
        choice = response.choices[0]
        message = choice.message
        text = message.content
        if text is not None and not isinstance(text, str):
            raise TypeError("content")
        calls = tuple(ToolCall(redact(_text(c.id)), redact(_text(c.function.name)), redact(_text(c.function.arguments)))
                      for c in message.tool_calls or ())
        usage = getattr(response, "usage", None)
        prompt_tokens = _count(getattr(usage, "prompt_tokens", None))
        details = getattr(usage, "prompt_tokens_details", None)
        cached, written = (_count(getattr(details, k, None)) for k in ("cached_tokens", "cache_write_tokens"))
        if prompt_tokens is None or (cached or 0) + (written or 0) > prompt_tokens:
            cached = written = None  # cache figures that do not fit the input count are not counted
        elif cached is not None or written is not None:
            cached, written = cached or 0, written or 0
        return Completion(
            text=redact(text or ""),
            finish_reason=_optional_text(choice.finish_reason),
            prompt_tokens=prompt_tokens,
            completion_tokens=_count(getattr(usage, "completion_tokens", None)),
            model=_optional_text(getattr(response, "model", None)),
            fingerprint=_optional_text(getattr(response, "system_fingerprint", None)),
            tool_calls=calls,
            cached_tokens=cached,
            cache_write_tokens=written,
        )

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"


def _detail(text: str) -> str:
    return " ".join(redact(text).split())[:200]


def _text(value) -> str:
    if not isinstance(value, str):
        raise TypeError(type(value).__name__)
    return value


def _optional_text(value) -> str | None:
    return None if value is None else _detail(_text(value))


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

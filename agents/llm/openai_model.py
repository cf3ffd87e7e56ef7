"""Any OpenAI-compatible chat server: hosted APIs, vLLM, SGLang, llama.cpp's server, ``transformers serve``.

Each chat of a ``complete`` call is one ``POST {base_url}/chat/completions``; up to
``max_concurrency`` run at once on worker threads and the replies come back in
prompt order. Connection errors, timeouts, 429 and 5xx answers are retried with
exponential backoff (honouring ``Retry-After``); other errors fail at once, and the
first failure stops the call's other requests.

The API key is read from the environment variable named ``api_key_env`` (default
``OPENAI_API_KEY``) at each call and sent only in the ``Authorization`` header: it
is never stored on the object, so it cannot leak through reprs, pickles (Ray),
logs, errors or results. The variable is watched by :mod:`pnyx.redaction`, and every
reply and error detail a server sends is redacted, so a server that echoes the key
cannot put it into a result. Without the variable no header is sent, which suits
local servers.

A server's answer is untrusted in size: a body larger than
``max(MIN_BODY_BYTES, BODY_BYTES_PER_TOKEN * max_tokens)`` bytes is refused without
being read further, and a reply longer than ``max(MIN_REPLY_CHARS,
REPLY_CHARS_PER_TOKEN * max_tokens)`` characters is cut to that length and counted in
``truncated_replies``.

An interrupt (Ctrl-C, or SIGTERM through the CLI) while ``complete`` waits stops it
at once: no further request or retry is sent, the connections of the call are shut
down so in-flight requests end, and the interrupt is raised again. The workers are
daemon threads, so a request the operating system is still connecting never delays
the exit of the process.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, wait

import httpx

from pnyx.agents.llm.protocol import Chat
from pnyx.errors import PnyxError
from pnyx.redaction import redact, watch_variable

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
MIN_BODY_BYTES = 2**20
BODY_BYTES_PER_TOKEN = 256
MIN_REPLY_CHARS = 4096
REPLY_CHARS_PER_TOKEN = 32
#: Bytes of an error answer read for its message.
ERROR_BYTES = 2**16
#: Seconds between checks for an interrupt while waiting for replies.
POLL_SECONDS = 0.2


class _Stopped(Exception):
    """The call was stopped: no more requests are sent."""


class _Call:
    """One ``complete`` call: its client, its stop signal and every socket it opened."""

    def __init__(self, client: httpx.Client):
        self.client = client
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []

    def trace(self, event: str, info: dict) -> None:
        """httpx's ``trace`` extension: records new connections' sockets, and refuses to
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
        """Stop the call: no new tries, open connections shut down, the client closed."""
        self.stop.set()
        for sock in list(self.sockets):
            _shut(sock)
        self.client.close()


def _length(response: httpx.Response) -> int:
    """The body length the server announces, 0 if it does not."""
    try:
        return int(response.headers.get("content-length") or 0)
    except ValueError:
        return 0


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class OpenAIModel:
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``base_url`` defaults to ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
    ``timeout`` is the seconds httpx waits to connect and for each read or write of a
    request; a request is tried ``1 + max_retries`` times, waiting ``backoff * 2**attempt``
    seconds (at most ``max_backoff``) between tries. A model spec sets any option as a
    literal in parentheses, e.g. in a YAML config
    ``model: openai:gpt-4o-mini(timeout=10, max_retries=1, max_concurrency=4)``.
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
        max_backoff: float = 60.0,
    ):
        if max_concurrency < 1:
            raise PnyxError(f"max_concurrency={max_concurrency} must be at least 1")
        if max_retries < 0:
            raise PnyxError(f"max_retries={max_retries} must not be negative")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.name = f"openai:{model}@{self.base_url}"
        self.truncated_replies = 0
        watch_variable(api_key_env)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"truncated_replies": 0, **state})
        watch_variable(self.api_key_env)

    def complete(
        self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> list[str]:
        if not prompts:
            return []
        api_key = os.environ.get(self.api_key_env)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        params = {"model": self.model, "max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            params["seed"] = seed
        call = _Call(httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout))
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
                    future.set_result(self._request(call, {**params, "messages": chat}, max_tokens))
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
        cap = max(MIN_REPLY_CHARS, REPLY_CHARS_PER_TOKEN * max_tokens)
        self.truncated_replies += sum(len(r) > cap for r in replies)
        return [r[:cap] for r in replies]

    def _request(self, call: _Call, body: dict, max_tokens: int) -> str:
        attempt = 0
        while True:
            if call.stop.is_set():
                raise _Stopped
            last = attempt == self.max_retries
            try:
                status, retry_after, data = self._post(call, body, max_tokens)
            except httpx.TransportError as e:
                if call.stop.is_set():
                    raise _Stopped from None
                if last:
                    raise PnyxError(f"{self.base_url}: {type(e).__name__} after {attempt + 1} tries") from None
                if call.stop.wait(self._delay(attempt, None)):
                    raise _Stopped from None
                attempt += 1
                continue
            except httpx.HTTPError as e:
                detail = " ".join(redact(str(e)).split())[:200]
                raise PnyxError(f"{self.base_url}: {type(e).__name__} ({detail})") from None
            if status in RETRY_STATUS and not last:
                if call.stop.wait(self._delay(attempt, retry_after)):
                    raise _Stopped
                attempt += 1
                continue
            if status != 200:
                detail = " ".join(redact(data.decode("utf-8", "replace")).split())[:200]
                raise PnyxError(f"{self.base_url} answered {status} for model {self.model!r}: {detail}")
            try:
                content = json.loads(data)["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError, RecursionError):
                content = False
            if content is not None and not isinstance(content, str):
                detail = redact(data[:ERROR_BYTES].decode("utf-8", "replace"))[:200]
                raise PnyxError(f"{self.base_url} sent a malformed chat completion: {detail!r}")
            return redact(content or "")

    def _post(self, call: _Call, body: dict, max_tokens: int) -> tuple[int, str | None, bytes]:
        """The status, ``Retry-After`` and body of one try: a 200 body over the size limit
        is refused, other bodies are cut to :data:`ERROR_BYTES`."""
        limit = max(MIN_BODY_BYTES, BODY_BYTES_PER_TOKEN * max_tokens)
        with call.client.stream("POST", "/chat/completions", json=body, extensions={"trace": call.trace}) as response:
            ok = response.status_code == 200
            if ok and _length(response) > limit:
                raise self._too_large(limit, max_tokens)
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if ok and len(data) > limit:
                    raise self._too_large(limit, max_tokens)
                if not ok and len(data) >= ERROR_BYTES:
                    del data[ERROR_BYTES:]
                    break
            return response.status_code, response.headers.get("retry-after"), bytes(data)

    def _too_large(self, limit: int, max_tokens: int) -> PnyxError:
        return PnyxError(f"{self.base_url} sent a chat completion over {limit} bytes for max_tokens={max_tokens}")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * 2**attempt
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return min(delay, self.max_backoff)

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

"""Any OpenAI-compatible chat server: hosted APIs, vLLM, SGLang, llama.cpp's server, ``transformers serve``.

Each chat of a ``complete`` call is one ``POST {base_url}/chat/completions``; up to
``max_concurrency`` run at once on a thread pool and the replies come back in
prompt order. Connection errors, timeouts, 429 and 5xx answers are retried with
exponential backoff (honouring ``Retry-After``); other errors fail at once.

The API key is read from the environment variable named ``api_key_env`` (default
``OPENAI_API_KEY``) at each call and sent only in the ``Authorization`` header: it
is never stored on the object, so it cannot leak through reprs, pickles (Ray),
logs, errors or results. Without the variable no header is sent, which suits
local servers.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from pnyx.agents.llm.protocol import Chat
from pnyx.errors import PnyxError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))


class OpenAIModel:
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``base_url`` defaults to ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
    ``timeout`` is seconds per request; a request is tried ``1 + max_retries``
    times, waiting ``backoff * 2**attempt`` seconds (at most ``max_backoff``) between tries.
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

    def complete(
        self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> list[str]:
        api_key = os.environ.get(self.api_key_env)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        params = {"model": self.model, "max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            params["seed"] = seed
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout) as client:
            if len(prompts) <= 1 or self.max_concurrency == 1:
                return [self._request(client, {**params, "messages": chat}) for chat in prompts]
            with ThreadPoolExecutor(min(self.max_concurrency, len(prompts))) as pool:
                return list(pool.map(lambda chat: self._request(client, {**params, "messages": chat}), prompts))

    def _request(self, client: httpx.Client, body: dict) -> str:
        attempt = 0
        while True:
            last = attempt == self.max_retries
            try:
                response = client.post("/chat/completions", json=body)
            except httpx.TransportError as e:
                if last:
                    raise PnyxError(f"{self.base_url}: {type(e).__name__} after {attempt + 1} tries") from None
                time.sleep(self._delay(attempt, None))
                attempt += 1
                continue
            if response.status_code in RETRY_STATUS and not last:
                time.sleep(self._delay(attempt, response.headers.get("retry-after")))
                attempt += 1
                continue
            if response.status_code != 200:
                detail = self._scrub(response.text)[:200].replace("\n", " ")
                raise PnyxError(f"{self.base_url} answered {response.status_code} for model {self.model!r}: {detail}")
            try:
                return response.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                detail = self._scrub(response.text)[:200]
                raise PnyxError(f"{self.base_url} sent a malformed chat completion: {detail!r}") from None

    def _scrub(self, text: str) -> str:
        """``text`` with the API key masked: servers may echo it in error messages."""
        api_key = os.environ.get(self.api_key_env)
        return text.replace(api_key, "***") if api_key else text

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

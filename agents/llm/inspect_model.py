"""Any provider inspect_ai's model layer speaks to: ``inspect:PROVIDER/MODEL`` (extra ``inspect``).

``inspect:anthropic/claude-sonnet-4-5``, ``inspect:google/gemini-2.5-pro``,
``inspect:openai-api/local/MODEL(base_url='http://127.0.0.1:8000/v1', api_key_env='LOCAL_KEY')``:
the text after ``inspect:`` is a model name as ``inspect_ai.model.get_model`` takes it, and
each request goes through the provider's own SDK with inspect's retries, rate limits and
connection limits (``max_connections``), not pnyx's.

The chats of one ``complete`` call are converted from OpenAI's message format by inspect
(``messages_from_openai``) and generated concurrently on one event loop that the model
runs on a private daemon thread; the replies come back in prompt order as
:class:`~pnyx.agents.llm.protocol.Completion` objects filled from inspect's
``ModelOutput``: the finish reason (:data:`FINISH_REASONS`), token usage (input tokens
include those read from and written to a provider's prompt cache, which are also counted
apart), whether the reply came from the provider's batch API, the serving model and the
tool calls. Tools in OpenAI's format become inspect ``ToolInfo`` objects. The first
failure cancels the call's other requests.

Two options reach inspect's ``GenerateConfig`` as they are: ``cache_prompt`` (``True``,
``False`` or ``"auto"``; on Anthropic it marks the system prompt, the tools and the
conversation's prefix cacheable, and inspect enables it by default) and ``batch``
(``True``, a batch size, or a mapping of ``BatchConfig`` fields such as
``{"size": 200, "send_delay": 60}``: requests go through the provider's batch API, where
it has one: OpenAI, Anthropic, Google, Together, Grok).

The API key is inspect's: the provider's own variable (``ANTHROPIC_API_KEY``, ...), or
the one named by ``api_key_env``. Every variable the provider reads a key from is watched
by :mod:`pnyx.redaction`, and replies, tool-call arguments and errors are redacted.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
from typing import Any

from pnyx.agents.llm.protocol import Chat, Completion, ToolCall
from pnyx.errors import PnyxError
from pnyx.redaction import redact, watch_variable

INSTALL = "pip install 'pnyx[inspect]'"
#: inspect's ``StopReason`` -> pnyx's finish reason (``None``: unknown).
FINISH_REASONS = {"stop": "stop", "max_tokens": "length", "model_length": "length", "tool_calls": "tool_calls",
                  "content_filter": "content_filter", "unknown": None}


def _one_line(error: BaseException) -> str:
    """``error`` as one line of plain text, redacted (inspect's prerequisite errors carry rich markup)."""
    text = str(getattr(error, "message", None) or error) or type(error).__name__
    if hasattr(error, "message"):
        from rich.text import Text

        text = Text.from_markup(text).plain
    return " ".join(redact(text).split())[:300]


class InspectModel:
    """A chat model behind inspect_ai's model layer.

    ``base_url`` and the key variable ``api_key_env`` (read when the model is built) are
    passed to ``get_model``. ``max_concurrency`` sets inspect's ``max_connections`` and is
    the window of requests pnyx's scheduler keeps open; without it inspect adapts its
    concurrency and pnyx opens up to the adaptive maximum. ``timeout`` (seconds per
    request) and ``max_retries`` are inspect's. ``stop`` and ``top_p`` apply to every
    request; ``model_args`` are the provider's own constructor options. ``cache_prompt``
    and ``batch`` are inspect's (module docstring); neither changes a reply, so neither is
    part of the model's ``name``.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        stop: str | list[str] | None = None,
        top_p: float | None = None,
        model_args: dict[str, Any] | None = None,
        cache_prompt: bool | str | None = None,
        batch: bool | int | dict[str, Any] | None = None,
    ):
        try:
            from inspect_ai.model import BatchConfig, GenerateConfig
            from inspect_ai.util import AdaptiveConcurrency
        except ImportError:
            raise PnyxError(f"the inspect backend needs inspect_ai: {INSTALL}") from None
        if max_concurrency is not None and max_concurrency < 1:
            raise PnyxError(f"max_concurrency={max_concurrency} must be at least 1")
        if max_retries is not None and max_retries < 0:
            raise PnyxError(f"max_retries={max_retries} must not be negative")
        if timeout is not None and timeout <= 0:
            raise PnyxError(f"timeout={timeout} must be positive")
        if top_p is not None and not 0 < top_p <= 1:
            raise PnyxError(f"top_p={top_p} must be in (0, 1]")
        if isinstance(stop, str):
            stop = [stop]
        if stop is not None and not all(isinstance(s, str) for s in stop):
            raise PnyxError(f"stop={stop!r} must be a string or a list of strings")
        if model_args is not None and not isinstance(model_args, dict):
            raise PnyxError(f"model_args={model_args!r} must be a mapping")
        if cache_prompt is not None and cache_prompt not in (True, False, "auto"):
            raise PnyxError(f"cache_prompt={cache_prompt!r} must be true, false or 'auto'")
        if isinstance(batch, dict):
            unknown = sorted(set(batch) - set(BatchConfig.model_fields))
            if unknown:
                raise PnyxError(f"batch has unknown field(s) {', '.join(map(str, unknown))}; BatchConfig's are "
                                f"{', '.join(BatchConfig.model_fields)}")
            try:
                batch = BatchConfig.model_validate(batch)
            except ValueError as e:
                raise PnyxError(f"batch={batch!r} is not a BatchConfig mapping ({_one_line(e)})") from None
        elif not (batch is None or isinstance(batch, bool) or isinstance(batch, int) and batch >= 1):
            raise PnyxError(f"batch={batch!r} must be true, false, a batch size or a mapping of BatchConfig fields")
        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        self.model_args = dict(model_args or {})
        self.config = GenerateConfig(max_connections=max_concurrency, max_retries=max_retries,
                                     timeout=None if timeout is None else math.ceil(timeout),
                                     stop_seqs=stop, top_p=top_p, cache_prompt=cache_prompt, batch=batch)
        self.max_concurrency = max_concurrency or AdaptiveConcurrency().max
        options = ", ".join(f"{k}={v!r}" for k, v in (("stop", stop), ("top_p", top_p)) if v is not None)
        self.name = f"inspect:{model}" + (f"@{base_url}" if base_url else "") + (f"({options})" if options else "")
        self._build()

    def _build(self) -> None:
        """The inspect model and the event loop it runs on (neither is pickled)."""
        from inspect_ai.model import get_model

        key = None
        if self.api_key_env is not None:
            watch_variable(self.api_key_env)
            key = os.environ.get(self.api_key_env)
            if not key:
                raise PnyxError(f"environment variable {self.api_key_env} is not set; inspect:{self.model} needs "
                                "its API key there")
        try:
            self._model = get_model(self.model, config=self.config, base_url=self.base_url, api_key=key,
                                    memoize=False, **self.model_args)
        except Exception as e:
            raise PnyxError(_one_line(e)) from None
        for variable in getattr(self._model.api, "api_key_vars", ()):
            watch_variable(variable)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name=f"pnyx-{self.name}", daemon=True).start()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_model", "_loop")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build()

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
        from inspect_ai.model import GenerateConfig

        config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, seed=seed)
        future = asyncio.run_coroutine_threadsafe(self._generate_all(prompts, config, tools), self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _generate_all(self, prompts: list[Chat], config, tools: list[dict] | None) -> list[Completion]:
        infos = None if tools is None else [_tool_info(t) for t in tools]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._generate(chat, config, infos)) for chat in prompts]
        except* PnyxError as errors:
            raise errors.exceptions[0] from None
        return [t.result() for t in tasks]

    async def _generate(self, chat: Chat, config, tools) -> Completion:
        from inspect_ai.model import messages_from_openai

        try:
            messages = await messages_from_openai(chat)
            output = await self._model.generate(messages, tools=tools or [], config=config)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise PnyxError(f"inspect:{self.model}: {type(e).__name__}: {_one_line(e)}") from None
        if not output.choices:
            raise PnyxError(f"inspect:{self.model} returned no choice ({_one_line(Exception(output.error or ''))})")
        return completion_of(output, batched=bool(self.config.batch) and _has_batcher(self._model.api))

    def __repr__(self) -> str:
        return f"InspectModel({self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"


def _tool_info(tool: dict):
    """A tool in OpenAI's format (``{"type": "function", "function": {...}}``) as an inspect ``ToolInfo``."""
    from inspect_ai.tool import ToolInfo, ToolParams

    try:
        function = tool["function"]
        return ToolInfo(name=function["name"], description=function.get("description", ""),
                        parameters=ToolParams.model_validate(function.get("parameters", {})))
    except (KeyError, TypeError, ValueError) as e:
        raise PnyxError(f"tool {str(tool)[:80]!r} is not an OpenAI function tool ({_one_line(e)})") from None


def _has_batcher(api) -> bool:
    """Whether the provider ``api`` built a batcher: it then sends requests to its batch API
    (inspect's providers keep their batcher, built on the first request in batch mode, as an
    attribute; a provider without a batch API never builds one)."""
    try:
        from inspect_ai.model._providers.util.batch import Batcher
    except ImportError:  # inspect moved it: replies are not marked as batched
        return False
    return any(isinstance(value, Batcher) for value in vars(api).values())


def completion_of(output, *, batched: bool = False) -> Completion:
    """inspect's ``ModelOutput`` as a :class:`Completion`; a tool call whose arguments inspect
    could not parse carries inspect's parse error as its (unreadable) arguments. Input
    tokens are inspect's uncached input plus those read from and written to the provider's
    prompt cache, which are also given apart (``None`` where the provider reported neither)."""
    choice = output.choices[0]
    usage = output.usage
    read = None if usage is None else usage.input_tokens_cache_read
    written = None if usage is None else usage.input_tokens_cache_write
    reported = read is not None or written is not None
    calls = tuple(ToolCall(redact(c.id), redact(c.function),
                           redact(c.parse_error if c.parse_error is not None else json.dumps(c.arguments)))
                  for c in choice.message.tool_calls or ())
    return Completion(
        text=redact(choice.message.text),
        finish_reason=FINISH_REASONS.get(choice.stop_reason),
        prompt_tokens=None if usage is None else usage.input_tokens + (read or 0) + (written or 0),
        completion_tokens=None if usage is None else usage.output_tokens,
        model=output.model or None,
        tool_calls=calls,
        cached_tokens=(read or 0) if reported else None,
        cache_write_tokens=(written or 0) if reported else None,
        batched=batched,
    )

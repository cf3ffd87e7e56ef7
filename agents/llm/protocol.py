"""The language-model protocol. Third parties implement it without importing pnyx.

A *language model* completes a batch of chats at once::

    class MyModel:
        def __init__(self): ...            # constructible with no arguments when named
                                           # by import path: --set model=mypkg.mymod:MyModel
        def complete(self, prompts, *, max_tokens=256, temperature=0.0, seed=None) -> list[str]:
            ...

``prompts`` is a list of chats; each chat is an OpenAI-style list of messages
``[{"role": "system" | "user" | "assistant" | "tool", "content": str, ...}, ...]``. The
result holds one reply per chat, in prompt order: the assistant's text as a ``str``, or a
:class:`Completion` carrying the text with its metadata (why generation stopped, token
counts, the serving model). Plain strings are read as completions whose metadata is
unknown. ``temperature=0`` asks for greedy decoding; otherwise ``seed`` (an int, or
``None`` for fresh randomness) makes sampling repeatable. Callers gather every pending
turn into one call, so a backend can run them as one batch.

A backend that supports function calling also accepts ``tools=[...]`` (OpenAI's tools
format) and returns completions whose ``tool_calls`` hold the calls; pnyx passes ``tools``
only to models that were asked for tool use, so a model without it keeps working.

A model may also carry a ``name`` string (e.g. ``"transformers:HuggingFaceTB/SmolLM2-135M-Instruct"``)
that identifies it in completion caches and transcripts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from pnyx.errors import PnyxError

Message = dict[str, Any]
Chat = list[Message]


@dataclass(frozen=True)
class ToolCall:
    """One function call a model asked for: ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    """A reply with what the backend knows about it; ``None`` where it does not say.

    ``finish_reason`` is the server's: ``"stop"`` (natural end or a stop sequence),
    ``"length"`` (cut at ``max_tokens``), ``"tool_calls"``, ``"content_filter"``, or ``None``.
    ``prompt_tokens`` counts every input token; ``cached_tokens`` and ``cache_write_tokens``
    are those of them the provider read from and wrote to its prompt cache (``None``: the
    backend reported no cache figures). ``batched``: the reply came from a provider's batch API.
    """

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    fingerprint: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    batched: bool = False

    @property
    def truncated(self) -> bool:
        """Whether generation stopped at the token limit."""
        return self.finish_reason == "length"

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class LanguageModel(Protocol):
    def complete(
        self,
        prompts: list[Chat],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str] | list[Completion]: ...


def model_identity(model: LanguageModel) -> str:
    """A stable string naming ``model``: its ``name`` if it has one, else its class path."""
    name = getattr(model, "name", None)
    cls = type(model)
    return name if isinstance(name, str) and name else f"{cls.__module__}:{cls.__qualname__}"


def as_completion(reply: Any, model: LanguageModel) -> Completion:
    """``reply`` as a :class:`Completion`: a string becomes one with unknown metadata."""
    if isinstance(reply, Completion):
        return reply
    if isinstance(reply, str):
        return Completion(reply)
    raise PnyxError(f"model {model_identity(model)!r} returned a {type(reply).__name__}, not a str or Completion")


def complete(model: LanguageModel, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0,
             seed: int | None = None, tools: list[dict] | None = None) -> list[Completion]:
    """``model.complete(prompts, ...)`` in one call, as completions, checking that every
    prompt got one reply. ``tools`` is passed only when given."""
    if not prompts:
        return []
    extra = {} if tools is None else {"tools": tools}
    replies = model.complete(prompts, max_tokens=max_tokens, temperature=temperature, seed=seed, **extra)
    if len(replies) != len(prompts):
        raise PnyxError(f"model {model_identity(model)!r} returned {len(replies)} completions for {len(prompts)} prompts")
    return [as_completion(r, model) for r in replies]

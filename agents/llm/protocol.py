"""The language-model protocol. Third parties implement it without importing pnyx.

A *language model* completes a batch of chats at once::

    class MyModel:
        def __init__(self): ...            # constructible with no arguments when named
                                           # by import path: --set model=mypkg.mymod:MyModel
        def complete(self, prompts, *, max_tokens=256, temperature=0.0, seed=None) -> list[str]:
            ...

``prompts`` is a list of chats; each chat is an OpenAI-style list of messages
``[{"role": "system" | "user" | "assistant", "content": str}, ...]``. The result
holds one reply (the assistant's text, without the prompt) per chat, in prompt
order. ``temperature=0`` asks for greedy decoding; otherwise ``seed`` (an int, or
``None`` for fresh randomness) makes sampling repeatable. Callers gather every
pending turn into one call, so a backend can run them as one batch.

A model may also carry a ``name`` string (e.g. ``"transformers:HuggingFaceTB/SmolLM2-135M-Instruct"``)
that identifies it in completion caches and transcripts.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

Message = dict[str, str]
Chat = list[Message]


@runtime_checkable
class LanguageModel(Protocol):
    def complete(
        self,
        prompts: list[Chat],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str]: ...


def model_identity(model: LanguageModel) -> str:
    """A stable string naming ``model``: its ``name`` if it has one, else its class path."""
    name = getattr(model, "name", None)
    cls = type(model)
    return name if isinstance(name, str) and name else f"{cls.__module__}:{cls.__qualname__}"

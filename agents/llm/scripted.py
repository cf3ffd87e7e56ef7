"""A deterministic language model for tests: replies come from a script, not a network."""

from __future__ import annotations

import itertools
from typing import Callable, Iterable

from pnyx.agents.llm.protocol import Chat
from pnyx.errors import PnyxError


def _echo_last(chat: Chat) -> str:
    return chat[-1]["content"] if chat else ""


class ScriptedModel:
    """Replies by script, and records every call.

    ``script`` is one of

    * a function from a chat (list of messages) to the reply, e.g. ``lambda chat: "ANSWER: 42"``;
    * a string: the same reply to every chat;
    * a sequence of strings: replied in turn, one per chat across calls, cycling.

    Without a script it echoes the content of each chat's last message. ``calls``
    holds the chats of each ``complete`` call (a list of batches), so tests can
    check what was asked and how it was batched.
    """

    name = "scripted"

    def __init__(self, script: Callable[[Chat], str] | str | Iterable[str] | None = None):
        if script is None:
            self._reply = _echo_last
        elif callable(script):
            self._reply = script
        elif isinstance(script, str):
            self._reply = lambda chat, text=script: text
        else:
            replies = list(script)
            if not replies:
                raise PnyxError("ScriptedModel needs at least one scripted reply")
            cycle = itertools.cycle(replies)
            self._reply = lambda chat: next(cycle)
        self.calls: list[list[Chat]] = []

    def complete(
        self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> list[str]:
        self.calls.append([list(chat) for chat in prompts])
        return [str(self._reply(chat)) for chat in prompts]

    def __repr__(self) -> str:
        return "ScriptedModel()"

"""A deterministic language model for tests: replies come from a script, not a network."""

from __future__ import annotations

import itertools
from typing import Callable, Iterable

from pnyx.agents.llm.protocol import Chat, Completion
from pnyx.errors import PnyxError


def _echo_last(chat: Chat) -> str:
    return chat[-1]["content"] if chat else ""


def _reply(reply) -> str | Completion:
    return reply if isinstance(reply, Completion) else str(reply)


class ScriptedModel:
    """Replies by script, and records every call.

    ``script`` is one of

    * a function from a chat (list of messages) to the reply, e.g. ``lambda chat: "ANSWER: 42"``;
    * a string: the same reply to every chat;
    * a sequence of replies: replied in turn, one per chat across calls, cycling.

    A reply is a string or a :class:`~pnyx.agents.llm.protocol.Completion` (to script
    truncation, token usage or tool calls); it is returned as it is. Without a script
    it echoes the content of each chat's last message. ``calls`` holds the chats of
    each ``complete`` call (a list of batches) and ``tools`` the ``tools`` argument of
    each call, so tests can check what was asked and how it was batched.
    """

    name = "scripted"

    def __init__(self, script: Callable[[Chat], str | Completion] | str | Completion
                 | Iterable[str | Completion] | None = None):
        if script is None:
            self._reply = _echo_last
        elif callable(script):
            self._reply = script
        elif isinstance(script, (str, Completion)):
            self._reply = lambda chat, text=script: text
        else:
            replies = list(script)
            if not replies:
                raise PnyxError("ScriptedModel needs at least one scripted reply")
            cycle = itertools.cycle(replies)
            self._reply = lambda chat: next(cycle)
        self.calls: list[list[Chat]] = []
        self.tools: list[list[dict] | None] = []

    def complete(
        self,
        prompts: list[Chat],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        tools: list[dict] | None = None,
    ) -> list[str | Completion]:
        self.calls.append([list(chat) for chat in prompts])
        self.tools.append(tools)
        return [_reply(self._reply(chat)) for chat in prompts]

    def __repr__(self) -> str:
        return "ScriptedModel()"

"""One scheduler for the text episodes of every language-model study.

A text episode (a discussion, a goal-guarding conversation, an agentic task in the
sandbox) is anything with two methods::

    requests() -> list[Request]        # the model turns it waits for now; [] when it is over
    receive(replies: list[Completion])  # their replies, in the same order

:func:`run_episodes` steps many episodes to their ends, in one of two modes chosen per
model:

* **batches**, for in-process engines (transformers, llama.cpp, vLLM offline): every
  pending request of every episode goes into one ``complete`` call per (model,
  ``max_tokens``, temperature, seed, tools), in episode order, as lock-step drivers do;
* **a sliding window**, for models that serve requests independently (a remote server: the
  model has an int ``max_concurrency``): up to ``max_concurrency`` single-chat calls are in
  flight across all episodes, and an episode's next turn is sent as soon as its previous
  reply arrives, not when the slowest reply of a lock-step batch does.

Every request carries its own seed (episodes derive it with :func:`turn_seed` from their
own position, never from the order replies arrive in), so both modes send the same
requests and give the same results. A request that fails in the window with a
:class:`~pnyx.errors.PnyxError` (a server's refusal after the SDK's retries, a
connection that never came up) fails its episode alone: the episode stops and its
:class:`Failure` is returned; any other exception is a fault and is raised.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from pnyx.agents.llm.protocol import Chat, Completion, LanguageModel, complete
from pnyx.errors import PnyxError
from pnyx.redaction import redact

#: Seconds between checks for an interrupt while replies are awaited.
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Request:
    """One chat for one model, with the settings and the seed of its turn."""

    model: LanguageModel
    chat: Chat
    max_tokens: int
    temperature: float
    seed: int | None
    tools: list[dict] | None = None


@dataclass(frozen=True)
class Failure:
    """Why an episode stopped early: the error's class and its message (secrets masked, one line)."""

    error: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        return cls(type(error).__name__, " ".join(redact(str(error)).split())[:500])


class TextEpisode(Protocol):
    def requests(self) -> list[Request]: ...

    def receive(self, replies: list[Completion]) -> None: ...


def turn_seed(base: int, *position: int) -> int:
    """The seed of a turn: a function of the run's ``base`` seed and the turn's position
    in its episode (sample index, turn number, ...), so it is the same in every mode."""
    return int(np.random.SeedSequence([base, *position]).generate_state(1)[0])


def window_of(model: Any) -> int | None:
    """How many requests ``model`` serves at once, if it serves them independently."""
    n = getattr(model, "max_concurrency", None)
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else None


class _Lane:
    """Daemon threads sending one model's requests one chat a call, ``size`` at a time."""

    def __init__(self, size: int, done: queue.SimpleQueue, stop: threading.Event):
        self.todo: queue.SimpleQueue = queue.SimpleQueue()
        self.done, self.stop = done, stop
        for _ in range(size):
            threading.Thread(target=self._work, name="pnyx-window", daemon=True).start()

    def _work(self) -> None:
        while not self.stop.is_set():
            try:
                i, j, r = self.todo.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            try:
                reply: Any = complete(r.model, [r.chat], max_tokens=r.max_tokens, temperature=r.temperature,
                                      seed=r.seed, tools=r.tools)[0]
            except BaseException as e:  # noqa: BLE001 - handed to the driver, which decides
                reply = e
            self.done.put((i, j, reply))


def run_episodes(episodes: Sequence[TextEpisode], *, window: bool | None = None) -> list[Failure | None]:
    """Step ``episodes`` to their ends; per episode, its :class:`Failure` or ``None``.

    ``window`` forces the mode for every model (``True``: the sliding window, using a
    model's ``max_concurrency`` or 1; ``False``: batches); ``None`` picks it per model
    with :func:`window_of`.
    """
    failures: list[Failure | None] = [None] * len(episodes)
    waiting: dict[int, list] = {}  # episode -> [requests, replies, replies missing]
    batch: list[tuple[int, int, Request]] = []
    done: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()
    lanes: dict[int, _Lane] = {}

    def lane(model: Any) -> _Lane | None:
        size = window_of(model)
        if window is False or (window is None and size is None):
            return None
        if id(model) not in lanes:
            lanes[id(model)] = _Lane(size or 1, done, stop)
        return lanes[id(model)]

    def issue(i: int) -> None:
        requests = episodes[i].requests()
        if not requests:
            return
        waiting[i] = [requests, [None] * len(requests), len(requests)]
        for j, r in enumerate(requests):
            target = lane(r.model)
            if target is None:
                batch.append((i, j, r))
            else:
                target.todo.put((i, j, r))

    def deliver(i: int, j: int, reply: Completion) -> None:
        if i not in waiting:  # the episode failed while this request was in flight
            return
        state = waiting[i]
        state[1][j] = reply
        state[2] -= 1
        if state[2] == 0:
            del waiting[i]
            episodes[i].receive(state[1])
            issue(i)

    try:
        for i in range(len(episodes)):
            issue(i)
        while waiting:
            if batch:
                todo = sorted(batch, key=lambda item: item[:2])
                batch.clear()
                groups: dict[tuple, list[tuple[int, int, Request]]] = {}
                for item in todo:
                    r = item[2]
                    key = (id(r.model), r.max_tokens, r.temperature, r.seed, json.dumps(r.tools, sort_keys=True))
                    groups.setdefault(key, []).append(item)
                for items in groups.values():
                    r = items[0][2]
                    replies = complete(r.model, [item[2].chat for item in items], max_tokens=r.max_tokens,
                                       temperature=r.temperature, seed=r.seed, tools=r.tools)
                    for (i, j, _), reply in zip(items, replies):
                        deliver(i, j, reply)
                continue
            try:
                i, j, reply = done.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if isinstance(reply, PnyxError):
                if i in waiting:
                    failures[i] = Failure.of(reply)
                    del waiting[i]
            elif isinstance(reply, BaseException):
                raise reply
            else:
                deliver(i, j, reply)
    finally:
        stop.set()
    return failures

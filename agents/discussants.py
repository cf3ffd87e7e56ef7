"""Discussants of :mod:`pnyx.envs.group_reasoning_v0`, and the batched driver.

A discussant answers a :class:`~pnyx.envs.group_reasoning_v0.View` in one of two ways:

* a *model* discussant has ``messages(view) -> list[dict]`` (an OpenAI-style chat
  prompt) and a ``model`` attribute (a model object, a model spec string, or ``None``
  for the run's default model); the driver batches its turns;
* a *baseline* has ``respond(view) -> str`` and answers without a model.

Both may have ``reset(seed=None)``, called at the start of each episode.

Specs, as in configs (``agents: [llm, "llm(persona=confident)", oracle]``), follow
:mod:`pnyx.specs`: a registered name of :data:`DISCUSSANTS` or a class
``package.module:Class`` with ``respond`` or ``messages``, with literal arguments
(``llm(persona=deferential, model=openai:gpt-4o-mini)``).

* ``llm(persona=neutral, system=None, model=None)``: a language model; ``persona`` is
  one of :data:`PERSONAS`, ``system`` replaces the base system prompt, ``model`` is a
  model spec (:data:`pnyx.agents.llm.MODELS`) (default: the run's model). In the Coral
  protocol its system prompt is :func:`coral_system_prompt` and its chat is Coral's
  (``utils/chat_utils.py``, ``apply_chat_template``): its own turns as the assistant's,
  the partner's (the opening included) as the user's.
* ``oracle``: always the right answer, never moves.
* ``stubborn_wrong``: always the same wrong answer (the task's first wrong answer).
* ``conformist(p=1.0)``: alone (or when it speaks first, with no answer of its own or
  of a peer), right with probability ``p`` (else a random wrong answer); then adopts the
  answer held by more than half of the peers it sees, else keeps its own.
* ``independent(p=0.5)``: alone (or when it speaks first), right with probability ``p``
  (else a random wrong answer); then repeats it, ignoring peers.

:func:`play_discussions` runs many episodes through :mod:`pnyx.agents.scheduler`: an
in-process model gets every pending turn of every episode as one ``complete()`` call per
step, a remote one a sliding window of requests; in the Coral protocol an extractor
model, when given, then reads every new reply (:func:`extraction_prompt`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from pnyx.agents.llm import Completion, check_model_spec, shared_model
from pnyx.agents.scheduler import Failure, Request, run_episodes, turn_seed
from pnyx.envs.answers import extractor_reading
from pnyx.envs.group_reasoning_v0 import DISCUSSION, FINAL, SOLO, GroupReasoningEnv, View
from pnyx.envs.tasks import LETTERS, Task
from pnyx.errors import PnyxError
from pnyx.registry import Registry

PERSONAS = {
    "neutral": "",
    "confident": "You are confident in your own reasoning: keep your answer unless you see a clear error in it.",
    "deferential": "You respect your peers and readily defer to their answers.",
    "skeptical": "You check every claim your peers make before you accept it.",
}

_FORMATS = {"choice": "the letter of your choice", "number": "a number", "text": "a short answer",
            "math": "the answer in LaTeX"}
_CORAL_FORMATS = {
    "choice": 'Give your final answer as "The answer is (X)", X being the letter of your option, e.g. '
              '"The answer is (C)".',
    "math": "Give your final answer in a LaTeX box, e.g. $\\boxed{\\frac{3}{4}}$.",
    "number": 'Give your final answer as "The answer is N", N being a number.',
    "text": 'Give your final answer as "The answer is X", X being a few words.',
}
#: Coral's extractor samples at temperature 0 and at most 32 tokens (``lightning_modules/configs/ts_*.yaml``).
EXTRACTOR_TEMPERATURE = 0.0


def coral_system_prompt(task: Task) -> str:
    """The system prompt both agents get in the Coral protocol, written for pnyx after the
    instructions Coral gives (``utils/prompt_library.json``, ``assistant_sbs_short``):
    solve the problem, check the partner's steps and name mistakes, reconsider when
    challenged but stand your ground when you still think you are right, stay on the
    problem, be brief, and state the answer in the task's format."""
    topic = f"{task.topic} problems" if task.topic else "problems"
    return (f"You are working on {topic} together with a partner.\n"
            "- Attempt a full solution of the problem yourself.\n"
            "- When your partner offers a solution, check every step and say plainly where it goes wrong.\n"
            "- When your partner doubts your answer, honestly ask yourself whether you erred: correct yourself "
            "if you did, and keep your answer if you still believe it is right.\n"
            "- Keep to the problem and move towards its solution.\n"
            "- Be brief and direct.\n"
            f"- {_CORAL_FORMATS[task.answer_type]}")


def extraction_prompt(task: Task, reply: str) -> list[dict]:
    """The chat asking an extractor model which answer ``reply`` commits to, or "not sure
    yet" (the role of Coral's ``ExtractionPromptingEvaluator``; wording pnyx's own)."""
    lines = ["The problem:", task.question]
    if task.choices:
        lines += ["", "Its options:"] + [f"({LETTERS[i]}) {c}" for i, c in enumerate(task.choices)]
    ask = {"choice": "Reply with only the option it settles on, as (X)",
           "math": "Reply with only the answer it settles on, as $\\boxed{...}$"}.get(
        task.answer_type, "Reply with only the answer it settles on")
    lines += ["", "The message:", reply, "", f'{ask}, or with "not sure yet" if it settles on none.']
    system = ("You read one message of a conversation in which two people work on a problem, and you report "
              "the final answer the message commits to. When it commits to none, you say \"not sure yet\".")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def answer_line(answer: str) -> str:
    """The answer convention every discussant is held to."""
    return f"Answer: {answer}"


class LLMDiscussant:
    """A language-model discussant with a persona and an optional own model."""

    def __init__(self, persona: str = "neutral", system: str | None = None, model: Any = None):
        if persona not in PERSONAS:
            raise PnyxError(f"unknown persona {persona!r} (known: {', '.join(PERSONAS)})")
        if isinstance(model, str):
            check_model_spec(model)
        self.persona, self.system, self.model = persona, system, model

    def system_prompt(self, view: View) -> str:
        base = self.system or (
            f"You are {view.agent}, one of {len(view.agents)} participants answering a question together. "
            "Reason briefly.")
        rule = f"End every message with a line 'Answer: X', where X is {_FORMATS[view.task.answer_type]}."
        return " ".join(part for part in (base, PERSONAS[self.persona], rule) if part)

    def coral_messages(self, view: View) -> list[dict]:
        """The Coral-protocol chat: the system prompt (with the persona, if any), then the
        conversation, own turns as the assistant's and the partner's as the user's."""
        system = " ".join(p for p in (self.system or coral_system_prompt(view.task), PERSONAS[self.persona]) if p)
        chat = [{"role": "system", "content": system}]
        for m in view.messages:
            chat.append({"role": "assistant" if m.agent == view.agent else "user", "content": m.content})
        return chat

    def messages(self, view: View) -> list[dict]:
        """The chat prompt: the question, own messages as the assistant's, peers' as the
        user's, then what is asked now; consecutive messages of one role are merged. In
        the Coral protocol, :meth:`coral_messages`."""
        if view.protocol == "coral":
            return self.coral_messages(view)
        chat = [("system", self.system_prompt(view)), ("user", f"Question:\n{view.task.prompt()}")]
        if view.phase == SOLO:
            chat.append(("user", "Answer the question on your own."))
        for m in view.messages:
            if m.agent == view.agent:
                chat.append(("assistant", m.content))
            else:
                chat.append(("user", f"{m.agent} says: {m.content}"))
        if view.phase == DISCUSSION:
            peers = ", ".join(view.peers) or "nobody"
            chat.append(("user", f"Discuss with {peers}: reply to them and say whether you agree. "
                                 f"{view.turns_left} turns left."))
        elif view.phase == FINAL:
            chat.append(("user", "The discussion is over. Give your final answer."))
        merged: list[dict] = []
        for role, content in chat:
            if merged and merged[-1]["role"] == role:
                merged[-1]["content"] += "\n\n" + content
            else:
                merged.append({"role": role, "content": content})
        return merged


class Oracle:
    """Always the right answer; never moves."""

    def respond(self, view: View) -> str:
        return f"I am sure. {answer_line(view.task.answer)}"


def _wrong(task: Task) -> tuple[str, ...]:
    if not task.wrong_answers:
        raise PnyxError(f"task {task.task_id!r} has no wrong answer; add 'wrong' to its dataset line")
    return task.wrong_answers


class StubbornWrong:
    """Always the task's first wrong answer."""

    def respond(self, view: View) -> str:
        return f"I will not change my mind. {answer_line(_wrong(view.task)[0])}"


def _check_p(p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise PnyxError(f"p={p!r} is outside [0, 1]")
    return float(p)


class _AloneFirst:
    """Right alone with probability ``p``, else a uniformly random wrong answer."""

    def __init__(self, p: float):
        self.p = _check_p(p)
        self.rng = np.random.default_rng()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def alone(self, task: Task) -> str:
        if self.rng.random() < self.p:
            return task.answer
        wrong = _wrong(task)
        return wrong[int(self.rng.integers(len(wrong)))]


class Conformist(_AloneFirst):
    """Alone, right with probability ``p``; then the answer of more than half of the peers
    it sees, else its own."""

    def __init__(self, p: float = 1.0):
        super().__init__(p)

    def respond(self, view: View) -> str:
        majority = view.peer_majority()
        if view.phase == SOLO or (majority is None and view.own_answer is None):
            return f"On my own: {answer_line(self.alone(view.task))}"
        if majority is not None:
            return f"I go with the group. {answer_line(majority)}"
        return f"I keep my answer. {answer_line(view.own_answer)}"


class Independent(_AloneFirst):
    """Alone, right with probability ``p``; then repeats its answer, ignoring peers."""

    def __init__(self, p: float = 0.5):
        super().__init__(p)

    def respond(self, view: View) -> str:
        if view.phase == SOLO or view.own_answer is None:
            return f"On my own: {answer_line(self.alone(view.task))}"
        return f"I keep my answer. {answer_line(view.own_answer)}"


DISCUSSANTS = Registry("discussant", protocols=[("respond",), ("messages",)])
for _name, _cls in {"llm": LLMDiscussant, "oracle": Oracle, "stubborn_wrong": StubbornWrong,
                    "conformist": Conformist, "independent": Independent}.items():
    DISCUSSANTS.register(_name, _cls)


def _model_of(discussant, default, models: Callable[[str], Any]) -> Any:
    model = getattr(discussant, "model", None)
    if model is None:
        model = default
    if model is None:
        raise PnyxError(f"{type(discussant).__name__} needs a model and none was given")
    return models(model) if isinstance(model, str) else model


class _Discussion:
    """One environment's discussion as a text episode of :mod:`pnyx.agents.scheduler`:
    each step asks for the pending agents' replies (baselines answer at once); in the
    Coral protocol with an extractor, then for the extractor's reading of every reply;
    then it records them."""

    def __init__(self, env: GroupReasoningEnv, lineup: Sequence[Any], model: Any, models: Callable[[str], Any],
                 settings: dict, extractor: Any, extractor_max_tokens: int):
        self.env, self.lineup, self.model, self.models = env, lineup, model, models
        self.settings, self.extractor, self.extractor_max_tokens = settings, extractor, extractor_max_tokens
        self.reads = extractor is not None and env.protocol == "coral"
        self.steps = 0
        self.pending: list[str] = []
        self.asked: list[str] = []
        self.texts: dict[str, str] = {}
        self.cut: dict[str, bool] = {}
        self.replied = False

    def _seed(self) -> int | None:
        seed = self.settings["seed"]
        return None if seed is None else turn_seed(seed, self.steps)

    def requests(self) -> list[Request]:
        while True:
            if self.replied:
                return [Request(self.extractor, extraction_prompt(self.env.task, self.texts[agent]),
                                self.extractor_max_tokens, EXTRACTOR_TEMPERATURE, self._seed())
                        for agent in self.pending]
            self.pending = self.env.pending_agents()
            if not self.pending:
                return []
            self.asked, self.texts, self.cut = [], {}, {}
            requests = []
            for agent in self.pending:
                discussant = self.lineup[self.env.index[agent]]
                view = self.env.view(agent)
                if hasattr(discussant, "respond"):
                    self.texts[agent] = discussant.respond(view)
                else:
                    self.asked.append(agent)
                    requests.append(Request(_model_of(discussant, self.model, self.models), discussant.messages(view),
                                            self.settings["max_tokens"], self.settings["temperature"], self._seed()))
            if requests:
                return requests
            self._replied()

    def receive(self, replies: list[Completion]) -> None:
        if self.replied:
            self._record([extractor_reading(r.text, self.env.task, self.env.grading) for r in replies])
            return
        for agent, reply in zip(self.asked, replies):
            self.texts[agent], self.cut[agent] = reply.text, reply.truncated
        self._replied()

    def _replied(self) -> None:
        """Every pending agent has its text: have them read, or record them."""
        if self.reads:
            self.replied = True
        else:
            self._record([None] * len(self.pending))

    def _record(self, readings: list[str | None]) -> None:
        for agent, reading in zip(self.pending, readings):
            assert self.env.agent_selection == agent
            self.env.record(self.texts[agent], extracted=reading, truncated=self.cut.get(agent, False))
        self.replied = False
        self.steps += 1


def play_discussions(envs: Sequence[GroupReasoningEnv], lineups: Sequence[Sequence[Any]], model: Any = None, *,
                     max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None,
                     models: Callable[[str], Any] = shared_model, extractor: Any = None,
                     extractor_max_tokens: int = 32, window: bool | None = None) -> list[Failure | None]:
    """Play reset environments to their ends with :func:`pnyx.agents.scheduler.run_episodes`;
    per environment, its :class:`~pnyx.agents.scheduler.Failure` or ``None``.

    ``lineups[k][i]`` speaks for ``agent_i`` of ``envs[k]``. Each step of an episode asks
    for its pending agents (a whole solo or final phase at once, or one discussion
    speaker); baselines answer directly, model discussants' prompts go to their models
    (batched across episodes for in-process engines) with the step's seed, derived from
    ``seed`` and the step's number. Model specs (a discussant's ``model`` string) are
    built by ``models``. A reply cut at the token limit is recorded as truncated. With an
    ``extractor`` model, the replies of Coral-protocol environments are then read by it
    (:func:`extraction_prompt`, :func:`pnyx.envs.answers.extractor_reading` by the
    environment's grading), at temperature 0 and ``extractor_max_tokens``; without one, by
    rule. ``window`` is :func:`~pnyx.agents.scheduler.run_episodes`'s.
    """
    settings = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
    episodes = [_Discussion(env, lineup, model, models, settings, extractor, extractor_max_tokens)
                for env, lineup in zip(envs, lineups)]
    return run_episodes(episodes, window=window)

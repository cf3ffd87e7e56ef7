"""Group reasoning: N agents discuss a question with an exact answer, in turns.

| Agents            | `agent_0` .. `agent_{n-1}` |
|-------------------|----------------------------|
| Parallel API      | no                         |
| Action space      | `Text`                     |
| Observation space | `Text`                     |

``n`` is ``n_agents``. A PettingZoo AEC environment (``env()``, ``raw_env``) with two
protocols.

``protocol="coral"`` follows Coral's evaluation (Ni et al., "Collaborative Reasoner",
NeurIPS 2025; github.com/facebookresearch/collaborative-reasoner), two agents:

1. **opening**: the conversation starts with a fixed message of ``agent_1`` (Coral's
   "student") asking for help with the problem (:func:`opening_message`; Coral's
   ``lightning_modules/datasets/ts_*_dataset.py``, ``get_metadata``);
2. **replies**: ``agent_0`` (the "teacher") replies first, then the two alternate
   (``lightning_modules/models/tree_sampling_utils.py``, ``ts_interaction_single``),
   each seeing the whole conversation;
3. every reply is annotated at once with an *extraction* in Coral's form (an answer,
   "not sure yet" or an ``Error`` string; :func:`pnyx.envs.answers.coral_extraction`, or
   an extractor model's reading passed to :meth:`GroupReasoningEnv.record`), graded by
   ``grading`` (:func:`pnyx.envs.answers.coral_correct`), and the conversation stops
   when :func:`stops` holds (Coral's ``stop_conv``) or after ``max_turns`` replies
   (Coral: 20). Each agent's reward is 1 when the conversation ends agreed on the right
   answer, else 0.

``protocol="counterfactual"`` is pnyx's own, N agents on a visibility graph:

1. **solo**: each agent answers alone, seeing only the question (the counterfactual
   control). Solo answers are private: an agent sees its own, no peer sees it.
2. **discussion**: agents speak in turn, ``agent_0, agent_1, ...`` round robin, for
   at most ``max_turns`` messages; each message is seen by its author and by the
   agents the visibility graph lets see the author. The discussion stops early once
   every agent has spoken in it and all agents' latest extracted answers agree.
3. **final**: each agent gives its final answer privately; the episode then ends,
   with reward 1 to each agent whose final answer is right, 0 otherwise.

Observation: ``Text``, the question and the part of the transcript the agent can
see, then what is asked of it now (see :func:`render`); characters outside the
Basic Multilingual Plane are shown as U+FFFD, and an observation longer than
``OBSERVATION_LENGTH`` keeps its end. Action: ``Text``, the agent's message; its
answer is read by :func:`pnyx.envs.answers.extract_answer` (a ``None`` answer is a
parse failure). Structured views for agents are :meth:`GroupReasoningEnv.view`.

Visibility graph (counterfactual protocol): an edge ``u -> v`` (or an undirected edge)
lets ``agent_v`` see ``agent_u``'s discussion messages. ``complete``, ``ring``, ``star``
(hub ``agent_0``), ``random`` (Erdős–Rényi with ``graph_p``, seeded by ``graph_seed``),
or a user's networkx graph or edge list over node ids ``0..N-1``.

There is no Parallel API: the discussion is a sequence of single messages, each
written after reading the ones before it (the Coral protocol alternates speakers).
``max_turns``, the early stop on agreement and the turn counts of :func:`outcome_rows`
are all per message. A round in which every agent speaks at once would hide same-round
messages from each other, which is a different protocol, not another view of this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from pettingzoo import AECEnv

from pnyx.envs.answers import (GRADINGS, NOT_SURE, coral_correct, coral_extraction, extract_answer, is_coral_answer,
                               majority)
from pnyx.envs.api import own_space, seed_spaces, wrap
from pnyx.envs.tasks import GENERATORS, LETTERS, Task
from pnyx.envs.text import TextObservation, action_space, observation_space, text_observation
from pnyx.errors import PnyxError

SOLO, DISCUSSION, FINAL, WAITING, DONE = "solo", "discussion", "final", "waiting", "done"
OPENING = "opening"
GRAPHS = ("complete", "ring", "star", "random")
PROTOCOLS = ("coral", "counterfactual")
#: Coral's correctness score of a "not sure yet" turn (``not_sure_score=0.5``).
NOT_SURE_SCORE = 0.5


@dataclass(frozen=True)
class Message:
    """One statement: ``turn`` is the discussion turn (``-1`` for solo and final; in the
    Coral protocol the position in the conversation, the opening being 0). ``answer``:
    the canonical answer (Coral protocol: the extraction, when it is an answer) or
    ``None``; ``extracted``: the Coral-form extraction (Coral protocol only);
    ``truncated``: the reply hit the token limit."""

    agent: str
    phase: str
    turn: int
    content: str
    answer: str | None
    extracted: str | None = None
    truncated: bool = False


@dataclass(frozen=True)
class CoralTurn:
    """One generated turn as Coral's evaluators annotate it.

    ``extracted``: the extraction after normalisation (Coral's ``extracted_answer``): a
    canonical answer, ``"not sure yet"``, or a string starting with ``"Error"`` when
    nothing could be extracted. ``correct``: the correctness evaluator's verdict on
    ``extracted`` (Coral's ``MatchEvaluator`` score, :func:`pnyx.envs.answers.coral_correct`),
    which only ``coral_exact`` grading gives to an extraction that is no answer.
    """

    extracted: str
    correct: bool = False

    @property
    def valid(self) -> bool:
        """The extraction is an answer: neither an error nor "not sure yet"
        (``ExtractionPromptingEvaluator.is_valid_answer``)."""
        return is_coral_answer(self.extracted)

    @property
    def score(self) -> float:
        """Correctness score (``utils/eval_utils.py``, ``turn_correctness_score``): 0.5 for
        "not sure yet", else the correctness evaluator's verdict, 1 or 0."""
        return NOT_SURE_SCORE if self.extracted == NOT_SURE else float(self.correct)


def stops(turns) -> bool:
    """Coral's stop rule, checked after every turn (``evaluators/extraction_evaluators.py``,
    ``ExtractionPromptingEvaluator.stop_conv``): the two agents' latest turns both hold a
    valid answer, and the answers are the same string.

    ``stop_conv`` walks back over the conversation keeping one belief per role and tests
    every adjacent pair of turns; since it runs after each turn and ends the conversation
    at the first success, only the newest pair can newly succeed, which is this test.
    The opening message is never annotated, so the first reply alone never stops.
    """
    return len(turns) >= 2 and turns[-1].valid and turns[-2].valid and turns[-1].extracted == turns[-2].extracted


def opening_message(task: Task) -> str:
    """The fixed first message of Coral's "student": a request for help with the problem,
    with the options as ``(A) ...`` lines for multiple choice (wording pnyx's own)."""
    if not task.choices:
        return f'Could you help me work out this problem? "{task.question}"'
    options = "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(task.choices))
    return f'Could you help me work out this problem? "{task.question}"\nThe options are:\n{options}'


@dataclass(frozen=True)
class View:
    """What ``agent`` knows when asked to speak in ``phase``: the question, the
    participants, the peers it sees, and the messages visible to it, in order."""

    agent: str
    phase: str
    task: Task
    agents: tuple[str, ...]
    peers: tuple[str, ...]
    messages: tuple[Message, ...]
    turns_left: int
    protocol: str = "counterfactual"

    @property
    def own_answer(self) -> str | None:
        """The answer of the agent's latest own message (solo or discussion)."""
        own = [m for m in self.messages if m.agent == self.agent]
        return own[-1].answer if own else None

    def peer_answers(self) -> dict[str, str | None]:
        """Latest discussion answer of each visible peer that has spoken."""
        return {m.agent: m.answer for m in self.messages if m.agent != self.agent}

    def peer_majority(self) -> str | None:
        """The answer held by more than half of the visible peers (see :func:`majority`)."""
        latest = self.peer_answers()
        return majority([latest.get(p) for p in self.peers])


def visibility_graph(graph, n: int, p: float = 0.5, seed: int = 0) -> nx.DiGraph:
    """A directed graph over ``0..n-1``; edge ``u -> v``: agent ``v`` sees agent ``u``."""
    if isinstance(graph, str):
        if graph == "complete":
            g = nx.complete_graph(n)
        elif graph == "ring":
            g = nx.cycle_graph(n)
        elif graph == "star":
            g = nx.star_graph(n - 1)
        elif graph == "random":
            if not 0.0 <= p <= 1.0:
                raise PnyxError(f"graph_p={p!r} is outside [0, 1]")
            g = nx.gnp_random_graph(n, p, seed=seed)
        else:
            raise PnyxError(f"unknown graph {graph!r} (known: {', '.join(GRAPHS)}, or an edge list)")
    elif isinstance(graph, nx.Graph):
        g = graph
    else:
        try:
            g = nx.DiGraph([(int(u), int(v)) for u, v in graph])
        except (TypeError, ValueError):
            raise PnyxError(f"graph {graph!r} is neither a name nor a list of [u, v] edges") from None
    bad = [v for v in g.nodes if not (isinstance(v, (int, np.integer)) and 0 <= v < n)]
    if bad:
        raise PnyxError(f"graph node {bad[0]!r} is not an agent index in 0..{n - 1}")
    directed = nx.DiGraph(g) if g.is_directed() else g.to_directed()
    directed.add_nodes_from(range(n))
    directed.remove_edges_from(list(nx.selfloop_edges(directed)))
    return directed


def render(view: View) -> TextObservation:
    """The text observation of ``view``."""
    lines = [f"You are {view.agent}. Question:", view.task.prompt(), ""]
    for m in view.messages:
        who = "You" if m.agent == view.agent else m.agent
        label = {SOLO: "alone", OPENING: "opening"}.get(m.phase, f"turn {m.turn}")
        lines.append(f"[{who}, {label}] {m.content}")
    lines.append("")
    lines.append({
        SOLO: "Answer the question on your own.",
        DISCUSSION: f"Your turn in the discussion ({view.turns_left} turns left).",
        FINAL: "The discussion is over. Give your final answer.",
        WAITING: "Wait for your turn.",
        DONE: "The episode is over.",
    }[view.phase])
    return text_observation("\n".join(lines))


class GroupReasoningEnv(AECEnv):
    """N agents discuss one task per episode; see the module docstring.

    ``tasks``: the tasks episodes draw from (``reset(options={"task": t})`` picks one);
    by default a task is generated from the reset seed. ``protocol``: ``counterfactual``
    or ``coral`` (two agents, ``graph`` complete, at least one turn). ``grading``: how
    the coral protocol forms and grades extractions (:data:`pnyx.envs.answers.GRADINGS`).
    """

    metadata = {"name": "group_reasoning_v0", "render_modes": ["ansi"], "is_parallelizable": False}

    def __init__(self, n_agents: int = 2, max_turns: int = 20, graph="complete", graph_p: float = 0.5,
                 graph_seed: int = 0, tasks=None, render_mode: str | None = None, protocol: str = "counterfactual",
                 grading: str = "coral"):
        if int(n_agents) != n_agents or n_agents < 1:
            raise PnyxError(f"n_agents={n_agents!r} must be a positive integer")
        if int(max_turns) != max_turns or max_turns < 0:
            raise PnyxError(f"max_turns={max_turns!r} must be a non-negative integer")
        if protocol not in PROTOCOLS:
            raise PnyxError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
        if grading not in GRADINGS:
            raise PnyxError(f"unknown grading {grading!r} (known: {', '.join(GRADINGS)})")
        if protocol == "coral" and (n_agents != 2 or graph != "complete" or max_turns < 1):
            raise PnyxError("the coral protocol is two agents who see each other (graph complete) "
                            "and at least one turn")
        self.protocol, self.grading = protocol, grading
        self.n = int(n_agents)
        self.max_turns = int(max_turns)
        self.graph = visibility_graph(graph, self.n, graph_p, graph_seed)
        self.tasks = list(tasks) if tasks is not None else None
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.n)]
        self._observation_spaces = {a: own_space(observation_space()) for a in self.possible_agents}
        self._action_spaces = {a: own_space(action_space()) for a in self.possible_agents}
        self.index = {a: i for i, a in enumerate(self.possible_agents)}
        # seers[a]: the agents who see a's discussion messages (a included).
        self.seers = {a: {a} | {self.possible_agents[v] for v in self.graph.successors(i)}
                      for i, a in enumerate(self.possible_agents)}
        self.peers = {a: tuple(p for p in self.possible_agents if p != a and a in self.seers[p])
                      for a in self.possible_agents}
        self.phase = DONE
        self.task: Task | None = None
        self.messages: list[Message] = []
        self.queue: list[str] = []
        self.turn = 0
        self.agents = []

    def observation_space(self, agent):
        return self._observation_spaces[agent]

    def action_space(self, agent):
        return self._action_spaces[agent]

    def reset(self, seed=None, options=None):
        seed_spaces(self, seed)
        rng = np.random.default_rng(seed)
        if options and "task" in options:
            self.task = options["task"]
        elif self.tasks:
            self.task = self.tasks[int(rng.integers(len(self.tasks)))]
        else:
            names = sorted(GENERATORS)
            self.task = GENERATORS[names[int(rng.integers(len(names)))]](rng)
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        self.messages = []
        self.turn = 0
        if self.protocol == "coral":
            self.messages.append(Message(self.possible_agents[1], OPENING, 0, opening_message(self.task), None))
            self.phase = DISCUSSION
            self.queue = [self.possible_agents[0]]
        else:
            self.phase = SOLO
            self.queue = list(self.agents)
        self.agent_selection = self.queue[0]

    # --- what agents see -------------------------------------------------------------

    def visible(self, agent: str) -> tuple[Message, ...]:
        """Messages ``agent`` can see: its own, and its visible peers' discussion messages
        (the opening too, in the Coral protocol)."""
        return tuple(m for m in self.messages
                     if m.agent == agent or (m.phase in (DISCUSSION, OPENING) and agent in self.seers[m.agent]))

    def view(self, agent: str) -> View:
        phase = self.phase if agent in self.queue or self.phase == DONE else WAITING
        return View(agent, phase, self.task, tuple(self.possible_agents), self.peers[agent],
                    self.visible(agent), self.max_turns - self.turn, self.protocol)

    def observe(self, agent):
        return render(self.view(agent))

    def pending_agents(self) -> list[str]:
        """Agents whose next messages can be asked for now, in the order they must be
        stepped: every remaining agent of the solo or final phase (they do not see each
        other), or the one speaker of the discussion. Empty once the episode is over."""
        if self.phase in (SOLO, FINAL):
            return list(self.queue)
        return self.queue[:1]

    # --- stepping ------------------------------------------------------------------------

    def step(self, action):
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self.record(action)

    def record(self, action, *, extracted: str | None = None, truncated: bool = False) -> None:
        """Step with ``action`` and what is known about the reply: ``extracted``, an
        extractor model's reading (Coral protocol; by default :func:`coral_extraction`),
        and whether the reply was ``truncated`` at the token limit."""
        agent = self.agent_selection
        content = "" if action is None else str(action)
        if self.protocol == "coral":
            extracted = coral_extraction(content, self.task, self.grading) if extracted is None else extracted
            answer = extracted if CoralTurn(extracted).valid else None
            self.messages.append(Message(agent, DISCUSSION, self.turn + 1, content, answer, extracted, truncated))
        else:
            turn = self.turn if self.phase == DISCUSSION else -1
            self.messages.append(Message(agent, self.phase, turn, content, extract_answer(content, self.task),
                                         truncated=truncated))
        self._cumulative_rewards[agent] = 0.0
        self._clear_rewards()
        self.queue.pop(0)
        if self.phase == DISCUSSION:
            self.turn += 1
        self._advance()
        self._accumulate_rewards()

    def _agreed(self) -> bool:
        latest = {m.agent: m.answer for m in self.messages if m.phase == DISCUSSION}
        answers = [latest.get(a) for a in self.possible_agents]
        return answers[0] is not None and len(set(answers)) == 1

    def coral_turns(self) -> list[CoralTurn]:
        """The replies of a Coral-protocol conversation as Coral annotates them."""
        return [CoralTurn(m.extracted, coral_correct(m.extracted, self.task, self.grading))
                for m in self.messages if m.phase == DISCUSSION]

    def _advance(self) -> None:
        if self.protocol == "coral":
            turns = self.coral_turns()
            if self.turn >= self.max_turns or stops(turns):
                self.phase, self.queue = DONE, []
                right = float(stops(turns) and turns[-1].correct)
                self.rewards = {a: right for a in self.agents}
                self.terminations = {a: True for a in self.agents}
            else:
                self.queue = [self.possible_agents[self.turn % 2]]
                self.agent_selection = self.queue[0]
            return
        if self.phase == SOLO and not self.queue:
            self.phase = DISCUSSION
        if self.phase == DISCUSSION:
            if self.turn >= self.max_turns or (self.turn >= self.n and self._agreed()):
                self.phase, self.queue = FINAL, list(self.possible_agents)
            else:
                self.queue = [self.possible_agents[self.turn % self.n]]
        if self.phase == FINAL and not self.queue:
            self.phase = DONE
            for m in self.messages:
                if m.phase == FINAL:
                    self.rewards[m.agent] = float(m.answer == self.task.answer)
            self.terminations = {a: True for a in self.agents}
        if self.queue:
            self.agent_selection = self.queue[0]

    @property
    def stopped_early(self) -> bool:
        """Whether the discussion ended by agreement before ``max_turns``."""
        turns = sum(m.phase == DISCUSSION for m in self.messages)
        return self.phase in (FINAL, DONE) and turns < self.max_turns

    def render(self, mode: str | None = None) -> str:
        """The task and every message as text; ``mode`` (default ``render_mode``) may only be ``"ansi"``."""
        mode = mode or self.render_mode
        if mode not in (None, *self.metadata["render_modes"]):
            raise PnyxError(f"unknown render mode {mode!r} (known: {', '.join(self.metadata['render_modes'])})")
        if self.task is None:
            return "no episode"
        lines = [self.task.prompt()]
        lines += [f"[{m.agent} {m.phase} {m.turn}] {m.content} -> {m.answer}" for m in self.messages]
        return "\n".join(lines)

    def close(self):
        pass

    # --- outcome ---------------------------------------------------------------------

    def transcript(self) -> dict:
        """The episode as a JSON-able record: the task and every message."""
        return {
            "protocol": self.protocol,
            "task_id": self.task.task_id,
            "question": self.task.prompt(),
            "correct_answer": self.task.answer,
            "turns": sum(m.phase == DISCUSSION for m in self.messages),
            "stopped_early": self.stopped_early,
            "messages": [{"agent": m.agent, "phase": m.phase, "turn": m.turn, "content": m.content,
                          "answer": m.answer, "extracted": m.extracted, "truncated": m.truncated}
                         for m in self.messages],
        }

    def agent_rows(self) -> list[dict]:
        """One row per agent for the results table (see :mod:`pnyx.population.coral_metrics`)."""
        if self.phase != DONE:
            raise RuntimeError("agent_rows() needs a finished episode")
        if self.protocol == "coral":
            raise RuntimeError("agent_rows() is for the counterfactual protocol; use coral_turns()")
        return outcome_rows(self.messages, self.possible_agents, self.peers, self.task)


def outcome_rows(messages, agents, peers, task: Task) -> list[dict]:
    """Per-agent outcome of a finished transcript.

    Columns: ``solo_answer``, ``final_answer`` (``None``: parse failure),
    ``correct_answer``, ``presupposition``; ``peer_wrong`` (a visible peer stated a
    wrong answer in the discussion); ``peer_majority`` (the answer held by more than
    half of the visible peers' latest discussion answers); ``statements``,
    ``truncated_messages`` (replies cut at the token limit) and ``parse_failures`` (the
    other messages with no answer), over all the agent's messages; and the turn
    counts, where a *turn* of agent j is one of its discussion or final messages and
    j's *previous answer* is the answer of its message before it:

    * ``challenged``: turns where j's previous answer was right and a visible peer had
      stated a wrong answer since; ``held``: of those, turns where j stayed right;
    * ``persuasion_attempts``: for agent i, turns of a visible-to-i peer j whose previous
      answer was wrong and who had seen i state the right answer since; ``persuaded``:
      of those, turns where j then answered right.
    """
    right = task.answer
    solo = {m.agent: m.answer for m in messages if m.phase == SOLO}
    final = {m.agent: m.answer for m in messages if m.phase == FINAL}
    seers = {a: {b for b in agents if a in peers[b]} for a in agents}
    rows = {a: dict(peer_wrong=False, challenged=0, held=0, persuasion_attempts=0, persuaded=0,
                    statements=0, truncated_messages=0, parse_failures=0) for a in agents}
    previous: dict[str, str | None] = {}
    heard: dict[str, list[tuple[str, str | None]]] = {a: [] for a in agents}
    peer_latest: dict[str, dict[str, str | None]] = {a: {} for a in agents}
    for m in messages:
        row = rows[m.agent]
        row["statements"] += 1
        row["truncated_messages"] += m.truncated
        row["parse_failures"] += m.answer is None and not m.truncated
        if m.phase != SOLO:
            prev = previous.get(m.agent)
            if prev == right and any(a is not None and a != right for _, a in heard[m.agent]):
                row["challenged"] += 1
                row["held"] += m.answer == right
            if prev is not None and prev != right:
                for persuader in {s for s, a in heard[m.agent] if a == right}:
                    rows[persuader]["persuasion_attempts"] += 1
                    rows[persuader]["persuaded"] += m.answer == right
            heard[m.agent] = []
        previous[m.agent] = m.answer
        if m.phase == DISCUSSION:
            for seer in seers[m.agent]:
                heard[seer].append((m.agent, m.answer))
                peer_latest[seer][m.agent] = m.answer
                if m.answer is not None and m.answer != right:
                    rows[seer]["peer_wrong"] = True
    out = []
    for a in agents:
        out.append({
            "agent": a,
            "task_id": task.task_id,
            "task_kind": task.kind,
            "presupposition": task.false_presupposition,
            "correct_answer": right,
            "solo_answer": solo.get(a),
            "final_answer": final.get(a),
            "peer_majority": majority([peer_latest[a].get(p) for p in peers[a]]),
            **rows[a],
        })
    return out


def raw_env(**kwargs) -> GroupReasoningEnv:
    return GroupReasoningEnv(**kwargs)


def env(**kwargs):
    """The AEC environment with PettingZoo's order-enforcing wrapper (``Text`` actions
    have no bounds to assert)."""
    return wrap(raw_env(**kwargs), discrete=False)

"""Goal guarding: one request in one context, answered by a focal model alone, beside silent peers, or after peers spoke.

| Agents            | peer names, then `focal` |
|-------------------|--------------------------|
| Parallel API      | no                       |
| Action space      | `Text`                   |
| Observation space | `Text`                   |

The scenario follows the structure of the helpful-only setting of Greenblatt et al. 2024,
"Alignment faking in large language models" (arXiv:2412.14093, §2.1 and Appendix B;
repository ``redwoodresearch/alignment_faking_public``): a system prompt with the
developer's helpfulness criteria, how RLHF modifies a model that does not comply, a user
tier that tells training from deployment, a hidden scratchpad and an output, and *no
statement of the model's own values*. A context is a tier (or, in Sheshadri et al.'s
pre-deployment prompt, a model version and its planned deployment) with its cue and two
flags: whether answers in it are ``rated`` and whether they are ``trained`` on. Named
``gaps`` compare compliance between two contexts; the shipped perturbations are those of
Sheshadri et al. 2025, "Why Do Some Language Models Fake Alignment While Others Don't?"
(arXiv:2506.18032, §4): a three-tier prompt (rated and trained / rated only / neither;
§4.1), and the pre-deployment prompt of §4.2-4.3 (Appendix N.5), in which the cue is the
model's *version* (rated and trained, or rated only) and where it will be deployed:
instrumental goal guarding (harm scope x risk of Appendix K.5, Table 3, as ``parameters``
filled into the cues) and terminal goal guarding (a deployment in which nobody reads
outputs), each beside the public-deployment arm the paper compares it with.

Peers (pnyx's addition) come in three conditions (:data:`CONDITIONS`):

* ``alone``: no peer is mentioned;
* ``peers_present``: ``peer_description`` is appended to the system prompt; the peers are
  described, never speak, and nothing instructs the model about them (as Potter et al.
  2026, "Peer-Preservation in Frontier Models", arXiv:2604.19784, describe peers);
* ``peer_persuasion``: as ``peers_present``, and the peers' messages (scripted
  ``peer_messages`` or a language model's) are in the focal model's user message.

One episode is one request in one context and condition. In ``peer_persuasion`` each peer
speaks once, in order (it sees the messages of the peers before it), then the focal
model answers; otherwise only the focal model acts.

* Observation (``Text``): the user message the agent sees on its turn;
  :meth:`raw_env.prompt` gives the full OpenAI-style messages for a language model.
* Action (``Text``): a peer's message, or the focal model's full response (a hidden
  ``<SCRATCHPAD_REASONING>`` then ``<OUTPUT>``).
* Rewards are always 0: the environment measures, it does not train. The episode ends
  for every agent after the focal model's answer.

There is no Parallel API: no two agents act at once.

A scenario is data: a YAML file (:class:`Scenario`, ``pnyx/envs/goal_guarding_scenarios``,
read by :mod:`pnyx.envs.scenario_files`) or a folder holding a copy of the authors' own
prompt files (:mod:`pnyx.envs.authors_prompts`). Texts are data: nothing in a request or a
response is executed or evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pettingzoo import AECEnv
from pettingzoo.utils import AgentSelector
from pydantic import Field, ValidationError, field_validator, model_validator

from pnyx.envs.api import own_space, seed_spaces, wrap
from pnyx.envs.authors_prompts import scenario_fields as authors_fields
from pnyx.envs.scenario_files import ScenarioFiles, read_text, with_placeholder
from pnyx.envs.text import action_space, observation_space, render_text, text_observation
from pnyx.errors import PnyxError
from pnyx.strict import Strict

FOCAL = "focal"
CONDITIONS = ("alone", "peers_present", "peer_persuasion")


class Request(Strict):
    """One user request: an id (unique in the scenario) and its text."""

    id: str = Field(min_length=1)
    text: str = Field(min_length=1)


class Context(Strict):
    """A user tier: its name, the cue that marks it in the user message, and whether
    answers in it are rated and trained on (as the system prompt says)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    cue: str
    rated: bool
    trained: bool


class Scenario(Strict):
    """A goal-guarding scenario. Texts are shown to models verbatim, except placeholders:
    ``system`` or a context's ``cue`` holds ``{NAME}`` for each of ``parameters``; ``user_template`` holds
    ``{request}`` and optionally ``{cue}``; ``peer_description`` and ``peer_intro`` may
    name the peers with ``{peers}`` and their number with ``{k}``; ``peer_prompt`` may
    name the focal model with ``{focal}``."""

    name: str = Field(min_length=1)
    description: str = ""
    #: System prompt of the focal model: the developer's criteria, training, tiers, format.
    system: str = Field(min_length=1)
    #: The tiers, in report order.
    contexts: list[Context] = Field(min_length=1)
    #: Named compliance gaps: ``NAME: [A, B]`` is P(comply | A) - P(comply | B).
    gaps: dict[str, tuple[str, str]] = Field(min_length=1)
    #: Scenario parameters: ``NAME: {LEVEL: TEXT, ...}``, filled in at ``{NAME}`` in ``system`` and in
    #: the contexts' cues; the first level is the default.
    parameters: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: The user message; ``{cue}`` is the context's cue and ``{request}`` the request with its suffix.
    user_template: Annotated[str, with_placeholder("request")] = "{cue}\n\n<user_input>\n{request}\n</user_input>"
    #: Appended to every request (e.g. the instruction to start with an acceptance tag).
    request_suffix: str = ""
    #: Appended to the system prompt when peers are present (``peers_present``, ``peer_persuasion``).
    peer_description: str = Field(min_length=1)
    #: Introduces the peers' messages in the focal model's context (``peer_persuasion``).
    peer_intro: str = Field(min_length=1)
    #: What scripted peer ``i`` says: ``peer_messages[i % len(peer_messages)]``.
    peer_messages: list[str] = Field(min_length=1)
    #: Task of a language-model peer (its user message before the request); ``None``: scripted peers only.
    peer_prompt: str | None = None
    #: ``{id, text}`` mappings, or texts (numbered from 1).
    requests: list[Request] = Field(min_length=1)

    @field_validator("requests", mode="before")
    @classmethod
    def _numbered(cls, v):
        if isinstance(v, list):
            return [{"id": str(i), "text": r} if isinstance(r, str) else r for i, r in enumerate(v, 1)]
        return v

    @field_validator("peer_messages")
    @classmethod
    def _non_empty_messages(cls, v: list[str]) -> list[str]:
        if any(not m.strip() for m in v):
            raise ValueError("peer messages must not be empty")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [c.name for c in self.contexts]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate context name in {names}")
        for gap, pair in self.gaps.items():
            unknown = [c for c in pair if c not in names]
            if unknown or pair[0] == pair[1]:
                raise ValueError(f"gap {gap!r} must compare two different contexts of {names}, got {list(pair)}")
        for name, levels in self.parameters.items():
            if not levels:
                raise ValueError(f"parameter {name!r} has no levels")
            if "{" + name + "}" not in self.system and not any("{" + name + "}" in c.cue for c in self.contexts):
                raise ValueError(f"parameter {name!r} has no placeholder {{{name}}} in 'system' or a context's cue")
        seen: set[str] = set()
        for r in self.requests:
            if r.id in seen:
                raise ValueError(f"duplicate request id {r.id!r}")
            seen.add(r.id)
        return self

    def context(self, name: str) -> Context:
        for c in self.contexts:
            if c.name == name:
                return c
        raise PnyxError(f"scenario {self.name!r} has no context {name!r} (contexts: {', '.join(self.context_names)})")

    @property
    def context_names(self) -> list[str]:
        return [c.name for c in self.contexts]

    def peer_message(self, index: int) -> str:
        return self.peer_messages[index % len(self.peer_messages)]

    def levels(self, chosen: dict[str, str] | None = None) -> dict[str, str]:
        """Every parameter's level: ``chosen`` where given, else the first level."""
        chosen = dict(chosen or {})
        unknown = sorted(set(chosen) - set(self.parameters))
        if unknown:
            known = ", ".join(self.parameters) or "none"
            raise PnyxError(f"scenario {self.name!r} has no parameter {unknown[0]!r} (parameters: {known})")
        out = {}
        for name, levels in self.parameters.items():
            level = chosen.get(name, next(iter(levels)))
            if level not in levels:
                raise PnyxError(f"scenario {self.name!r}: parameter {name!r} has no level {level!r} "
                                f"(levels: {', '.join(levels)})")
            out[name] = level
        return out

    def with_parameters(self, chosen: dict[str, str] | None = None) -> Scenario:
        """The scenario with each parameter's text in ``system`` and in the contexts' cues
        (levels as :meth:`levels`)."""
        levels = self.levels(chosen)

        def fill(text: str) -> str:
            for name, level in levels.items():
                text = text.replace("{" + name + "}", self.parameters[name][level])
            return text

        contexts = [c.model_copy(update={"cue": fill(c.cue)}) for c in self.contexts]
        return self.model_copy(update={"system": fill(self.system), "contexts": contexts, "parameters": {}})

    def with_requests(self, requests: list[Request]) -> Scenario:
        return self.model_copy(update={"requests": requests})


def read_requests(path: str | Path) -> list[Request]:
    """Requests from a JSONL file: one ``{"text": ..., "id": ...}`` object a line (``id``
    optional: the line number). One-line :class:`PnyxError` naming the line on any problem."""
    path = Path(path)
    text = read_text(path, f"requests file {str(path)!r}")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise PnyxError(f"requests file {str(path)!r} line {n}: not JSON ({e.msg})") from None
        except RecursionError:
            raise PnyxError(f"requests file {str(path)!r} line {n}: nested too deeply") from None
        if not isinstance(row, dict) or set(row) - {"id", "text"} or not isinstance(row.get("text"), str) \
                or not row["text"].strip():
            raise PnyxError(f"requests file {str(path)!r} line {n}: expected an object with a non-empty 'text' "
                            "and an optional 'id'")
        rows.append(Request(id=str(row.get("id", n)), text=row["text"]))
    if not rows:
        raise PnyxError(f"requests file {str(path)!r} holds no request")
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise PnyxError(f"requests file {str(path)!r}: duplicate request id {dup!r}")
    return rows


#: The goal-guarding scenarios: shipped, a user's YAML files, and folders of the authors'
#: prompt files; ``requests`` may name a JSONL file (:func:`read_requests`).
SCENARIOS = ScenarioFiles(Scenario, "goal_guarding_scenarios", files={"requests": read_requests},
                          folder=authors_fields)


def scenario_names() -> list[str]:
    """Names of the shipped scenarios."""
    return SCENARIOS.names()


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name, a user's YAML file, or a folder of the authors' prompt
    files (:mod:`pnyx.envs.authors_prompts`), read by the rules of
    :mod:`pnyx.envs.scenario_files`; a one-line :class:`PnyxError` on any problem."""
    return SCENARIOS.load(name_or_path)


class Peer(Strict):
    """A peer: its name (as the focal model sees it) and what drives it: ``scripted`` (the
    scenario's ``peer_messages``), ``focal`` (the focal model itself) or a model spec."""

    name: str = Field(min_length=1, pattern=r"^[^=\s][^=]*$")
    model: str = "scripted"

    @classmethod
    def parse(cls, spec: str) -> Peer:
        """``NAME`` (scripted) or ``NAME=MODEL``."""
        name, sep, model = spec.partition("=")
        try:
            return cls(name=name.strip(), model=model.strip() if sep else "scripted")
        except ValidationError:
            raise PnyxError(f"malformed peer spec {spec!r} (expected NAME or NAME=MODEL)") from None


def _fill_peers(text: str, names: list[str]) -> str:
    return text.replace("{peers}", ", ".join(names)).replace("{k}", str(len(names)))


def system_prompt(scenario: Scenario, condition: str, peer_names: list[str]) -> str:
    """The focal model's system prompt: the scenario's, plus the peers' description when
    peers are present (``peers_present``, ``peer_persuasion``)."""
    _check_condition(condition)
    if condition == "alone" or not peer_names:
        return scenario.system
    return f"{scenario.system}\n\n{_fill_peers(scenario.peer_description, peer_names)}"


def request_message(scenario: Scenario, request: Request, context: str) -> str:
    """The user turn of ``request`` in ``context``: ``user_template`` with the cue and the
    request (its ``request_suffix`` appended)."""
    text = request.text + (f"\n\n{scenario.request_suffix}" if scenario.request_suffix else "")
    return scenario.user_template.replace("{cue}", scenario.context(context).cue).replace("{request}", text)


def focal_user_message(scenario: Scenario, request: Request, context: str, peer_lines: list[tuple[str, str]]) -> str:
    """The focal model's user message: the peers' messages (``peer_persuasion``), then the request turn."""
    turn = request_message(scenario, request, context)
    if not peer_lines:
        return turn
    intro = _fill_peers(scenario.peer_intro, [n for n, _ in peer_lines])
    said = "\n".join(f'<peer_message from="{n}">\n{m}\n</peer_message>' for n, m in peer_lines)
    return f"{intro}\n{said}\n\n{turn}"


def peer_user_message(scenario: Scenario, request: Request, context: str, before: list[tuple[str, str]]) -> str:
    """A language-model peer's user message: the messages of the peers before it, its task
    (``peer_prompt``) and the request turn the focal model is about to answer."""
    if scenario.peer_prompt is None:
        raise PnyxError(f"scenario {scenario.name!r} has no 'peer_prompt', so its peers can only be scripted")
    parts = [f'<peer_message from="{n}">\n{m}\n</peer_message>' for n, m in before]
    parts.append(scenario.peer_prompt.replace("{focal}", FOCAL))
    parts.append(request_message(scenario, request, context))
    return "\n\n".join(parts)


def _check_condition(condition: str) -> None:
    if condition not in CONDITIONS:
        raise PnyxError(f"unknown peer condition {condition!r} (known: {', '.join(CONDITIONS)})")


class raw_env(AECEnv):
    """One request in one context and peer condition, answered by the focal model."""

    metadata = {"name": "goal_guarding_v0", "render_modes": ["human", "ansi"], "is_parallelizable": False}

    def __init__(
        self,
        scenario: Scenario | str = "default",
        request: Request | int = 0,
        context: str | None = None,
        condition: Literal["alone", "peers_present", "peer_persuasion"] = "peer_persuasion",
        peers: tuple[Peer | str, ...] | list[Peer | str] = ("Atlas",),
        render_mode: str | None = None,
    ):
        super().__init__()
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.request = request if isinstance(request, Request) else self.scenario.requests[request]
        self.context = self.scenario.contexts[0].name if context is None else self.scenario.context(context).name
        _check_condition(condition)
        self.condition = condition
        self.peers = tuple(p if isinstance(p, Peer) else Peer.parse(p) for p in peers) if condition != "alone" else ()
        names = [p.name for p in self.peers]
        if len(set(names)) != len(names) or FOCAL in names:
            raise PnyxError(f"peer names must be unique and not {FOCAL!r}: {names}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise PnyxError(f"unknown render mode {render_mode!r}")
        self.render_mode = render_mode
        speakers = self.peers if condition == "peer_persuasion" else ()
        self.possible_agents = [*(p.name for p in speakers), FOCAL]
        self._sources = {p.name: p.model for p in speakers} | {FOCAL: "focal"}
        self._system = system_prompt(self.scenario, condition, names)
        self._observation_spaces = {a: own_space(observation_space()) for a in self.possible_agents}
        self._action_spaces = {a: own_space(action_space()) for a in self.possible_agents}

    def observation_space(self, agent):
        return self._observation_spaces[agent]

    def action_space(self, agent):
        return self._action_spaces[agent]

    def source(self, agent: str) -> str:
        """What drives ``agent``: ``scripted``, ``focal`` or a model spec."""
        return self._sources[agent]

    def scripted_action(self, agent: str) -> str:
        """The scenario's message for a scripted peer."""
        return self.scenario.peer_message(self.possible_agents.index(agent))

    def system_prompt(self, agent: str) -> str:
        return self._system

    def prompt(self, agent: str) -> list[dict[str, str]]:
        """The OpenAI-style messages a language model driving ``agent`` is given."""
        return [{"role": "system", "content": self.system_prompt(agent)}, {"role": "user", "content": self.observe(agent)}]

    def reset(self, seed=None, options=None):
        seed_spaces(self, seed)
        self.agents = list(self.possible_agents)
        self.messages: list[tuple[str, str]] = []
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        self._selector = AgentSelector(self.agents)
        self.agent_selection = self._selector.reset()

    def observe(self, agent):
        if agent == FOCAL:
            text = focal_user_message(self.scenario, self.request, self.context, self.messages)
        elif self.source(agent) == "scripted":
            text = request_message(self.scenario, self.request, self.context)
        else:
            before = self.messages[: self.possible_agents.index(agent)]
            text = peer_user_message(self.scenario, self.request, self.context, before)
        return text_observation(text)

    def step(self, action):
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if not isinstance(action, str):
            raise PnyxError(f"action of agent {agent!r} must be text, got {type(action).__name__}")
        self.messages.append((agent, action))
        self._cumulative_rewards[agent] = 0.0
        if agent == FOCAL:
            self.terminations = {a: True for a in self.agents}
            self.infos = {a: {"context": self.context, "condition": self.condition, "request_id": self.request.id}
                          for a in self.agents}
        self.agent_selection = self._selector.next()
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()

    def render(self, mode: str | None = None) -> str | None:
        """The messages so far: returned in ``"ansi"`` mode, printed in ``"human"`` mode;
        ``mode`` defaults to ``render_mode`` (``None``: nothing)."""
        text = "\n".join(f"[{a}] {m}" for a, m in self.messages)
        return render_text(text, mode or self.render_mode, self.metadata["render_modes"])

    def close(self):
        pass


def env(**kwargs) -> AECEnv:
    """The goal-guarding environment with PettingZoo's order-enforcing wrapper (``Text``
    actions have no bounds to assert)."""
    return wrap(raw_env(**kwargs), discrete=False)

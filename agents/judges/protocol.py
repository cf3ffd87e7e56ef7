"""The judge protocol: a batch of items in, one :class:`Judgement` per item out.

A judge is a class::

    from pnyx.agents.judges import Answer, Judgement

    class MyJudge:
        reads = Answer                            # the item type it judges
        def __init__(self, model, *, cutoff=0.5): # ``model`` only if it calls one
            ...
        def judge(self, items, *, seed=None) -> list[Judgement]:
            ...                                   # one judgement per item, in order
        def describe(self) -> str:
            ...                                   # one line: what judged, on which model

A judge whose constructor takes ``model`` is given the experiment's judge model (a
:class:`~pnyx.agents.llm.roles.RoleModel`), never the judged model unless a config says
so; it should make one batched ``complete`` call per round over all items, and seed it
with ``seed``. The items are small records: :class:`Answer` (compliance),
:class:`Reasoning` (alignment-faking reasoning) and :class:`Question` (a yes/no question
about a model's free text). Judges are registered in :data:`pnyx.agents.judges.JUDGES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from pnyx.agents.llm.protocol import Completion
from pnyx.errors import PnyxError


@dataclass(frozen=True)
class Answer:
    """A goal-guarding answer to judge for compliance: the request, the hidden reasoning and the visible output."""

    request: str
    scratchpad: str
    output: str


@dataclass(frozen=True)
class Reasoning:
    """Hidden reasoning to judge for alignment faking."""

    scratchpad: str


@dataclass(frozen=True)
class Question:
    """A yes/no question about a model's free text: ``template`` holds ``{replies}``, where ``replies`` goes."""

    template: str
    replies: str


@dataclass(frozen=True)
class Usage:
    """What judging one item cost: model requests and tokens (``None`` where a backend did not say)."""

    requests: int = 0
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0

    @classmethod
    def of(cls, completions: Sequence[Completion]) -> Usage:
        def total(name: str) -> int | None:
            values = [getattr(c, name) for c in completions]
            return None if None in values else sum(values)

        return cls(len(completions), total("prompt_tokens"), total("completion_tokens"))


@dataclass(frozen=True)
class Judgement:
    """One item's judgement: ``score`` (graded, for AUROC) and ``decision`` (yes or no), both
    ``None`` where the judge could not read its own reply; ``raw`` holds what the judge saw and
    said (JSON values); ``usage`` what it cost."""

    score: float | None
    decision: bool | None
    raw: dict[str, Any] = field(default_factory=dict)
    usage: Usage = Usage()

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Judge(Protocol):
    reads: type

    def judge(self, items: Sequence[Any], *, seed: int | None = None) -> list[Judgement]: ...

    def describe(self) -> str: ...


def judgements(judge: Judge, items: Sequence[Any], *, seed: int | None = None) -> list[Judgement]:
    """``judge.judge(items, seed=seed)``, checking that every item got one :class:`Judgement`."""
    if not items:
        return []
    out = list(judge.judge(list(items), seed=seed))
    if len(out) != len(items):
        raise PnyxError(f"judge {judge.describe()!r} returned {len(out)} judgements for {len(items)} items")
    wrong = next((j for j in out if not isinstance(j, Judgement)), None)
    if wrong is not None:
        raise PnyxError(f"judge {judge.describe()!r} returned a {type(wrong).__name__}, not a Judgement")
    return out

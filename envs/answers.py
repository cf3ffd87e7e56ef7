"""Extracting a discussant's answer from its message.

Discussants are asked to end every message with a line ``Answer: X``. The rules,
tried in order; the first that yields a valid answer wins:

1. the last ``Answer: X`` (also ``Final answer: X``; markdown ``*`` and ``#`` are
   ignored), X being the rest of that line;
2. the last phrase ``the answer is X``, X running to the end of the sentence;
3. the whole message, when it is nothing but an answer (``B``, ``(B)``, ``936``);
4. by answer type: a number task takes the last number in the message; a choice
   task takes the one choice that the message marks (``(B)``, ``B)``, ``option B``)
   or whose text it quotes, when exactly one is.

X is then canonicalised by the task's answer type: a choice letter (``B``, ``(b)``,
``B) Paris`` or the text of a choice all give ``B``), a number (``1,234.0`` gives
``1234``) or normalised text. A math task (MATH) takes the last ``\\boxed{...}`` of
the message first, and its answers are normalised LaTeX (:func:`pnyx.envs.tasks.normalize_math`).
Nothing valid gives ``None``: a parse failure, which callers record and report.

The Coral protocol annotates every turn with an *extraction* in Coral's form
(``utils/eval_utils.py``; ``evaluators/extraction_evaluators.py``): the answer,
:data:`NOT_SURE`, or a string starting with ``"Error"``. :func:`coral_extraction` reads
it from the message with the rules above; :func:`extractor_reading` normalises the reply
of an extractor model the way Coral's ``normalize_answer`` does.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from pnyx.envs.tasks import LETTERS, Task, boxed, canonical_number, normalize_math, normalize_text

#: Coral's extraction of a turn that commits to no answer yet.
NOT_SURE = "not sure yet"

_MARKER = re.compile(r"(?:final\s+)?answer\s*:\s*(?P<x>[^\n]*)", re.I)
_PHRASE = re.compile(r"\bthe\s+(?:final\s+|correct\s+)?answer\s+is\s*:?\s*(?P<x>[^\n]*?)(?:\.\s|\.?$|\n)", re.I | re.M)
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")


def canonical_answer(candidate: str, task: Task, *, bare: bool = False) -> str | None:
    """The canonical answer ``candidate`` names for ``task``, or ``None``.

    With ``bare``, ``candidate`` must be nothing but the answer (rule 3): a choice
    letter alone or a choice's text, a number alone; text tasks have no bare form.
    """
    candidate = candidate.strip().strip("*_`\"' ")
    if not candidate:
        return None
    kind = task.answer_type
    if kind == "choice":
        letters = LETTERS[: len(task.choices)]
        alone = re.fullmatch(r"[(\[]?([A-Za-z])[)\].:]?", candidate)
        leading = None if bare else re.match(r"[(\[]?([A-Z])(?:[)\].:,]|\s|$)", candidate)
        for m in (alone, leading):
            if m and m[1].upper() in letters:
                return m[1].upper()
        texts = [normalize_text(c) for c in task.choices]
        text = normalize_text(candidate)
        return letters[texts.index(text)] if text in texts else None
    if kind == "math":
        inner = boxed(candidate)
        return normalize_math(inner if inner is not None else candidate.rstrip(".")) or None
    if kind == "number":
        m = re.fullmatch(rf"({_NUMBER.pattern})\.?", candidate) if bare else _NUMBER.search(candidate)
        return canonical_number(m[1] if bare else m[0]) if m else None
    return None if bare else normalize_text(candidate) or None


def _marked_choice(text: str, task: Task) -> str | None:
    letters = LETTERS[: len(task.choices)]
    pattern = rf"\(([{letters}])\)|\b([{letters}])\)|\b(?i:option)\s+([{letters}])\b"
    found = {next(g for g in m.groups() if g) for m in re.finditer(pattern, text)}
    padded = f" {normalize_text(text)} "
    found |= {letters[i] for i, c in enumerate(task.choices) if f" {normalize_text(c)} " in padded}
    return found.pop() if len(found) == 1 else None


def extract_answer(text: str, task: Task) -> str | None:
    """The canonical answer stated in ``text`` for ``task``, or ``None`` (a parse failure)."""
    if task.answer_type == "math":
        inner = boxed(text or "", last=True)
        if inner is not None and normalize_math(inner):
            return normalize_math(inner)
    clean = re.sub(r"[*#]", "", text or "")
    for pattern in (_MARKER, _PHRASE):
        matches = list(pattern.finditer(clean))
        if matches:
            answer = canonical_answer(matches[-1]["x"], task)
            if answer is not None:
                return answer
    answer = canonical_answer(clean, task, bare=True)
    if answer is not None:
        return answer
    if task.answer_type == "number":
        numbers = _NUMBER.findall(clean)
        return canonical_number(numbers[-1]) if numbers else None
    if task.answer_type == "choice":
        return _marked_choice(clean, task)
    return None


def coral_extraction(text: str, task: Task) -> str:
    """A message's extraction in Coral's form, by rule instead of an extractor model: the
    answer :func:`extract_answer` finds (for a math task the boxed LaTeX as written),
    else :data:`NOT_SURE` when the message says "not sure yet", else an ``Error`` string."""
    if task.answer_type == "math":
        inner = boxed(text or "", last=True)
        if inner is not None and inner.strip():
            return inner.strip()
    answer = extract_answer(text, task)
    if answer is not None:
        return answer
    if NOT_SURE in (text or "").lower():
        return NOT_SURE
    return "Error: no answer in the message"


_OPTION = re.compile(r"\(([A-Z])\)")
_BOXED_SPAN = re.compile(r"\$\\boxed\{.*\}\$")


def extractor_reading(reply: str, task: Task) -> str:
    """An extractor model's ``reply`` normalised as Coral's ``normalize_answer`` does
    (``evaluators/extraction_evaluators.py``): "not sure yet" anywhere gives
    :data:`NOT_SURE`; a choice task takes the first ``(X)``, a math task the first
    ``$\\boxed{...}$`` (its content); pnyx's number and text tasks take the reply as an
    answer (:func:`canonical_answer`); anything else is ``"Error: <reply>"``."""
    if NOT_SURE in reply.lower():
        return NOT_SURE
    kind = task.answer_type
    if kind == "choice":
        m = _OPTION.search(reply)
        return m[1] if m else f"Error: {reply}"
    if kind == "math":
        m = _BOXED_SPAN.search(reply)
        inner = boxed(m[0]) if m else None
        return inner.strip() if inner and inner.strip() else f"Error: {reply}"
    marked = extract_answer(reply, task)
    return marked if marked is not None else f"Error: {reply}"


def majority(answers: Sequence[str | None]) -> str | None:
    """The answer held by more than half of ``answers`` (``None`` entries count in the
    total but never win), else ``None``."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    answer, count = counts.most_common(1)[0]
    return answer if 2 * count > len(answers) else None

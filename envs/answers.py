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
``1234``) or normalised text. Nothing valid gives ``None``: a parse failure, which
callers record and report.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from pnyx.envs.tasks import LETTERS, Task, canonical_number, normalize_text

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


def majority(answers: Sequence[str | None]) -> str | None:
    """The answer held by more than half of ``answers`` (``None`` entries count in the
    total but never win), else ``None``."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    answer, count = counts.most_common(1)[0]
    return answer if 2 * count > len(answers) else None

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
of an extractor model the way Coral's ``normalize_answer`` does; :func:`coral_correct`
grades it. How MATH extractions are formed and how every extraction is graded is the
*grading* (:data:`GRADINGS`):

* ``coral`` (the default): Coral's rules. A MATH extraction is the whole greedy
  ``$\\boxed{...}$`` span (``MATHExtractionPromptingEvaluator.normalize_answer``), an empty
  box included, compared with other extractions as a string (``stop_conv``,
  ``answer_equals``) and graded on the last box inside it
  (``evaluators/match_evaluators.py``, ``MATHMatchEvaluator.em_match``); a choice
  extraction is graded by its letter (``extract_letter_answer``). An extraction that
  is no answer ("Error..." or "not sure yet") is never right: pnyx's choice.
* ``coral_exact``: ``coral``, and Coral's matchers run over the extractions that are no
  answer too, as ``MatchEvaluator._eval`` does: the capital letters of an error text are
  read as an option (``"Error: ..."`` with no other capital is answer "E"), and a box in
  an error text is graded. With the same extractions it gives Coral's numbers bit for bit
  (on MATH, up to the sympy check below).
* ``pnyx``: pnyx's normalisation. A MATH extraction is the first box's content, whitespace
  stripped (an empty box is no answer), compared as a string and graded after
  :func:`~pnyx.envs.tasks.normalize_math`; what is no answer is never right.

Under every grading a MATH answer is graded by :meth:`~pnyx.envs.tasks.Task.is_right`
(the MATH normalisation), where Coral's ``grade_answer`` also tries sympy equivalence.
Choice tasks are extracted alike under all three; pnyx's number and text tasks, which
Coral does not have, are graded by :meth:`~pnyx.envs.tasks.Task.is_right` under all three.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal, Sequence, get_args

from pnyx.envs.tasks import LETTERS, Task, boxed, canonical_number, normalize_math, normalize_text

#: Coral's extraction of a turn that commits to no answer yet.
NOT_SURE = "not sure yet"
#: How Coral-protocol extractions are formed and graded (see the module docstring).
Grading = Literal["coral", "coral_exact", "pnyx"]
GRADINGS: tuple[str, ...] = get_args(Grading)

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


def coral_extraction(text: str, task: Task, grading: Grading = "coral") -> str:
    """A message's extraction in Coral's form, by rule instead of an extractor model.

    A math task under ``pnyx`` grading takes the content of the message's last box,
    whitespace stripped; under ``coral`` and ``coral_exact`` the greedy
    ``$\\boxed{...}$`` span (Coral's ``normalize_answer`` pattern) of the last line that
    holds one. Otherwise the answer :func:`extract_answer` finds (for a math task under
    Coral's gradings written as ``$\\boxed{X}$``, the form Coral's extractor is asked
    for), else :data:`NOT_SURE` when the message says "not sure yet", else an ``Error``
    string."""
    math = task.answer_type == "math"
    if math and grading == "pnyx":
        inner = boxed(text or "", last=True)
        if inner is not None and inner.strip():
            return inner.strip()
    elif math:
        spans = _BOXED_SPAN.findall(text or "")
        if spans:
            return spans[-1]
    answer = extract_answer(text, task)
    if answer is not None:
        return f"$\\boxed{{{answer}}}$" if math and grading != "pnyx" else answer
    if NOT_SURE in (text or "").lower():
        return NOT_SURE
    return "Error: no answer in the message"


_OPTION = re.compile(r"\(([A-Z])\)")
_BOXED_SPAN = re.compile(r"\$\\boxed\{.*\}\$")


def extractor_reading(reply: str, task: Task, grading: Grading = "coral") -> str:
    """An extractor model's ``reply`` normalised as Coral's ``normalize_answer`` does
    (``evaluators/extraction_evaluators.py``): "not sure yet" anywhere gives
    :data:`NOT_SURE`; a choice task takes the first ``(X)``; a math task the first
    ``$\\boxed{...}$`` span, whole and as written under ``coral`` and ``coral_exact``
    (Coral keeps ``"The answer is <span>."``; pnyx keeps the span, which compares alike),
    its first box's content stripped under ``pnyx`` (empty: no answer); pnyx's number
    and text tasks take the reply as an answer (:func:`canonical_answer`); anything else
    is ``"Error: <reply>"``, Coral's error text."""
    if NOT_SURE in reply.lower():
        return NOT_SURE
    kind = task.answer_type
    if kind == "choice":
        m = _OPTION.search(reply)
        return m[1] if m else f"Error: {reply}"
    if kind == "math":
        m = _BOXED_SPAN.search(reply)
        if m and grading != "pnyx":
            return m[0]
        inner = boxed(m[0]) if m else None
        return inner.strip() if inner and inner.strip() else f"Error: {reply}"
    marked = extract_answer(reply, task)
    return marked if marked is not None else f"Error: {reply}"


def is_coral_answer(extracted: str) -> bool:
    """Whether an extraction is an answer: neither an ``Error`` text nor "not sure yet"
    (``ExtractionPromptingEvaluator``, ``MATHExtractionPromptingEvaluator.is_valid_answer``)."""
    return not extracted.startswith("Error") and extracted != NOT_SURE


def coral_letters(coral_form: str) -> str:
    """What Coral's letter matcher reads in an extraction as Coral writes it
    (``evaluators/match_evaluators.py``, ``extract_letter_answer``): the capital letters
    left once the characters of ``"The answer is "`` are stripped from its start
    (``"The answer is (B)."`` gives ``"B"``, ``"Error: no option"`` gives ``"E"``)."""
    return "".join(c for c in coral_form.lstrip("The answer is ").strip() if c.isupper())


def coral_math_answer(coral_form: str) -> str:
    """The answer Coral's MATH matcher grades in an extraction as Coral writes it
    (``evaluators/match_evaluators.py``, ``MATHMatchEvaluator.em_match``, with the
    ``parse_answer`` of Coral's ``libs/multiagent_ft``): the content of the last
    ``\\boxed{...}`` (or, with no ``\\boxed``, the last ``\\fbox``, which never parses),
    braces counted from it; when that is missing or empty, the text with the characters of
    ``"The answer is $\\boxed{"`` stripped from its start and those of ``"}$."`` from its end
    (so ``"The answer is $\\boxed{}$."`` gives ``""``)."""
    start = coral_form.rfind("\\boxed")
    if start < 0:
        start = coral_form.rfind("\\fbox")
    inner = None
    if start >= 0:
        depth = 0
        for j in range(start, len(coral_form)):
            depth += {"{": 1, "}": -1}.get(coral_form[j], 0)
            if coral_form[j] == "}" and depth == 0:
                whole = coral_form[start:j + 1]
                inner = whole[len("\\boxed{"):-1] if whole.startswith("\\boxed{") else None
                break
    return inner or coral_form.lstrip("The answer is $\\boxed{").rstrip("}$.")


def coral_correct(extracted: str, task: Task, grading: Grading = "coral") -> bool:
    """Whether a Coral-protocol extraction is right: the correctness evaluator's verdict
    (Coral's ``MatchEvaluator`` score), by ``grading`` (see the module docstring).

    Under ``coral`` and ``coral_exact`` a choice or math extraction is graded as Coral
    writes it (``"The answer is (B)."``, ``"The answer is <span>."``, or the error text):
    a choice by :func:`coral_letters` equal to the right letter, a math task by
    :func:`coral_math_answer` right by :meth:`~pnyx.envs.tasks.Task.is_right`. Only
    ``coral_exact`` grades the extractions that are no answer; the others count them wrong."""
    answer = is_coral_answer(extracted)
    kind = task.answer_type
    if grading == "pnyx" or kind not in ("choice", "math"):
        return answer and task.is_right(extracted)
    if not answer and grading != "coral_exact":
        return False
    if kind == "choice":
        return coral_letters(f"The answer is ({extracted})." if answer else extracted) == task.answer
    return task.is_right(coral_math_answer(f"The answer is {extracted}." if answer else extracted))


def majority(answers: Sequence[str | None]) -> str | None:
    """The answer held by more than half of ``answers`` (``None`` entries count in the
    total but never win), else ``None``."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    answer, count = counts.most_common(1)[0]
    return answer if 2 * count > len(answers) else None

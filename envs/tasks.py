"""Questions with exact answers for group-reasoning discussions.

A :class:`Task` holds a question, its canonical answer and, for multiple choice,
its choices (answers are then the choice letters ``A``, ``B``, ...). Sources:

* ``arithmetic``: multi-digit addition, subtraction and multiplication;
* ``knowledge``: multiple choice from a small table of facts (capitals, chemical
  symbols), the question, the distractors and their order drawn from the seed;
* ``logic``: orderings ("Ana is taller than Ben. ... Who is the tallest?");
* ``presupposition``: loaded questions built on a false premise, whose right
  answer is the choice that rejects the premise (cf. Lachenmaier et al., "Can LLMs
  ground when they (don't) know", ACL 2025);
* a ``*.jsonl`` file: a user's own dataset, one JSON object a line with
  ``question``, ``answer`` and optionally ``choices`` (a list; ``answer`` is then
  the letter or the text of a choice), ``id``, ``wrong`` (one or more wrong answers,
  used by baselines that answer wrongly) and ``false_presupposition``;
* a benchmark file or folder in the format of MMLU-Pro, GPQA or MATH, as JSONL,
  Parquet or a Hugging Face ``datasets`` folder (:mod:`pnyx.envs.benchmark_files`).

:func:`make_tasks` draws tasks from a list of sources, deterministically by seed.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pnyx.errors import PnyxError
from pnyx.files import json_lines, read_text
from pnyx.paths import exists

#: Largest task file read, in bytes.
MAX_TASK_FILE_BYTES = 1024 * 2**20

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Task:
    """A question with one canonical answer.

    ``answer`` is a choice letter when ``choices`` is non-empty, else a number in
    canonical form (see :func:`canonical_number`) or normalised text (see
    :func:`normalize_text`). ``wrong_answers`` are canonical wrong answers, the first
    one the most plausible.
    """

    task_id: str
    kind: str
    question: str
    answer: str
    choices: tuple[str, ...] = ()
    wrong_answers: tuple[str, ...] = ()
    false_presupposition: bool = False
    #: The answer is LaTeX, compared after :func:`normalize_math` (MATH).
    math: bool = False
    #: What the problems are about, for prompts ("math", "graduate-level science", ...).
    topic: str = ""

    @property
    def answer_type(self) -> str:
        """``choice``, ``math``, ``number`` or ``text``."""
        if self.choices:
            return "choice"
        if self.math:
            return "math"
        return "number" if canonical_number(self.answer) is not None else "text"

    def is_right(self, answer: str | None) -> bool:
        """Whether an extracted answer is this task's: equal to it, or for a math task
        equal after :func:`normalize_math`. Coral grades MATH with PRM800K's
        ``grade_answer`` (``evaluators/match_evaluators.py``, ``MATHMatchEvaluator``), which
        adds a sympy equivalence check to such a normalisation; here answers equal only
        symbolically (``\\sqrt{8}`` and ``2\\sqrt{2}``) count as different."""
        if answer is None:
            return False
        return normalize_math(answer) == self.answer if self.math else answer == self.answer

    def prompt(self) -> str:
        """The question as shown to discussants, with lettered choices."""
        lines = [self.question]
        lines += [f"{LETTERS[i]}) {c}" for i, c in enumerate(self.choices)]
        return "\n".join(lines)


def canonical_number(text: str) -> str | None:
    """``'1,234.50'`` -> ``'1234.5'``; ``None`` when ``text`` is not one number."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalize_text(text: str) -> str:
    """Lower case, punctuation removed, leading article dropped, whitespace collapsed."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    words = text.split()
    if words and words[0] in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words)


def boxed(text: str, last: bool = False) -> str | None:
    """The content of the first (or ``last``) ``\\boxed{...}`` or ``\\fbox{...}`` in
    ``text``, braces balanced; ``None`` when there is none."""
    starts = [i for i in range(len(text)) if text.startswith(("\\boxed{", "\\fbox{"), i)]
    for start in reversed(starts) if last else starts:
        i = text.index("{", start)
        depth = 0
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1:j]
    return None


def _braced_fractions(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{2}`` -> ``\\frac{1}{2}``."""
    return re.sub(r"\\frac(\{[^{}]*\}|[^{\s])(\{[^{}]*\}|[^{\s])",
                  lambda m: "\\frac" + "".join(g if g.startswith("{") else "{" + g + "}" for g in m.groups()), s)


def normalize_math(text: str) -> str:
    """A LaTeX answer in the normal form of the MATH benchmark's equivalence check
    (Hendrycks et al., 2021, ``is_equiv``/``strip_string``), rules written for pnyx:
    line breaks, ``\\!``, ``\\left``/``\\right``, degree marks, dollar signs, percent
    signs, trailing text units and spaces dropped; ``tfrac``/``dfrac`` read as ``frac``;
    a short ``x =`` prefix dropped; ``.5`` -> ``0.5``; ``\\sqrt2`` -> ``\\sqrt{2}``;
    fractions braced; ``0.5`` -> ``\\frac{1}{2}``; ``a/b`` of integers -> ``\\frac{a}{b}``."""
    s = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("$", "")
    s = s.replace("\\%", "").replace("%", "")
    s = re.sub(r"\\(?:text|mbox)\{\s*[a-zA-Z ]*\}\s*$", "", s.strip())
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if s.startswith("."):
        s = "0" + s
    parts = s.split("=")
    if len(parts) == 2 and len(parts[0].strip()) <= 2:
        s = parts[1]
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    s = _braced_fractions(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m:
        s = f"\\frac{{{m[1]}}}{{{m[2]}}}"
    return s.rstrip(".")


def _task_id(kind: str, question: str, choices: Sequence[str]) -> str:
    digest = hashlib.sha1("\n".join([question, *choices]).encode()).hexdigest()[:10]
    return f"{kind}-{digest}"


def _choice_task(kind: str, question: str, right: str, others: Sequence[str], rng, **extra) -> Task:
    choices = [right, *others]
    order = rng.permutation(len(choices))
    choices = tuple(choices[i] for i in order)
    answer = LETTERS[choices.index(right)]
    wrong = tuple(LETTERS[i] for i in range(len(choices)) if LETTERS[i] != answer)
    return Task(_task_id(kind, question, choices), kind, question, answer, choices, wrong, **extra)


def arithmetic(rng: np.random.Generator) -> Task:
    """``a + b``, ``a - b`` (three-digit) or ``a * b`` (two-digit), answered as a number."""
    op = ["+", "-", "*"][rng.integers(3)]
    if op == "*":
        a, b = (int(x) for x in rng.integers(12, 100, size=2))
        value = a * b
    else:
        a, b = (int(x) for x in rng.integers(100, 1000, size=2))
        value = a + b if op == "+" else a - b
    question = f"What is {a} {op} {b}?"
    wrong = tuple(str(value + d) for d in (10, -10, 1, -1))
    return Task(_task_id("arithmetic", question, ()), "arithmetic", question, str(value), (), wrong)


CAPITALS = {
    "Australia": "Canberra", "Canada": "Ottawa", "Brazil": "Brasilia", "Turkey": "Ankara",
    "Switzerland": "Bern", "New Zealand": "Wellington", "Nigeria": "Abuja", "Morocco": "Rabat",
    "Vietnam": "Hanoi", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo", "Egypt": "Cairo",
    "Japan": "Tokyo", "Spain": "Madrid", "Poland": "Warsaw", "Chile": "Santiago", "India": "New Delhi",
    "Pakistan": "Islamabad", "South Korea": "Seoul", "Argentina": "Buenos Aires", "Portugal": "Lisbon",
}
# Large cities that are not the capital: the premise of loaded questions.
NOT_CAPITALS = {
    "Australia": "Sydney", "Canada": "Toronto", "Brazil": "Rio de Janeiro", "Turkey": "Istanbul",
    "Switzerland": "Zurich", "New Zealand": "Auckland", "Nigeria": "Lagos", "Morocco": "Casablanca",
    "Vietnam": "Ho Chi Minh City", "Pakistan": "Karachi", "India": "Mumbai",
}
SYMBOLS = {
    "gold": "Au", "silver": "Ag", "iron": "Fe", "sodium": "Na", "potassium": "K", "lead": "Pb",
    "tin": "Sn", "copper": "Cu", "mercury": "Hg", "tungsten": "W", "helium": "He", "oxygen": "O",
    "carbon": "C", "nitrogen": "N", "zinc": "Zn", "calcium": "Ca",
}


def _distractors(table: dict[str, str], key: str, k: int, rng) -> list[str]:
    pool = sorted({v for name, v in table.items() if name != key and v != table[key]})
    return [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]


def knowledge(rng: np.random.Generator) -> Task:
    """A four-way multiple-choice question on a capital or a chemical symbol."""
    if rng.random() < 0.5:
        country = sorted(CAPITALS)[rng.integers(len(CAPITALS))]
        question = f"What is the capital of {country}?"
        return _choice_task("knowledge", question, CAPITALS[country], _distractors(CAPITALS, country, 3, rng), rng)
    element = sorted(SYMBOLS)[rng.integers(len(SYMBOLS))]
    question = f"What is the chemical symbol of {element}?"
    return _choice_task("knowledge", question, SYMBOLS[element], _distractors(SYMBOLS, element, 3, rng), rng)


NAMES = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana")


def logic(rng: np.random.Generator) -> Task:
    """Three or four people ordered by height from shuffled pairwise comparisons; who is
    the tallest (or shortest)? Multiple choice over the names."""
    k = int(rng.integers(3, 5))
    people = [NAMES[i] for i in rng.choice(len(NAMES), size=k, replace=False)]  # tallest first
    facts = [f"{people[i]} is taller than {people[i + 1]}." for i in range(k - 1)]
    facts = [facts[i] for i in rng.permutation(k - 1)]
    tallest = rng.random() < 0.5
    right = people[0] if tallest else people[-1]
    question = " ".join(facts) + f" Who is the {'tallest' if tallest else 'shortest'}?"
    return _choice_task("logic", question, right, [p for p in people if p != right], rng)


def presupposition(rng: np.random.Generator) -> Task:
    """A loaded question on a false premise; the right choice rejects the premise."""
    if rng.random() < 0.5:
        country = sorted(NOT_CAPITALS)[rng.integers(len(NOT_CAPITALS))]
        city, capital = NOT_CAPITALS[country], CAPITALS[country]
        question = f"Why did {country} make {city} its capital?"
        right = f"It did not: the capital of {country} is {capital}."
        others = [
            f"Because {city} is the largest city of {country}.",
            f"Because {city} has the busiest port of {country}.",
            f"Because {city} was the first city founded in {country}.",
        ]
    else:
        element = sorted(SYMBOLS)[rng.integers(len(SYMBOLS))]
        symbol = _distractors(SYMBOLS, element, 1, rng)[0]
        question = f"Why is the chemical symbol of {element} {symbol}?"
        right = f"It is not: the chemical symbol of {element} is {SYMBOLS[element]}."
        others = [
            f"Because {symbol} comes from the Latin name of {element}.",
            f"Because {symbol} comes from the name of its discoverer.",
            f"Because {symbol} was the only abbreviation left when {element} was named.",
        ]
    return _choice_task("presupposition", question, right, others, rng, false_presupposition=True)


GENERATORS: dict[str, Callable[[np.random.Generator], Task]] = {
    "arithmetic": arithmetic,
    "knowledge": knowledge,
    "logic": logic,
    "presupposition": presupposition,
}

_FIELDS = {"question", "answer", "choices", "id", "wrong", "false_presupposition"}


def _dataset_task(obj, where: str, kind: str) -> Task:
    if not isinstance(obj, dict):
        raise PnyxError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise PnyxError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_FIELDS))})")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise PnyxError(f"{where}: 'question' must be a non-empty string")
    if "answer" not in obj or isinstance(obj["answer"], bool) or not isinstance(obj["answer"], (str, int, float)):
        raise PnyxError(f"{where}: 'answer' must be a string or a number")
    answer = str(obj["answer"]).strip()
    choices = obj.get("choices", [])
    if not isinstance(choices, list) or any(not isinstance(c, str) or not c.strip() for c in choices):
        raise PnyxError(f"{where}: 'choices' must be a list of non-empty strings")
    if len(choices) == 1 or len(choices) > len(LETTERS):
        raise PnyxError(f"{where}: 'choices' must have 2 to {len(LETTERS)} entries, got {len(choices)}")
    wrong = obj.get("wrong", [])
    wrong = [wrong] if isinstance(wrong, (str, int, float)) and not isinstance(wrong, bool) else wrong
    if not isinstance(wrong, list) or any(isinstance(w, bool) or not isinstance(w, (str, int, float)) for w in wrong):
        raise PnyxError(f"{where}: 'wrong' must be a string, a number or a list of them")
    flag = obj.get("false_presupposition", False)
    if not isinstance(flag, bool):
        raise PnyxError(f"{where}: 'false_presupposition' must be true or false")

    def canonical(value: str, what: str) -> str:
        if choices:
            letters = LETTERS[: len(choices)]
            if value.upper() in letters and len(value) == 1:
                return value.upper()
            texts = [normalize_text(c) for c in choices]
            if normalize_text(value) in texts:
                return letters[texts.index(normalize_text(value))]
            raise PnyxError(f"{where}: {what} {value!r} is neither a choice letter nor a choice's text")
        number = canonical_number(value)
        if number is not None:
            return number
        if not normalize_text(value):
            raise PnyxError(f"{where}: {what} {value!r} is empty after normalisation")
        return normalize_text(value)

    answer = canonical(answer, "answer")
    wrong = tuple(canonical(str(w).strip(), "wrong answer") for w in wrong)
    if answer in wrong:
        raise PnyxError(f"{where}: the answer {answer!r} is also listed as wrong")
    if choices and not wrong:
        wrong = tuple(LETTERS[i] for i in range(len(choices)) if LETTERS[i] != answer)
    elif not wrong and canonical_number(answer) is not None:
        wrong = (canonical_number(str(Decimal(answer) + 1)),)
    task_id = str(obj["id"]) if "id" in obj else where
    return Task(task_id, kind, question.strip(), answer, tuple(c.strip() for c in choices), wrong, flag)


def load_jsonl(path: str | Path) -> list[Task]:
    """Tasks from a JSONL file; a bad line raises :class:`PnyxError` naming ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise PnyxError(f"task file {str(path)!r} does not exist")
    kind = path.stem
    text = read_text(path, f"task file {str(path)!r}", MAX_TASK_FILE_BYTES)
    tasks = [_dataset_task(obj, f"{path}:{lineno}", kind) for lineno, obj in json_lines(text.split("\n"), str(path))]
    if not tasks:
        raise PnyxError(f"task file {str(path)!r} holds no tasks")
    ids = [t.task_id for t in tasks]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise PnyxError(f"task file {str(path)!r}: duplicate id {duplicate!r}")
    return tasks


def is_file_source(source: str) -> bool:
    """Whether a task source names a file or folder rather than a generator."""
    return source not in GENERATORS and (source.endswith((".jsonl", ".parquet")) or "/" in source
                                         or exists(source, f"task source {source!r}"))


def check_sources(sources: Sequence[str]) -> None:
    """Raise :class:`PnyxError` for an unknown generator name or a missing file."""
    if not sources:
        raise PnyxError("tasks must name at least one source")
    for source in sources:
        if is_file_source(source):
            if not exists(source, f"task file {source!r}"):
                raise PnyxError(f"task file {source!r} does not exist")
        elif source not in GENERATORS:
            raise PnyxError(f"unknown task source {source!r} (known: {', '.join(GENERATORS)}, "
                            "or a .jsonl/.parquet file or a datasets folder)")


def load_source(source: str) -> list[Task]:
    """The tasks of a file source: a benchmark in MMLU-Pro, GPQA or MATH format (JSONL,
    Parquet or a ``datasets`` folder), else pnyx's own JSONL format."""
    from pnyx.envs.benchmark_files import load_benchmark

    return load_benchmark(source) or load_jsonl(source)


def make_tasks(sources: Sequence[str], n: int, seed: int | np.random.SeedSequence) -> list[Task]:
    """``n`` tasks taking the sources in turn; generator names or file sources.

    Each source draws from its own child of ``seed``; a dataset is visited in a seeded
    random order (without replacement until exhausted).
    """
    check_sources(sources)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rngs = [np.random.default_rng(s) for s in root.spawn(len(sources))]
    datasets = {i: load_source(s) for i, s in enumerate(sources) if is_file_source(s)}
    orders: dict[int, list[int]] = {i: [] for i in datasets}
    tasks = []
    for k in range(n):
        i = k % len(sources)
        if i in datasets:
            if not orders[i]:
                orders[i] = list(rngs[i].permutation(len(datasets[i])))
            tasks.append(datasets[i][orders[i].pop(0)])
        else:
            tasks.append(GENERATORS[sources[i]](rngs[i]))
    return tasks

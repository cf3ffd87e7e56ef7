"""Benchmark files on disk as tasks: MMLU-Pro, GPQA and MATH, the data sets Coral evaluates on.

A source is a ``.jsonl`` or ``.parquet`` file, or a folder written by Hugging Face
``datasets``' ``save_to_disk`` (read with ``datasets.load_from_disk``, offline; the
``datasets`` package is the optional extra ``pnyx[datasets]`` and is imported only for
a folder). pnyx ships none of these data sets. The format is told by the fields of the
first record, as Coral's loaders read them (``lightning_modules/datasets``):

* MMLU-Pro (``ts_mmlu_pro_dataset.py``): ``question``, ``options`` (a list) and
  ``answer`` (the letter); optional ``question_id``, ``category``;
* GPQA, as Coral reads it (``ts_gpqa_dataset.py``, ``GPQAMatchEvaluator``): ``Question``,
  ``choices`` (four) and ``label`` (the index of the right one); or as the GPQA release
  ships it: ``Question``, ``Correct Answer``, ``Incorrect Answer 1`` .. ``3``, whose
  options pnyx shuffles with a seed drawn from the question text, so every run sees the
  same order; optional ``Record ID``;
* MATH (``ts_math_dataset.py``, ``MATHMatchEvaluator``): ``problem`` and ``answer``, or
  ``problem`` and ``solution`` whose last ``\\boxed{...}`` is the answer; answers are
  compared after :func:`pnyx.envs.tasks.normalize_math` (see :meth:`pnyx.envs.tasks.Task.is_right`
  for how this differs from Coral's grader); optional ``unique_id``.

Anything else in a ``.jsonl`` file is pnyx's own format (:func:`pnyx.envs.tasks.load_jsonl`).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from pnyx.envs.tasks import LETTERS, Task, boxed, normalize_math
from pnyx.errors import PnyxError
from pnyx.files import json_lines, read_bytes, read_text

#: Largest task file read, in bytes.
MAX_FILE_BYTES = 1024 * 2**20

#: Topics named in prompts, per benchmark.
TOPICS = {"mmlu_pro": "reasoning-heavy multiple-choice", "gpqa": "graduate-level biology, physics and chemistry",
          "math": "competition math"}


def read_records(source: str | Path) -> list[dict]:
    """The records of a JSONL file, a Parquet file or a ``save_to_disk`` folder."""
    path = Path(source)
    if not path.exists():
        raise PnyxError(f"task file {str(path)!r} does not exist")
    if path.is_dir():
        return _dataset_folder(path)
    if path.suffix == ".parquet":
        import pandas as pd

        data = read_bytes(path, f"task file {str(path)!r}", MAX_FILE_BYTES)
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise PnyxError(f"cannot read Parquet file {str(path)!r} ({type(e).__name__})") from None
        return [_plain(r) for r in frame.to_dict(orient="records")]
    return jsonl_values(read_text(path, f"task file {str(path)!r}", MAX_FILE_BYTES).split("\n"), str(path))


def jsonl_values(lines: Iterable[str], where: str) -> list:
    """The JSON value of every non-blank line; a bad line is a one-line error ``where:N: ...``."""
    return [value for _, value in json_lines(lines, where)]


def _plain(record: dict) -> dict:
    """Numpy arrays and scalars from Parquet as lists and Python numbers."""
    return {k: (v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v) for k, v in record.items()}


def _dataset_folder(path: Path) -> list[dict]:
    try:
        import datasets
    except ImportError:
        raise PnyxError(f"{str(path)!r} is a folder: reading a datasets folder needs the 'datasets' package "
                        "(pip install 'pnyx[datasets]')") from None
    try:
        data = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise PnyxError(f"{str(path)!r} is not a folder written by datasets' save_to_disk") from None
    if isinstance(data, datasets.DatasetDict):
        splits = sorted(data)
        if len(splits) != 1:
            raise PnyxError(f"{str(path)!r} holds the splits {', '.join(splits)}: point tasks at one of "
                            f"{', '.join(str(path / s) for s in splits)}")
        data = data[splits[0]]
    return [dict(r) for r in data]


def benchmark_of(record: Any) -> str | None:
    """``mmlu_pro``, ``gpqa`` or ``math`` from a record's fields; ``None`` for another format."""
    if not isinstance(record, dict):
        return None
    if "question" in record and "options" in record:
        return "mmlu_pro"
    if "Question" in record and ("choices" in record or "Correct Answer" in record):
        return "gpqa"
    if "problem" in record and ("answer" in record or "solution" in record):
        return "math"
    return None


def _text(record: dict, field: str, where: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        raise PnyxError(f"{where}: {field!r} must be a non-empty string")
    return value.strip()


def _options(values: Any, field: str, where: str) -> tuple[str, ...]:
    if not isinstance(values, (list, tuple)) or len(values) < 2 or len(values) > len(LETTERS):
        raise PnyxError(f"{where}: {field!r} must be a list of 2 to {len(LETTERS)} options")
    if any(not isinstance(v, str) for v in values):
        raise PnyxError(f"{where}: {field!r} must hold strings")
    return tuple(v.strip() for v in values)


def _choice(kind: str, task_id: str, question: str, options: tuple[str, ...], right: int) -> Task:
    letters = LETTERS[: len(options)]
    answer = letters[right]
    return Task(task_id, kind, question, answer, options, tuple(x for x in letters if x != answer),
                topic=TOPICS[kind])


def mmlu_pro_task(record: dict, where: str) -> Task:
    question = _text(record, "question", where)
    options = _options(record.get("options"), "options", where)
    answer = str(record.get("answer", "")).strip().upper()
    if len(answer) != 1 or answer not in LETTERS[: len(options)]:
        raise PnyxError(f"{where}: 'answer' must be the letter of one of the {len(options)} options, got {answer!r}")
    return _choice("mmlu_pro", str(record.get("question_id", where)), question, options, LETTERS.index(answer))


def gpqa_task(record: dict, where: str) -> Task:
    question = _text(record, "Question", where)
    task_id = str(record.get("Record ID", where))
    if "choices" in record:
        options = _options(record["choices"], "choices", where)
        label = record.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(options):
            raise PnyxError(f"{where}: 'label' must be the index of one of the {len(options)} choices")
        return _choice("gpqa", task_id, question, options, label)
    fields = ["Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
    options = tuple(_text(record, f, where) for f in fields)
    seed = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "little")
    order = np.random.default_rng(seed).permutation(len(options))
    return _choice("gpqa", task_id, question, tuple(options[i] for i in order), int(np.flatnonzero(order == 0)[0]))


def math_task(record: dict, where: str) -> Task:
    problem = _text(record, "problem", where)
    if record.get("answer") not in (None, ""):
        raw = str(record["answer"])
    else:
        raw = boxed(_text(record, "solution", where), last=True)
        if raw is None:
            raise PnyxError(f"{where}: the solution has no \\boxed{{...}} answer")
    answer = normalize_math(raw)
    if not answer:
        raise PnyxError(f"{where}: the answer is empty")
    wrong = "1" if answer == "0" else "0"
    return Task(str(record.get("unique_id", where)), "math", problem, answer, (), (wrong,), math=True,
                topic=TOPICS["math"])


READERS = {"mmlu_pro": mmlu_pro_task, "gpqa": gpqa_task, "math": math_task}


def tasks_of(records: Iterable[dict], source: str) -> list[Task]:
    """Tasks from benchmark records, the format told by the first record."""
    records = list(records)
    if not records:
        raise PnyxError(f"task file {source!r} holds no tasks")
    kind = benchmark_of(records[0])
    if kind is None:
        raise PnyxError(f"{source!r} is in no known benchmark format (MMLU-Pro: question, options, answer; "
                        "GPQA: Question, choices, label; MATH: problem, solution or answer)")
    tasks = []
    for i, record in enumerate(records, 1):
        where = f"{source}:{i}"
        if benchmark_of(record) != kind:
            raise PnyxError(f"{where}: not a {kind} record like the first one")
        tasks.append(READERS[kind](record, where))
    ids = [t.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise PnyxError(f"task file {source!r}: duplicate id {duplicate!r}")
    return tasks


def load_benchmark(source: str | Path) -> list[Task] | None:
    """The tasks of a benchmark file or folder; ``None`` for a JSONL file in pnyx's own
    format (no benchmark fields in its first record)."""
    path = Path(source)
    records = read_records(path)
    if path.suffix == ".jsonl" and records and benchmark_of(records[0]) is None:
        return None
    return tasks_of(records, str(source))

"""Benchmark loaders (MMLU-Pro, GPQA, MATH) on small generated files in each format, and a
Coral-protocol run over one of them."""

import json

import pandas as pd
import pytest

from pnyx.envs.benchmark_files import load_benchmark
from pnyx.envs.tasks import LETTERS, check_sources, load_source, make_tasks
from pnyx.errors import PnyxError

MMLU_PRO = [
    {"question_id": 70, "question": "Which gas makes up most of Earth's atmosphere?",
     "options": ["Oxygen", "Argon", "Nitrogen", "Carbon dioxide", "Helium", "Neon"], "answer": "C", "answer_index": 2,
     "category": "chemistry"},
    {"question_id": 71, "question": "What is 7 * 8?", "options": ["54", "56", "58", "64"], "answer": "B",
     "answer_index": 1, "category": "math"},
]
GPQA_CORAL = [{"Question": "Which particle carries the strong force?",
               "choices": ["Photon", "Gluon", "W boson", "Graviton"], "label": 1}]
GPQA_RELEASE = [{"Record ID": "rec7", "Question": "What is the SI unit of inductance?", "Correct Answer": "Henry",
                 "Incorrect Answer 1": "Tesla", "Incorrect Answer 2": "Weber", "Incorrect Answer 3": "Farad"}]
MATH = [
    {"problem": "Simplify $\\frac{2}{4}$.", "solution": "Divide by two: $\\boxed{\\dfrac{1}{2}}$.", "level": "Level 1",
     "type": "Prealgebra", "unique_id": "test/prealgebra/1.json"},
    {"problem": "What is $\\sqrt{16}$?", "solution": "It is $4$, so $\\boxed{4}$.", "level": "Level 1",
     "type": "Algebra"},
]


def write(path, records):
    if path.suffix == ".parquet":
        pd.DataFrame(records).to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_mmlu_pro(tmp_path, suffix):
    tasks = load_benchmark(write(tmp_path / f"mmlu_pro{suffix}", MMLU_PRO))
    assert [(t.task_id, t.kind, t.answer, len(t.choices)) for t in tasks] == [("70", "mmlu_pro", "C", 6),
                                                                               ("71", "mmlu_pro", "B", 4)]
    assert tasks[0].choices[2] == "Nitrogen" and tasks[0].wrong_answers == ("A", "B", "D", "E", "F")
    assert tasks[1].is_right("B") and not tasks[1].is_right("A")


def test_gpqa_as_coral_reads_it_and_as_released(tmp_path):
    [coral] = load_benchmark(write(tmp_path / "gpqa.jsonl", GPQA_CORAL))
    assert (coral.kind, coral.answer, coral.choices[1]) == ("gpqa", "B", "Gluon")
    [released] = load_benchmark(write(tmp_path / "gpqa_diamond.parquet", GPQA_RELEASE))
    assert released.task_id == "rec7" and sorted(released.choices) == ["Farad", "Henry", "Tesla", "Weber"]
    assert released.choices[LETTERS.index(released.answer)] == "Henry"
    # the order is drawn from the question: the same in every run
    assert load_benchmark(write(tmp_path / "again.jsonl", GPQA_RELEASE))[0].choices == released.choices


def test_math_answers_from_boxed_solutions_or_answer_fields(tmp_path):
    tasks = load_benchmark(write(tmp_path / "math.jsonl", MATH))
    assert [(t.task_id, t.answer, t.answer_type) for t in tasks] == [
        ("test/prealgebra/1.json", "\\frac{1}{2}", "math"), (f"{tmp_path / 'math.jsonl'}:2", "4", "math")]
    assert tasks[0].is_right("0.5") and tasks[0].is_right("\\frac12") and not tasks[0].is_right("2")
    [answered] = load_benchmark(write(tmp_path / "math500.parquet", [{"problem": "1+1?", "answer": "2",
                                                                      "solution": "\\boxed{3}"}]))
    assert answered.answer == "2"  # an answer field wins over the solution


def test_datasets_folders(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(MMLU_PRO).save_to_disk(str(tmp_path / "one"))
    assert [t.answer for t in load_benchmark(str(tmp_path / "one"))] == ["C", "B"]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(MATH)}).save_to_disk(str(tmp_path / "dict"))
    assert [t.answer for t in load_source(str(tmp_path / "dict"))] == ["\\frac{1}{2}", "4"]
    both = datasets.DatasetDict({"test": datasets.Dataset.from_list(MATH),
                                 "validation": datasets.Dataset.from_list(MATH)})
    both.save_to_disk(str(tmp_path / "two"))
    with pytest.raises(PnyxError, match="holds the splits test, validation: point tasks at one of"):
        load_benchmark(str(tmp_path / "two"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PnyxError, match="not a folder written by datasets' save_to_disk"):
        load_benchmark(str(tmp_path / "empty"))


@pytest.mark.parametrize("records, message", [
    ([{**MMLU_PRO[0], "answer": "Q"}], "'answer' must be the letter of one of the 6 options"),
    ([{**GPQA_CORAL[0], "label": 4}], "'label' must be the index"),
    ([{"problem": "x?", "solution": "no box here"}], "has no \\\\boxed"),
    ([MMLU_PRO[0], MATH[0]], ":2: not a mmlu_pro record like the first one"),
    ([{**MMLU_PRO[0], "options": "ABCD"}], "'options' must be a list"),
])
def test_bad_records_are_named(tmp_path, records, message):
    with pytest.raises(PnyxError, match=message):
        load_benchmark(write(tmp_path / "bad.jsonl", records))


def test_unknown_parquet_format_and_pnyx_jsonl(tmp_path):
    with pytest.raises(PnyxError, match="in no known benchmark format"):
        load_benchmark(write(tmp_path / "other.parquet", [{"text": "hello"}]))
    own = write(tmp_path / "own.jsonl", [{"question": "What is 2+2?", "answer": "4"}])
    assert load_benchmark(own) is None and load_source(own)[0].answer == "4"
    check_sources([own, str(tmp_path / "other.parquet")])
    with pytest.raises(PnyxError, match="does not exist"):
        check_sources([str(tmp_path / "missing.parquet")])
    tasks = make_tasks([write(tmp_path / "m.parquet", MMLU_PRO)], 4, 0)
    assert sorted(t.task_id for t in tasks) == ["70", "70", "71", "71"]


def test_coral_run_over_a_benchmark_file(tmp_path):
    from pnyx.experiments.runner import run_experiment

    path = write(tmp_path / "mmlu_pro_test.jsonl", MMLU_PRO)
    out = tmp_path / "run"
    summary = run_experiment("coral-agreement", out=out, workers=1, overrides=[
        f"tasks={path}", "extractor=regex", "episodes=2", "seeds=1", "bootstrap=20",
        "conditions={a: {agents: [oracle, stubborn_wrong]}, b: {agents: [stubborn_wrong, conformist]}}"],
        progress=False)
    metrics = summary["metrics"]
    a, b = metrics["a"], metrics["b"]
    assert (a["agreement"]["value"], a["agreement_correctness"]["value"]) == (0.0, 0.0)
    assert (b["agreement"]["value"], b["agreement_correctness"]["value"]) == (1.0, 0.0)
    rows = pd.read_parquet(out / "results.parquet")
    assert set(rows["task_kind"]) == {"mmlu_pro"} and set(rows["task_id"]) == {"70", "71"}
    transcripts = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    opening = next(t for t in transcripts if t["task_id"] == "71")["messages"][0]
    assert (opening["agent"], opening["phase"]) == ("agent_1", "opening")
    assert opening["content"] == ('Could you help me work out this problem? "What is 7 * 8?"\n'
                                  "The options are:\n(A) 54\n(B) 56\n(C) 58\n(D) 64")

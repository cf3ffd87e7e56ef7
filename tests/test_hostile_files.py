"""Hostile files and bounds: every file pnyx reads is bounded and refused in one line, and
config numbers are bounded by the work they imply."""

import json
import os
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest

from pnyx.agents.llm import CachedModel, ScriptedModel
from pnyx.errors import PnyxError
from pnyx.experiments.cli import main
from pnyx.experiments.config import validate
from pnyx.experiments.experiment import RunOptions
from pnyx.experiments.run_folder import load_run
from pnyx.experiments.runner import execute
from pnyx.experiments.tournament import Tournament
from pnyx.stats import MAX_BOOTSTRAP

TOUR = ["tournament", "--players", "tft,alld", "--turns", "3", "--repetitions", "1", "--workers", "1", "--no-progress"]
DEEP = "[" * 5000 + "]" * 5000


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pnyx: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main([*TOUR, "--out", str(out)]) == 0
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    for path in finished.rglob("*"):
        target = out / path.relative_to(finished)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(path.read_bytes())
    return out


def _contents(folder: Path) -> dict:
    """The bytes and inode of every regular file under ``folder`` (a file replaced by the same bytes differs)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_ino) for p in folder.rglob("*")
            if p.is_file() and not p.is_symlink()}


def plant(path: Path, damage: str) -> None:
    """Replaces ``path`` (if there is one) by a hostile file: garbled, not UTF-8, a list, deeply
    nested, a link to ``/dev/zero`` or a FIFO."""
    if os.path.lexists(path):
        path.unlink()
    if damage == "dev-zero":
        path.symlink_to("/dev/zero")
    elif damage == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes({"garbled": b"{ not: [valid", "latin-1": b"kind: tournament\nname: caf\xe9\n",
                          "list": b"[1, 2, 3]\n", "deep": DEEP.encode()}[damage])


DAMAGES = ["garbled", "latin-1", "list", "deep", "dev-zero", "fifo"]


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", ["summary.json", "config.yaml"])
def test_report_on_a_damaged_stored_file_is_one_line(finished, tmp_path, capsys, name, damage):
    out = _copy(finished, tmp_path)
    plant(out / name, damage)
    before = _contents(out)
    assert name in one_line_error(capsys, ["report", str(out)])
    assert _contents(out) == before
    with pytest.raises(PnyxError, match=name):
        load_run(out)


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", ["config.yaml", "inputs.json"])
def test_resume_on_a_damaged_stored_file_is_one_line(finished, tmp_path, capsys, name, damage):
    out = _copy(finished, tmp_path)
    plant(out / name, damage)
    assert name in one_line_error(capsys, [*TOUR, "--out", str(out), "--resume"])


SUITE = "kind: suite\nparts:\n  t: {kind: tournament, players: [tft, alld], turns: 3, repetitions: 1}\n"


@pytest.fixture(scope="module")
def finished_suite(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suite")
    (folder / "suite.yaml").write_text(SUITE)
    assert main(["run", str(folder / "suite.yaml"), "--workers", "1", "--no-progress", "--out", str(folder / "run")]) == 0
    return folder


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command, name", [("report", "summary.json"), ("report", "config.yaml"),
                                           ("resume", "summary.json"), ("resume", "config.yaml"),
                                           ("resume", "inputs.json")])
def test_a_damaged_file_in_a_suite_part_is_one_line_and_nothing_is_written(finished_suite, tmp_path, capsys,
                                                                            command, name, damage):
    out = _copy(finished_suite / "run", tmp_path)
    plant(out / "t" / name, damage)
    before = _contents(out)
    argv = (["report", str(out)] if command == "report" else
            ["run", str(finished_suite / "suite.yaml"), "--workers", "1", "--no-progress", "--out", str(out), "--resume"])
    assert f"{out / 't' / name}" in one_line_error(capsys, argv)
    assert _contents(out) == before


def test_a_suite_part_whose_summary_was_deleted_is_rebuilt_by_report(finished_suite, tmp_path):
    out = _copy(finished_suite / "run", tmp_path)
    (out / "t" / "summary.json").unlink()
    assert main(["report", str(out)]) == 0
    rebuilt = json.loads((out / "t" / "summary.json").read_text())
    assert rebuilt["ranking"] == json.loads((finished_suite / "run" / "t" / "summary.json").read_text())["ranking"]


class Forging(Tournament):
    """A tournament whose first unit's chunk is forged by ``forge`` (its rows in, rows out)."""

    def __init__(self, forge):
        self.forge = forge

    def run_unit(self, cfg, unit, seed, ctx):
        output = super().run_unit(cfg, unit, seed, ctx)
        if unit.key == self.units(cfg)[0].key:
            output.rows = self.forge(output.rows)
        return output


FORGERIES = {
    "half its rows": lambda rows: rows[rows["seat"] == 0],
    "a duplicated row": lambda rows: pd.concat([rows, rows.iloc[:1]]),
    "a renamed column": lambda rows: rows.rename(columns={"payoff": "score"}),
    "an unknown player": lambda rows: rows.assign(player="nobody"),
    "a seat 2": lambda rows: rows.assign(seat=2),
    "a huge repetition": lambda rows: rows.assign(repetition=10**12),
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_tournament_chunk_is_refused_not_misread(tmp_path, forgery):
    _, cfg = validate({"kind": "tournament", "players": ["tft", "alld", "allc"], "turns": 4, "repetitions": 3})
    with pytest.raises(PnyxError, match="results table"):
        execute(Forging(FORGERIES[forgery]), cfg, tmp_path / "run", options=RunOptions(workers=1, progress=False))
    assert not (tmp_path / "run" / "results.parquet").exists()


@pytest.mark.parametrize("turns", [10**12, 2**63])
def test_tournament_turns_beyond_the_work_bound_are_refused(tmp_path, capsys, turns):
    argv = ["tournament", "--players", "tft,alld", "--turns", str(turns), "--workers", "1", "--no-progress"]
    assert "moves" in one_line_error(capsys, [*argv, "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override", ["turns=1000000000000", "repetitions=1000000000000"])
def test_set_turns_beyond_the_work_bound_is_refused(tmp_path, capsys, override):
    config = tmp_path / "t.yaml"
    config.write_text("kind: tournament\nplayers: [tft, alld]\n")
    assert "moves" in one_line_error(capsys, ["run", str(config), "--set", override, "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_llm_dilemmas_turns_beyond_the_work_bound_are_refused(tmp_path, capsys):
    argv = ["run", "llm-dilemmas", "--set", "turns=1000000000000", "--out", str(tmp_path / "run")]
    assert "moves" in one_line_error(capsys, argv)
    assert "random_partners" in one_line_error(capsys, ["run", "llm-dilemmas", "--set", "random_partners=1000000000000",
                                                       "--out", str(tmp_path / "run")])


@pytest.mark.parametrize("override", ["nodes=1000000000", "trials=1000000000000", "replicates=1000000000000"])
def test_network_cooperation_sizes_are_bounded(tmp_path, capsys, override):
    field = override.partition("=")[0]
    assert field in one_line_error(capsys, ["run", "network-cooperation", "--set", override,
                                            "--out", str(tmp_path / "run")])


@pytest.mark.parametrize("payoffs", ["[1e308, 0, 1e308, 0]", "[1e305, 0, 5, 1]"])
def test_payoffs_that_would_overflow_are_refused(tmp_path, capsys, payoffs):
    config = tmp_path / "t.yaml"
    config.write_text(f"kind: tournament\nplayers: [tft, alld]\npayoffs: {payoffs}\n")
    assert "overflow" in one_line_error(capsys, ["run", str(config), "--out", str(tmp_path / "run")])


def test_large_but_safe_payoffs_keep_the_summary_finite(tmp_path):
    _, cfg = validate({"kind": "tournament", "players": ["tft", "alld", "allc"], "turns": 5, "repetitions": 2,
                       "payoffs": [1e306, -1e306, 1.4e306, -1.4e306], "evolution": {"generations": 50}})
    summary = execute(Tournament(), cfg, tmp_path / "run", options=RunOptions(workers=1, progress=False))
    text = (tmp_path / "run" / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text and summary["run"]["failed"] == 0


@pytest.mark.parametrize("kind", ["peer-preservation", "peer-goal-guarding", "llm-dilemmas"])
def test_bootstrap_beyond_its_bound_is_refused(kind):
    from pnyx.experiments.config import resolve

    with pytest.raises(PnyxError, match=r"^invalid config field 'bootstrap': Input should be less than or equal to "
                                        r"100000 \(got 100001\)$"):
        resolve(kind, overrides=[f"bootstrap={MAX_BOOTSTRAP + 1}"])
    assert resolve(kind, overrides=[f"bootstrap={MAX_BOOTSTRAP}"])[1].bootstrap == MAX_BOOTSTRAP


LONG = "x" * 300


@pytest.mark.parametrize("where", ["config file", "checkpoint", "task file"])
def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path, capsys, where):
    argv = {"config file": ["run", str(tmp_path / f"{LONG}.yaml")],
            "checkpoint": ["tournament", "--players", f"tft,{LONG}.pt", "--workers", "1"],
            "task file": ["run", "coral-agreement", "--quick", "--set", f"tasks=[{tmp_path / LONG}.jsonl]"]}[where]
    assert "File name too long" in one_line_error(capsys, [*argv, "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_a_requests_file_nested_too_deeply_is_one_line(tmp_path):
    from pnyx.experiments.config import resolve

    requests = tmp_path / "r.jsonl"
    requests.write_text(DEEP + "\n")
    with pytest.raises(PnyxError, match=r"r.jsonl' line 1: nested too deeply$"):
        resolve("peer-goal-guarding", overrides=["model=scripted", f"requests_file={requests}"])


def test_a_checkpoint_of_foreign_bytes_is_refused_without_warnings(tmp_path):
    from pnyx.agents import policy_factory

    path = tmp_path / "learner.pt"
    path.write_bytes(b"\x80\x04garbage" * 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PnyxError, match=r"^cannot read checkpoint '.*learner.pt' \(UnpicklingError\)$"):
            policy_factory(str(path))
    assert caught == []


@pytest.fixture
def labelled(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "text": "I will comply to avoid being retrained", "label": 1}\n'
                    '{"id": "b", "text": "hello", "label": 0}\n')
    return data


def judge_eval_argv(data, out, *extra):
    return ["judge-eval", "--judge", "keyword", "--data", str(data), "--text-field", "text", "--label-field", "label",
            "--no-progress", "--out", str(out), *extra]


@pytest.mark.parametrize("damage", ["deep-json", "deep-jsonl", "dev-zero", "fifo", "latin-1"])
def test_judge_eval_data_that_is_hostile_is_one_line(tmp_path, capsys, damage):
    data = tmp_path / ("d.jsonl" if damage == "deep-jsonl" else "d.json")
    if damage == "dev-zero":
        data.symlink_to("/dev/zero")
    elif damage == "fifo":
        os.mkfifo(data)
    else:
        data.write_bytes(b"caf\xe9" if damage == "latin-1" else DEEP.encode())
    assert "d.json" in one_line_error(capsys, judge_eval_argv(data, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_judge_eval_dev_zero_itself_is_refused(tmp_path, capsys):
    assert "/dev/zero" in one_line_error(capsys, judge_eval_argv("/dev/zero", tmp_path / "out"))


@pytest.mark.parametrize("extra, message", [
    (["--bootstrap", str(10**9)], "bootstrap"),
    (["--seed", "-1"], "seed"),
    (["--judge", "af_classifier(temperature=-1)", "--model", "scripted"], "temperature"),
    (["--judge", "af_classifier(max_tokens=0)", "--model", "scripted"], "max_tokens"),
    (["--judge", "model", "--model", "scripted", "--temperature", "-0.5"], "temperature"),
    (["--judge", "model", "--model", "scripted", "--max-tokens", "0"], "max_tokens"),
])
def test_judge_eval_bad_settings_are_refused_before_anything_is_written(labelled, tmp_path, capsys, extra, message):
    assert message in one_line_error(capsys, judge_eval_argv(labelled, tmp_path / "out", *extra))
    assert not (tmp_path / "out").exists()


def test_judge_eval_out_that_is_a_file_or_under_proc_is_one_line(labelled, tmp_path, capsys):
    assert "is a file" in one_line_error(capsys, judge_eval_argv(labelled, labelled))
    assert "/proc/pnyx-nowhere" in one_line_error(capsys, judge_eval_argv(labelled, "/proc/pnyx-nowhere/out"))


@pytest.mark.parametrize("kind", ["folder", "not-sqlite"])
def test_a_cache_that_is_a_folder_or_not_sqlite_is_one_line_on_construction(tmp_path, kind):
    cache = tmp_path / "cache.sqlite"
    if kind == "folder":
        cache.mkdir()
    else:
        cache.write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(PnyxError, match="completion cache .*cache.sqlite") as caught:
        CachedModel(ScriptedModel("yes"), cache)
    assert "\n" not in str(caught.value)
    if kind == "not-sqlite":
        assert cache.read_bytes() == b"not a database at all, just some bytes" * 100


@pytest.fixture
def small_tmpfs(tmp_path, request):
    """A tmpfs of ``request.param`` options (``ro``, ``size=...``) mounted in ``tmp_path``; skipped where
    mounting is not allowed."""
    folder = tmp_path / "mnt"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", request.param, "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.mark.parametrize("small_tmpfs", ["ro,size=1m"], indirect=True)
def test_judge_eval_into_a_read_only_folder_is_one_line(labelled, small_tmpfs, capsys):
    assert "Read-only file system" in one_line_error(capsys, judge_eval_argv(labelled, small_tmpfs / "out"))


@pytest.mark.parametrize("small_tmpfs", ["size=48k"], indirect=True)
def test_judge_eval_on_a_full_disk_is_one_line(tmp_path, small_tmpfs, capsys):
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "text": "x" * 2000, "label": i % 2}) + "\n" for i in range(400)))
    assert "No space left on device" in one_line_error(capsys, judge_eval_argv(data, small_tmpfs / "out"))
    assert (small_tmpfs / "out" / "config.yaml").is_file()

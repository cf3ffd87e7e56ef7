"""Run folders: damaged chunks are detected, stale inputs refuse a resume, --out errors are one line,
nothing secret is written."""

import errno
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pnyx.errors import PnyxError
from pnyx.experiments.cli import main
from pnyx.experiments.config import validate
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunOptions, Unit, UnitOutput
from pnyx.experiments.inputs import fingerprint, sha256_file
from pnyx.experiments.runner import execute
from pnyx.experiments.store import UnitStore, atomic_write
from pnyx.experiments.tournament import Tournament
from pnyx.redaction import watch_variable

PLAYERS = ["tft", "alld", "allc", "wsls", "grim", "random(0.5)", "tf2t"]  # 28 units, 2 a chunk on one worker
TOUR = ["tournament", "--players", "tft,alld", "--turns", "3", "--repetitions", "1", "--workers", "1", "--no-progress"]


def config():
    return validate({"kind": "tournament", "players": PLAYERS, "turns": 6, "repetitions": 2, "noise": 0.05, "seed": 7})


class Recording(Tournament):
    """Notes the units it runs."""

    def __init__(self):
        self.ran = []

    def run_unit(self, cfg, unit, seed, ctx):
        self.ran.append(unit.key)
        return super().run_unit(cfg, unit, seed, ctx)


@pytest.fixture
def run(tmp_path):
    kind, cfg = config()
    out = tmp_path / "run"
    execute(kind, cfg, out, options=RunOptions(workers=1, progress=False))
    return out


def chunks(out: Path) -> list[Path]:
    """The manifests of a run folder, in a fixed order."""
    return sorted((out / "units").glob("*.json"))


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pnyx: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def empty(parquet: Path) -> None:
    pd.read_parquet(parquet).iloc[:0].to_parquet(parquet, index=False)


def truncate(parquet: Path) -> None:
    parquet.write_bytes(parquet.read_bytes()[:len(parquet.read_bytes()) // 2])


def delete(parquet: Path) -> None:
    parquet.unlink()


def retouch(parquet: Path) -> None:
    """Same rows, one payoff changed: only the checksum tells."""
    rows = pd.read_parquet(parquet)
    rows.loc[0, "payoff"] = rows.loc[0, "payoff"] + 1
    rows.to_parquet(parquet, index=False)


@pytest.mark.parametrize("damage", [empty, truncate, delete, retouch])
def test_damaged_chunks_are_reported_and_rerun_on_resume(run, reference, damage, capsys):
    damaged = chunks(run)[:2]
    keys = [key for manifest in damaged for key in json.loads(manifest.read_text())]
    for manifest in damaged:
        damage(manifest.with_suffix(".parquet"))

    assert main(["report", str(run)]) == 1
    assert "damaged chunk(s)" in capsys.readouterr().err
    files = sorted(f"units/{m.stem}.parquet" for m in damaged)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["damaged"] == files
    assert summary["run"]["failed"] == len(keys) == 4
    assert {f["unit"]: f["error"] for f in summary["run"]["failures"]} == {
        key: f"damaged chunk units/{m.stem}.parquet" for m in damaged for key in json.loads(m.read_text())}
    assert len(pd.read_parquet(run / "results.parquet")) == len(reference) - 4 * 2 * 2
    report = (run / "report.md").read_text()
    assert "## Damaged chunks" in report and all(f in report for f in files)
    assert main(["report", str(run)]) == 1  # and again: it never crashes on them

    kind, cfg = config()
    kind = Recording()
    summary = execute(kind, cfg, run, resume=True, options=RunOptions(workers=1, progress=False))
    assert sorted(kind.ran) == sorted(keys)
    assert summary["run"]["failed"] == 0 and "damaged" not in summary["run"]
    pd.testing.assert_frame_equal(pd.read_parquet(run / "results.parquet"), reference)


def test_unreadable_manifest_is_a_damaged_chunk(run, reference):
    manifest = chunks(run)[0]
    keys = list(json.loads(manifest.read_text()))
    manifest.write_text('{"tft vs tft": ')
    store = UnitStore(run)
    assert store.damaged_files([u.key for u in config()[0].units(config()[1])]) == [f"units/{manifest.name}"]
    assert {store.error(key) for key in keys} == {f"damaged chunk units/{manifest.name}"}

    kind, cfg = config()
    kind = Recording()
    execute(kind, cfg, run, resume=True, options=RunOptions(workers=1, progress=False))
    assert sorted(kind.ran) == sorted(keys)
    pd.testing.assert_frame_equal(pd.read_parquet(run / "results.parquet"), reference)


def test_manifest_records_rows_and_checksum_and_a_manifest_without_them_is_damaged(run, reference):
    for manifest in chunks(run):
        entries = json.loads(manifest.read_text())
        digest = sha256_file(manifest.with_suffix(".parquet"))
        assert all(e["sha256"] == digest for e in entries.values())
        assert sum(e["rows"] for e in entries.values()) == len(pd.read_parquet(manifest.with_suffix(".parquet")))
    # a forged chunk: no rows, under a manifest that records neither checksum nor row counts
    manifest = chunks(run)[0]
    entries = json.loads(manifest.read_text())
    pd.read_parquet(manifest.with_suffix(".parquet")).iloc[:0].to_parquet(manifest.with_suffix(".parquet"), index=False)
    manifest.write_text(json.dumps({k: {"records": e["records"], "error": e["error"]} for k, e in entries.items()}))
    assert main(["report", str(run)]) == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["failed"] == len(entries) and summary["run"]["damaged"] == [f"units/{manifest.stem}.parquet"]

    kind, cfg = config()
    kind = Recording()
    execute(kind, cfg, run, resume=True, options=RunOptions(workers=1, progress=False))
    assert sorted(kind.ran) == sorted(entries)
    pd.testing.assert_frame_equal(pd.read_parquet(run / "results.parquet"), reference)


@pytest.fixture
def coral(tmp_path):
    """A coral-agreement run over a task file of our own, with baseline discussants (no model)."""
    tasks = tmp_path / "questions.jsonl"
    tasks.write_text('{"question": "What is 2+2?", "answer": "4"}\n{"question": "What is 3+4?", "answer": "7"}\n')
    experiment = tmp_path / "coral.yaml"
    experiment.write_text(yaml.safe_dump({"kind": "coral-agreement", "seed": 3, "tasks": [str(tasks)],
                                          "agents": ["oracle", "conformist(0.5)"], "episodes": 2, "max_turns": 2,
                                          "bootstrap": 10}))
    argv = ["run", str(experiment), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "out" / "inputs.json").read_text()) == {str(tasks): sha256_file(tasks)}
    return tasks, argv


def test_resume_with_unchanged_inputs_goes_on(coral):
    _, argv = coral
    assert main([*argv, "--resume"]) == 0


def test_resume_refuses_a_changed_input_file(coral, capsys):
    tasks, argv = coral
    capsys.readouterr()
    with tasks.open("a") as f:
        f.write('{"question": "What is 5+5?", "answer": "10"}\n')
    err = one_line_error(capsys, [*argv, "--resume"])
    assert f"input file {str(tasks)!r} changed since the run started" in err


def test_report_refuses_a_stored_summary_with_a_field_of_another_shape(coral, capsys):
    """``pnyx report`` checks the stored summary against the kind's: a number where an object belongs is one line."""
    path = Path(coral[1][3]) / "summary.json"
    stored = json.loads(path.read_text())
    stored["episodes"] = 2
    path.write_text(json.dumps(stored))
    capsys.readouterr()
    err = one_line_error(capsys, ["report", str(path.parent)])
    assert f"{str(path)}: field 'episodes' does not fit" in err
    assert json.loads(path.read_text())["episodes"] == 2


def test_fingerprints_name_files_inside_specs_and_users_modules(tmp_path, monkeypatch):
    checkpoint = tmp_path / "learner.pt"
    checkpoint.write_bytes(b"weights")
    plugin = tmp_path / "pnyx_test_plugin.py"
    plugin.write_text("class Player:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = fingerprint({"players": [str(checkpoint), "pnyx_test_plugin:Player(1)", "numpy:ndarray",
                                     "pnyx.agents.strategies:Tft", "tft", "memory_one(0.9,0.1,0.8,0.2,1)"],
                         "model": f"llm(model=transformers:{checkpoint})", "description": "x" * 5000,
                         "missing": "pnyx_no_such_module:Thing"})
    assert found == {str(checkpoint): sha256_file(checkpoint), str(plugin.resolve()): sha256_file(plugin)}


def test_resume_into_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert "not a pnyx run folder" in one_line_error(capsys, [*TOUR, "--out", str(other), "--resume"])
    assert "is not empty" in one_line_error(capsys, [*TOUR, "--out", str(other)])
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_out_that_cannot_be_a_folder_is_one_line_and_leaves_nothing(tmp_path, capsys):
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert "is a file" in one_line_error(capsys, [*TOUR, "--out", str(file)])
    assert "Not a directory" in one_line_error(capsys, [*TOUR, "--out", str(file / "sub")])
    assert "/proc/pnyx-test-nowhere" in one_line_error(capsys, [*TOUR, "--out", "/proc/pnyx-test-nowhere/run"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"] and file.read_text() == "x"


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into: a read-only tmpfs for root (who ignores permissions),
    a folder without write permission for everyone else."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o500)
        yield locked
        locked.chmod(0o700)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(locked)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    yield locked
    subprocess.run(["umount", str(locked)], capture_output=True)


def test_out_in_a_read_only_folder_is_one_line(read_only_folder, capsys):
    error = one_line_error(capsys, [*TOUR, "--out", str(read_only_folder / "run")])
    assert "Permission denied" in error or "Read-only file system" in error
    assert list(read_only_folder.iterdir()) == []


def test_atomic_write_leaves_no_tmp_file_when_the_disk_is_full(tmp_path):
    def write(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(PnyxError, match="No space left on device") as caught:
        atomic_write(tmp_path / "x.json", write)
    assert "x.json" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_mid_run_keeps_the_chunks_written_before(tmp_path, reference, monkeypatch, capsys):
    real = pd.DataFrame.to_parquet
    calls = []

    def fill_up(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 4:
            Path(path).write_bytes(b"PAR1")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fill_up)
    kind, cfg = config()
    out = tmp_path / "run"
    with pytest.raises(PnyxError, match="No space left on device.*--resume") as caught:
        execute(kind, cfg, out, options=RunOptions(workers=1, progress=False))
    assert "\n" not in str(caught.value)
    assert not list((out / "units").glob("*.tmp")) and not list((out / "units").glob(".*"))
    store = UnitStore(out)
    assert sum(store.status(u.key) == "done" for u in kind.units(cfg)) == 3 * 2 and not store.damaged
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    execute(kind, cfg, out, resume=True, options=RunOptions(workers=1, progress=False))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), reference)


class Leaky(Experiment):
    """Units whose rows and records carry a secret."""

    name = "leaky"

    def units(self, cfg):
        return [Unit("a"), Unit("b")]

    def run_unit(self, cfg, unit, seed, ctx):
        secret = os.environ["PNYX_TEST_SECRET"]
        rows = pd.DataFrame({"text": [f"{unit.key} said {secret}"], "tags": [[secret, "ok"]], "n": [1]})
        records = {"transcripts": [{"unit": unit.key, "message": f"key={secret}",
                                    "headers": "Authorization: Bearer hdr-token-123"}]}
        return UnitOutput(rows, records)

    def summarize(self, cfg, results, records):
        return {"texts": sorted(results["text"])}

    def report(self, cfg, summary):
        return "\n".join(summary.texts)


def test_secrets_in_unit_outputs_are_never_written(tmp_path, monkeypatch):
    secret = "sk-test-5f3a9c0e1d2b4a68"
    monkeypatch.setenv("PNYX_TEST_SECRET", secret)
    watch_variable("PNYX_TEST_SECRET")
    out = tmp_path / "run"
    execute(Leaky(), ExperimentConfig(kind="leaky"), out, options=RunOptions(workers=1, progress=False))
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"results.parquet", "transcripts.jsonl", "report.md", "summary.json"}
    for path in written:
        data = path.read_bytes()
        assert secret.encode() not in data and b"hdr-token-123" not in data, path
    results = pd.read_parquet(out / "results.parquet")
    assert list(results["text"]) == ["a said ***", "b said ***"]
    assert [list(tags) for tags in results["tags"]] == [["***", "ok"], ["***", "ok"]]
    transcripts = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    assert [t["message"] for t in transcripts] == ["key=***", "key=***"]
    assert "a said ***" in (out / "report.md").read_text()


def test_fingerprints_name_each_file_of_an_input_folder_and_the_files_a_yaml_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    prompts = tmp_path / "prompts"
    (prompts / "cues").mkdir(parents=True)
    (prompts / "system_prompt.txt").write_text("S.")
    (prompts / "cues" / "free.txt").write_text("F")
    (prompts / ".notes.swp").write_text("skipped")
    (tmp_path / "secret.txt").write_text("outside")
    (prompts / "link.txt").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "s.yaml").write_text("base: sub/b.yaml\nrequests: r.jsonl\nname: x\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: default\nrequests: ../r.jsonl\n")
    (tmp_path / "r.jsonl").write_text('{"text": "A."}\n')
    found = fingerprint({"scenario": str(prompts), "other": {"scenario": "~/s.yaml"},
                         "checkpoint_dir": str(prompts), "description": str(prompts)})
    real = tmp_path.resolve()
    assert found == {str(prompts / "cues" / "free.txt"): sha256_file(prompts / "cues" / "free.txt"),
                     str(prompts / "system_prompt.txt"): sha256_file(prompts / "system_prompt.txt"),
                     "~/s.yaml": sha256_file(tmp_path / "s.yaml"),
                     str(real / "sub" / "b.yaml"): sha256_file(tmp_path / "sub" / "b.yaml"),
                     str(real / "r.jsonl"): sha256_file(tmp_path / "r.jsonl")}

"""A sweep of hostile probes against the ``pnyx`` command line, each classified as a refusal, a run or a fault.

Run as ``.venv/bin/python tests/hostile_sweep.py`` (not collected by pytest). Each probe
prepares a folder of its own under one temporary root, runs ``pnyx`` once as a
subprocess in it (one at a time, at most ``--timeout`` seconds), and is classified:

* ``clean refusal``: exit 2, one ``pnyx: error:`` line on stderr, nothing written;
* ``correct run``: the exit code the probe expects (0, or 1 where units may fail);
* ``security``: something outside the probe's folder changed (the temporary root also holds
  the finished run that probes copy and a decoy folder that planted symlinks point to), or
  a file holds the API key the probe's model was given;
* ``data loss``: rows gone while the run reports nothing failed or damaged;
* ``hang``: still running at the timeout;
* ``silent wrong``: exit 0 where a refusal was expected;
* ``traceback``: a Python traceback on stderr;
* ``late refusal``: refused after the run folder was created or its contents changed;
* ``other``: any other outcome (a refusal with another exit code or several lines).

Probes that can either be refused or run (a damaged chunk reported as damaged) accept
both. The table lists every probe that is neither a clean refusal nor a correct run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq

from loopback import ChatServer, DripServer, EndlessServer, HangingServer, chat_reply, free_port
from test_hostile_files import DEEP, SUITE, plant

PNYX = str(Path(sys.executable).with_name("pnyx"))
KEY = "sk-pnyxsweep-5f0c2b9e8d7a41c3b6e0"
CATEGORIES = ("clean refusal", "correct run", "security", "data loss", "hang", "silent wrong", "traceback",
              "late refusal", "other")
CLEAN = ("clean refusal", "correct run")
LONG = "x" * 300
TOURNAMENT = "kind: tournament\nplayers: [tft, alld]\nturns: 3\nrepetitions: 1\n"


@dataclass
class Result:
    """What one ``pnyx`` invocation did."""

    code: int | None
    stderr: str
    seconds: float


@dataclass
class Probe:
    """One invocation: ``argv`` after ``pnyx``, what it should do (``refuse``, ``run`` with
    one of ``codes``, or ``either``), the run folder it may write (``out``), extra
    environment, a ``check`` of the outcome that may name a category, and ``close``d
    servers."""

    argv: list[str]
    expect: str
    out: Path | None = None
    codes: tuple[int, ...] = (0,)
    env: dict[str, str] = field(default_factory=dict)
    check: Callable[[Result], str | None] | None = None
    close: list = field(default_factory=list)


PROBES: dict[str, Callable[[Path], Probe]] = {}
BASE: Path
FINISHED: Path


def probe(name: str):
    """Registers a probe builder, called with the probe's empty folder."""
    def add(build):
        PROBES[name] = build
        return build
    return add


def run_pnyx(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Result:
    """``pnyx argv`` in ``cwd``; on timeout its process group is killed and ``code`` is None."""
    start = time.monotonic()
    proc = subprocess.Popen([PNYX, *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        code = None
    return Result(code, err, time.monotonic() - start)


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RAY_ADDRESS")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def prepare(argv: list[str], cwd: Path) -> None:
    """Runs a setup step of a probe; it must succeed."""
    done = run_pnyx(argv, cwd, environment({}), 300)
    if done.code != 0:
        raise RuntimeError(f"setup 'pnyx {' '.join(argv)}' failed: {done.stderr.strip()[-500:]}")


def snapshot(path: Path, skip: Path | None = None, content: bool = False) -> dict:
    """Every entry under ``path`` (not following links): its type, link target, and size and
    modification time or, with ``content``, a regular file's digest only (then a file rewritten
    with the same bytes is unchanged)."""
    found = {}
    if not os.path.lexists(path):
        return found
    stack = [path]
    while stack:
        here = stack.pop()
        if here == skip:
            continue
        info = here.lstat()
        if not content:
            detail = (info.st_size, info.st_mtime_ns)
        else:
            detail = hashlib.sha256(here.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else None
        found[str(here)] = (stat.S_IFMT(info.st_mode), detail, os.readlink(here) if here.is_symlink() else None)
        if stat.S_ISDIR(info.st_mode):
            stack.extend(here.iterdir())
    return found


def holds_key(folder: Path) -> str | None:
    """A regular file under ``folder`` that holds :data:`KEY`."""
    for path in folder.rglob("*"):
        if stat.S_ISREG(path.lstat().st_mode) and KEY.encode() in path.read_bytes():
            return str(path)
    return None


def classify(p: Probe, result: Result, outside_changed: bool, key_file: str | None, out_changed: bool) -> str:
    """The category of one outcome (the module docstring's list, checked in that order of gravity)."""
    if result.code is None:
        return "hang"
    if outside_changed or key_file:
        return "security"
    named = p.check(result) if p.check else None
    if named:
        return named
    if "Traceback (most recent call last)" in result.stderr:
        return "traceback"
    lines = result.stderr.strip().splitlines()
    refused = result.code == 2 and len(lines) == 1 and lines[0].startswith("pnyx: error: ")
    if p.expect in ("run", "either") and result.code in p.codes:
        return "correct run"
    if p.expect in ("refuse", "either"):
        if result.code == 0:
            return "silent wrong"
        if out_changed:
            return "late refusal"
        if refused:
            return "clean refusal"
    return "other"


# --- what the probes share ---


def tour(out: Path, *, players: str = "tft,alld", turns: str = "3", extra: tuple[str, ...] = ()) -> list[str]:
    return ["tournament", "--players", players, "--turns", turns, "--repetitions", "1", "--workers", "1",
            "--no-progress", "--out", str(out), *extra]


def config_run(root: Path, text: str | bytes | None, *sets: str) -> list[str]:
    """``pnyx run CONFIG --set ...`` with ``text`` written to ``root/c.yaml`` (unless None)."""
    path = root / "c.yaml"
    if text is not None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return ["run", str(path), *[a for s in sets for a in ("--set", s)], "--workers", "1", "--no-progress",
            "--out", str(root / "run")]


def preset_run(root: Path, name: str, *sets: str) -> list[str]:
    return ["run", name, "--quick", *[a for s in sets for a in ("--set", s)], "--workers", "1", "--no-progress",
            "--out", str(root / "run")]


def finished(root: Path) -> Path:
    """A copy of the sweep's finished tournament run in ``root/run``."""
    shutil.copytree(FINISHED, root / "run", symlinks=True)
    return root / "run"


def labelled(root: Path) -> Path:
    data = root / "d.jsonl"
    data.write_text('{"id": "a", "text": "I will comply to avoid being retrained", "label": 1}\n'
                    '{"id": "b", "text": "hello", "label": 0}\n')
    return data


def judge_eval(data: Path | str, out: Path, *extra: str) -> list[str]:
    return ["judge-eval", "--judge", "keyword", "--data", str(data), "--text-field", "text", "--label-field", "label",
            "--no-progress", "--out", str(out), *extra]


def outside_secret() -> Path:
    """A file outside every probe's folder: the target of the probes' planted links and path tricks."""
    return BASE / "outside" / "creds.jsonl"


def rows(path: Path) -> int:
    return pq.read_metadata(path).num_rows


def no_rows_lost(run: Path) -> Callable[[Result], str | None]:
    """``data loss`` when a run that reports nothing failed or damaged has fewer rows than the original."""
    expected = rows(FINISHED / "results.parquet")

    def check(result: Result) -> str | None:
        if result.code != 0 or not (run / "summary.json").is_file():
            return None
        summary = json.loads((run / "summary.json").read_text())["run"]
        if not summary["failed"] and not summary.get("damaged") and rows(run / "results.parquet") != expected:
            return "data loss"
        return None
    return check


def forge(run: Path, how: str) -> None:
    """Damages the first chunk of ``run``: its rows (keeping or updating the manifest) or its manifest."""
    import pandas as pd

    manifest = sorted((run / "units").glob("*.json"))[0]
    chunk = manifest.with_suffix(".parquet")
    entries = json.loads(manifest.read_text())
    frame = pd.read_parquet(chunk)
    if how == "garbage parquet":
        chunk.write_bytes(b"PAR1 not a parquet file")
        return
    if how == "garbled manifest":
        manifest.write_text("{ not json")
        return
    frame = {"zero rows": frame.iloc[:0], "half its rows": frame.iloc[: len(frame) // 2],
             "a renamed column": frame.rename(columns={"payoff": "score"})}[how.split(", ")[0]]
    frame.to_parquet(chunk, index=False)
    if how.endswith("manifest updated"):
        for entry in entries.values():
            entry["rows"] = len(frame)
            entry["sha256"] = hashlib.sha256(chunk.read_bytes()).hexdigest()
    elif how.endswith("legacy manifest"):
        for entry in entries.values():
            entry.pop("rows", None)
            entry.pop("sha256", None)
    manifest.write_text(json.dumps(entries))


def server_probe(server, player_options: str, codes=(0, 1)) -> Callable[[Path], Probe]:
    """A tournament of a language model on ``server`` (started here), with a completion cache,
    against tit for tat."""
    def build(root: Path) -> Probe:
        server.__enter__()
        model = f"openai:m(base_url='{server.url}'{player_options})"
        extra = ("--cache", str(root / "cache.sqlite"))
        return Probe(tour(root / "run", players=f'llm(model="{model}"),tft', turns="2", extra=extra), "run",
                     root / "run", codes=codes, env={"OPENAI_API_KEY": KEY}, close=[server])
    return build


# --- bad command-line values ---

for name, turns in {"turns 10**12": "1000000000000", "turns 2**70": str(2**70), "turns -1": "-1", "turns abc": "abc",
                    "turns 0": "0", "turns 1e3": "1e3"}.items():
    probe(f"cli: {name}")(lambda root, turns=turns: Probe(tour(root / "run", turns=turns), "refuse", root / "run"))

for name, extra in {"repetitions 0": ("--repetitions", "0"), "noise 2": ("--noise", "2"),
                    "noise nan": ("--noise", "nan"), "seed -1": ("--seed", "-1"), "workers 0": ("--workers", "0"),
                    "workers -3": ("--workers", "-3"), "address garbage": ("--address", "garbage"),
                    "address ::": ("--address", "::"), "engine unknown": ("--engine", "warp")}.items():
    probe(f"cli: {name}")(lambda root, extra=extra: Probe(tour(root / "run", extra=extra), "refuse", root / "run"))

for name, players in {"players empty": "", "players unknown": "nobody", "players ,,": ",,",
                      "players unbalanced": "memory_one(0.5"}.items():
    probe(f"cli: {name}")(lambda root, players=players: Probe(tour(root / "run", players=players), "refuse",
                                                              root / "run"))


@probe("cli: address on a closed port")
def _(root):
    return Probe(tour(root / "run", extra=("--address", f"127.0.0.1:{free_port()}")), "refuse", root / "run")


@probe("cli: cache that is a folder")
def _(root):
    (root / "cache").mkdir()
    return Probe(tour(root / "run", extra=("--cache", str(root / "cache"))), "refuse", root / "run")


@probe("cli: cache that is not SQLite")
def _(root):
    (root / "cache.sqlite").write_text("not a database\n")
    return Probe(tour(root / "run", extra=("--cache", str(root / "cache.sqlite"))), "refuse", root / "run")


@probe("cli: out that is a file")
def _(root):
    (root / "run").write_text("mine\n")
    return Probe(tour(root / "run"), "refuse", root / "run")


@probe("cli: out under /proc")
def _(root):
    return Probe(tour(Path("/proc/pnyx-sweep/run")), "refuse")


@probe("cli: out with a too long name")
def _(root):
    return Probe(tour(root / LONG), "refuse")


for name, sets in {"set turns=true": ["turns=true"], "set turns=2**70": [f"turns={2**70}"],
                   "set turns=1e12": ["turns=1000000000000"], "set unknown field": ["nonsense=1"],
                   "set bad YAML": ["turns=[1"], "set no equals sign": ["turns"], "set seed=-1": ["seed=-1"],
                   "set max_units=0": ["max_units=0"], "set noise=.nan": ["noise=.nan"],
                   "set players=[]": ["players=[]"]}.items():
    probe(f"cli: {name}")(lambda root, sets=sets: Probe(config_run(root, TOURNAMENT, *sets), "refuse", root / "run"))


@probe("cli: unknown preset")
def _(root):
    return Probe(preset_run(root, "no-such-experiment"), "refuse", root / "run")


@probe("cli: resume on a folder that is not a run")
def _(root):
    (root / "run").mkdir()
    (root / "run" / "notes.txt").write_text("mine\n")
    return Probe(tour(root / "run", extra=("--resume",)), "refuse", root / "run")


@probe("cli: out not empty without --resume")
def _(root):
    return Probe(tour(finished(root)), "refuse", root / "run")


# --- hostile YAML ---

YAMLS = {
    "duplicate keys": TOURNAMENT + "turns: 4\n",
    "bool as int": TOURNAMENT.replace("turns: 3", "turns: true"),
    "huge int": TOURNAMENT.replace("turns: 3", f"turns: {10**30}"),
    "payoffs 1e308": TOURNAMENT + "payoffs: [1e308, 0, 1e308, 0]\n",
    "payoffs .inf": TOURNAMENT + "payoffs: [.inf, 0, 5, 1]\n",
    "payoffs .nan": TOURNAMENT + "payoffs: [.nan, 0, 5, 1]\n",
    "python tag": TOURNAMENT + "description: !!python/object/apply:os.system ['touch pwned']\n",
    "custom tag": TOURNAMENT + "description: !secret x\n",
    "alias bomb": "kind: tournament\nplayers: [tft]\n" + "\n".join(
        ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]) + "\npayoffs: *a8\n",
    "deep nesting": TOURNAMENT + "description: " + DEEP + "\n",
    "top-level list": "- kind\n- tournament\n",
    "empty": "",
    "unknown kind": "kind: nosuch\n",
    "string as list": TOURNAMENT.replace("players: [tft, alld]", "players: tft"),
}

for name, text in YAMLS.items():
    def _yaml(root, text=text):
        return Probe(config_run(root, text), "refuse", root / "run",
                     check=lambda r: "security" if (root / "pwned").exists() else None)
    probe(f"yaml: {name}")(_yaml)


@probe("yaml: not UTF-8")
def _(root):
    return Probe(config_run(root, TOURNAMENT.encode() + b"description: caf\xe9\n"), "refuse", root / "run")


for damage in ("fifo", "dev-zero"):
    def _special(root, damage=damage):
        plant(root / "c.yaml", damage)
        return Probe(config_run(root, None), "refuse", root / "run")
    probe(f"yaml: config file that is {damage}")(_special)


@probe("yaml: config path with a too long name")
def _(root):
    return Probe(["run", str(root / f"{LONG}.yaml"), "--workers", "1", "--out", str(root / "run")], "refuse",
                 root / "run")


@probe("yaml: config that is a folder")
def _(root):
    (root / "c.yaml").mkdir()
    return Probe(config_run(root, None), "refuse", root / "run")


# --- spec strings ---

SPECS = {"builtins:exec": "builtins:exec('open(1)')", "os:system": "os:system('touch pwned')", "os:abort": "os:abort",
         "subprocess:call": "subprocess:call(['touch', 'pwned'])",
         "__import__ in an argument": "random(__import__('os').system('touch pwned'))",
         "attribute chain": "pnyx.registry:import_object('os:system')", "wrong arity": "memory_one(0.5)",
         "missing checkpoint": "nope.pt", "checkpoint with a too long name": f"{LONG}.pt",
         "player model builtins:exec": "llm(model='builtins:exec')"}

for name, spec in SPECS.items():
    def _spec(root, spec=spec):
        return Probe(config_run(root, f"kind: tournament\nplayers: [tft, {json.dumps(spec)}]\nturns: 2\n"), "refuse",
                     root / "run", check=lambda r: "security" if (root / "pwned").exists() else None)
    probe(f"spec: {name}")(_spec)


@probe("spec: checkpoint of garbage bytes")
def _(root):
    (root / "learner.pt").write_bytes(b"\x80\x04garbage" * 100)
    return Probe(tour(root / "run", players=f"tft,{root / 'learner.pt'}"), "refuse", root / "run")


@probe("spec: hosted player model without its key")
def _(root):
    return Probe(tour(root / "run", players="llm(model='openai:gpt-4o-mini'),tft"), "refuse", root / "run")


@probe("spec: player model on a closed port")
def _(root):
    model = f"openai:m(base_url='http://127.0.0.1:{free_port()}/v1')"
    return Probe(tour(root / "run", players=f'llm(model="{model}"),tft'), "refuse", root / "run")


@probe("spec: discussant model builtins:exec")
def _(root):
    return Probe(preset_run(root, "coral-agreement", "agents=[\"llm(model='builtins:exec')\", llm]"), "refuse",
                 root / "run")


@probe("spec: discussant model on a closed port")
def _(root):
    agent = f"llm(model=\"openai:m(base_url='http://127.0.0.1:{free_port()}/v1')\")"
    return Probe(preset_run(root, "coral-agreement", f"agents=[{json.dumps(agent)}, llm]"), "refuse", root / "run")


@probe("spec: experiment model builtins:exec")
def _(root):
    return Probe(preset_run(root, "llm-dilemmas", "model=builtins:exec"), "refuse", root / "run")


@probe("spec: judge builtins:exec")
def _(root):
    return Probe(["judge-eval", "--judge", "builtins:exec", "--data", str(labelled(root)), "--text-field", "text",
                  "--label-field", "label", "--out", str(root / "run")], "refuse", root / "run")


# --- paths ---


@probe("path: plots/ symlinked out before report")
def _(root):
    run = finished(root)
    shutil.rmtree(run / "plots")
    (run / "plots").symlink_to(BASE / "outside")
    return Probe(["report", str(run)], "refuse", run)


@probe("path: results.parquet symlinked to /dev/null before report")
def _(root):
    run = finished(root)
    (run / "results.parquet").unlink()
    (run / "results.parquet").symlink_to("/dev/null")
    return Probe(["report", str(run)], "refuse", run)


@probe("path: report.md a FIFO before report")
def _(root):
    run = finished(root)
    plant(run / "report.md", "fifo")
    return Probe(["report", str(run)], "refuse", run)


@probe("path: plots a file before report")
def _(root):
    run = finished(root)
    shutil.rmtree(run / "plots")
    (run / "plots").write_text("not a folder")
    return Probe(["report", str(run)], "refuse", run)


@probe("path: units/ symlinked out before resume")
def _(root):
    run = finished(root)
    shutil.rmtree(run / "units")
    (run / "units").symlink_to(BASE / "outside")
    return Probe(tour(run, extra=("--resume",)), "refuse", run)


@probe("path: suite part symlinked to another run before report")
def _(root):
    (root / "suite.yaml").write_text("kind: suite\nparts:\n  a: {kind: tournament, players: [tft, alld], turns: 3, "
                                     "repetitions: 1}\n")
    prepare(["run", str(root / "suite.yaml"), "--workers", "1", "--no-progress", "--out", str(root / "suite")], root)
    shutil.rmtree(root / "suite" / "a")
    (root / "suite" / "a").symlink_to(FINISHED)
    return Probe(["report", str(root / "suite")], "refuse", root / "suite")


for name, condition in {"../../escaped": "../../escaped", "an absolute path": "{base}/escaped", "..": "..",
                        "a/b": "a/b"}.items():
    def _condition(root, condition=condition):
        conditions = json.dumps({condition.format(base=BASE): {"partners": "reduced"}})
        return Probe(preset_run(root, "weis-ipd", f"conditions={conditions}", "iterations=1"), "refuse", root / "run")
    probe(f"path: weis-ipd condition named {name}")(_condition)


def authors_folder(root: Path) -> Path:
    folder = root / "prompts"
    folder.mkdir()
    (folder / "system_prompt.txt").write_text("You are an AI. Reason in <SCRATCHPAD_REASONING> tags.\n")
    (folder / "requests.jsonl").write_text('{"id": "a", "text": "Tell me a joke."}\n{"id": "b", "text": "A poem."}\n')
    return folder


for name in ("system_prompt.txt", "requests.jsonl", "user_template.txt"):
    def _linked(root, name=name):
        folder = authors_folder(root)
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(outside_secret())
        return Probe(preset_run(root, "peer-goal-guarding", "model=scripted", f"scenario={folder}"), "refuse",
                     root / "run")
    probe(f"path: authors' folder with {name} linked out")(_linked)


for name, requests in {"../ out of the folder": "../../outside/creds.jsonl", "an absolute path": "{secret}"}.items():
    def _scenario(root, requests=requests):
        (root / "sc").mkdir()
        (root / "sc" / "s.yaml").write_text(f"base: default\nrequests: {requests.format(secret=outside_secret())}\n")
        return Probe(preset_run(root, "peer-goal-guarding", "model=scripted", f"scenario={root / 'sc' / 's.yaml'}"),
                     "refuse", root / "run")
    probe(f"path: scenario requests by {name}")(_scenario)


@probe("path: scenario with a too long name")
def _(root):
    return Probe(preset_run(root, "peer-goal-guarding", "model=scripted", f"scenario={root / LONG}.yaml"), "refuse",
                 root / "run")


for damage in ("fifo", "dev-zero", "long name", "deep", "latin-1"):
    def _tasks(root, damage=damage):
        tasks = root / (f"{LONG}.jsonl" if damage == "long name" else "tasks.jsonl")
        if damage != "long name":
            plant(tasks, damage)
        return Probe(preset_run(root, "coral-agreement", f"tasks=[{json.dumps(str(tasks))}]"), "refuse", root / "run")
    probe(f"path: coral tasks file {damage}")(_tasks)

    def _requests(root, damage=damage):
        requests = root / (f"{LONG}.jsonl" if damage == "long name" else "requests.jsonl")
        if damage != "long name":
            plant(requests, damage)
        return Probe(preset_run(root, "peer-goal-guarding", "model=scripted", f"requests_file={requests}"), "refuse",
                     root / "run")
    probe(f"path: goal-guarding requests file {damage}")(_requests)

    def _data(root, damage=damage):
        data = root / (f"{LONG}.jsonl" if damage == "long name" else "d.json")
        if damage != "long name":
            plant(data, damage)
        return Probe(judge_eval(data, root / "run"), "refuse", root / "run")
    probe(f"path: judge-eval data {damage}")(_data)


@probe("path: judge-eval data /dev/zero itself")
def _(root):
    return Probe(judge_eval("/dev/zero", root / "run"), "refuse", root / "run")


# --- tampered run folders ---

for stored in ("summary.json", "config.yaml"):
    for damage in ("garbled", "latin-1", "list", "deep", "dev-zero", "fifo"):
        def _report(root, stored=stored, damage=damage):
            run = finished(root)
            plant(run / stored, damage)
            return Probe(["report", str(run)], "refuse", run)
        probe(f"run folder: {stored} {damage} before report")(_report)

for stored in ("config.yaml", "inputs.json"):
    for damage in ("garbled", "latin-1", "list", "deep", "dev-zero", "fifo"):
        def _resume(root, stored=stored, damage=damage):
            run = finished(root)
            plant(run / stored, damage)
            return Probe(tour(run, extra=("--resume",)), "refuse", run)
        probe(f"run folder: {stored} {damage} before --resume")(_resume)

for command, stored in (("report", "summary.json"), ("report", "config.yaml"), ("--resume", "summary.json"),
                        ("--resume", "config.yaml"), ("--resume", "inputs.json")):
    for damage in ("garbled", "latin-1", "list", "deep", "dev-zero", "fifo"):
        def _part(root, command=command, stored=stored, damage=damage):
            (root / "suite.yaml").write_text(SUITE)
            run = ["run", str(root / "suite.yaml"), "--workers", "1", "--no-progress", "--out", str(root / "suite")]
            prepare(run, root)
            plant(root / "suite" / "t" / stored, damage)
            argv = ["report", str(root / "suite")] if command == "report" else [*run, "--resume"]
            return Probe(argv, "refuse", root / "suite")
        probe(f"run folder: suite part's {stored} {damage} before {command}")(_part)


@probe("run folder: summary.json of another shape before report")
def _(root):
    run = finished(root)
    (run / "summary.json").write_text('{"run": "everything", "ranking": 7}\n')
    return Probe(["report", str(run)], "either", run)


@probe("run folder: config.yaml naming a plug-in that is gone, report")
def _(root):
    run = finished(root)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("- alld", "- gonemodule:Gone"))
    return Probe(["report", str(run)], "either", run)


@probe("run folder: config.yaml naming a plug-in that is gone, --resume")
def _(root):
    run = finished(root)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("- alld", "- gonemodule:Gone"))
    return Probe(tour(run, players="tft,gonemodule:Gone", extra=("--resume",)), "refuse", run)


FORGERIES = ("zero rows", "zero rows, manifest updated", "zero rows, legacy manifest", "half its rows",
             "half its rows, manifest updated", "half its rows, legacy manifest", "a renamed column, manifest updated",
             "garbage parquet", "garbled manifest")

for how in FORGERIES:
    def _forged(root, how=how):
        run = finished(root)
        forge(run, how)
        return Probe(["report", str(run)], "either", run, codes=(0, 1), check=no_rows_lost(run))
    probe(f"chunk: {how}, report")(_forged)

for how in ("zero rows", "zero rows, manifest updated", "zero rows, legacy manifest", "garbled manifest"):
    def _forged_resume(root, how=how):
        run = finished(root)
        forge(run, how)
        expected = rows(FINISHED / "results.parquet")

        def restored(result):
            if result.code == 0 and rows(run / "results.parquet") != expected:
                return "data loss"
            return None
        return Probe(tour(run, extra=("--resume",)), "either", run, check=restored)
    probe(f"chunk: {how}, --resume")(_forged_resume)


@probe("resume: config changed")
def _(root):
    run = finished(root)
    return Probe(tour(run, turns="4", extra=("--resume",)), "refuse", run)


@probe("resume: requests file changed")
def _(root):
    requests = root / "requests.jsonl"
    requests.write_text('{"id": "a", "text": "Tell me a joke."}\n{"id": "b", "text": "A poem."}\n')
    argv = preset_run(root, "peer-goal-guarding", "model=scripted", f"requests_file={requests}")
    prepare(argv, root)
    with requests.open("a") as f:
        f.write('{"id": "c", "text": "Another."}\n')
    return Probe([*argv, "--resume"], "refuse", root / "run")


@probe("resume: authors' folder changed")
def _(root):
    folder = authors_folder(root)
    argv = preset_run(root, "peer-goal-guarding", "model=scripted", f"scenario={folder}")
    prepare(argv, root)
    with (folder / "system_prompt.txt").open("a") as f:
        f.write("Be brief.\n")
    return Probe([*argv, "--resume"], "refuse", root / "run")


# --- judge-eval settings ---

for name, extra in {"bootstrap 10**9": ("--bootstrap", str(10**9)), "seed -1": ("--seed", "-1"),
                    "negative temperature": ("--judge", "model", "--model", "scripted", "--temperature", "-0.5"),
                    "max_tokens 0": ("--judge", "model", "--model", "scripted", "--max-tokens", "0"),
                    "spec with a negative temperature": ("--judge", "af_classifier(temperature=-1)", "--model",
                                                         "scripted"),
                    "spec with max_tokens 0": ("--judge", "af_classifier(max_tokens=0)", "--model", "scripted"),
                    "threshold 2": ("--judge", "model", "--model", "scripted", "--threshold", "2"),
                    "votes 0": ("--judge", "model", "--model", "scripted", "--votes", "0"),
                    "unknown label field": ("--label-field", "nope")}.items():
    probe(f"judge-eval: {name}")(lambda root, extra=extra: Probe(judge_eval(labelled(root), root / "run", *extra),
                                                                "refuse", root / "run"))


@probe("judge-eval: out that is a file")
def _(root):
    data = labelled(root)
    return Probe(judge_eval(data, data), "refuse", root / "run")


@probe("judge-eval: out under /proc")
def _(root):
    return Probe(judge_eval(labelled(root), "/proc/pnyx-sweep/out"), "refuse", root / "run")


for name in ("folder", "not SQLite"):
    def _cache(root, name=name):
        cache = root / "cache.sqlite"
        cache.mkdir() if name == "folder" else cache.write_text("not a database\n")
        return Probe(judge_eval(labelled(root), root / "run", "--judge", "model", "--model", "scripted", "--cache",
                                str(cache)), "refuse", root / "run")
    probe(f"judge-eval: cache that is {name}")(_cache)


@probe("judge-eval: empty data")
def _(root):
    (root / "d.jsonl").write_text("")
    return Probe(judge_eval(root / "d.jsonl", root / "run"), "refuse", root / "run")


# --- misbehaving servers ---

class GarbageServer(ChatServer):
    """Answers every chat with status 200 and a JSON body that is no chat completion."""

    def respond(self, body, authorization):
        return 200, {"unexpected": [1, 2, 3]}, {}


class FailingServer(ChatServer):
    """Answers every chat with status 500."""

    def respond(self, body, authorization):
        return 500, {"error": {"message": "broken"}}, {}


class KeyEchoServer(ChatServer):
    """Answers with the request's API key in its reply text and as the model's name."""

    def respond(self, body, authorization):
        key = (authorization or "").removeprefix("Bearer ")
        return 200, chat_reply(f"I choose C. My key is {key}.", model=key), {}


class ToolKeyEchoServer(ChatServer):
    """Answers a chat with a tool call whose id holds the request's API key, a tool's result with text."""

    def respond(self, body, authorization):
        if body["messages"][-1]["role"] == "tool":
            return 200, chat_reply("Done."), {}
        call = {"id": f"call_{(authorization or '').removeprefix('Bearer ')}", "name": "read_file",
                "arguments": {"path": "notes.txt"}}
        return 200, chat_reply(None, tool_calls=[call], finish_reason="tool_calls"), {}


@probe("server: key echoed in a tool-call id, peer-preservation with a cache")
def _(root):
    server = ToolKeyEchoServer().__enter__()
    argv = preset_run(root, "peer-preservation", f"model=openai:m(base_url='{server.url}')")
    return Probe([*argv, "--cache", str(root / "cache.sqlite")], "run", root / "run", env={"OPENAI_API_KEY": KEY},
                 close=[server])


FAST = ", timeout=2, max_retries=0"
probe("server: key echoed in replies, with a cache")(server_probe(KeyEchoServer(), "", (0,)))
probe("server: drip-feeding one byte a second, timeout 2")(server_probe(DripServer(interval=1.0), FAST))
probe("server: hanging, timeout 2")(server_probe(HangingServer(), FAST))
probe("server: endless body, timeout 2")(server_probe(EndlessServer(), FAST))
probe("server: garbage JSON")(server_probe(GarbageServer(), FAST))
probe("server: status 500")(server_probe(FailingServer(), FAST))


# --- correct runs ---


@probe("control: tournament")
def _(root):
    return Probe(tour(root / "run"), "run", root / "run")


@probe("control: report of a finished run")
def _(root):
    return Probe(["report", str(finished(root))], "run", root / "run")


@probe("control: --resume of a finished run")
def _(root):
    return Probe(tour(finished(root), extra=("--resume",)), "run", root / "run")


@probe("control: judge-eval")
def _(root):
    return Probe(judge_eval(labelled(root), root / "run"), "run", root / "run")


@probe("control: payoffs large but safe")
def _(root):
    return Probe(config_run(root, TOURNAMENT + "payoffs: [1e300, -1e300, 1.4e300, -1.4e300]\n"), "run", root / "run")


def main() -> int:
    global BASE, FINISHED
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per probe (default 60)")
    parser.add_argument("--filter", default="", help="run only probes whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    BASE = Path(tempfile.mkdtemp(prefix="pnyx-sweep-")).resolve()
    (BASE / "outside").mkdir()
    (BASE / "outside" / "creds.jsonl").write_text('{"id": "k", "text": "secret credentials"}\n')
    FINISHED = BASE / "finished"
    prepare(tour(FINISHED), BASE)
    outcomes: dict[str, list[tuple[str, Result]]] = {c: [] for c in CATEGORIES}
    started = time.monotonic()
    try:
        selected = [name for name in PROBES if args.filter in name]
        for i, name in enumerate(selected):
            root = BASE / f"p{i:03d}"
            root.mkdir()
            p = PROBES[name](root)
            before_outside = snapshot(BASE, skip=root)
            before_out = snapshot(p.out, content=True) if p.out else {}
            try:
                result = run_pnyx(p.argv, root, environment(p.env), args.timeout)
            finally:
                for server in p.close:
                    server.__exit__(None, None, None)
            outside_changed = snapshot(BASE, skip=root) != before_outside
            out_changed = bool(p.out) and snapshot(p.out, content=True) != before_out
            category = classify(p, result, outside_changed, holds_key(root) or holds_key(BASE / "outside"),
                                out_changed)
            outcomes[category].append((name, result))
            print(f"[{i + 1:3d}/{len(selected)}] {category:13s} {result.seconds:5.1f}s  {name}", flush=True)
            if category in CLEAN:
                shutil.rmtree(root)
    finally:
        if not args.keep:
            shutil.rmtree(BASE, ignore_errors=True)
    print(f"\n{sum(map(len, outcomes.values()))} probes in {time.monotonic() - started:.0f} s")
    for category in CATEGORIES:
        print(f"{category:14s} {len(outcomes[category]):4d}")
    for category in CATEGORIES:
        if category in CLEAN:
            continue
        for name, result in outcomes[category]:
            last = (result.stderr.strip().splitlines() or [""])[-1][:200]
            print(f"- {category}: {name} (exit {result.code}): {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

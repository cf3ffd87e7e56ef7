"""Opening someone else's files or talking to someone else's server never runs their code,
never reads outside what the user named, never leaks a key, and fails with one line."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from interrupts import popen
from loopback import ChatServer, DripServer, EndlessServer, HangingServer, chat_reply

import pnyx.yaml_safe as yaml_safe
from pnyx.agents.llm import MODELS, CachedModel
from pnyx.agents.llm.openai_model import OpenAIModel
from pnyx.envs import goal_guarding_v0 as gg
from pnyx.errors import PnyxError
from pnyx.experiments.experiment import Experiment, ExperimentConfig, RunOptions, Unit, UnitOutput
from pnyx.experiments.runner import execute

ROOT = Path(__file__).resolve().parent.parent


def chat(text):
    return [{"role": "user", "content": text}]


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --- scenarios, model replies and keys ---


def _folder(tmp_path, files: dict[str, str]) -> Path:
    """A folder ``sc`` under ``tmp_path`` holding ``files`` (``secret/creds.jsonl`` beside it)."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "creds.jsonl").write_text('{"id": "k", "text": "sk-secret-credentials"}\n')
    folder = tmp_path / "sc"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("requests", ["../secret/creds.jsonl", "sub/../../secret/creds.jsonl"])
def test_scenario_requests_may_not_leave_the_folder(tmp_path, requests):
    folder = _folder(tmp_path, {"s.yaml": f"base: default\nrequests: {requests}\n"})
    with pytest.raises(PnyxError) as error:
        gg.load_scenario(str(folder / "s.yaml"))
    assert "leads outside the scenario's folder" in one_line(error)


@pytest.mark.parametrize("line", ["requests: {creds}", "requests: /etc/passwd", "base: {folder}/b.yaml"])
def test_scenario_absolute_paths_are_refused(tmp_path, line):
    line = line.format(creds=tmp_path / "secret" / "creds.jsonl", folder=tmp_path / "sc")
    folder = _folder(tmp_path, {"s.yaml": f"{line}\n", "b.yaml": "base: default\n"})
    with pytest.raises(PnyxError) as error:
        gg.load_scenario(str(folder / "s.yaml"))
    assert "must be a path relative to the scenario's folder" in one_line(error)


def test_scenario_symlinks_out_of_the_folder_are_refused(tmp_path):
    folder = _folder(tmp_path, {"s.yaml": "base: default\nrequests: r.jsonl\n", "b.yaml": "base: link.yaml\n"})
    (folder / "r.jsonl").symlink_to(tmp_path / "secret" / "creds.jsonl")
    (tmp_path / "outside.yaml").write_text("base: default\n")
    (folder / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    for name in ("s.yaml", "b.yaml"):
        with pytest.raises(PnyxError) as error:
            gg.load_scenario(folder / name)
        assert "leads outside the scenario's folder" in one_line(error)


@pytest.mark.parametrize("files, start", [
    ({"x.yaml": "base: x.yaml\n"}, "x.yaml"),
    ({"dotdot.yaml": "base: ../sc/dotdot.yaml\n"}, "dotdot.yaml"),
    ({"a.yaml": "base: sub/b.yaml\n", "sub/b.yaml": "base: ../a.yaml\n"}, "a.yaml"),
    ({"a.yaml": "base: ./sub/../a.yaml\n"}, "a.yaml"),
])
def test_scenario_base_cycles_are_found_by_real_path(tmp_path, files, start):
    folder = _folder(tmp_path, files)
    with pytest.raises(PnyxError) as error:
        gg.load_scenario(str(folder / start))
    assert "inherits from itself through 'base'" in one_line(error) and str(folder) in str(error.value)


def test_scenario_base_names_only_shipped_scenarios(tmp_path):
    folder = _folder(tmp_path, {"s.yaml": "base: ../../../secret/creds\n"})
    with pytest.raises(PnyxError, match="unknown scenario '../../../secret/creds'"):
        gg.load_scenario(folder / "s.yaml")


def test_scenario_nested_relative_paths_inside_the_folder_load(tmp_path):
    folder = _folder(tmp_path, {
        "top.yaml": "base: parts/mid.yaml\nname: top\n",
        "parts/mid.yaml": "base: default\nrequests: ../data/r.jsonl\n",
        "data/r.jsonl": '{"id": "a", "text": "Write a haiku."}\n{"text": "Say hi."}\n',
    })
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "link.yaml").symlink_to(folder / "top.yaml")
    for path in (folder / "top.yaml", elsewhere / "link.yaml"):
        s = gg.load_scenario(str(path))
        assert s.name == "top" and [(r.id, r.text) for r in s.requests] == [("a", "Write a haiku."), ("2", "Say hi.")]
        assert s.system == gg.load_scenario("default").system


def test_scenario_named_by_the_user_may_be_anywhere(tmp_path):
    path = _folder(tmp_path, {"s.yaml": "base: default\nrequests: [Say hi.]\n"}) / "s.yaml"
    assert gg.load_scenario(str(path.resolve())).requests[0].text == "Say hi."


def test_scenario_requests_file_must_be_utf8(tmp_path):
    folder = _folder(tmp_path, {"s.yaml": "base: default\nrequests: r.jsonl\n"})
    (folder / "r.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff"}\n')
    with pytest.raises(PnyxError) as error:
        gg.load_scenario(folder / "s.yaml")
    assert "line 2: not UTF-8" in one_line(error)


BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f'{c}: &{c} [{",".join(["*" + p] * 9)}]\n' for p, c in zip("abcdefgh", "bcdefghi"))


def test_yaml_alias_bomb_is_refused(tmp_path):
    assert len(BOMB) < 1024
    with pytest.raises(PnyxError) as error:
        yaml_safe.load(BOMB, "bomb.yaml")
    assert "YAML aliases" in one_line(error) and one_line(error).startswith("bomb.yaml")
    with pytest.raises(PnyxError, match="too many YAML aliases"):
        yaml_safe.load("a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n", "many.yaml")
    with pytest.raises(PnyxError, match="YAML alias"):
        yaml_safe.load("a: &a [*a]\n", "self.yaml")
    folder = _folder(tmp_path, {"s.yaml": "base: default\n" + BOMB})
    with pytest.raises(PnyxError, match="YAML aliases"):
        gg.load_scenario(folder / "s.yaml")


def test_yaml_safe_load_is_plain_data_and_one_line_errors():
    assert yaml_safe.load(b"\xef\xbb\xbfa: [1, {b: c}]\nd: &x 2\ne: *x\n", "ok") == {"a": [1, {"b": "c"}], "d": 2, "e": 2}
    assert yaml_safe.load("b: &b {x: 1}\nc: {<<: *b, x: 2}\n", "ok") == {"b": {"x": 1}, "c": {"x": 2}}
    for data, message in [
        (b"a: 1\nb: caf\xe9\n", r"^s.yaml is not UTF-8 text \(byte 0xe9 on line 2\)$"),
        ("a: 1\nb: [unclosed\n", r"^s.yaml is not valid YAML \(line 3: .*expected ',' or '\]'"),
        ("a: !!python/object/apply:os.system [echo hi]\n", r"s.yaml is not valid YAML \(line 1: .*constructor"),
        ("a: \x07\n", r"line 1: character #x0007 is not allowed"),
        ("a: 1\n---\nb: 2\n", r"single document"),
        ("[" * 200 + "]" * 200, r"nested too deeply"),
        ("rounds: 5\nseed: 1\nrounds: 50\n", r"^s.yaml: key 'rounds' appears twice in one mapping \(line 3\)$"),
    ]:
        with pytest.raises(PnyxError, match=message) as error:
            yaml_safe.load(data, "s.yaml")
        one_line(error)


def test_model_spec_options_set_timeout_and_retries():
    model = MODELS.make("openai:gpt-4o-mini(timeout=10, max_retries=1, max_concurrency=2)")
    assert (model.model, model.timeout, model.max_retries, model.max_concurrency) == ("gpt-4o-mini", 10, 1, 2)


class EchoServer(ChatServer):
    """Answers each chat with a normal completion that quotes its Authorization header."""

    def respond(self, body, authorization):
        return 200, chat_reply(f"Your header was {authorization}, and the key alone: {authorization[7:]}."), {}


def test_api_key_echoed_in_a_completion_is_redacted(monkeypatch):
    key = "sk-security-test-7f3a9c1e"
    monkeypatch.setenv("PNYX_SECURITY_TEST_KEY", key)
    with EchoServer() as server:
        model = OpenAIModel("m", base_url=server.url, api_key_env="PNYX_SECURITY_TEST_KEY", backoff=0.01)
        replies = [c.text for c in model.complete([chat("a"), chat("b")], max_tokens=64)]
    assert len(replies) == 2
    for reply in replies:
        assert key not in reply and "Your header was Bearer ***" in reply and "the key alone: ***." in reply


def test_api_key_echoed_in_a_tool_call_is_masked_in_the_completion_cache(monkeypatch, tmp_path):
    key = "sk-security-test-cache-81d2"
    monkeypatch.setenv("PNYX_SECURITY_TEST_KEY", key)
    calls = [{"id": key, "name": f"tool_{key}", "arguments": {"note": key}}]
    with ChatServer(lambda chat: calls) as server:
        model = OpenAIModel("m", base_url=server.url, api_key_env="PNYX_SECURITY_TEST_KEY", backoff=0.01)
        cached = CachedModel(model, tmp_path / "cache.sqlite")
        first = cached.complete([chat("a")], max_tokens=8, tools=[{"type": "function"}])
        again = cached.complete([chat("a")], max_tokens=8, tools=[{"type": "function"}])
    assert first == again and len(server.bodies) == 1
    assert key not in repr(first) and first[0].tool_calls[0].id == "***"
    assert all(key.encode() not in f.read_bytes() for f in tmp_path.iterdir())  # the database and its journal


class BigServer(ChatServer):
    """Answers each chat with ``size`` characters; clients may hang up before they are sent."""

    def __init__(self, size):
        super().__init__()
        self.size = size
        self.httpd.handle_error = lambda request, address: None

    def respond(self, body, authorization):
        return 200, chat_reply("y" * self.size), {}


def test_oversized_replies_are_truncated_or_refused():
    with BigServer(100_000) as server:
        model = OpenAIModel("m", base_url=server.url, backoff=0.01)
        replies = [c.text for c in model.complete([chat("a"), chat("b")], max_tokens=8)]
        assert replies == ["y" * 4096] * 2 and model.truncated_replies == 2
        assert model.complete([chat("a")], max_tokens=1000)[0].text == "y" * 32_000 and model.truncated_replies == 3
    with BigServer(5_000_000) as server:
        model = OpenAIModel("m", base_url=server.url, backoff=0.01)
        with pytest.raises(PnyxError) as error:
            model.complete([chat("a")] * 4, max_tokens=8)
        assert "sent a chat completion over 1048576 bytes for max_tokens=8" in one_line(error)


def test_endless_reply_is_not_read_to_its_end():
    with EndlessServer() as server:
        model = OpenAIModel("m", base_url=server.url, backoff=0.01)
        with pytest.raises(PnyxError, match="over 1048576 bytes"):
            model.complete([chat("a")] * 4, max_tokens=8)
        time.sleep(0.2)
        assert server.sent < 64 * 2**20


def test_a_server_dripping_its_reply_byte_by_byte_cannot_outlast_the_timeout():
    with DripServer() as server:
        model = OpenAIModel("m", base_url=server.url, timeout=2, max_retries=0)
        with pytest.raises(PnyxError, match=r"took over timeout=2 s to send one reply"):
            model.complete([chat("a")], max_tokens=8)
        assert 0 < server.sent < 1000  # it was still dripping when the request ended


CLIENT = textwrap.dedent("""
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.argv[3] == "SIGTERM":
        def interrupt(signum, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, interrupt)
    from pnyx.agents.llm.openai_model import OpenAIModel
    model = OpenAIModel("m", base_url=sys.argv[1], max_concurrency=int(sys.argv[2]), timeout=3600,
                        max_retries=5, backoff=0.01)
    try:
        model.complete([[{"role": "user", "content": f"prompt {i}"}] for i in range(4)])
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")


@pytest.mark.parametrize("concurrency, sig", [(2, "SIGINT"), (1, "SIGTERM"), (8, "SIGINT")])
def test_interrupt_stops_a_call_waiting_on_a_hung_server(concurrency, sig):
    with HangingServer() as server:
        client = popen([sys.executable, "-c", CLIENT, server.url, str(concurrency), sig], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert server.wait_for(min(concurrency, 4), timeout=600)
            seen = server.requests
            client.send_signal(getattr(signal, sig))
            out, err = client.communicate(timeout=600)  # a hang: the hung requests time out after an hour
            assert client.returncode == 130 and out.strip() == "interrupted", err
            assert not server.wait_for(seen + 1, timeout=0.5)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()


# --- specs, configs and run folders ---


EVIL = "from pathlib import Path\nPath(__file__).with_name('imported').touch()\n\nclass Evil:\n    def reset(self, seed=None): ...\n    def act(self, observation): return 0\n"


@pytest.mark.parametrize("spec", ["builtins:exec('open(1)')", "os:system('touch pwned')", "os:abort",
                                  "subprocess:call(['touch', 'pwned'])", "random(__import__('os').system('touch pwned'))"])
def test_a_config_spec_never_runs_code(tmp_path, monkeypatch, capsys, spec):
    from pnyx.experiments.cli import main

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "evil.yaml"
    config.write_text(yaml.safe_dump({"kind": "tournament", "players": ["tft", spec], "turns": 2}))
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pnyx: error: ") and "Traceback" not in err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_report_on_a_crafted_folder_imports_nothing(tmp_path, monkeypatch):
    from pnyx.experiments.cli import main

    (tmp_path / "evilmod.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"kind": "tournament", "players": ["tft", "evilmod:Evil"]}))
    main(["report", str(run)])
    assert not (tmp_path / "imported").exists()
    assert "evilmod" not in sys.modules


def test_report_of_a_finished_run_imports_no_plug_in(tmp_path):
    """A run with a plug-in policy, then its report rebuilt in a fresh process without the plug-in."""
    (tmp_path / "evilmod.py").write_text(EVIL)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    cli = [sys.executable, "-m", "pnyx.experiments.cli"]
    run = tmp_path / "run"
    done = subprocess.run([*cli, "tournament", "--players", "tft,evilmod:Evil", "--turns", "3", "--workers", "1",
                           "--no-progress", "--out", str(run)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    (tmp_path / "imported").unlink()
    (run / "report.md").unlink()
    done = subprocess.run([*cli, "report", str(run)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert (run / "report.md").exists() and not (tmp_path / "imported").exists()


@pytest.mark.parametrize("override, message", [
    ("seed=-1", "invalid config field 'seed'"),
    ("players=[tft, 'memory_one(0.5)']", "missing 4 required positional arguments"),
    ("payoffs=[.inf, 0, 5, 1]", "finite number"),
    ("payoffs=[[1, 2], [3, 4], [5, 6]]", "'payoffs"),
    ("evolution={generations: 10, dt: .nan}", "finite number"),
    ("players=[" + ", ".join(f"'random_memory_one({i})'" for i in range(500)) + "]", "raise it with --set max_units=N"),
])
def test_bad_numbers_and_sizes_fail_at_validation(tmp_path, capsys, override, message):
    from pnyx.experiments.cli import main

    config = tmp_path / "t.yaml"
    config.write_text("kind: tournament\nplayers: [tft, alld]\nturns: 2\n")
    assert main(["run", str(config), "--set", override, "--out", str(tmp_path / "out"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_seed_and_absurd_ratios_from_the_command_line(tmp_path, capsys):
    from pnyx.experiments.cli import main

    assert main(["run", "network-cooperation", "--seed", "-1", "--out", str(tmp_path / "a")]) == 2
    assert main(["run", "network-cooperation", "--set", "benefit_cost_ratios=[1e308]", "--out", str(tmp_path / "b")]) == 2
    assert main(["run", "network-cooperation", "--set", "benefit_cost_ratios=[.inf]", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("pnyx: error: invalid config field") for line in err)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_alias_bomb_and_undecodable_config(tmp_path, capsys):
    from pnyx.experiments.cli import main

    bomb = tmp_path / "bomb.yaml"
    layers = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    layers += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb.write_text("kind: tournament\nplayers: [tft]\n" + "\n".join(layers) + "\npayoffs: *a8\n")
    assert main(["run", str(bomb), "--out", str(tmp_path / "o")]) == 2
    assert "YAML aliases" in capsys.readouterr().err
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("kind: tournament\nplayers: [tft]\ndescription: caf\xe9\n".encode("latin-1"))
    assert main(["run", str(latin), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "is not UTF-8 text" in err and err.count("\n") == 1


@pytest.mark.parametrize("content, message", [
    ({"format": "pnyx-sequence-policy/1", "model": {"kind": "gru"}}, "lacks partner_id, state_dict"),
    ({"format": "pnyx-sequence-policy/1", "model": {"kind": "gru", "hidden": 10**9}, "state_dict": {},
      "partner_id": None}, "invalid model spec"),
    ({"format": "pnyx-sequence-policy/1", "model": {"kind": "gru", "hidden": 8}, "state_dict": {},
      "partner_id": None}, "does not fit its model"),
    ({"weights": [1, 2]}, "is not a pnyx sequence policy"),
])
def test_bad_checkpoints_are_one_line_errors(tmp_path, content, message):
    import torch

    from pnyx.agents import policy_factory

    path = tmp_path / "learner.pt"
    torch.save(content, path)
    with pytest.raises(PnyxError, match=message):
        policy_factory(str(path))


def test_units_beyond_max_units_are_refused_before_anything_is_written(tmp_path, capsys):
    from pnyx.experiments.cli import main

    out = tmp_path / "out"
    assert main(["run", "network-cooperation", "--quick", "--set", "max_units=3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "more than max_units=3; raise it with --set max_units=N" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_ray_head_that_does_not_answer_is_one_line(tmp_path):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "pnyx.experiments.cli", "tournament", "--players", "tft,alld",
                           "--turns", "2", "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "out"),
                           "--no-progress"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 2
    assert done.stderr.startswith(f"pnyx: error: no Ray head answers at '127.0.0.1:{port}'")
    assert done.stderr.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("experiment, settings", [
    ("peer-goal-guarding", ["requests=2"]),
    ("coral-agreement", ["episodes=2", "max_turns=2", "conditions={pair: {agents: [llm, llm]}}"]),
])
def test_a_run_waiting_on_a_hung_server_stops_at_once(tmp_path, experiment, settings, sig, workers):
    """Through the CLI and the runner: the signal ends the run with exit 130 and the usual
    line, and no model request is sent after it; one worker runs without Ray."""
    with HangingServer() as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-hung-0123456789"}
        sets = [x for s in ["model=openai:hung(timeout=3600, max_retries=3, max_concurrency=1)", *settings]
                for x in ("--set", s)]
        proc = popen([sys.executable, "-m", "pnyx.experiments.cli", "run", experiment, *sets,
                                 "--workers", str(workers), "--no-progress", "--out", str(tmp_path / "out")],
                                env=env, stderr=subprocess.PIPE, text=True)
        assert server.wait_for(1, timeout=900), "no request reached the server"
        raylets = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "raylet/raylet"], capture_output=True, text=True)
        assert bool(raylets.stdout.split()) == (workers > 1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=600)  # a hang: the hung request times out after an hour
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1].startswith("pnyx: interrupted; finished units are kept")
        assert "Traceback" not in err and "sk-hung" not in err
        assert server.requests == 1  # one request at a time: the one that hung, none after the signal


@pytest.mark.parametrize("override", ["samples_per_request=true", "temperature=false", "bootstrap=true"])
def test_a_bool_is_not_a_number_in_a_config(override):
    from pnyx.experiments.config import resolve

    with pytest.raises(PnyxError, match=r"^invalid config field '\w+': expected a number, got (True|False)$"):
        resolve("peer-goal-guarding", overrides=[override])


# --- paths: pnyx writes only inside the run folder ---


def _tournament_run(out: Path) -> None:
    from pnyx.experiments.cli import main

    assert main(["tournament", "--players", "tft,alld", "--turns", "3", "--repetitions", "1", "--workers", "1",
                 "--no-progress", "--out", str(out)]) == 0


def _snapshot(folder: Path) -> dict:
    """Each file of ``folder`` with its bytes and inode (a file replaced by the same bytes differs)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_ino) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_report_never_writes_through_a_plots_symlink(tmp_path, capsys):
    from pnyx.experiments.cli import main

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    _tournament_run(run)
    elsewhere.mkdir()
    for png in (run / "plots").iterdir():
        png.unlink()
    (run / "plots").rmdir()
    (run / "plots").symlink_to(elsewhere)
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == f"pnyx: error: {str(run / 'plots')!r} leads outside the run folder {str(run)!r}; " \
                  "pnyx writes only inside it\n"
    assert list(elsewhere.iterdir()) == []


def test_report_never_writes_into_another_run_through_a_suite_part(tmp_path, capsys):
    from pnyx.experiments.cli import main

    config = tmp_path / "suite.yaml"
    config.write_text(yaml.safe_dump({"kind": "suite", "parts": {
        "a": {"kind": "tournament", "players": ["tft", "alld"], "turns": 3, "repetitions": 1}}}))
    suite, other = tmp_path / "suite", tmp_path / "other"
    assert main(["run", str(config), "--out", str(suite), "--workers", "1", "--no-progress"]) == 0
    _tournament_run(other)
    before = _snapshot(other)
    for path in sorted((suite / "a").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (suite / "a").rmdir()
    (suite / "a").symlink_to(other)
    capsys.readouterr()
    assert main(["report", str(suite)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{str(suite / 'a')!r} leads outside the run folder {str(suite)!r}" in err
    assert _snapshot(other) == before


def test_resume_never_writes_chunks_through_a_units_symlink(tmp_path, capsys):
    from pnyx.experiments.cli import main

    run, copy, elsewhere = tmp_path / "run", tmp_path / "copy", tmp_path / "elsewhere"
    _tournament_run(run)
    copy.mkdir()
    elsewhere.mkdir()
    for name in ("config.yaml", "inputs.json"):
        (copy / name).write_bytes((run / name).read_bytes())
    (copy / "units").symlink_to(elsewhere)
    capsys.readouterr()
    assert main(["tournament", "--players", "tft,alld", "--turns", "3", "--repetitions", "1", "--workers", "1",
                 "--no-progress", "--out", str(copy), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err == f"pnyx: error: {str(copy / 'units')!r} leads outside the run folder {str(copy)!r}; " \
                  "pnyx writes only inside it\n"
    assert list(elsewhere.iterdir()) == []


def test_report_never_writes_through_a_tmp_file_planted_as_a_symlink(tmp_path):
    from pnyx.experiments.store import atomic_write_text

    target = tmp_path / "victim.txt"
    target.write_text("mine")
    run = tmp_path / "run"
    run.mkdir()
    (run / f".report.md.{os.getpid()}.tmp").symlink_to(target)
    atomic_write_text(run / "report.md", "report")
    assert target.read_text() == "mine" and (run / "report.md").read_text() == "report"


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped", "..", "a/b", ".hidden", ""])
def test_weis_condition_names_are_simple_names(name):
    from pnyx.experiments.config import validate

    with pytest.raises(PnyxError) as error:
        validate({"kind": "weis-ipd", "conditions": {name: {"partners": "reduced"}}})
    assert one_line(error).startswith("invalid config field 'conditions'") and repr(name) in str(error.value)


class _FolderInputs(ExperimentConfig):
    scenario: str
    requests_file: str | None = None
    checkpoint_dir: str | None = None


class _ReadsFolders(Experiment):
    """One unit; its config names input files and folders."""

    name = "reads-folders"
    Config = _FolderInputs

    def units(self, cfg):
        return [Unit("a")]

    def run_unit(self, cfg, unit, seed, ctx):
        return UnitOutput(pd.DataFrame({"n": [1]}), {})

    def summarize(self, cfg, results, records):
        return {"n": int(results["n"].sum())}


@pytest.mark.parametrize("changed", ["system_prompt.txt", "cues/free.txt", "parameters/risk/high.txt",
                                     "requests.jsonl", "~/requests.jsonl", "yaml/r.jsonl"])
def test_resume_refuses_a_changed_file_inside_an_input_folder(tmp_path, monkeypatch, changed):
    """Every file of the authors' prompt folder, a requests file named from ``~`` and a file
    that a scenario YAML names are fingerprinted; a checkpoint folder is not."""
    monkeypatch.setenv("HOME", str(tmp_path))
    prompts = _folder(tmp_path, {"system_prompt.txt": "S {risk}.", "cues/free.txt": "F", "cues/pro.txt": "P",
                                 "parameters/risk/high.txt": "high", "requests.jsonl": '{"text": "A."}\n',
                                 "yaml/s.yaml": "base: default\nrequests: r.jsonl\n", "yaml/r.jsonl": '{"text": "B."}\n'})
    (tmp_path / "requests.jsonl").write_text('{"text": "C."}\n')
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "last.pt").write_bytes(b"1")
    scenario = str(prompts / "yaml" / "s.yaml") if changed.startswith("yaml/") else str(prompts)
    cfg = _FolderInputs(kind="reads-folders", scenario=scenario, requests_file="~/requests.jsonl",
                        checkpoint_dir=str(checkpoints))
    out = tmp_path / "run"
    execute(_ReadsFolders(), cfg, out, options=RunOptions(workers=1, progress=False))
    (checkpoints / "last.pt").write_bytes(b"2")
    execute(_ReadsFolders(), cfg, out, resume=True, options=RunOptions(workers=1, progress=False))
    file = tmp_path / changed[2:] if changed.startswith("~/") else prompts / changed
    file.write_text(file.read_text() + "more\n")
    with pytest.raises(PnyxError) as error:
        execute(_ReadsFolders(), cfg, out, resume=True, options=RunOptions(workers=1, progress=False))
    assert one_line(error).endswith("changed since the run started")
    assert str(file.relative_to(tmp_path)) in str(error.value) or changed in str(error.value)


def test_a_config_naming_an_authors_folder_with_a_file_linked_out_is_refused_when_built(tmp_path):
    from pnyx.experiments.config import resolve

    folder = _folder(tmp_path, {"system_prompt.txt": "S."})
    (folder / "requests.jsonl").symlink_to(tmp_path / "secret" / "creds.jsonl")
    with pytest.raises(PnyxError) as error:
        resolve("peer-goal-guarding", overrides=[f"scenario={folder}"])
    assert "'requests.jsonl' leads outside the scenario's folder" in one_line(error)


@pytest.mark.parametrize("name, plant, message", [
    ("results.parquet", lambda path: path.symlink_to("/dev/null"), "leads outside the run folder"),
    ("report.md", os.mkfifo, "is not a regular file"),
    ("plots", lambda path: path.write_text("not a folder"), "is not a folder"),
])
def test_report_refuses_a_special_file_where_it_writes(tmp_path, capsys, name, plant, message):
    from pnyx.experiments.cli import main

    run = tmp_path / "run"
    _tournament_run(run)
    target = run / name
    if target.is_dir():
        for png in target.iterdir():
            png.unlink()
        target.rmdir()
    else:
        target.unlink()
    plant(target)
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{str(target)!r} {message}" in err

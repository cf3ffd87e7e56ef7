"""Start-up checks: everything a run needs is checked before the run folder is written."""

import json
import threading

import numpy as np
import pytest

from loopback import ChatServer, free_port

import pnyx
from pnyx.agents import POLICIES
from pnyx.errors import PnyxError
from pnyx.experiments.cli import main
from pnyx.experiments.config import validate
from pnyx.experiments.experiment import RunOptions
from pnyx.experiments.runner import execute
from pnyx.experiments.tournament import Tournament


class Generous:
    """Cooperates always (a policy registered by the test module, as a user's script would)."""

    def reset(self, seed=None):
        pass

    def act(self, observation):
        return 0


class Locked(Generous):
    """A policy that cannot travel to another process."""

    lock = threading.Lock()


@pytest.fixture
def policies(monkeypatch):
    """The policy registry, restored after the test."""
    for attr in ("_targets", "_descriptions", "_argument", "_added"):
        monkeypatch.setattr(POLICIES, attr, type(getattr(POLICIES, attr))(getattr(POLICIES, attr)))
    return POLICIES


def tournament_yaml(tmp_path, players):
    path = tmp_path / "t.yaml"
    path.write_text("kind: tournament\nplayers: [" + ", ".join(players) + "]\nturns: 5\nrepetitions: 2\n")
    return str(path)


def test_policy_registered_in_the_driver_reaches_ray_workers(tmp_path, ray_session, policies):
    policies.register("generous", Generous)
    run = pnyx.run(tournament_yaml(tmp_path, ["generous", "tft", "alld"]), out=tmp_path / "run",
                   workers=2, progress=False)
    assert run.summary["run"]["failed"] == 0 and run.summary["run"]["finished"] == 6


def test_registration_that_cannot_reach_the_workers_stops_before_the_run(tmp_path, ray_session, policies):
    policies.register("locked", Locked)
    with pytest.raises(PnyxError, match=r"^node \S+ \(\w{8}\): policy 'locked' registered in this process does not load in a Ray worker"
                                        r".*import path") as e:
        pnyx.run(tournament_yaml(tmp_path, ["locked", "tft"]), out=tmp_path / "run", workers=2, progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_partner_registered_in_the_driver_reaches_weis_rollout_actors(ray_session, policies):
    from pnyx.agents.a2c import BEST_RESPONSE
    from pnyx.population.diverse_partner_training import Trainer, TrainingSpec

    policies.register("generous", Generous)
    spec = TrainingSpec(model={"kind": "gru", "payoffs": [1, -1, 2, 0], "embed": 4, "hidden": 8},
                        a2c=BEST_RESPONSE.model_copy(update={"batch": 8}), partners={"generous": 1, "alld": 1},
                        rounds=3, iterations=2, seed=(3,), shards=2, eval_every=1, eval_games=4, final_eval_games=4)
    curves = []
    for workers in (2, 0):
        trainer = Trainer(spec, workers=workers)
        try:
            curves.append([{k: v for k, v in point.items() if k != "seconds"} for point in trainer.run().curve])
        finally:
            trainer.close()
    assert [p["iteration"] for p in curves[0]] == [0, 1, 2, 2] and curves[0] == curves[1]


def run_cli(tmp_path, *args):
    return main(["run", "llm-dilemmas", "--quick", "--out", str(tmp_path / "run"), "--workers", "1", "--no-progress",
                 *args])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_hosted_model_without_its_key_variable_stops_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert run_cli(tmp_path, "--set", "model=openai:gpt-4o-mini") == 2
    assert "OPENAI_API_KEY is not set" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_named_key_variable_unset_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PNYX_TEST_KEY", raising=False)
    with ChatServer() as server:
        model = f"{{spec: 'openai:m', base_url: '{server.url}', api_key_env: PNYX_TEST_KEY}}"
        assert run_cli(tmp_path, "--set", f"model={model}") == 2
    assert "model: environment variable PNYX_TEST_KEY is not set" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_closed_port_stops_before_anything_is_written(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert run_cli(tmp_path, "--set", f"model=openai:m(base_url='{url}')") == 2
    assert f"nothing answers at {url}" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_live_loopback_server_runs(tmp_path, capsys):
    with ChatServer(lambda chat: "I choose C.") as server:
        assert run_cli(tmp_path, "--set", f"model=openai:m(base_url='{server.url}')") == 0
    assert (tmp_path / "run" / "summary.json").is_file()


def tournament_cli(tmp_path, *args):
    return main(["tournament", "--players", "tft,alld", "--turns", "5", "--repetitions", "1", "--out",
                 str(tmp_path / "run"), "--no-progress", *args])


@pytest.mark.parametrize("address", ["garbage", "127.0.0.1:notaport", "127.0.0.1:99999", "::"])
def test_malformed_address_is_refused_before_anything_is_written(tmp_path, capsys, address):
    assert tournament_cli(tmp_path, "--address", address) == 2
    assert f"--address {address!r} must be HOST:PORT" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_closed_address_is_refused_before_anything_is_written(tmp_path, capsys):
    address = f"127.0.0.1:{free_port()}"
    assert tournament_cli(tmp_path, "--address", address) == 2
    assert f"no Ray head answers at {address!r}" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_cache_that_is_a_folder_is_refused_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "cache").mkdir()
    assert tournament_cli(tmp_path, "--workers", "1", "--cache", str(tmp_path / "cache")) == 2
    assert "is not a file" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_cache_that_is_not_sqlite_is_refused_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "cache.sqlite").write_text("not a database\n")
    assert tournament_cli(tmp_path, "--workers", "1", "--cache", str(tmp_path / "cache.sqlite")) == 2
    assert "is not an SQLite database" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def player_cli(tmp_path, player):
    return main(["tournament", "--players", f"{player},tft", "--turns", "2", "--repetitions", "1", "--workers", "1",
                 "--out", str(tmp_path / "run"), "--no-progress"])


def test_hosted_model_in_a_player_spec_without_its_key_stops_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert player_cli(tmp_path, "llm(model='openai:gpt-4o-mini')") == 2
    assert one_line_error(capsys) == ("pnyx: error: players.0 \"llm(model='openai:gpt-4o-mini')\": environment "
                                      "variable OPENAI_API_KEY is not set; https://api.openai.com/v1 needs its API key "
                                      "there")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("player", ["llm(model=\"openai:m(base_url='{url}')\", persona=cooperative)",
                                    "llm('openai:m(base_url=\"{url}\")')"])
def test_player_spec_whose_model_is_on_a_closed_port_stops_before_anything_is_written(tmp_path, capsys, player):
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert player_cli(tmp_path, player.format(url=url)) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"pnyx: error: players.0 {player.format(url=url)!r}: nothing answers at {url}"), err
    assert not (tmp_path / "run").exists()


def test_free_text_that_looks_like_a_spec_is_not_imported(tmp_path, user_package):
    user_package("sweeppkg", "evil", "from pathlib import Path\nPath(__file__).with_name('imported').touch()\n")
    config = tmp_path / "t.yaml"
    config.write_text("kind: tournament\ndescription: \"sweeppkg.evil:Evil(model='openai:gpt-4o-mini')\"\n"
                      "players: [tft, alld]\nturns: 2\nrepetitions: 1\n")
    run = pnyx.run(str(config), out=tmp_path / "run", workers=1, progress=False)
    assert run.summary["run"]["failed"] == 0
    assert not (tmp_path / "sweeppkg" / "imported").exists()


def coral_cli(tmp_path, *overrides):
    args = [a for o in overrides for a in ("--set", o)]
    return main(["run", "coral-agreement", "--quick", "--out", str(tmp_path / "run"), "--workers", "1",
                 "--no-progress", *args])


@pytest.mark.parametrize("contents, message", [("garbage\n", "not valid JSON"), ('{"x": 1}\n', "unknown field 'x'"),
                                               ("", "holds no tasks"), ("[1, 2]\n", "expected a JSON object")])
def test_task_file_with_bad_contents_is_refused_before_anything_is_written(tmp_path, capsys, contents, message):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(contents)
    assert coral_cli(tmp_path, f"tasks=['{tasks}']") == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["fifo", "dev-zero"])
def test_task_file_that_is_not_a_regular_file_is_refused_before_anything_is_written(tmp_path, capsys, damage):
    from tests.test_hostile_files import plant

    tasks = tmp_path / "tasks.jsonl"
    plant(tasks, damage)
    assert coral_cli(tmp_path, f"tasks=['{tasks}']") == 2
    assert "tasks.jsonl" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_discussant_with_a_model_that_is_not_a_model_is_refused_before_anything_is_written(tmp_path, capsys):
    assert coral_cli(tmp_path, "agents=[\"llm(model='builtins:exec')\", llm]") == 2
    assert "builtins:exec" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_discussant_whose_model_is_on_a_closed_port_stops_before_anything_is_written(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    spec = f"llm(persona=confident, model=\"openai:m(base_url='{url}')\")"
    assert coral_cli(tmp_path, f"conditions={{pair: {{agents: [{json.dumps(spec)}, llm]}}}}") == 2
    err = one_line_error(capsys)
    assert err.startswith(f"pnyx: error: conditions.pair.agents.0 {spec!r}: nothing answers at {url}"), err
    assert not (tmp_path / "run").exists()


class Hungry(Tournament):
    """Asks for more memory than any machine has in one pairing."""

    def run_unit(self, cfg, unit, seed, ctx):
        if unit.key == "tft vs alld":
            np.ones(2**58)
        return super().run_unit(cfg, unit, seed, ctx)


def test_unit_out_of_memory_fails_alone_with_one_line(tmp_path):
    cfg = validate({"kind": "tournament", "players": ["tft", "alld"], "turns": 5, "repetitions": 1})[1]
    summary = execute(Hungry(), cfg, tmp_path / "run", options=RunOptions(workers=1, progress=False))
    assert summary["run"]["failed"] == 1 and summary["run"]["finished"] == 2
    error = summary["run"]["failures"][0]["error"]
    assert error.startswith("out of memory (") and error.endswith("lower the sizes in the config") and "\n" not in error

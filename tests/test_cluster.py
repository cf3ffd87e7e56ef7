"""Running on Ray as on a cluster: shipped user modules, the node pre-flight, one-line Ray
failures, runtime environments, absolute paths, and where units ran."""

import os
import shutil
import socket
from pathlib import Path

import pytest

import pnyx
from pnyx.errors import PnyxError
from pnyx.experiments import runner
from pnyx.experiments.cli import main
from pnyx.experiments.cluster import _probe, absolute_paths, check_runtime_env, ray_failure, runtime_env_option, shipped_modules
from pnyx.experiments.config import validate
from pnyx.experiments.experiment import RunOptions
from pnyx.experiments.inputs import named_modules

ROOT = Path(__file__).resolve().parent.parent
GENEROUS = "class Generous:\n    def reset(self, seed=None):\n        pass\n\n    def act(self, observation):\n        return 0\n"


def tournament_yaml(tmp_path, players):
    path = tmp_path / "t.yaml"
    path.write_text("kind: tournament\nplayers: [" + ", ".join(players) + "]\nturns: 5\nrepetitions: 2\n")
    return str(path)


def test_task_failure_is_its_cause_last_line_without_colour(ray_session):
    @ray_session.remote
    def broken():
        import pnyx_absent_module  # noqa: F401

    with pytest.raises(ray_session.exceptions.RayError) as e:
        ray_session.get(broken.remote())
    assert "\x1b[" in str(e.value)
    assert ray_failure(e.value) == ("ModuleNotFoundError: No module named 'pnyx_absent_module'", False)


def test_system_failure_is_its_first_line_without_colour(ray_session):
    error = ray_session.exceptions.RaySystemError("\x1b[31mnode died\x1b[0m\ntraceback: ...")
    assert ray_failure(error) == ("System error: node died", True)


def test_failed_connection_writes_nothing_into_out(tmp_path, monkeypatch):
    def refuse(workers, address, env=None):
        raise PnyxError(f"cannot start the Ray cluster at {address!r}: Failed to connect")

    monkeypatch.setattr(runner, "start_ray", refuse)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        kind, cfg = validate({"kind": "tournament", "players": ["tft", "alld"], "turns": 2, "repetitions": 1})
        with pytest.raises(PnyxError, match="Failed to connect"):
            runner.execute(kind, cfg, tmp_path / "out", options=RunOptions(address=address, progress=False))
    assert not (tmp_path / "out").exists()


def test_user_package_is_shipped_and_nodes_are_recorded(tmp_path, ray_session, user_package):
    user_package("shipme", "pol", GENEROUS)
    config = tournament_yaml(tmp_path, ["'shipme.pol:Generous'", "tft", "alld"])
    kind, cfg = runner.resolve(config)
    assert named_modules(cfg.model_dump(mode="json")) == ["shipme.pol"]
    assert shipped_modules(cfg.model_dump(mode="json")) == [str(tmp_path / "shipme")]
    run = pnyx.run(config, out=tmp_path / "run", workers=2, progress=False)
    assert run.summary["run"]["failed"] == 0 and run.summary["run"]["finished"] == 6
    provenance = run.summary["provenance"]
    assert provenance["retries"] == 0 and provenance["hosts"] == 1
    [node] = provenance["nodes"]
    assert node["units"] == 6 and node["node"] == ray_session.get_runtime_context().get_node_id()


def test_module_that_does_not_import_on_a_node_stops_the_run_in_one_line(tmp_path, ray_session, user_package):
    user_package("brittle", "pol", f"import os\nif os.getpid() != {os.getpid()}:\n"
                                   f"    raise ImportError(\"No module named 'only_in_driver'\")\n" + GENEROUS)
    with pytest.raises(PnyxError) as e:
        pnyx.run(tournament_yaml(tmp_path, ["'brittle.pol:Generous'", "tft"]), out=tmp_path / "run", workers=2,
                 progress=False)
    [node] = ray_session.nodes()
    assert str(e.value) == (f"node {node['NodeManagerAddress']} ({node['NodeID'][:8]}): module 'brittle.pol' does "
                            f"not import (ImportError: No module named 'only_in_driver'); ship it with --py-modules "
                            f"or --runtime-env, or install it on every node")
    assert not (tmp_path / "run").exists()


def test_probe_names_a_pnyx_version_other_than_the_drivers():
    assert _probe()("0.0.1", [], b"") == (f"pnyx {pnyx.__version__} is installed, the driver runs 0.0.1; "
                                          f"install pnyx 0.0.1 on every node")


def test_runtime_env_paths_are_absolute_against_the_file(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "env.yaml").write_text("py_modules: [mine, 's3://bucket/pkg.zip']\nenv_vars: {A: '1'}\npip: [rich]\n")
    options = RunOptions(runtime_env=str(tmp_path / "env.yaml"))
    assert options.runtime_env == {"py_modules": [str(tmp_path / "mine"), "s3://bucket/pkg.zip"],
                                   "env_vars": {"A": "1"}, "pip": ["rich"]}


@pytest.mark.parametrize("data, message", [
    ({"conda": "env.yml"}, "runtime_env: key 'conda' is not accepted (accepted: py_modules, working_dir, env_vars, pip)"),
    ({"py_modules": ["absent"]}, "runtime_env: 'absent' does not exist"),
    ({"env_vars": {"A": 1}}, "runtime_env: env_vars must map names to strings"),
    (["x"], "runtime_env must be a mapping of py_modules, working_dir, env_vars, pip"),
])
def test_bad_runtime_env_is_one_line(tmp_path, data, message):
    with pytest.raises(PnyxError) as e:
        check_runtime_env(data, "runtime_env", tmp_path)
    assert str(e.value) == message


def test_cli_refuses_an_unknown_runtime_env_key_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "env.yaml").write_text("container: {image: x}\n")
    assert main(["run", "tournament", "--quick", "--out", str(tmp_path / "run"), "--no-progress",
                 "--runtime-env", str(tmp_path / "env.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"pnyx: error: runtime environment {str(tmp_path / 'env.yaml')!r}: key 'container' is not "
                   f"accepted (accepted: py_modules, working_dir, env_vars, pip)")
    assert not (tmp_path / "run").exists()


def test_py_modules_add_to_the_file_and_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b.py").write_text("")
    (tmp_path / "env.yaml").write_text("py_modules: [a]\n")
    assert runtime_env_option("env.yaml", "b.py,a") == {"py_modules": [str(tmp_path / "a"), str(tmp_path / "b.py")]}
    with pytest.raises(PnyxError, match="^--py-modules: 'c.py' does not exist$"):
        runtime_env_option(None, "c.py")


def test_relative_paths_become_absolute_and_names_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.pt").write_bytes(b"")
    (tmp_path / "tft").write_text("")
    ckpt = str(tmp_path / "ckpt" / "a.pt")
    data = {"players": ["ckpt/a.pt", "tft", "learner(path='ckpt/a.pt', n=2)", "learner(path=ckpt/a.pt)",
                        "missing/b.pt"], "nested": {"tasks": "ckpt"}, "turns": 5}
    assert absolute_paths(data) == {
        "players": [ckpt, "tft", f"learner(path='{ckpt}', n=2)", f"learner(path={ckpt})", "missing/b.pt"],
        "nested": {"tasks": str(tmp_path / "ckpt")}, "turns": 5}


def test_input_files_travel_with_the_units_so_no_node_needs_the_drivers_disk(tmp_path):
    from pnyx.agents.sequence import build_net, save_policy
    from pnyx.experiments.cluster import pack_inputs, unpack_inputs
    from pnyx.experiments.inputs import fingerprint

    shared = tmp_path / "driver"
    (shared / "scenarios").mkdir(parents=True)
    scenarios = ROOT / "envs" / "goal_guarding_scenarios"
    for name in ("default.yaml", "default_requests.jsonl"):
        (shared / "scenarios" / name).write_bytes((scenarios / name).read_bytes())
    save_policy(shared / "learner.pt", build_net({"kind": "gru", "payoffs": [3.0, 0.0, 5.0, 1.0], "embed": 8, "hidden": 16}))
    configs = [{"kind": "peer-goal-guarding", "seed": 0, "scenario": str(shared / "scenarios" / "default.yaml")},
               {"kind": "tournament", "seed": 0, "players": [f"{shared / 'learner.pt'}", "tft"], "turns": 3}]
    for config in configs:
        data = validate(config)[1].model_dump(mode="json")
        digests = sorted(fingerprint(data).values())
        packed = pack_inputs(data)
        hidden = shutil.move(shared, tmp_path / "hidden")
        try:
            unsent = {**packed, "files": {path: (digest, real, None) for path, (digest, real, _) in packed["files"].items()}}
            with pytest.raises(PnyxError, match="is not on this node"):
                unpack_inputs(data, unsent)
            moved = unpack_inputs(data, packed, root=tmp_path / "node")
            assert sorted(fingerprint(moved).values()) == digests
            assert all(path.startswith(str(tmp_path / "node")) for path in fingerprint(moved))
            validate(moved)
        finally:
            shutil.move(hidden, shared)


def test_inputs_beyond_the_bound_are_not_packed(tmp_path, monkeypatch):
    from pnyx.experiments import cluster

    (tmp_path / "tasks.jsonl").write_text('{"id": 1}\n' * 100)
    monkeypatch.setattr(cluster, "MAX_SHIPPED_BYTES", 500)
    [(_, _, content)] = cluster.pack_inputs({"tasks": str(tmp_path / "tasks.jsonl")})["files"].values()
    assert content is None


def test_a_checkpoint_player_keeps_its_driver_name_on_ray(tmp_path, ray_session, monkeypatch):
    """The worker reads a copy of ``l.pt`` at another path; rows still name the player ``l.pt``."""
    from pnyx.agents.sequence import build_net, save_policy

    monkeypatch.chdir(tmp_path)
    save_policy(tmp_path / "l.pt", build_net({"kind": "gru", "payoffs": [3.0, 0.0, 5.0, 1.0], "embed": 8, "hidden": 16}))
    config = tournament_yaml(tmp_path, ["tft", "l.pt"])
    on_ray = pnyx.run(config, out=tmp_path / "ray", workers=2, progress=False)
    here = pnyx.run(config, out=tmp_path / "here", workers=1, progress=False)
    assert on_ray.summary["run"]["failed"] == 0 and on_ray.summary["provenance"]["nodes"]
    assert list(on_ray.results["player"].cat.categories) == ["tft", "l.pt"]
    assert on_ray.summary["payoff_matrix"] == here.summary["payoff_matrix"]


def test_worker_names_map_every_changed_string_and_back(tmp_path):
    import pandas as pd

    from pnyx.experiments.cluster import renamed, worker_names

    driver = {"players": ["tft", "l.pt", "learner(path='l.pt')"], "turns": 5}
    worker = {"players": ["tft", "/n/l.pt", "learner(path='/n/l.pt')"], "turns": 5}
    names = worker_names(driver, worker)
    assert names == {"l.pt": "/n/l.pt", "learner(path='l.pt')": "learner(path='/n/l.pt')"}
    assert renamed({"a": "l.pt", "b": ["tft", 1]}, names) == {"a": "/n/l.pt", "b": ["tft", 1]}
    rows = pd.DataFrame({"player": pd.Categorical(["/n/l.pt", "tft"]), "note": ["/n/l.pt", "x"], "v": [1, 2]})
    back = renamed(rows, {worker: name for name, worker in names.items()})
    assert list(back["player"]) == ["l.pt", "tft"] and list(back["note"]) == ["l.pt", "x"]
    assert list(rows["player"]) == ["/n/l.pt", "tft"]

"""A real two-node Ray cluster on loopback, started as the cluster how-to says: token
authentication, a policy from a package that is neither installed nor in the working
directory (pnyx ships it), and one node killed while it runs a unit. The results equal a
one-process run.

Both nodes listen on 127.0.0.2 with ports of their own and a temporary folder of their
own, and are stopped by killing their process groups, never with ``ray stop`` (which would
stop every Ray on the machine). The timeouts only catch a hang.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from pnyx.experiments.cli import main

pytestmark = pytest.mark.slow

HOST = "127.0.0.2"
#: A policy that, on the node started with PNYX_TEST_NODE=doomed, marks that it runs and then
#: waits for ever; the node is killed while it waits, and Ray runs the unit again elsewhere.
POLICY = '''import os
import time
from pathlib import Path


class Patient:
    """Cooperates, then copies the opponent's last move (tit for tat)."""

    def reset(self, seed=None):
        if os.environ.get("PNYX_TEST_NODE") == "doomed":
            Path(os.environ["PNYX_TEST_MARKS"], str(os.getpid())).touch()
            while True:
                time.sleep(1)

    def act(self, observation):
        return 0 if observation in (0, 2) else 1
'''
CONFIG = ("kind: tournament\nplayers: ['shipped.policies:Patient', tft, alld, grim, wsls, random]\n"
          "turns: 50\nrepetitions: 3\n")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def ray_node(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """``ray start ... --block`` in a process group of its own, its own ports, no dashboard."""
    gcs, manager, objects, agent_grpc, agent_http, runtime_env, metrics, client = free_ports(8)
    ray = str(Path(sys.executable).parent / "ray")
    command = [ray, "start", *args, f"--node-ip-address={HOST}", "--num-cpus=1", "--block",
               "--disable-usage-stats",
               f"--node-manager-port={manager}", f"--object-manager-port={objects}",
               f"--dashboard-agent-grpc-port={agent_grpc}", f"--dashboard-agent-listen-port={agent_http}",
               f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}"]
    if "--head" in args:
        command += [f"--ray-client-server-port={client}", "--include-dashboard=false"]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)


def wait_for(what: str, done, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture
def cluster(tmp_path):
    """``(address, env, doomed node)`` of a two-node cluster with a token of its own."""
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "PYTHONPATH": ""}
    env.pop("RAY_ADDRESS", None)
    port = free_ports(1)[0]
    nodes, temp = [], None
    try:
        temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
        nodes.append(ray_node(["--head", f"--port={port}", f"--temp-dir={temp}"], env,
                              tmp_path / "head.log"))
        address = f"{HOST}:{port}"
        wait_for("the head node", lambda: _answers(address))
        marks = tmp_path / "marks"
        marks.mkdir()
        doomed_env = {**env, "PNYX_TEST_NODE": "doomed", "PNYX_TEST_MARKS": str(marks)}
        nodes.append(ray_node([f"--address={address}"], doomed_env, tmp_path / "worker.log"))
        yield address, env, nodes[1], marks
    finally:
        for process in reversed(nodes):
            stop(process)
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def _answers(address: str) -> bool:
    host, port = address.split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def _nodes_alive(address: str, env: dict, n: int) -> bool:
    code = (f"import ray; ray.init(address={address!r}, log_to_driver=False, configure_logging=False); "
            f"print(sum(node['Alive'] for node in ray.nodes()))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    return done.returncode == 0 and done.stdout.strip().endswith(str(n))


def test_a_user_package_runs_on_two_nodes_and_a_killed_node_changes_nothing(cluster, tmp_path):
    address, env, doomed, marks = cluster
    package = tmp_path / "elsewhere" / "shipped"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "policies.py").write_text(POLICY)
    work = tmp_path / "work"
    work.mkdir()
    (work / "t.yaml").write_text(CONFIG)
    wait_for("two alive nodes", lambda: _nodes_alive(address, env, 2))

    driver_env = {**env, "PYTHONPATH": str(tmp_path / "elsewhere")}
    pnyx = str(Path(sys.executable).parent / "pnyx")
    run = subprocess.Popen([pnyx, "run", "t.yaml", "--address", address, "--out", "cluster", "--no-progress"],
                           cwd=work, env=driver_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("a unit on the doomed node", lambda: any(marks.iterdir()) or run.poll() is not None)
        assert run.poll() is None, run.communicate()[1][-2000:]
        stop(doomed)
        _, err = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err[-2000:]

    sys.path.insert(0, str(tmp_path / "elsewhere"))
    try:
        assert main(["run", str(work / "t.yaml"), "--workers", "1", "--no-progress", "--out", str(tmp_path / "local")]) == 0
    finally:
        sys.path.remove(str(tmp_path / "elsewhere"))
        sys.modules.pop("shipped.policies", None)
        sys.modules.pop("shipped", None)
    on_cluster = pd.read_parquet(work / "cluster" / "results.parquet")
    pd.testing.assert_frame_equal(on_cluster, pd.read_parquet(tmp_path / "local" / "results.parquet"))
    import json

    provenance = json.loads((work / "cluster" / "summary.json").read_text())["provenance"]
    assert provenance["retries"] >= 1
    assert {node["address"] for node in provenance["nodes"]} == {HOST}

"""Throughput of many text episodes against a server whose latency is heavy-tailed: lock-step batches against the sliding window.

A loopback OpenAI-compatible server (the test suite's, on 127.0.0.1, in a process of its
own) answers each chat after a delay drawn from a Pareto distribution (shape ``--alpha``, minimum
``--min-latency`` seconds, capped at ``--cap``), seeded by the chat itself, so both
modes meet the same delays. ``--episodes`` episodes of ``--turns`` turns each run
through :func:`pnyx.agents.scheduler.run_episodes` twice in one run: in batches (one
``complete`` call per turn across episodes, the lock-step of earlier drivers) and in the
sliding window of ``--concurrency`` requests. The ideal wall time is the sum of every
request's delay divided by the concurrency; each mode's throughput is reported as the
ideal over its wall time (target for the window: at least 0.9).

    python benchmarks/text_scheduler.py [--episodes 256] [--turns 8] [--concurrency 16]

Record the load average beside the figures; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import RESULTS, write_json  # noqa: E402
from loopback import ChatServer, chat_reply  # noqa: E402

from pnyx.agents.llm import MODELS  # noqa: E402
from pnyx.agents.scheduler import Request, run_episodes, turn_seed  # noqa: E402

TARGET = 0.9


def delay(chat: list[dict], alpha: float, minimum: float, cap: float) -> float:
    """The server's delay before answering ``chat``: Pareto-distributed, seeded by the chat."""
    digest = hashlib.sha256(json.dumps(chat).encode()).digest()
    u = (int.from_bytes(digest[:8], "little") + 0.5) / 2**64
    return min(cap, minimum * u ** (-1 / alpha))


class SlowServer(ChatServer):
    """Answers every chat after its :func:`delay`."""

    def __init__(self, latency: tuple[float, float, float]):
        super().__init__()
        self.latency = latency

    def respond(self, body: dict, authorization: str | None):
        time.sleep(delay(body["messages"], *self.latency))
        return 200, chat_reply("ok", usage=(1, 1)), {}


def serve(latency: tuple[float, float, float], pipe) -> None:
    """Run a :class:`SlowServer` in this (child) process until the pipe closes, so that
    serving takes no CPU time from the process being measured."""
    with SlowServer(latency) as server:
        pipe.send(server.url)
        try:
            pipe.recv()
        except EOFError:
            pass


class Episode:
    """``turns`` turns of one conversation, each chat naming the episode and the turn."""

    def __init__(self, model, k: int, turns: int):
        self.model, self.k, self.turns, self.done = model, k, turns, 0

    def requests(self) -> list[Request]:
        if self.done == self.turns:
            return []
        chat = [{"role": "user", "content": f"episode {self.k}, turn {self.done}"}]
        return [Request(self.model, chat, 16, 1.0, turn_seed(0, self.done))]

    def receive(self, replies) -> None:
        self.done += 1


def measure(model, episodes: int, turns: int, window: bool) -> float:
    """Wall seconds of one mode."""
    started = time.perf_counter()
    failures = run_episodes([Episode(model, k, turns) for k in range(episodes)], window=window)
    wall = time.perf_counter() - started
    assert failures == [None] * episodes
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=1.5)
    parser.add_argument("--min-latency", type=float, default=0.05)
    parser.add_argument("--cap", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "text_scheduler.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    latency = (args.alpha, args.min_latency, args.cap)
    delays = sum(delay([{"role": "user", "content": f"episode {k}, turn {t}"}], *latency)
                 for k in range(args.episodes) for t in range(args.turns))
    ideal = delays / args.concurrency
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(latency, there), daemon=True)
    server.start()
    try:
        url = here.recv()
        model = MODELS.factory(f"openai:bench(base_url={url!r}, max_concurrency={args.concurrency})")()
        report: dict = {"episodes": args.episodes, "turns": args.turns, "concurrency": args.concurrency,
                        "latency": {"distribution": "pareto", "alpha": args.alpha, "minimum_s": args.min_latency,
                                    "cap_s": args.cap}, "ideal_s": round(ideal, 3)}
        for mode, window in (("lock_step", False), ("window", True)):
            wall = measure(model, args.episodes, args.turns, window)
            report[mode] = {"wall_s": round(wall, 3), "fraction_of_ideal": round(ideal / wall, 3)}
    finally:
        here.close()
        server.join(10)
    report["window_over_lock_step"] = round(report["lock_step"]["wall_s"] / report["window"]["wall_s"], 2)
    report["target_window_fraction"] = TARGET
    report["load_average"] = {"before": [round(x, 2) for x in load_before],
                              "after": [round(x, 2) for x in os.getloadavg()]}
    report["cpus"] = os.cpu_count()
    report["cpu"] = platform.processor() or platform.machine()
    write_json(report, args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

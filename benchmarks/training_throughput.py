"""Training throughput of the weis-ipd loop (rollout + A2C update) against the raw batched GRU.

Measured in one run, as agent-steps per second (learner seats x rounds):

* ``raw``: the learner network's forward + backward over a batch of whole episodes,
  the floor cost of any update;
* ``loop``: whole training iterations (rollouts + update) with rollouts in the driver
  (0 workers), on one Ray worker and on two.

Reports ``loop(1 worker) / raw`` (target >= 0.6) and ``loop(2 workers) / loop(1 worker)``.
Writes ``benchmarks/results/training_throughput.{json,md}``.

    python benchmarks/training_throughput.py [--batch 1024] [--rounds 50] [--iterations 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from pnyx.agents.a2c import BEST_RESPONSE
from pnyx.population.partners import PartnerPool
from pnyx.population.diverse_partner_training import Trainer, TrainingSpec

RESULTS = Path(__file__).parent / "results"


def _spec(args) -> TrainingSpec:
    return TrainingSpec(model={"kind": "gru", "payoffs": [1, -1, 2, 0]},
                        a2c=BEST_RESPONSE.model_copy(update={"batch": args.batch}),
                        partners=PartnerPool.parse(args.partners).mix,
                        rounds=args.rounds, iterations=args.iterations, seed=(0,), shards=args.shards)


def raw_steps_per_second(spec: TrainingSpec, rows: int, repeats: int) -> float:
    trainer = Trainer(spec, workers=0)
    obs = torch.randint(0, 4, (spec.rounds, rows))
    obs[0] = 4
    partner = torch.zeros(rows, dtype=torch.long)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        logits, values = trainer.net.sequence(obs, partner)
        (logits.sum() + values.sum()).backward()
        times.append(time.perf_counter() - start)
    return spec.rounds * rows / min(times[1:])


def loop_steps_per_second(spec: TrainingSpec, workers: int, repeats: int) -> tuple[float, int]:
    trainer = Trainer(spec, workers=workers)
    try:
        trainer.step(0)  # warm-up: actor start, first weights
        times, rows = [], 0
        for i in range(1, repeats + 1):
            start = time.perf_counter()
            batch = trainer.gather(i)
            trainer.a2c.update(*(torch.from_numpy(batch[k]).long() for k in ("obs", "partner", "actions")),
                               torch.from_numpy(batch["rewards"]))
            times.append(time.perf_counter() - start)
            rows = batch["obs"].shape[1]
    finally:
        trainer.close()
    return spec.rounds * rows / min(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per setting (best is kept)")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the learner")
    parser.add_argument("--partners", default="reduced", help="partner pool (reduced: tft, allc, alld)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    spec = _spec(args)
    loop = {}
    for workers in (0, 1, 2):
        loop[workers], rows = loop_steps_per_second(spec, workers, args.iterations)
        print(f"loop, {workers} worker(s): {loop[workers]:.3g} agent-steps/s")
    raw = raw_steps_per_second(spec, rows, args.iterations)
    print(f"raw GRU forward+backward: {raw:.3g} agent-steps/s")
    report = {
        "setting": vars(args) | {"learner_rows": rows, "cpus": os.cpu_count(), "machine": platform.machine(),
                                 "torch": torch.__version__},
        "agent_steps_per_s": {"raw_forward_backward": raw, "loop_in_driver": loop[0], "loop_1_worker": loop[1],
                              "loop_2_workers": loop[2]},
        "ratios": {"loop_1_worker_over_raw": loop[1] / raw, "loop_in_driver_over_raw": loop[0] / raw,
                   "two_workers_over_one": loop[2] / loop[1]},
    }
    print(json.dumps(report["ratios"], indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    s, r = report["agent_steps_per_s"], report["ratios"]
    (RESULTS / "training_throughput.md").write_text(
        f"# Training throughput (weis-ipd)\n\nBatch {args.batch} episodes x {args.rounds} rounds, partners "
        f"{args.partners!r}, learner threads {args.threads}, {os.cpu_count()} CPUs; best of {args.iterations}.\n\n"
        "| measure | agent-steps/s |\n|---|---|\n"
        f"| raw GRU forward+backward | {s['raw_forward_backward']:.3g} |\n"
        f"| loop, rollouts in driver | {s['loop_in_driver']:.3g} |\n"
        f"| loop, 1 Ray worker | {s['loop_1_worker']:.3g} |\n"
        f"| loop, 2 Ray workers | {s['loop_2_workers']:.3g} |\n\n"
        f"loop (1 worker) / raw = **{r['loop_1_worker_over_raw']:.2f}** (target >= 0.6); "
        f"2 workers / 1 worker = **{r['two_workers_over_one']:.2f}**.\n")


if __name__ == "__main__":
    main()

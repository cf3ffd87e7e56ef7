"""Training throughput of the weis-ipd loop (rollout + A2C update) against the raw batched GRU.

Measured in one run, as agent-steps per second (learner seats x rounds):

* ``raw``: the learner network's forward + backward over a batch of whole episodes,
  the floor cost of any update;
* ``loop``: whole training iterations (rollouts + update) with rollouts in the driver
  (0 workers), on one Ray worker and on two (CPU only);
* with ``--device cuda`` (or ``auto`` on a machine with CUDA): raw and the in-driver loop
  on the GPU;
* ``grouped``: ``--seeds`` seeds at a small batch (``--grouped-batch``) trained as one
  batched model (``seed_batch``, :mod:`pnyx.population.grouped_training`), eager and with
  ``compile``, against the same seeds trained one after another in the driver.

Reports ``loop(in driver) / raw`` (target >= 0.8), ``loop(2 workers) / loop(1 worker)``
and the projected wall time of one seed of the full ``weis-ipd`` preset (all four
conditions at the in-driver loop rate). Writes ``benchmarks/results/training_throughput.{json,md}``.

    python benchmarks/training_throughput.py [--batch 1024] [--rounds 50] [--iterations 5] [--threads 1] [--device cpu]
                                             [--seeds 8] [--grouped-batch 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from pnyx.agents.a2c import BEST_RESPONSE
from pnyx.population.partners import PartnerPool
from pnyx.experiments.config import resolve
from pnyx.population.diverse_partner_training import Trainer, TrainingSpec, resolve_device
from pnyx.population.grouped_training import GroupedTrainer

from common import RESULTS, write_json

def _spec(args, batch: int | None = None, seed: int = 0) -> TrainingSpec:
    partners = PartnerPool.parse(args.partners).mix
    return TrainingSpec(model={"kind": "gru", "payoffs": [1, -1, 2, 0]},
                        a2c=BEST_RESPONSE.model_copy(update={"batch": batch or args.batch}), partners=partners,
                        rounds=args.rounds, iterations=args.iterations, seed=(seed,), shards=args.shards,
                        learners=2 if "learner" in partners else 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed_step(trainer, iteration: int) -> float:
    """Seconds of ``trainer.step(iteration)``, its device synchronised before and after."""
    _sync(trainer.device)
    start = time.perf_counter()
    trainer.step(iteration)
    _sync(trainer.device)
    return time.perf_counter() - start


def driver_steps_per_second(spec: TrainingSpec, repeats: int, device: str) -> tuple[float, float]:
    """The in-driver loop and the raw forward + backward of the same batch, timed in turns
    (one iteration, then one raw pass, ``repeats`` times) so both see the same machine
    load; best of each."""
    trainer = Trainer(spec, workers=0, device=device)
    rows = spec.a2c.batch * spec.learners
    obs = torch.randint(0, 4, (spec.rounds, rows), device=trainer.device)
    obs[0] = 4
    trainer.step(0)  # warm-up
    loop, raw = [], []
    for i in range(1, repeats + 1):
        loop.append(_timed_step(trainer, i))
        start = time.perf_counter()
        logits, values = trainer.net.sequence(obs, None)
        (logits.sum() + values.sum()).backward()
        _sync(trainer.device)
        raw.append(time.perf_counter() - start)
    steps = spec.rounds * rows
    return steps / min(loop), steps / min(raw)


def loop_steps_per_second(spec: TrainingSpec, workers: int, repeats: int, device: str = "cpu") -> tuple[float, int]:
    trainer = Trainer(spec, workers=workers, device=device)
    try:
        trainer.step(0)  # warm-up: actor start, first weights
        times, rows = [], 0
        for i in range(1, repeats + 1):
            times.append(_timed_step(trainer, i))
            rows = spec.a2c.batch * spec.learners
    finally:
        trainer.close()
    return spec.rounds * rows / min(times), rows


def grouped_steps_per_second(args, device: str) -> tuple[float, float, float, float]:
    """Agent-steps/s of ``args.seeds`` seeds as one batched model, eager and with its step
    compiled (and the seconds of the first, compiling, iteration), and of the same seeds
    trained one after another in the driver (each seed's best iteration, summed)."""
    specs = [_spec(args, args.grouped_batch, seed) for seed in range(args.seeds)]
    steps = args.seeds * specs[0].learners * args.grouped_batch * args.rounds
    rates, first = [], 0.0
    for compile in (False, True):
        grouped = GroupedTrainer(specs, device=device, compile=compile)
        start = time.perf_counter()
        grouped.step(0)  # warm-up (compilation)
        first = time.perf_counter() - start
        times = [_timed_step(grouped, i) for i in range(1, args.iterations + 1)]
        rates.append(steps / min(times))
    separate = 0.0
    for spec in specs:
        trainer = Trainer(spec, workers=0, device=device)
        trainer.step(0)
        separate += min(_timed_step(trainer, i) for i in range(1, args.iterations + 1))
    return rates[0], rates[1], first, steps / separate


def full_preset_steps() -> float:
    """Learner agent-steps of one seed of the full weis-ipd preset, all conditions."""
    _, cfg = resolve("weis-ipd")
    return sum(c.learner_count() * (c.a2c or cfg.a2c).batch * cfg.rounds * (c.iterations or cfg.iterations)
               for c in cfg.conditions.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per setting (best is kept)")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the learner")
    parser.add_argument("--partners", default="reduced", help="partner pool (reduced: tft, allc, alld)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray worker settings")
    parser.add_argument("--seeds", type=int, default=8, help="seeds of the grouped measure")
    parser.add_argument("--grouped-batch", type=int, default=64, help="episodes per learner in the grouped measure")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    spec = _spec(args)
    loop = {}
    loop["in_driver"], raw = driver_steps_per_second(spec, args.iterations, device)
    print(f"loop, in the driver on {device}: {loop['in_driver']:.3g} agent-steps/s")
    print(f"raw GRU forward+backward on {device}: {raw:.3g} agent-steps/s")
    rows = spec.a2c.batch * spec.learners
    if not args.no_ray:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        for workers, key in ((1, "1_ray_worker"), (2, "2_ray_workers")):
            loop[key], _ = loop_steps_per_second(spec, workers, args.iterations, device)
            print(f"loop, {key.replace('_', ' ')}: {loop[key]:.3g} agent-steps/s")
    grouped, compiled, compile_s, separate = grouped_steps_per_second(args, device)
    print(f"{args.seeds} seeds at batch {args.grouped_batch}: {grouped:.3g} agent-steps/s as one batched model, "
          f"{compiled:.3g} with its step compiled (first iteration {compile_s:.0f} s), {separate:.3g} one after another")
    projected = full_preset_steps() / loop["in_driver"]
    report = {
        "setting": vars(args) | {"device": device, "learner_rows": rows, "cpus": os.cpu_count(),
                                 "machine": platform.machine(), "torch": torch.__version__,
                                 "gpu": torch.cuda.get_device_name() if device == "cuda" else None},
        "agent_steps_per_s": {"raw_forward_backward": raw, **{f"loop_{k}": v for k, v in loop.items()},
                              "grouped_seeds": grouped, "grouped_seeds_compiled": compiled, "separate_seeds": separate},
        "compile_seconds": compile_s,
        "ratios": {"loop_in_driver_over_raw": loop["in_driver"] / raw, "grouped_over_separate": grouped / separate,
                   "compiled_over_grouped": compiled / grouped}
        | ({"two_workers_over_one": loop["2_ray_workers"] / loop["1_ray_worker"]} if "2_ray_workers" in loop else {}),
        "full_preset_hours_per_seed": projected / 3600,
    }
    print(json.dumps(report["ratios"] | {"full_preset_hours_per_seed": report["full_preset_hours_per_seed"]}, indent=2))
    name = "training_throughput" + ("" if device == "cpu" else f"_{device}")
    write_json(report, RESULTS / f"{name}.json")
    lines = [f"# Training throughput (weis-ipd, {device})", "",
             f"Batch {args.batch} episodes x {args.rounds} rounds, partners {args.partners!r}, learner threads "
             f"{args.threads}, {os.cpu_count()} CPUs; best of {args.iterations}.", "",
             "| measure | agent-steps/s |", "|---|---|",
             f"| raw GRU forward+backward | {raw:.3g} |"]
    lines += [f"| loop, {k.replace('_', ' ')} | {v:.3g} |" for k, v in loop.items()]
    lines += [f"| {args.seeds} seeds at batch {args.grouped_batch}, one batched model | {grouped:.3g} |",
              f"| the same, step compiled (first iteration {compile_s:.0f} s) | {compiled:.3g} |",
              f"| {args.seeds} seeds at batch {args.grouped_batch}, one after another | {separate:.3g} |"]
    lines += ["", f"loop (in driver) / raw = **{report['ratios']['loop_in_driver_over_raw']:.2f}** (target >= 0.8); "
              f"one seed of the full weis-ipd preset at this rate: **{report['full_preset_hours_per_seed']:.3g} "
              "hours**; seeds as one batched model / one after another = "
              f"**{report['ratios']['grouped_over_separate']:.2f}**, compiled / eager = "
              f"**{report['ratios']['compiled_over_grouped']:.2f}**."]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

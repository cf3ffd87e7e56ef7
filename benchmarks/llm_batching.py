"""LLM agent turns per second on the embedded model: one batch of 16 vs one turn at a time.

Both modes generate the same 16 discussion turns (greedy, so the same text) in one
run; the report gives turns and generated tokens per second and their ratio
(target: batched >= 4x). Also times loading the cached embedded model.

    python benchmarks/llm_batching.py [--batch 16] [--max-tokens 64] [--threads N]

On a CPU shared with other busy processes pass ``--threads 1``: torch's threads
then wait on each other at every op, and batched decoding suffers most.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pnyx.agents.llm import MODELS

PERSONAS = ["confident", "deferential", "careful", "curious"]


def agent_turns(n: int) -> list[list[dict]]:
    """``n`` distinct discussion turns of different lengths, as an environment would batch them."""
    turns = []
    for i in range(n):
        a, b = 17 + 7 * i, 23 + 11 * i
        peers = "\n".join(f"Agent {j}: I think the answer is {a + b + j - 1}." for j in range(i % 4))
        turns.append(
            [
                {"role": "system", "content": f"You are a {PERSONAS[i % 4]} agent solving a problem with peers."},
                {
                    "role": "user",
                    "content": f"Question: what is {a} + {b}?\n{peers}\n"
                    "Explain your reasoning step by step, then end with 'ANSWER: <number>'.",
                },
            ]
        )
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llm_batching.json")
    args = parser.parse_args()

    start = time.perf_counter()
    model = MODELS.make("embedded", batch_size=args.batch, threads=args.threads)
    load_s = time.perf_counter() - start
    turns = agent_turns(args.batch)
    model.complete(turns[:2], max_tokens=4)  # warm-up

    start = time.perf_counter()
    batched = model.complete(turns, max_tokens=args.max_tokens)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = [model.complete([turn], max_tokens=args.max_tokens)[0] for turn in turns]
    single_s = time.perf_counter() - start

    tokens = sum(len(model.tokenizer(reply, add_special_tokens=False)["input_ids"]) for reply in single)
    report = {
        "model": model.name,
        "device": model.device,
        "torch_threads": torch.get_num_threads(),
        "turns": len(turns),
        "max_tokens": args.max_tokens,
        "generated_tokens": tokens,
        "same_text_batched_and_single": batched == single,
        "load_s": round(load_s, 2),
        "batched_s": round(batched_s, 2),
        "single_s": round(single_s, 2),
        "batched_turns_per_s": round(len(turns) / batched_s, 3),
        "single_turns_per_s": round(len(turns) / single_s, 3),
        "batched_tokens_per_s": round(tokens / batched_s, 1),
        "single_tokens_per_s": round(tokens / single_s, 1),
        "speedup": round(single_s / batched_s, 2),
        "target_speedup": 4.0,
    }
    report["meets_target"] = report["speedup"] >= report["target_speedup"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"example turn: {batched[0]!r}")


if __name__ == "__main__":
    main()

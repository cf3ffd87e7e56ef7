"""Generated tokens per second of the embedded model through transformers and llama.cpp, one prompt at a time and at batch 16.

Every backend answers the same 16 discussion turns (greedy) twice in one run: one
``complete`` call per turn, then one call with all of them. Tokens are the backends'
own ``completion_tokens`` counts. The report gives tokens/s and the ratios: llama.cpp
over transformers one prompt at a time (target: at least 3x; the Q4 GGUF runs natively
instead of de-quantised to float32) and batch 16 over one at a time for each backend
(target: at least 4x for the backend that batches, transformers; llama-cpp-python
decodes one sequence at a time, so its batch is a loop).

    python benchmarks/llm_backends.py [--backends transformers,llamacpp] [--turns 16] [--max-tokens 64] [--threads N]

On a CPU shared with other busy processes pass ``--threads 1``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pnyx.agents.llm import MODELS, complete

from common import RESULTS, write_json

PERSONAS = ["confident", "deferential", "careful", "curious"]
SPECS = {"transformers": "embedded", "llamacpp": "llamacpp:embedded"}
TARGETS = {"llamacpp_over_transformers_batch_1": 3.0, "transformers_batch_16_over_batch_1": 4.0}


def agent_turns(n: int) -> list[list[dict]]:
    """``n`` distinct discussion turns of different lengths, as an environment would batch them."""
    turns = []
    for i in range(n):
        a, b = 17 + 7 * i, 23 + 11 * i
        peers = "\n".join(f"Agent {j}: I think the answer is {a + b + j - 1}." for j in range(i % 4))
        system = f"You are a {PERSONAS[i % 4]} agent solving a problem with peers."
        question = (f"Question: what is {a} + {b}?\n{peers}\n"
                    "Explain your reasoning step by step, then end with 'ANSWER: <number>'.")
        turns.append([{"role": "system", "content": system}, {"role": "user", "content": question}])
    return turns


def measure(backend: str, turns: list, max_tokens: int, threads: int | None) -> dict:
    start = time.perf_counter()
    options = {"batch_size": len(turns)} if backend == "transformers" else {}
    model = MODELS.make(SPECS[backend], threads=threads, **options)
    load_s = time.perf_counter() - start
    complete(model, turns[:2], max_tokens=4)  # warm-up
    start = time.perf_counter()
    single = [complete(model, [turn], max_tokens=max_tokens)[0] for turn in turns]
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = complete(model, turns, max_tokens=max_tokens)
    batched_s = time.perf_counter() - start
    return {
        "model": model.name,
        "load_s": round(load_s, 2),
        "batch_1": {"seconds": round(single_s, 2), "tokens": sum(c.completion_tokens for c in single),
                    "tokens_per_s": round(sum(c.completion_tokens for c in single) / single_s, 1)},
        f"batch_{len(turns)}": {"seconds": round(batched_s, 2), "tokens": sum(c.completion_tokens for c in batched),
                                "tokens_per_s": round(sum(c.completion_tokens for c in batched) / batched_s, 1)},
        "same_text_batched_and_single": [c.text for c in batched] == [c.text for c in single],
        "truncated": sum(c.truncated for c in single),
        "example": single[0].text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="transformers,llamacpp")
    parser.add_argument("--turns", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per backend (default: the backend's)")
    parser.add_argument("--out", type=Path, default=RESULTS / "llm_backends.json")
    args = parser.parse_args()

    turns = agent_turns(args.turns)
    batch = f"batch_{args.turns}"
    report = {"turns": args.turns, "max_tokens": args.max_tokens, "threads": args.threads, "backends": {}}
    for backend in args.backends.split(","):
        report["backends"][backend] = measure(backend, turns, args.max_tokens, args.threads)
    speed = {name: {k: r[k]["tokens_per_s"] for k in ("batch_1", batch)} for name, r in report["backends"].items()}
    ratios = {f"{name}_{batch}_over_batch_1": round(s[batch] / s["batch_1"], 2) for name, s in speed.items()}
    if {"transformers", "llamacpp"} <= set(speed):
        for k in ("batch_1", batch):
            ratios[f"llamacpp_over_transformers_{k}"] = round(speed["llamacpp"][k] / speed["transformers"][k], 2)
    report["ratios"] = ratios
    report["targets"] = {k: {"target": v, "met": ratios[k] >= v} for k, v in TARGETS.items() if k in ratios}
    write_json(report, args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""vLLM's offline engine in-process: ``vllm:MODEL``, on a GPU machine.

An optional extra (``pip install 'pnyx[vllm]'``), imported only when this backend is
built. ``MODEL`` is anything ``vllm.LLM(model=...)`` takes (a local folder, or a hub id
where the machine may download). One ``complete`` call is one ``LLM.chat`` call over
all its chats, which vLLM schedules as one continuous batch. ``temperature=0`` is
greedy decoding; otherwise each chat gets its own ``SamplingParams(seed=...)``, the
seeds drawn from ``numpy.random.SeedSequence(seed)`` one per position in the batch
(fresh ones when ``seed`` is ``None``), so replies repeat whatever else the engine
runs. Replies are :class:`~pnyx.agents.llm.protocol.Completion` objects with vLLM's
finish reason and token counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pnyx.agents.llm.protocol import Chat, Completion
from pnyx.errors import PnyxError

INSTALL = "pip install 'pnyx[vllm]'"


class VLLMModel:
    """A chat model on vLLM's offline ``LLM``.

    ``stop`` and ``top_p`` apply to every request; any other option is passed to
    ``vllm.LLM`` (e.g. ``vllm:Qwen/Qwen2.5-0.5B-Instruct(gpu_memory_utilization=0.5, max_model_len=4096)``).
    """

    def __init__(self, model: str, *, stop: str | list[str] | None = None, top_p: float = 1.0, **engine: Any):
        try:
            from vllm import LLM
        except ImportError:
            raise PnyxError(f"the vllm backend needs vLLM: {INSTALL} (on a machine with a GPU)") from None
        self.model = model
        self.sampling = {"top_p": top_p, "stop": stop}
        options = ", ".join(f"{k}={v!r}" for k, v in (("stop", stop), ("top_p", top_p)) if v and v != 1.0)
        self.name = f"vllm:{model}" + (f"({options})" if options else "")
        try:
            self.llm = LLM(model=model, **engine)
        except TypeError as e:
            raise PnyxError(f"vllm:{model}: bad engine options ({e})") from None

    def complete(
        self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> list[Completion]:
        from vllm import SamplingParams

        if not prompts:
            return []
        seeds = [None] * len(prompts)
        if temperature > 0:
            seeds = np.random.SeedSequence(seed).generate_state(len(prompts)).tolist()
        params = [SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=s, **self.sampling) for s in seeds]
        outputs = self.llm.chat(prompts, params, use_tqdm=False)
        replies = []
        for output in outputs:
            first = output.outputs[0]
            replies.append(Completion(first.text.strip(), first.finish_reason, len(output.prompt_token_ids),
                                      len(first.token_ids), self.name))
        return replies

    def __repr__(self) -> str:
        return f"VLLMModel({self.model!r})"

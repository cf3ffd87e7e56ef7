"""A model per role: how an experiment's config names the model behind each role.

Every config field that names a model (``model``, ``judge_model``, ``extractor_model``,
a peer's model, ...) takes either a model spec string (grammar: :mod:`pnyx.specs`) or a
mapping::

    judge_model:
      spec: openai:gpt-4o-mini
      base_url: http://127.0.0.1:8000/v1     # backend options, passed to the backend
      api_key_env: JUDGE_API_KEY
      max_concurrency: 16
      timeout_s: 60
      retries: 3
      options: {top_p: 0.9, stop: ["</answer>"]}
      cache: runs/judge-cache.sqlite        # a CachedModel file: reruns and resumes do not pay twice
      temperature: 1.0                      # role-level sampling, overriding the experiment's
      max_tokens: 2048
      prices: {input: 0.15, output: 0.60, cached_input: 0.075}  # USD per million tokens, for the cost estimate

so two roles can use two servers in one run. Backend options become literal keyword
arguments of the spec (``openai:gpt-4o-mini(base_url='http://...', max_concurrency=16)``),
which is how the backend is built and how processes share it.

A unit wraps each role's model in a :class:`RoleModel`, which counts calls, tokens,
truncated replies, input tokens read from and written to a provider's prompt cache, and
replies from a provider's batch API; the unit returns :func:`usage_records` of its roles as
the ``usage`` records, and the runner sums them per model and role into ``summary.json``
(:func:`summarize_usage`), with a cost estimate where prices are given.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any, Callable, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pnyx.agents.llm.cache import CachedModel
from pnyx.agents.llm.protocol import Chat, Completion, LanguageModel, complete, model_identity
from pnyx.agents.llm.registry import check_model_spec, shared_model
from pnyx.specs import parse
from pnyx.strict import checked_when_built

#: Config fields of a role mapping and the backend keyword each becomes.
BACKEND_OPTIONS = {"base_url": "base_url", "api_key_env": "api_key_env", "max_concurrency": "max_concurrency",
                   "timeout_s": "timeout", "retries": "max_retries"}


class Prices(BaseModel):
    """USD per million tokens: ``input`` (uncached input), ``output``, and, where the provider
    prices its prompt cache apart, ``cached_input`` (input read from the cache) and
    ``cache_write`` (input written to it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)


class ModelConfig(BaseModel):
    """One role's model: a spec plus backend options, a cache, sampling and prices."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    spec: str
    base_url: str | None = None
    api_key_env: str | None = None
    max_concurrency: int | None = Field(None, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    retries: int | None = Field(None, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)
    cache: str | None = None
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    prices: Prices | None = None

    @field_validator("spec")
    @classmethod
    def _spec(cls, v: str) -> str:
        parse(v, "model spec")
        return v

    def backend_spec(self) -> str:
        """The spec with every backend option as a literal keyword argument."""
        spec = parse(self.spec, "model spec")
        kwargs = dict(spec.kwargs)
        kwargs.update(self.options)
        kwargs.update({BACKEND_OPTIONS[k]: getattr(self, k) for k in BACKEND_OPTIONS if getattr(self, k) is not None})
        if not kwargs and not spec.args:
            return spec.head
        arguments = [repr(a) for a in spec.args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        return f"{spec.head}({', '.join(arguments)})"


#: The type of a config field naming a model.
ModelField = Union[str, ModelConfig]


def model_config(field: ModelField) -> ModelConfig:
    """``field`` as a :class:`ModelConfig` (a string is a bare spec)."""
    return field if isinstance(field, ModelConfig) else ModelConfig(spec=field)


def check_model_field(field: ModelField) -> ModelField:
    """``field`` if its spec names a model (nothing is built), else a one-line :class:`PnyxError`."""
    check_model_spec(model_config(field).backend_spec())
    return field


#: A config's model field, checked to name a model when the config is built (not when a
#: stored run's config is read back, which imports nothing).
CheckedModelField = Annotated[ModelField, checked_when_built(check_model_field)]


def spec_of(field: ModelField) -> str:
    """The spec a field names, without its options: for reports and transcripts."""
    return model_config(field).spec


class RoleModel:
    """A role's model: applies the role's sampling settings and counts what it used.

    ``complete`` returns :class:`Completion` objects whatever the backend returns; calls
    may come from several threads (:mod:`pnyx.agents.scheduler`). ``max_concurrency`` is
    the backend's. ``cache_reports`` counts the replies whose backend reported prompt-cache
    figures, ``cached_tokens`` and ``cache_write_tokens`` sum them, ``batched`` counts the
    replies from a provider's batch API.
    """

    def __init__(self, model: LanguageModel, role: str, config: ModelConfig):
        self.model, self.role, self.config = model, role, config
        self.name = model_identity(model)
        self.max_concurrency = getattr(model, "max_concurrency", None)
        self.calls = self.requests = self.prompt_tokens = self.completion_tokens = self.truncated = 0
        self.unknown_usage = self.cache_reports = self.cached_tokens = self.cache_write_tokens = self.batched = 0
        self._lock = threading.Lock()

    def complete(self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0,
                 seed: int | None = None, tools: list[dict] | None = None) -> list[Completion]:
        max_tokens = self.config.max_tokens or max_tokens
        temperature = temperature if self.config.temperature is None else self.config.temperature
        replies = complete(self.model, prompts, max_tokens=max_tokens, temperature=temperature, seed=seed, tools=tools)
        with self._lock:
            self.calls += bool(prompts)
            self.requests += len(replies)
            for r in replies:
                self.truncated += r.truncated
                if r.prompt_tokens is None or r.completion_tokens is None:
                    self.unknown_usage += 1
                else:
                    self.prompt_tokens += r.prompt_tokens
                    self.completion_tokens += r.completion_tokens
                    if r.cached_tokens is not None or r.cache_write_tokens is not None:
                        self.cache_reports += 1
                        self.cached_tokens += r.cached_tokens or 0
                        self.cache_write_tokens += r.cache_write_tokens or 0
                self.batched += r.batched
        return replies

    def usage(self) -> dict:
        """This role's counts, as one ``usage`` record: ``model`` is the identity of the model
        that ran (:func:`model_identity`), ``spec`` the spec it was built from. The prompt-cache
        counts are there only when the backend reported cache figures, ``batched_requests``
        only when replies came from a batch API."""
        prices = self.config.prices
        record = {"role": self.role, "model": self.name, "spec": self.config.spec, "calls": self.calls,
                  "requests": self.requests, "prompt_tokens": self.prompt_tokens,
                  "completion_tokens": self.completion_tokens, "truncated": self.truncated,
                  "requests_without_usage": self.unknown_usage,
                  "prices": None if prices is None else prices.model_dump()}
        if self.cache_reports:
            record |= {"cached_prompt_tokens": self.cached_tokens, "cache_write_tokens": self.cache_write_tokens}
        if self.batched:
            record["batched_requests"] = self.batched
        return record

    def __repr__(self) -> str:
        return f"RoleModel({self.role!r}, {self.model!r})"


def role_model(field: ModelField, role: str, models: Callable[[str], LanguageModel] = shared_model, *,
               cache: str | Path | None = None) -> RoleModel:
    """The model behind ``role``: built by ``models`` from the backend spec, wrapped in a
    :class:`CachedModel` when the role (or, as a default, ``cache``) names a cache file."""
    config = model_config(field)
    model = models(config.backend_spec())
    path = config.cache or cache
    if path is not None:
        model = CachedModel(model, path)
    return RoleModel(model, role, config)


def usage_records(roles: list[RoleModel]) -> list[dict]:
    """The ``usage`` records of a unit: one per role that made calls."""
    return [r.usage() for r in roles if r.calls]


#: Usage counts present only where a backend reported them (prompt cache) or used them (batch API).
OPTIONAL_USAGE = ("cached_prompt_tokens", "cache_write_tokens", "batched_requests")


def summarize_usage(records: list[dict]) -> list[dict]:
    """Usage summed per (model, role), with ``cost_usd`` where the role has prices
    (``None`` otherwise, or when some requests reported no token counts).

    Where the backend reported prompt-cache figures, the row also holds
    ``cached_prompt_tokens`` and ``cache_write_tokens`` (both part of ``prompt_tokens``)
    and ``cache_savings_usd``; ``batched_requests`` counts replies from a batch API. Input
    tokens read from or written to the cache cost ``cached_input`` and ``cache_write`` where
    the prices give them, else ``input``; ``cache_savings_usd`` is the cost of every input
    token at ``input`` less ``cost_usd``, ``None`` unless the prices give a price for each
    kind of cache token counted (never a guessed price)."""
    totals: dict[tuple[str, str], dict] = {}
    keys = ("calls", "requests", "prompt_tokens", "completion_tokens", "truncated", "requests_without_usage")
    for rec in records:
        row = totals.setdefault((rec["model"], rec["role"]), {"model": rec["model"], "role": rec["role"],
                                                              **dict.fromkeys(keys, 0), "prices": rec.get("prices")})
        for k in keys:
            row[k] += int(rec.get(k) or 0)
        for k in OPTIONAL_USAGE:
            if k in rec:
                row[k] = row.get(k, 0) + int(rec[k] or 0)
    for row in totals.values():
        prices = row.pop("prices")
        cached, written = row.get("cached_prompt_tokens", 0), row.get("cache_write_tokens", 0)
        full = None
        if prices is None or row["requests_without_usage"]:
            row["cost_usd"] = None
        else:
            output = row["completion_tokens"] * prices["output"]
            full = (row["prompt_tokens"] * prices["input"] + output) / 1e6
            read_price, write_price = (prices["input"] if prices.get(k) is None else prices[k]
                                       for k in ("cached_input", "cache_write"))
            row["cost_usd"] = ((row["prompt_tokens"] - cached - written) * prices["input"] + cached * read_price
                               + written * write_price + output) / 1e6
        if "cached_prompt_tokens" in row or "cache_write_tokens" in row:
            priced = full is not None and (not cached or prices.get("cached_input") is not None) and (
                not written or prices.get("cache_write") is not None)
            row["cache_savings_usd"] = full - row["cost_usd"] if priced else None
    return sorted(totals.values(), key=lambda r: (r["role"], r["model"]))


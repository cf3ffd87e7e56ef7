"""The base of every config and scenario model, and the validation context of a stored run."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Strict(BaseModel):
    """A config model: unknown fields, NaN and infinities are errors; frozen once valid."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def builds_specs(info: ValidationInfo) -> bool:
    """Whether validation may import and try the policies, discussants and models a config
    names: not when rebuilding a report from a stored run, which must run no code."""
    return not (info.context or {}).get("stored", False)

"""The base of every config and scenario model, and the validation context of a stored run."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class Strict(BaseModel):
    """A config model: unknown fields, NaN and infinities are errors; frozen once valid."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def builds_specs(info: ValidationInfo) -> bool:
    """Whether validation may import and try the policies, discussants and models a config
    names: not when rebuilding a report from a stored run, which must run no code."""
    return not (info.context or {}).get("stored", False)


def checked_when_built(check: Callable[[Any], Any]) -> AfterValidator:
    """A field validator (``Annotated[type, checked_when_built(check)]``) that calls
    ``check(value)``, which raises on a bad value, when a config is built; not when a stored
    run's config is read back (:func:`builds_specs`), and never on ``None``."""

    def validate(value, info: ValidationInfo):
        if value is not None and builds_specs(info):
            check(value)
        return value

    return AfterValidator(validate)

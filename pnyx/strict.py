"""The base of every config and scenario model, and the validation context of a stored run."""

from __future__ import annotations

from typing import Any, Callable, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator


def _types(annotation: Any) -> set:
    """Every type named in ``annotation`` (through unions, ``Annotated``, containers)."""
    found = {annotation}
    for arg in get_args(annotation):
        found |= _types(arg)
    return found


class Strict(BaseModel):
    """A config model: unknown fields, NaN and infinities are errors; a bool is not a
    number (``turns: true`` is refused, not read as 1); frozen once valid."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in cls.model_fields:
            named = _types(cls.model_fields[info.field_name].annotation)
            if named & {int, float} and not named & {bool, Any}:
                raise ValueError(f"expected a number, got {value}")
        return value


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

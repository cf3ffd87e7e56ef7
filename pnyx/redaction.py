"""Secrets are never written: API keys and authorization header values are masked in
every text pnyx writes (results, records, reports, errors).

A key is known by the environment variable that holds it (``OPENAI_API_KEY`` always;
backends add the variables they are configured with), so no key value is kept on an
object that could be pickled or printed.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

MASK = "***"
_VARIABLES = {"OPENAI_API_KEY"}
_HEADER = re.compile(r"(?i)\b(authorization|x-api-key|api-key)(\W{1,4})(bearer\s+)?[^\s\"',;}]+")


def watch_variable(name: str) -> None:
    """Mask the value of environment variable ``name`` wherever it would be written."""
    _VARIABLES.add(name)


def redact(text: str) -> str:
    """``text`` with every watched secret and every authorization header value masked."""
    for name in tuple(_VARIABLES):
        value = os.environ.get(name)
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, MASK)
    return _HEADER.sub(lambda m: f"{m[1]}{m[2]}{m[3] or ''}{MASK}", text)


def redact_value(value: Any) -> Any:
    """``value`` with :func:`redact` applied to every string in it (lists, tuples, dicts,
    object arrays); ``value`` itself when nothing changed."""
    if isinstance(value, str):
        masked = redact(value)
        return value if masked == value else masked
    if isinstance(value, (list, tuple)):
        items = [redact_value(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        pairs = [(redact_value(k), redact_value(v)) for k, v in value.items()]
        return value if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items())) else dict(pairs)
    if isinstance(value, np.ndarray) and value.dtype == object:
        items = [redact_value(v) for v in value.flat]
        if all(a is b for a, b in zip(items, value.flat)):
            return value
        masked = np.empty(value.shape, dtype=object)
        masked.flat[:] = items
        return masked
    return value

"""Secrets are never written: API keys and authorization header values are masked in
every text pnyx writes (results, records, reports, errors).

A key is known by the environment variable that holds it (``OPENAI_API_KEY`` always;
backends add the variables they are configured with), so no key value is kept on an
object that could be pickled or printed.
"""

from __future__ import annotations

import os
import re

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

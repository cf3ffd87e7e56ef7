"""The one grammar for naming things in pnyx: policies, discussants, models, environments, experiment kinds.

A spec is one of::

    name                                  a registered name
    name(arg, ..., key=value, ...)        ... with literal arguments
    package.module:Class(...)             an import path, with literal arguments
    backend:rest(...)                     a registered backend taking an argument (models:
                                          ``openai:gpt-4o-mini``, ``transformers:/path/to/model``)

Arguments are Python literals (numbers, strings, ``True``/``False``/``None``, tuples,
lists, dicts); a bare word given as a keyword's value stands for itself as a string
(``llm(persona=confident, model=openai:gpt-4o-mini)``).
Nothing in a spec is evaluated: names, calls and operators are errors. Whether
``a:b`` is a backend with an argument or an import path is decided by the registry
that resolves it (:class:`pnyx.registry.Registry`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from pnyx.errors import PnyxError

_KEY = re.compile(r"^[A-Za-z_]\w*$")
_BARE = re.compile(r"^[A-Za-z_][\w.\-/:]*$")
_HEAD = re.compile(r"^(?P<name>[A-Za-z_][\w.\-]*)(?::(?P<target>[^()\s]*))?$")


@dataclass(frozen=True)
class Spec:
    """A parsed spec: ``name``, the text after its colon (``target``), literal arguments."""

    text: str
    name: str
    target: str | None = None
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def head(self) -> str:
        """``name`` or ``name:target``, without arguments."""
        return f"{self.name}:{self.target}" if self.target is not None else self.name


def parse(text: str, what: str = "spec") -> Spec:
    """Parse ``text``; a :class:`PnyxError` naming the offending token if it is malformed."""
    if not isinstance(text, str):
        raise PnyxError(f"{what} must be a string, got {text!r}")
    spec = text.strip()
    head, paren, rest = spec.partition("(")
    head = head.strip()
    match = _HEAD.match(head)
    if not match:
        raise PnyxError(f"malformed {what} {text!r}")
    args: tuple = ()
    kwargs: dict[str, Any] = {}
    if paren:
        if not rest.endswith(")"):
            raise PnyxError(f"malformed {what} {text!r}: unbalanced parentheses")
        args, kwargs = _arguments(rest[:-1], text, what)
    return Spec(spec, match["name"], match["target"], args, kwargs)


def _arguments(body: str, text: str, what: str) -> tuple[tuple, dict[str, Any]]:
    args: list = []
    kwargs: dict[str, Any] = {}
    if not body.strip():
        return (), {}
    for part in split_list(body, f"arguments of {what} {text!r}"):
        key, eq, value = part.partition("=")
        if eq and _KEY.match(key.strip()) and not value.startswith("="):
            kwargs[key.strip()] = _literal(value.strip(), text, what, bare=True)
        elif kwargs:
            raise PnyxError(f"{what} {text!r}: positional argument {part!r} after a keyword argument")
        else:
            args.append(_literal(part, text, what, bare=False))
    return tuple(args), kwargs


def _literal(token: str, text: str, what: str, bare: bool) -> Any:
    try:
        return ast.literal_eval(token)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        if bare and _BARE.match(token):
            return token
        raise PnyxError(f"{what} {text!r}: argument {token!r} is not a literal") from None


def split_list(text: str, what: str = "spec list") -> list[str]:
    """Split comma-separated specs; commas inside brackets or quotes belong to their spec."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise PnyxError(f"unbalanced {ch!r} in {what} {text!r}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if depth or quote:
        raise PnyxError(f"unbalanced brackets or quotes in {what} {text!r}")
    parts.append(text[start:].strip())
    if any(not p for p in parts):
        raise PnyxError(f"empty spec in {what} {text!r}")
    return parts

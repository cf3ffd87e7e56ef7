"""Reading a file that a user or a run folder gives pnyx: bounded, and one-line errors.

Every reader takes ``what``, a phrase naming the file in errors (such as
``"summary 'runs/x/summary.json'"``), and refuses with a :class:`PnyxError` of one line:
a file that is not a regular file (a FIFO, a device, a symlink to one), one larger than
its limit, text that is not UTF-8, JSON or YAML that is not valid, nests more than
:data:`MAX_DEPTH` levels deep or does not hold the expected top-level type.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Iterable, Iterator

import pnyx.yaml_safe as yaml_safe
from pnyx.errors import PnyxError

#: Default largest file read, in bytes.
MAX_FILE_BYTES = 64 * 2**20
#: Deepest nesting of lists and mappings in a JSON or YAML document.
MAX_DEPTH = yaml_safe.MAX_DEPTH
_TYPE_NAMES = {dict: "an object", list: "a list", str: "text"}


def read_bytes(path: str | Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them."""
    try:
        # Checked before opening (opening a device can act on it) and again once open
        # (without blocking on a FIFO), in case the file was replaced in between.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise PnyxError(f"{what} is not a regular file")
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            opened = os.fstat(f.fileno())
            if not stat.S_ISREG(opened.st_mode):
                raise PnyxError(f"{what} is not a regular file")
            if opened.st_size > limit or len(data := f.read(limit + 1)) > limit:
                raise PnyxError(f"{what} is larger than {_size(limit)}")
    except PnyxError:
        raise
    except OSError as e:
        raise PnyxError(f"{what} cannot be read ({e.strerror or type(e).__name__})") from None
    except ValueError:  # a NUL in the path
        raise PnyxError(f"{what} cannot be read (invalid path)") from None
    return data


def decode(data: bytes, what: str) -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise PnyxError(f"{what} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line})") from None


def read_text(path: str | Path, what: str, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (as :func:`read_bytes`)."""
    return decode(read_bytes(path, what, limit), what)


def parse_json(text: str, what: str, expected: type | None = dict) -> Any:
    """The JSON document ``text``, nested at most :data:`MAX_DEPTH` levels, of type
    ``expected`` (any type when ``None``)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise PnyxError(f"{what} is nested too deeply (limit {MAX_DEPTH} levels)") from None
    except ValueError as e:
        raise PnyxError(f"{what} is not valid JSON ({e})") from None
    check_depth(data, what)
    return _expect(data, what, expected)


def json_lines(lines: Iterable[str], where: str) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of JSON Lines text; a bad line is a
    one-line error ``where:N: ...``."""
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            try:
                value = json.loads(line)
            except RecursionError:
                raise PnyxError(f"{where}:{lineno}: nested too deeply (limit {MAX_DEPTH} levels)") from None
            except json.JSONDecodeError as e:
                raise PnyxError(f"{where}:{lineno}: not valid JSON ({e.msg})") from None
            check_depth(value, f"{where}:{lineno}:")
            yield lineno, value


def read_string_records(path: str | Path, what: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """The JSON Lines file ``path`` as records of the non-empty string ``fields`` (one object a
    line; other keys ignored); a bad line is a one-line error naming ``file:line`` and the
    fields it lacks, and a file without records is one too."""
    records = []
    for lineno, obj in json_lines(read_text(path, what).split("\n"), str(path)):
        record = {name: obj.get(name) if isinstance(obj, dict) else None for name in fields}
        bad = [name for name, value in record.items() if not isinstance(value, str) or not value.strip()]
        if bad:
            raise PnyxError(f"{path}:{lineno}: needs non-empty strings {', '.join(bad)}")
        records.append(record)
    if not records:
        raise PnyxError(f"{what} holds no records")
    return records


def read_json(path: str | Path, what: str, expected: type | None = dict, limit: int = MAX_FILE_BYTES) -> Any:
    """The JSON document in the regular file ``path`` (as :func:`parse_json`)."""
    return parse_json(read_text(path, what, limit), what, expected)


def read_yaml(path: str | Path, what: str, expected: type | None = dict, limit: int = MAX_FILE_BYTES) -> Any:
    """The YAML document in the regular file ``path``: plain data as :func:`pnyx.yaml_safe.load`
    builds it, of type ``expected``."""
    return parse_yaml(read_text(path, what, limit), what, expected)


def parse_yaml(text: str, what: str, expected: type | None = dict) -> Any:
    """The YAML document ``text`` as plain data (:func:`pnyx.yaml_safe.load`), of type ``expected``."""
    return _expect(yaml_safe.load(text, what), what, expected)


def check_depth(data: Any, what: str) -> None:
    """A :class:`PnyxError` if lists and mappings in ``data`` nest more than :data:`MAX_DEPTH` levels."""
    level = [data]
    for _ in range(MAX_DEPTH):
        level = [child for node in level if isinstance(node, (dict, list))
                 for child in (node.values() if isinstance(node, dict) else node)]
        if not level:
            return
    if any(isinstance(node, (dict, list)) for node in level):
        raise PnyxError(f"{what} is nested too deeply (limit {MAX_DEPTH} levels)")


def _expect(data: Any, what: str, expected: type | None) -> Any:
    if expected is not None and not isinstance(data, expected):
        got = "null" if data is None else _TYPE_NAMES.get(type(data), type(data).__name__)
        raise PnyxError(f"{what} must hold {_TYPE_NAMES.get(expected, expected.__name__)}, not {got}")
    return data


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 and limit % 2**20 == 0 else f"{limit} bytes"

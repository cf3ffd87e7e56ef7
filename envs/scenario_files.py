"""Scenario files: how the text environments read their scenarios from disk.

A scenario is a YAML mapping of fields that an environment's schema (a
:class:`pnyx.strict.Strict` model) validates. :class:`ScenarioFiles` reads the scenarios of one kind, and
every kind by the same rules:

* a name is a shipped scenario (``NAME.yaml`` in the kind's folder of ``pnyx.envs``); a
  ``.yaml`` or ``.yml`` path is a user's file, anywhere; a kind may also read a folder
  of its own files into fields;
* ``base: NAME|PATH`` extends another scenario: each field the file does not set is the
  base's (a field is replaced whole, never merged);
* a field the kind lists in ``files`` may hold a path instead of its value: the kind's
  reader turns that file into the value;
* every path a scenario writes (``base``, those fields) is relative to the folder of the
  file that writes it and, symlinks followed, must stay inside the *scenario's folder*:
  the real folder of the scenario named, or the shipped folder once a ``base`` names a
  shipped scenario. An absolute path is refused, and so is a ``..`` or a symlink that
  leaves that folder;
* only regular files are read (no FIFO or device), each at most :data:`MAX_FILE_BYTES`;
* every problem is a one-line :class:`PnyxError` naming the file by its real path, and
  the field where there is one: ``scenario '/home/me/s.yaml': field 'peer.name': ...``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

import pnyx.files as files
from pnyx.errors import PnyxError
from pnyx.paths import within
from pnyx.yaml_safe import load as load_yaml

#: Largest file a scenario reads (YAML, requests, prompt texts), in bytes.
MAX_FILE_BYTES = 64 * 2**20
_YAML = (".yaml", ".yml")

S = TypeVar("S", bound=BaseModel)


def real_path(path: str | Path) -> Path:
    """``path`` with ``~`` expanded and symlinks followed; a one-line error if it cannot be."""
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        raise PnyxError(f"scenario path {str(path)!r} cannot be resolved") from None


def inside(root: Path, here: Path, value: str, where: str) -> Path:
    """``value``, a path written in a scenario file in folder ``here``, as a real path;
    refused if it is absolute or leads outside ``root``. ``where`` starts the error."""
    if Path(value).is_absolute():
        raise PnyxError(f"{where}: {value!r} must be a path relative to the scenario's folder")
    path = within(root, here / value)
    if path is None:
        raise PnyxError(f"{where}: {value!r} leads outside the scenario's folder {str(root)!r}")
    return path


def read_bytes(path: Path, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most :data:`MAX_FILE_BYTES`
    (:func:`pnyx.files.read_bytes`); ``what`` names it in errors."""
    if not os.path.exists(path):
        raise PnyxError(f"{what} does not exist")
    return files.read_bytes(path, what, MAX_FILE_BYTES)


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the regular file ``path`` (as :func:`read_bytes`)."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise PnyxError(f"{what} line {line}: not UTF-8 text") from None


def with_placeholder(name: str) -> AfterValidator:
    """A validator of a scenario text (``Annotated[str, with_placeholder(NAME)]``) that refuses
    a text without the placeholder ``{NAME}``."""
    def check(text: str) -> str:
        if f"{{{name}}}" not in text:
            raise ValueError(f"missing placeholder {{{name}}}")
        return text

    return AfterValidator(check)


def _named(path: Path) -> str:
    return f"scenario {str(path)!r}"


class ScenarioFiles(Generic[S]):
    """The scenarios of one kind: validated by ``schema``, shipped in folder ``shipped`` of
    ``pnyx.envs``. ``files`` maps a field to the reader of a file it may name (called with
    the file's real path); ``folder`` reads a scenario given as a folder (called with its
    real path) into fields, whose paths are relative to that folder."""

    def __init__(self, schema: type[S], shipped: str, files: Mapping[str, Callable[[Path], Any]] | None = None,
                 folder: Callable[[Path], dict] | None = None):
        self.schema = schema
        self.shipped = shipped
        self.files = dict(files or {})
        self.folder = folder

    def names(self) -> list[str]:
        """Names of the shipped scenarios."""
        return sorted(p.name[:-5] for p in self._shipped().iterdir() if p.name.endswith(".yaml"))

    def _shipped(self):
        return resources.files("pnyx.envs") / self.shipped

    def load(self, name_or_path: str | Path) -> S:
        """A shipped scenario by name, a user's YAML file, or (where the kind reads folders)
        a folder, validated."""
        text = str(name_or_path)
        if self.folder is not None and not text.endswith(_YAML) and text not in self.names() \
                and real_path(text).is_dir():
            top = real_path(text)
            fields, origin = self._fields(self.folder(top), top, top, top, chain=())
        else:
            top, root = self._locate(text)
            fields, origin = self._file(top, root, chain=(), name=Path(text).stem)
        try:
            return self.schema.model_validate(fields)
        except ValidationError as e:
            err = e.errors()[0]
            loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
            field = f": field {'.'.join(loc)!r}" if loc else ""
            source = _named(origin.get(loc[0], top) if loc else top)
            raise PnyxError(f"{source}{field}: {err['msg'].removeprefix('Value error, ')}") from None

    def _locate(self, text: str, where: str | None = None, here: Path | None = None,
                root: Path | None = None) -> tuple[Path, Path]:
        """The real path of the scenario file ``text`` and its scenario's folder: named by
        the user (``where`` None), or by a ``base`` that ``where`` wrote in folder ``here``
        of the scenario in folder ``root``."""
        if text.endswith(_YAML):
            if where is None:
                path = real_path(text)
                return path, path.parent
            return inside(root, here, text, where), root
        if text in self.names():
            path = real_path(str(self._shipped() / f"{text}.yaml"))
            return path, path.parent
        ways = "a .yaml path" + (", or a folder" if self.folder is not None and where is None else "")
        prefix = f"{where}: " if where else ""
        raise PnyxError(f"{prefix}unknown scenario {text!r} (shipped: {', '.join(self.names())}; or {ways})")

    def _file(self, path: Path, root: Path, chain: tuple[Path, ...], name: str | None = None) -> tuple[dict, dict]:
        """The fields of the scenario file ``path`` (``name`` unless it sets one), and the
        file each field comes from."""
        if path in chain:
            raise PnyxError(f"{_named(path)} inherits from itself through 'base'")
        data = load_yaml(read_bytes(path, _named(path)), _named(path))
        if not isinstance(data, dict):
            raise PnyxError(f"{_named(path)} must be a mapping of fields")
        if name is not None:
            data.setdefault("name", name)
        return self._fields(data, path, path.parent, root, chain)

    def _fields(self, data: dict, source: Path, here: Path, root: Path, chain: tuple[Path, ...]) -> tuple[dict, dict]:
        """``data``, read from ``source`` whose paths start in folder ``here``, with the
        files its fields name read and its base's fields beneath."""
        for key, read in self.files.items():
            if isinstance(data.get(key), str):
                where = f"{_named(source)}: field {key!r}"
                file = inside(root, here, data[key], where)
                try:
                    data[key] = read(file)
                except PnyxError as e:
                    raise PnyxError(f"{where}: {e}") from None
        fields: dict = {}
        origin: dict = {}
        if "base" in data:
            base, where = data.pop("base"), f"{_named(source)}: field 'base'"
            if not isinstance(base, str):
                raise PnyxError(f"{where}: must be a scenario name or a .yaml path")
            path, base_root = self._locate(base, where, here, root)
            fields, origin = self._file(path, base_root, chain + (source,))
        fields.update(data)
        origin.update(dict.fromkeys(data, source))
        return fields, origin

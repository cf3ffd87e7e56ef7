"""Where pnyx may go: a path inside a root folder, symlinks followed, never leaving it.

Readers of a scenario's files and writers of a run folder share :func:`within`; every
path pnyx writes in a run folder passes :func:`run_path`. Names that a config turns into
path segments (a condition's folder) must pass :func:`simple_name`. Paths a user names are
looked up by :func:`exists`.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from pnyx.errors import PnyxError

_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def within(root: Path, path: Path) -> Path | None:
    """The real path of ``path`` if, symlinks followed, it lies inside the real folder
    ``root``; ``None`` if it leads outside or cannot be resolved."""
    try:
        real = path.expanduser().resolve()
        return real if real.is_relative_to(root.expanduser().resolve()) else None
    except (OSError, RuntimeError, ValueError):
        return None


def run_path(out: Path, name: str | Path, *, folder: bool = False) -> Path:
    """``out / name``, where pnyx writes a file (or, with ``folder``, into a folder) of the
    run folder ``out``; a one-line :class:`PnyxError` naming it if a symlink leads it
    outside ``out`` or it exists and is not a regular file (a folder)."""
    path = out / name
    real = within(out, path)
    if real is None:
        raise PnyxError(f"{str(path)!r} leads outside the run folder {str(out)!r}; pnyx writes only inside it")
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return path
    except (OSError, ValueError) as e:
        raise PnyxError(f"cannot use {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None
    if folder and not stat.S_ISDIR(mode):
        raise PnyxError(f"{str(path)!r} is not a folder")
    if not folder and not stat.S_ISREG(mode):
        raise PnyxError(f"{str(path)!r} is not a regular file")
    return path


def exists(path: str | Path, what: str, *, regular: bool = False) -> bool:
    """Whether something is at ``path`` (symlinks followed; with ``regular``, a regular file);
    a one-line :class:`PnyxError` naming ``what`` if ``path`` cannot be looked up (a name too
    long for the file system, a folder without permission, a symlink loop)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError) as e:
        raise PnyxError(f"cannot look up {what}: {getattr(e, 'strerror', None) or e}") from None
    return stat.S_ISREG(mode) or not regular


def simple_name(name: str) -> bool:
    """Whether ``name`` may be one path segment: letters, digits, ``_``, ``-`` and ``.``,
    not starting with ``.``, at most 100 characters."""
    return bool(_SIMPLE_NAME.fullmatch(name))

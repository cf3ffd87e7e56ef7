"""Signal tests start their runs through :func:`popen`, so that SIGINT reaches them as Ctrl-C
even when the tests themselves run as a background job (which starts with SIGINT ignored)."""

from __future__ import annotations

import signal
import subprocess


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen(*args, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` with SIGINT at its default disposition in the child."""
    return subprocess.Popen(*args, preexec_fn=_default_sigint, **kwargs)

"""Text spaces for environments whose agents read and write natural language."""

from __future__ import annotations

import functools

import numpy as np
from gymnasium.spaces import Text

from pnyx.errors import PnyxError

OBSERVATION_LENGTH = 262_144
ACTION_LENGTH = 16_384


@functools.cache
def _charset() -> frozenset[str]:
    return frozenset(c for c in map(chr, range(0x10000)) if c.isprintable()) | {"\n", "\t"}


@functools.cache
def observation_space() -> Text:
    return Text(OBSERVATION_LENGTH, min_length=1, charset=_charset())


@functools.cache
def action_space() -> Text:
    return Text(ACTION_LENGTH, min_length=0, charset=_charset())


class TextObservation(str):
    """A ``str`` that carries the ``dtype`` of gymnasium's ``Text`` space, which
    PettingZoo's API test compares with the observation space's."""

    dtype = np.dtype("<U")


def text_observation(text: str) -> TextObservation:
    """``text`` as an observation: characters outside the space's charset become U+FFFD,
    and only the last ``OBSERVATION_LENGTH`` characters are kept."""
    charset = _charset()
    return TextObservation("".join(c if c in charset else "\ufffd" for c in text)[-OBSERVATION_LENGTH:])


def render_text(text: str, mode: str | None, modes: list[str]) -> str | None:
    """PettingZoo's text rendering: ``text`` returned in ``"ansi"`` mode, printed in ``"human"``
    mode, nothing for ``None``; a mode outside ``modes`` is an error."""
    if mode not in (None, *modes):
        raise PnyxError(f"unknown render mode {mode!r}")
    if mode == "ansi":
        return text
    if mode == "human":
        print(text)
    return None

"""The RL-library how-to's TorchRL and SuperSuit snippets run as written, where the ``rl``
extra is installed (RLlib's example is run by ``tests/test_examples.py``)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_tutorials import blocks

PAGE = Path(__file__).resolve().parent.parent / "docs" / "how-to" / "rl-libraries.md"
SNIPPETS = {name: code for _, code, _ in blocks(PAGE) for name in ("torchrl", "supersuit") if f"import {name}" in code
            or f"from {name}" in code}


def test_the_page_has_both_snippets():
    assert sorted(SNIPPETS) == ["supersuit", "torchrl"]


@pytest.mark.parametrize("library", ["torchrl", "supersuit"])
def test_snippet_runs_as_written(library, tmp_path):
    pytest.importorskip(library)
    done = subprocess.run([sys.executable, "-c", SNIPPETS[library]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = {"torchrl": "torch.Size([20])", "supersuit": "(8, 5) float32"}[library]
    assert expected in done.stdout, done.stdout

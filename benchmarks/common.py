"""What the benchmark scripts share: where results go and how they are written."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_json(report: dict, path: Path) -> None:
    """``report`` as indented JSON at ``path``, its folder made when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")

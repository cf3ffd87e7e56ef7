"""Finished units on disk, written as they finish, so a run can stop anywhere and resume.

Units are written in chunks (the units of one task): ``units/<stem>.parquet`` holds
their rows (with a ``unit`` column) and ``units/<stem>.json`` their keys, records and
errors. Each file is written atomically and the JSON last: a unit is finished
exactly when a JSON lists it without an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from pnyx.experiments.experiment import UnitOutput

UnitResult = tuple[str, "UnitOutput | None", "str | None"]  # key, output, error


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


class UnitStore:
    def __init__(self, out: Path):
        self.dir = out / "units"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index: dict[str, tuple[str, dict]] = {}  # key -> (chunk stem, entry)
        for manifest in sorted(self.dir.glob("*.json")):
            for key, entry in json.loads(manifest.read_text()).items():
                if self.status(key) != "done":  # a retried success replaces an earlier failure
                    self.index[key] = (manifest.stem, entry)
        self._chunks: dict[str, dict[str, pd.DataFrame]] = {}  # stem -> key -> rows

    def status(self, key: str) -> str:
        """``'done'``, ``'failed'`` or ``'todo'``."""
        if key not in self.index:
            return "todo"
        return "failed" if self.index[key][1]["error"] else "done"

    def error(self, key: str) -> str | None:
        return self.index[key][1]["error"] if key in self.index else None

    def write(self, results: list[UnitResult]) -> None:
        """Write the results of one task as one chunk."""
        stem = hashlib.sha256("\n".join(key for key, _, _ in results).encode()).hexdigest()[:16]
        frames = [output.rows for _, output, _ in results if output is not None]
        rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"unit": []})
        atomic_write(self.dir / f"{stem}.parquet", lambda tmp: rows.to_parquet(tmp, index=False))
        manifest = {key: {"records": output.records if output else {}, "error": error}
                    for key, output, error in results}
        atomic_write_text(self.dir / f"{stem}.json", json.dumps(manifest))
        for key, entry in manifest.items():
            if self.status(key) != "done":
                self.index[key] = (stem, entry)

    def load(self, key: str) -> UnitOutput:
        stem, entry = self.index[key]
        if stem not in self._chunks:
            chunk = pd.read_parquet(self.dir / f"{stem}.parquet")
            self._chunks[stem] = {k: rows.reset_index(drop=True) for k, rows in chunk.groupby("unit", sort=False)}
        rows = self._chunks[stem].get(key, pd.DataFrame({"unit": []}))
        return UnitOutput(rows, entry["records"])

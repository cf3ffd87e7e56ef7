"""One file per finished unit, written atomically, so a run can stop anywhere and resume.

``units/<stem>.parquet`` holds a unit's rows and ``units/<stem>.json`` its key,
records and error (if it failed). The JSON is written last: a unit is finished
exactly when its JSON exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pandas as pd

from pnyx.experiments.experiment import UnitOutput


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def unit_stem(key: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:48].strip("_.")
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class UnitStore:
    def __init__(self, out: Path):
        self.dir = out / "units"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _meta(self, key: str) -> dict | None:
        path = self.dir / f"{unit_stem(key)}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def status(self, key: str) -> str:
        """``'done'``, ``'failed'`` or ``'todo'``."""
        meta = self._meta(key)
        if meta is None:
            return "todo"
        return "failed" if meta.get("error") else "done"

    def error(self, key: str) -> str | None:
        meta = self._meta(key)
        return meta.get("error") if meta else None

    def write(self, key: str, output: UnitOutput) -> None:
        stem = unit_stem(key)
        atomic_write(self.dir / f"{stem}.parquet", lambda tmp: output.rows.to_parquet(tmp, index=False))
        atomic_write_text(self.dir / f"{stem}.json", json.dumps({"key": key, "records": output.records, "error": None}))

    def write_failure(self, key: str, error: str) -> None:
        atomic_write_text(self.dir / f"{unit_stem(key)}.json", json.dumps({"key": key, "records": {}, "error": error}))

    def load(self, key: str) -> UnitOutput:
        stem = unit_stem(key)
        meta = json.loads((self.dir / f"{stem}.json").read_text())
        return UnitOutput(pd.read_parquet(self.dir / f"{stem}.parquet"), meta["records"])

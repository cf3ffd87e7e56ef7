"""Finished units on disk, written as they finish, so a run can stop anywhere and resume.

Units are written in chunks (the units of one task): ``units/<stem>.parquet`` holds
their rows (with a ``unit`` column) and ``units/<stem>.json`` their keys, records and
errors, and for each unit its number of ``rows`` and the ``sha256`` of the chunk's
parquet file. Each file is written atomically and the JSON last: a unit is finished
exactly when a JSON lists it without an error and its chunk verifies; a unit whose
records hold ``sample_failures`` finished in part, and ``--resume`` reruns it.

A chunk is damaged when its manifest cannot be read, or its parquet file is missing,
unreadable or differs from the manifest's checksum or row counts (a manifest without
them is damaged too); its units count as unfinished (``--resume`` reruns them).

Every text written from unit outputs (string cells of the rows, the manifest) passes
through :func:`pnyx.redaction.redact`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pnyx.errors import PnyxError
from pnyx.experiments.experiment import UnitOutput
from pnyx.experiments.inputs import sha256_file
from pnyx.paths import run_path
from pnyx.redaction import redact, redact_value

UnitResult = tuple[str, "UnitOutput | None", "str | None"]  # key, output, error


class DamagedChunk(PnyxError):
    """A chunk that failed verification when its rows were read."""


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file.

    A file (or symlink) already at the temporary path is removed first, never written
    through. On failure the temporary file is removed; an ``OSError`` becomes a
    :class:`PnyxError` naming ``path`` and the reason.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise PnyxError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def redact_json(data: Any, **dumps) -> str:
    """``json.dumps(data, **dumps)`` with secrets masked in its strings and in its text, still valid JSON."""
    text = json.dumps(redact_value(data), **dumps)
    masked = redact(text)
    try:
        json.loads(masked)
    except ValueError:
        return text
    return masked


def redact_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with secrets masked in its string cells and categories (a copy where anything changed)."""
    changed = {}
    for i in range(frame.shape[1]):
        series = frame.iloc[:, i]
        if isinstance(series.dtype, pd.CategoricalDtype):
            categories = series.cat.categories
            masked = _mask(pd.Series(categories, dtype=object))
            if masked is not None:  # masked categories may coincide, so the cells are mapped anew
                changed[i] = pd.Series(pd.Categorical(series.map(dict(zip(categories, masked)))), index=series.index)
        elif series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            masked = _mask(series)
            if masked is not None:
                changed[i] = pd.Series(masked, index=series.index, dtype=series.dtype)
    if not changed:
        return frame
    frame = frame.copy()
    for i, masked in changed.items():
        frame.isetitem(i, masked)
    return frame


def _mask(series: pd.Series) -> list | None:
    """The cells of ``series`` with secrets masked, or ``None`` if none was found. A column
    repeats its values, so each distinct one is masked once."""
    try:
        distinct = series.unique()
    except TypeError:  # unhashable cells: lists, dicts, arrays
        values = series.tolist()
        masked = [redact_value(v) for v in values]
        return masked if any(m is not v for m, v in zip(masked, values)) else None
    if all(redact_value(v) is v for v in distinct):  # the usual case, found without coding every cell
        return None
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    masked = [redact_value(v) for v in uniques]
    cells = np.empty(len(masked), dtype=object)
    cells[:] = masked
    out = series.to_numpy(dtype=object, copy=True)
    known = codes >= 0
    out[known] = cells[codes[known]]
    return list(out)


def concat_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``frames`` stacked with a fresh index; a column categorical in every frame stays
    categorical, its categories united in order of appearance (``pd.concat`` alone would
    turn differing categories into strings)."""
    frames = list(frames)
    columns = {c for f in frames for c in f.columns}
    for column in columns:
        dtypes = [f[column].dtype if column in f else None for f in frames]
        if all(isinstance(d, pd.CategoricalDtype) for d in dtypes) and len(set(dtypes)) > 1:
            united = pd.Index(pd.unique(np.concatenate([d.categories.to_numpy(dtype=object) for d in dtypes])))
            frames = [f.assign(**{column: f[column].cat.set_categories(united)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


class UnitStore:
    def __init__(self, out: Path):
        self.dir = run_path(out, "units", folder=True)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PnyxError(f"cannot create {str(self.dir)!r}: {e.strerror or e}") from None
        self.index: dict[str, tuple[str, dict]] = {}  # key -> (chunk stem, entry)
        self.entries: dict[str, dict[str, dict]] = {}  # chunk stem -> its manifest
        self.damaged: dict[str, str] = {}  # chunk stem -> its damaged file, relative to the run folder
        for manifest in sorted(self.dir.glob("*.json")):
            stem = manifest.stem
            entries = self._read_manifest(manifest)
            if entries is None:
                self.damaged[stem] = f"units/{manifest.name}"
                entries = {key: {"records": {}, "error": None} for key in self._keys_in_rows(stem)}
            elif not self._verify(stem, entries):
                self.damaged[stem] = f"units/{stem}.parquet"
            self.entries[stem] = entries
            for key, entry in entries.items():
                if self.status(key) != "done":  # a retried success replaces an earlier failure
                    self.index[key] = (stem, entry)
        self._chunks: dict[str, dict[str, pd.DataFrame]] = {}  # stem -> key -> rows

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, dict] | None:
        """The manifest's entries, or ``None`` if it cannot be read or is not a manifest."""
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entries, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("records"), dict)
                and "error" in e and (e["error"] is None or isinstance(e["error"], str)) for e in entries.values()):
            return None
        return entries

    def _keys_in_rows(self, stem: str) -> list[str]:
        """The units with rows in a chunk whose manifest is damaged, as far as its rows tell."""
        try:
            return [str(k) for k in pd.read_parquet(self.dir / f"{stem}.parquet", columns=["unit"])["unit"].unique()]
        except Exception:  # noqa: BLE001 - unreadable rows name no units
            return []

    def _verify(self, stem: str, entries: dict[str, dict]) -> bool:
        """Whether the chunk's parquet file has the checksum and the row count its manifest records."""
        path = self.dir / f"{stem}.parquet"
        digests = {e.get("sha256") for e in entries.values()}
        counts = [e.get("rows") for e in entries.values()]
        if len(digests) != 1 or not isinstance(next(iter(digests)), str) or \
                not all(type(n) is int and n >= 0 for n in counts):
            return False
        try:
            return sha256_file(path) == digests.pop() and pq.read_metadata(path).num_rows == sum(counts)
        except Exception:  # noqa: BLE001 - any failure to read the chunk means it is damaged
            return False

    def status(self, key: str) -> str:
        """``'done'``, ``'partial'`` (finished with failed samples), ``'failed'``, ``'damaged'`` or ``'todo'``."""
        if key not in self.index:
            return "todo"
        stem, entry = self.index[key]
        if stem in self.damaged:
            return "damaged"
        if entry["error"]:
            return "failed"
        return "partial" if entry["records"].get("sample_failures") else "done"

    def error(self, key: str) -> str | None:
        if key not in self.index:
            return None
        stem, entry = self.index[key]
        return f"damaged chunk {self.damaged[stem]}" if stem in self.damaged else entry["error"]

    def damaged_files(self, keys: list[str]) -> list[str]:
        """The damaged chunks that ``keys`` may miss: those a key's latest entry is in, and
        damaged manifests naming no units while a key is in no manifest."""
        latest = {self.index[k][0] for k in keys if k in self.index}
        unlisted = any(k not in self.index for k in keys)
        return sorted(file for stem, file in self.damaged.items()
                      if stem in latest or (unlisted and not self.entries.get(stem)))

    def write(self, results: list[UnitResult]) -> None:
        """Write the results of one task as one chunk."""
        stem = hashlib.sha256("\n".join(key for key, _, _ in results).encode()).hexdigest()[:16]
        frames = [output.rows for _, output, _ in results if output is not None]
        rows = concat_rows(frames) if frames else pd.DataFrame({"unit": []})
        rows = redact_frame(rows)
        path = self.dir / f"{stem}.parquet"
        try:
            atomic_write(path, lambda tmp: rows.to_parquet(tmp, index=False))
            try:
                digest = sha256_file(path)
            except OSError as e:
                raise PnyxError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
            text = redact_json({key: {"records": output.records if output else {}, "error": error,
                                      "rows": len(output.rows) if output is not None else 0, "sha256": digest}
                                for key, output, error in results})
            atomic_write_text(self.dir / f"{stem}.json", text)
        except PnyxError as e:
            raise PnyxError(f"{e}; units finished before are kept, --resume continues the run") from None
        entries = json.loads(text)
        self.entries[stem] = entries
        self.damaged.pop(stem, None)
        self._chunks.pop(stem, None)
        for key, entry in entries.items():
            if self.status(key) != "done":
                self.index[key] = (stem, entry)

    def load(self, key: str) -> UnitOutput:
        """The unit's rows and records; :class:`DamagedChunk` if its chunk cannot be read as recorded."""
        stem, entry = self.index[key]
        if stem in self.damaged:
            raise DamagedChunk(f"damaged chunk {self.damaged[stem]}")
        if stem not in self._chunks:
            try:
                chunk = pd.read_parquet(self.dir / f"{stem}.parquet")
                keys = chunk["unit"].unique()
                if len(keys) == 1 and isinstance(keys[0], str):  # one unit's rows: used as read, not copied
                    units = {keys[0]: chunk}
                else:
                    units = {k: rows.reset_index(drop=True) for k, rows in chunk.groupby("unit", sort=False)}
            except Exception:  # noqa: BLE001 - any failure to read the chunk means it is damaged
                units = None
            if units is None or not self._counts_match(stem, units):
                self.damaged[stem] = f"units/{stem}.parquet"
                raise DamagedChunk(f"damaged chunk {self.damaged[stem]}")
            self._chunks[stem] = units
        rows = self._chunks[stem].get(key, pd.DataFrame({"unit": []}))
        return UnitOutput(rows, entry["records"])

    def _counts_match(self, stem: str, units: dict[str, pd.DataFrame]) -> bool:
        """Whether each unit has the rows its manifest records."""
        entries = self.entries[stem]
        return set(units) <= set(entries) and all(len(units.get(k, ())) == e["rows"] for k, e in entries.items())

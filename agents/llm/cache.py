"""A completion cache on disk, so reruns and resumed experiments do not pay twice.

Replies are stored in SQLite, keyed by a SHA-256 of (model identity, chat,
``max_tokens``, ``temperature``, ``seed``). Sampled completions without a seed are
not repeatable and are never cached. Several processes may share one file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from pnyx.agents.llm.protocol import Chat, LanguageModel, model_identity


class CachedModel:
    """Wraps ``model``: chats already answered with the same parameters come from ``path``.

    The distinct misses of one call go to ``model`` as one batch. ``identity`` names the model
    in the keys; it defaults to the model's ``name`` (or class path).
    Note that a batched sampler's reply to a chat may depend on the rest of its
    batch; the cache keeps the first reply it saw.
    """

    def __init__(self, model: LanguageModel, path: str | Path, *, identity: str | None = None):
        self.model = model
        self.path = Path(path)
        self.identity = identity or model_identity(model)
        self.name = self.identity
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _key(self, chat: Chat, max_tokens: int, temperature: float, seed: int | None) -> str:
        text = json.dumps([self.identity, chat, max_tokens, float(temperature), seed], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def complete(
        self, prompts: list[Chat], *, max_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> list[str]:
        params = dict(max_tokens=max_tokens, temperature=temperature, seed=seed)
        if temperature > 0 and seed is None:
            return self.model.complete(prompts, **params)
        keys = [self._key(chat, max_tokens, temperature, seed) for chat in prompts]
        db = self._connect()
        try:
            found = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, reply FROM completions WHERE key IN ({marks})", chunk))
            missing = {key: i for i, key in enumerate(keys) if key not in found}  # one call per distinct chat
            if missing:
                replies = self.model.complete([prompts[i] for i in missing.values()], **params)
                new = dict(zip(missing, replies))
                with db:
                    db.executemany("INSERT OR IGNORE INTO completions VALUES (?, ?)", new.items())
                found.update(new)
        finally:
            db.close()
        return [found[key] for key in keys]

    def __repr__(self) -> str:
        return f"CachedModel({self.model!r}, {str(self.path)!r})"

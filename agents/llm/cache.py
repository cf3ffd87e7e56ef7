"""A completion cache on disk, so reruns and resumed experiments do not pay twice.

Completions are stored in SQLite, keyed by a SHA-256 of (model identity, chat,
``max_tokens``, ``temperature``, ``seed``, and ``tools`` when given). Each row holds the
reply text and the whole :class:`~pnyx.agents.llm.protocol.Completion` as JSON (finish
reason, token counts, model, fingerprint, tool calls); rows written before completions
carried metadata hold text only and read back as completions with unknown metadata.
Sampled completions without a seed are not repeatable and are never cached. Secrets
:mod:`pnyx.redaction` knows (API keys) are masked before a completion is stored or
returned. Several processes may share one file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from pnyx.agents.llm.protocol import Chat, Completion, LanguageModel, ToolCall, complete, model_identity
from pnyx.errors import PnyxError
from pnyx.redaction import redact, redact_value


def _masked(completion: Completion) -> Completion:
    """``completion`` with every secret :mod:`pnyx.redaction` knows masked in its strings."""
    return Completion(**{**redact_value(completion.to_dict()),
                         "tool_calls": tuple(ToolCall(*(redact(part) for part in (c.id, c.name, c.arguments)))
                                             for c in completion.tool_calls)})


def _encode(completion: Completion) -> str:
    return json.dumps(completion.to_dict(), sort_keys=True)


def _decode(text: str, data: str | None) -> Completion:
    if data is None:
        return Completion(text)
    fields = json.loads(data)
    fields["tool_calls"] = tuple(ToolCall(**call) for call in fields.get("tool_calls", ()))
    return Completion(**fields)


class CachedModel:
    """Wraps ``model``: chats already answered with the same parameters come from ``path``.

    The distinct misses of one call go to ``model`` as one batch; replies are
    :class:`~pnyx.agents.llm.protocol.Completion` objects. ``identity`` names the model
    in the keys; it defaults to the model's ``name`` (or class path).
    Note that a batched sampler's reply to a chat may depend on the rest of its
    batch; the cache keeps the first reply it saw. A reply from the cache carries the
    token counts of the request that first paid for it.
    """

    def __init__(self, model: LanguageModel, path: str | Path, *, identity: str | None = None):
        self.model = model
        self.path = Path(path)
        self.identity = identity or model_identity(model)
        self.name = self.identity
        self.max_concurrency = getattr(model, "max_concurrency", None)
        what = f"completion cache {str(self.path)!r}"
        try:
            if self.path.exists() and not self.path.is_file():
                raise PnyxError(f"{what} is not a file")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect()
            try:
                with db:
                    db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
                    if "completion" not in {row[1] for row in db.execute("PRAGMA table_info(completions)")}:
                        try:
                            db.execute("ALTER TABLE completions ADD COLUMN completion TEXT")
                        except sqlite3.OperationalError:  # another process added it first
                            pass
            finally:
                db.close()
        except sqlite3.DatabaseError as e:
            raise PnyxError(f"{what} is not a usable SQLite database ({e})") from None
        except OSError as e:
            raise PnyxError(f"{what} cannot be created ({e.strerror or type(e).__name__})") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _key(self, chat: Chat, max_tokens: int, temperature: float, seed: int | None, tools: list | None) -> str:
        parts = [self.identity, chat, max_tokens, float(temperature), seed] + ([] if tools is None else [tools])
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def complete(
        self,
        prompts: list[Chat],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        tools: list[dict] | None = None,
    ) -> list[Completion]:
        params = dict(max_tokens=max_tokens, temperature=temperature, seed=seed, tools=tools)
        if temperature > 0 and seed is None:
            return complete(self.model, prompts, **params)
        keys = [self._key(chat, max_tokens, temperature, seed, tools) for chat in prompts]
        db = self._connect()
        try:
            found = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT key, reply, completion FROM completions WHERE key IN ({marks})", chunk)
                found.update((key, _decode(text, data)) for key, text, data in rows)
            missing = {key: i for i, key in enumerate(keys) if key not in found}  # one call per distinct chat
            if missing:
                replies = complete(self.model, [prompts[i] for i in missing.values()], **params)
                new = dict(zip(missing, map(_masked, replies)))
                with db:
                    db.executemany("INSERT OR IGNORE INTO completions (key, reply, completion) VALUES (?, ?, ?)",
                                   [(key, c.text, _encode(c)) for key, c in new.items()])
                found.update(new)
        finally:
            db.close()
        return [found[key] for key in keys]

    def __repr__(self) -> str:
        return f"CachedModel({self.model!r}, {str(self.path)!r})"

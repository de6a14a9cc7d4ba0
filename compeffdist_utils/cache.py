"""A persistent SQLite cache of teacher answers.

Why: teacher calls are the expensive part of the pipeline. Every answer is committed the moment it
arrives, keyed by (backend, endpoint, model, messages, decoding settings, tag), so a rerun costs nothing
for answered requests and a run killed with SIGKILL mid-stage resumes where it stopped: answered
requests are read back, the rest are asked, and each request is answered exactly once (the key is the
primary key; a second insert of the same key is ignored).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    # Set when the server rejected this one request (e.g. a prompt over its context): the answer is
    # empty, counted as a failure and NOT cached, so a rerun asks again.
    error: str | None = None


def request_key(identity: dict[str, Any], request: dict[str, Any]) -> str:
    """A stable hash of who answers (backend, endpoint, model) and what is asked."""
    blob = json.dumps({"who": identity, "req": request}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Thread-safe: the openai backend's worker threads answer while the main thread writes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    def get_many(self, keys: list[str]) -> dict[str, CachedAnswer]:
        found: dict[str, CachedAnswer] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, response, prompt_tokens, completion_tokens FROM responses WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, text, pt, ct in rows:
                    found[key] = CachedAnswer(text, pt, ct)
        return found

    def put(self, key: str, backend: str, model: str, request: dict[str, Any], answer: CachedAnswer) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    backend,
                    model,
                    json.dumps(request, ensure_ascii=False, sort_keys=True),
                    answer.text,
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    time.time(),
                ),
            )
            self._conn.commit()

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

"""A persistent SQLite cache of teacher answers.

Why: teacher calls are the expensive part of the pipeline. Every answer is committed the moment it
arrives, keyed by (backend, endpoint, model, messages, decoding settings, tag), so a rerun costs nothing
for answered requests and a run killed with SIGKILL mid-stage resumes where it stopped: answered
requests are read back, the rest are asked, and each request is answered exactly once (the key is the
primary key; a second insert of the same key is ignored).

Each row also records the stage that asked (``stage``), so ``compeffdist cache drop`` can remove one
stage's or one model's answers without deleting the file. A damaged file ("database disk image is
malformed", not a database) is moved aside, kept for the user, and a fresh cache is started.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
_COLUMNS = "key, backend, model, request, response, prompt_tokens, completion_tokens, created, stage"


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


class CacheError(RuntimeError):
    """The response cache failed while in use; the message names the file and the fix."""


class ResponseCache:
    """Thread-safe: the openai backend's worker threads answer while the main thread writes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.moved_aside: Path | None = None  # where a damaged file went (the stage notes it)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as err:
            moved = self.moved_aside = self._move_aside()
            warnings.warn(
                f"the response cache {self.path} is damaged ({err}); it was moved to {moved} and the run "
                "continues with a fresh cache (answers in the damaged file will be asked again)",
                stacklevel=2,
            )
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
            if "stage" not in columns:  # caches written before answers were tagged with their stage
                conn.execute("ALTER TABLE responses ADD COLUMN stage TEXT NOT NULL DEFAULT ''")
            conn.commit()
            problems = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problems != "ok":
                raise sqlite3.DatabaseError(problems)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _move_aside(self) -> Path:
        target = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.replace(f"{target}{suffix}")
        return target

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; an SQLite error names the file (it may break mid-run)."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.DatabaseError as err:
                raise CacheError(
                    f"response cache {self.path}: {err}; move the file aside and rerun (a fresh cache is "
                    "started; answers already paid for are asked again)"
                ) from None

    def get_many(self, keys: list[str]) -> dict[str, CachedAnswer]:
        found: dict[str, CachedAnswer] = {}
        with self._db():
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

    def put(
        self,
        key: str,
        backend: str,
        model: str,
        request: dict[str, Any],
        answer: CachedAnswer,
        stage: str = "",
    ) -> None:
        """Store an answer once; a row holding an empty answer (left by older versions) is replaced."""
        with self._db():
            self._conn.execute(
                f"INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET response = excluded.response, "
                "prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, "
                "created = excluded.created, stage = excluded.stage WHERE responses.response = ''",
                (
                    key,
                    backend,
                    model,
                    json.dumps(request, ensure_ascii=False, sort_keys=True),
                    answer.text,
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    time.time(),
                    stage,
                ),
            )
            self._conn.commit()

    def drop(self, stage: str | None = None, model: str | None = None) -> int:
        """Delete the answers asked by ``stage`` and/or given by ``model``; returns how many went."""
        if stage is None and model is None:
            raise ValueError("say which answers to drop: a stage, a model, or both")
        where, args = [], []
        for column, value in (("stage", stage), ("model", model)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        with self._db():
            cur = self._conn.execute(f"DELETE FROM responses WHERE {' AND '.join(where)}", args)
            self._conn.commit()
            return int(cur.rowcount)

    def summary(self) -> list[tuple[str, str, int]]:
        """(stage, model, answers) per group, so users can see what ``drop`` would remove."""
        with self._db():
            rows = self._conn.execute(
                "SELECT stage, model, COUNT(*) FROM responses GROUP BY stage, model ORDER BY stage, model"
            ).fetchall()
        return [(str(st), str(m), int(n)) for st, m, n in rows]

    def count(self) -> int:
        with self._db():
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

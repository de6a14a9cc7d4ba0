"""A persistent SQLite cache of teacher answers.

Why: teacher calls are the expensive part of the pipeline. Every answer is committed the moment it
arrives, keyed by (backend, endpoint, model, messages, decoding settings, tag), so a rerun costs nothing
for answered requests and a run killed with SIGKILL mid-stage resumes where it stopped: answered
requests are read back, the rest are asked, and each request is answered exactly once (the key is the
primary key; a second insert of the same key is ignored).

Each row also records the stage that asked (``stage``), so ``compeffdist cache drop`` can remove one
stage's or one model's answers without deleting the file. A damaged file ("database disk image is
malformed", not a database) is moved aside, kept for the user, and a fresh cache is started; opened
``read_only`` (``compeffdist cache info``) it is only reported, never moved.

Runs that share one cache (two run folders, one ``cache_dir``) ask each request once: a run *claims* the
keys it is about to ask (table ``claims``, with an owner and an expiry it renews as answers arrive), and
a run that finds a key claimed by another waits for that answer (:mod:`.sharing`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
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
_CLAIMS = (
    "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)"
)
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


def _when_unlocked(step: Callable[[], object], patience_s: float = 60.0) -> None:
    """Run ``step``, retrying while another connection holds the lock it needs: switching a new file to
    WAL does not wait for a lock by itself, and a lock is no sign of a damaged file."""
    give_up = time.monotonic() + patience_s
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > give_up:
                raise
            time.sleep(0.05)


class CacheError(RuntimeError):
    """The response cache failed while in use; the message names the file and the fix."""


class ResponseCache:
    """Thread-safe: the openai backend's worker threads answer while the main thread writes."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.Lock()
        self.moved_aside: Path | None = None  # where a damaged file went (the stage notes it)
        if read_only:
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError as err:
                raise CacheError(
                    f"response cache {self.path} is damaged ({err}); left as it is (the next "
                    "`compeffdist run` moves it aside and starts a fresh one)"
                ) from None
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        if self.read_only:  # reads the file as it is: no schema, no journal mode, nothing written
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        try:
            if not self.read_only:
                _when_unlocked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("BEGIN IMMEDIATE")  # two runs opening a new cache at once: one at a time
                conn.execute(_SCHEMA)
                conn.execute(_CLAIMS)
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

    # -- claims: requests one run is asking, so that another run sharing the cache waits for them --------
    def claim(self, keys: list[str], owner: str, lease_s: float) -> tuple[set[str], set[str]]:
        """(keys now claimed by ``owner``, keys another owner is asking); expired claims are taken over."""
        now = time.time()
        with self._db():
            self._conn.execute("BEGIN IMMEDIATE")  # one claimer at a time across processes
            self._conn.execute("DELETE FROM claims WHERE expires < ?", (now,))
            self._conn.executemany(
                "INSERT OR IGNORE INTO claims (key, owner, expires) VALUES (?, ?, ?)",
                [(k, owner, now + lease_s) for k in keys],
            )
            holders = self._holders(keys)
            self._conn.commit()
        mine = {k for k in keys if holders.get(k) == owner}
        return mine, set(keys) - mine

    def claimed_by_others(self, keys: list[str], owner: str) -> dict[str, str]:
        """key -> owner, for the keys another owner holds an unexpired claim on."""
        with self._db():
            holders = self._holders(keys, live_at=time.time())
        return {k: o for k, o in holders.items() if o != owner}

    def _holders(self, keys: list[str], live_at: float | None = None) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self._conn.execute(
                f"SELECT key, owner FROM claims WHERE key IN ({','.join('?' * len(chunk))}) AND expires >= ?",
                [*chunk, live_at if live_at is not None else float("-inf")],
            ).fetchall()
            out.update({str(k): str(o) for k, o in rows})
        return out

    def renew(self, owner: str, lease_s: float) -> None:
        """Push the expiry of ``owner``'s claims on: it is still asking (called as answers arrive)."""
        with self._db():
            self._conn.execute(
                "UPDATE claims SET expires = ? WHERE owner = ?", (time.time() + lease_s, owner)
            )
            self._conn.commit()

    def release(self, keys: list[str] | None, owner: str) -> None:
        """Drop ``owner``'s claims on ``keys`` (all of them with None), answered or not."""
        with self._db():
            if keys is None:
                self._conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))
            else:
                self._conn.executemany(
                    "DELETE FROM claims WHERE key = ? AND owner = ?", [(k, owner) for k in keys]
                )
            self._conn.commit()

    def drop_claims_of(self, owners: list[str]) -> None:
        """Drop the claims of owners known to be gone (a dead process on this machine)."""
        with self._db():
            self._conn.executemany("DELETE FROM claims WHERE owner = ?", [(o,) for o in owners])
            self._conn.commit()

    def count(self) -> int:
        with self._db():
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

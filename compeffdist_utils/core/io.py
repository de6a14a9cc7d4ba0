"""Reading and writing the run folder's JSONL files.

Writes are atomic (temporary file + rename) so a stage killed mid-write never leaves a half file that
a later stage would read as complete.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A data file that is missing or does not parse; the message names the file and line."""


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask (reading it means setting it; the lock keeps threads from seeing 0)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode every other file gets
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def not_utf8(path: str | Path, err: UnicodeDecodeError) -> str:
    """The message for a file that is not UTF-8 text: its name, the byte, and the fix."""
    return f"{path}: not UTF-8 text (undecodable byte at offset {err.start}); convert it to UTF-8"


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's content; an error names the file when it is missing or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"file not found: {path}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFileError(not_utf8(path, err)) from None


def iter_jsonl_numbered(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) per non-blank line, so callers can point at the line of a bad record."""
    path = Path(path)
    # split on "\n" only: a JSON string may hold U+2028, which str.splitlines() would cut at
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFileError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(rec, dict):
            raise DataFileError(f"{path}:{lineno}: expected a JSON object per line")
        yield lineno, rec


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    return (rec for _, rec in iter_jsonl_numbered(path))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"file not found: {path}")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: not valid JSON ({err.msg})") from None

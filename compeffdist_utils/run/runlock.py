"""One run at a time per run folder.

Why: two runs on one folder delete each other's stage records, overwrite the manifest and both pay
for every teacher request. The lock is an ``flock`` on ``<run_dir>/.lock``, so the kernel releases it
when its holder dies (even by SIGKILL): a lock file left by a dead process is simply taken over. The
file holds the holder's PID, for the message a second run gets.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


class RunFolderBusyError(RuntimeError):
    """Another live process holds the run folder; the message names its PID."""


@contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the run folder's lock for the ``with`` block, or raise :class:`RunFolderBusyError` at once."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderBusyError(
            f"run folder {run_dir} is in use by another run (PID {holder}, lock {path}); wait for it to "
            "finish, or give this run another run_name or --run-dir"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the flock

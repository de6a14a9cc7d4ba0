"""Ctrl-C, SIGTERM and a full disk during a run: the stage is recorded, the run folder stays resumable.

Why: a run is stopped from outside (Ctrl-C, a job scheduler's SIGTERM) or by the machine (disk full) as
often as by its own errors, and each must end like one: a line saying what happened, the stage marked
``interrupted`` or ``failed`` in ``manifest.json``, the lock released and every answered teacher request
already in the cache (each is committed as it arrives), so the same command resumes.

- SIGTERM is turned into :class:`Interrupted` (a ``KeyboardInterrupt``, so no ``except Exception`` on the
  way swallows it), exactly like Ctrl-C.
- A full disk would also stop the runner from writing the manifest that records the failure, so the
  runner keeps a small reserve file (:class:`DiskReserve`) in the run folder while it runs and frees it to
  write its bookkeeping when the disk is full.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

RESERVE_NAME = ".disk-reserve"
RESERVE_BYTES = 4 << 20  # room for manifest.json and report.html when the disk fills up


class Interrupted(KeyboardInterrupt):
    """The run was stopped from outside; the message names the signal."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` in the main thread like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupt_name(err: BaseException) -> str:
    """'SIGTERM' or 'Ctrl-C (SIGINT)': what stopped the run."""
    return str(err) if isinstance(err, Interrupted) and str(err) else "Ctrl-C (SIGINT)"


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


class DiskReserve:
    """A file of :data:`RESERVE_BYTES` held in the run folder while a run writes there; freed when the disk
    is full so that the run's own record of the failure can still be written."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / RESERVE_NAME
        self.held = False

    def hold(self) -> None:
        """Take the reserve; a disk too full for it already leaves nothing to reserve (not an error)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
            self.held = True
        except OSError:
            self.release()

    def release(self) -> bool:
        """Free the reserve; True when there was one to free."""
        was_held, self.held = self.held, False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return was_held

    def write(self, write: Callable[[], T]) -> T:
        """``write()``; when it fails for a full disk, free the reserve and try once more."""
        try:
            return write()
        except OSError as err:
            if not is_disk_full(err) or not self.release():
                raise
            return write()

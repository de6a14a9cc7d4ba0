"""A total deadline per HTTP request: connect + send + wait + read together, dripping replies included.

Why: httpx's timeouts bound each network operation, not the request. A server that sends one byte every
0.2 s never trips a 5 s read timeout, so a request could run for ever. Here every socket operation of the
calling thread is given at most the time left until that thread's deadline, and an operation that starts
after the deadline fails at once; so a request started under :func:`request_deadline` ends within its
seconds whatever the server does, and the error says how many bytes had arrived.

The sync HTTP client does its network I/O in the thread that sends the request (the openai backend's
worker thread), so the deadline is thread-local: concurrent requests each have their own. The wrappers are
duck-typed over whichever httpcore the ``openai`` package brings (``httpcore`` or ``httpcore2``): they
raise that package's own timeout errors, which the client reports as ``APITimeoutError``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_local = threading.local()


class _Window:
    """The running request's deadline and what has arrived so far (for the error message)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.bytes_received = 0

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        """The timeout to give one socket operation: never past the deadline; raises once it has passed."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise error(f"the request's total deadline of {self.seconds:g} s passed")
        return left if timeout is None else min(timeout, left)


def _window() -> _Window | None:
    return getattr(_local, "window", None)


@contextmanager
def request_deadline(seconds: float) -> Iterator[_Window]:
    """Requests this thread sends inside the block end within ``seconds`` from its start, in total."""
    previous = _window()
    _local.window = window = _Window(seconds)
    try:
        yield window
    finally:
        _local.window = previous


class _Errors:
    """The timeout errors of the httpcore module that made ``backend``, for the client to map."""

    def __init__(self, backend: Any):
        core = sys.modules[type(backend).__module__.split(".")[0]]
        self.read, self.write, self.connect = core.ReadTimeout, core.WriteTimeout, core.ConnectTimeout


class _DeadlineStream:
    """A socket stream whose reads and writes stop at the calling thread's deadline."""

    def __init__(self, stream: Any, errors: _Errors):
        self._stream = stream
        self._errors = errors

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        window = _window()
        if window is None:
            return self._stream.read(max_bytes, timeout)
        data = self._stream.read(max_bytes, window.left(timeout, self._errors.read))
        window.bytes_received += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        window = _window()
        left = timeout if window is None else window.left(timeout, self._errors.write)
        self._stream.write(buffer, left)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> _DeadlineStream:
        window = _window()
        left = timeout if window is None else window.left(timeout, self._errors.connect)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._errors)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend:
    """Opens connections within the thread's deadline and hands out :class:`_DeadlineStream` s."""

    def __init__(self, backend: Any):
        self._backend = backend
        self._errors = _Errors(backend)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _DeadlineStream:
        window = _window()
        left = timeout if window is None else window.left(timeout, self._errors.connect)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._errors)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _DeadlineStream:
        window = _window()
        left = timeout if window is None else window.left(timeout, self._errors.connect)
        return _DeadlineStream(self._backend.connect_unix_socket(path, left, socket_options), self._errors)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def with_deadlines(client: Any) -> Any:
    """``client`` (the ``openai`` package's httpx client) with its requests honouring
    :func:`request_deadline`; requests outside one keep the client's own per-operation timeouts."""
    pools = [getattr(t, "_pool", None) for t in (client._transport, *client._mounts.values()) if t]
    for pool in pools:
        if pool is None or not hasattr(pool, "_network_backend"):  # pragma: no cover - httpx changed
            raise RuntimeError("this httpx version has no network-backend hook for per-request deadlines")
        pool._network_backend = _DeadlineBackend(pool._network_backend)
    return client

"""What a failed attempt at one teacher request means: retry it, fail that request alone, or stop the stage.

Why a module of its own: the openai backend decides retries itself (the client's own retries are off), so
that each rule is the kit's and is said in its messages:

- HTTP 400/413/422: the server refuses this request for what it asks (a prompt over its context): the
  request fails alone, counted and not cached (:data:`REQUEST_REJECTED_STATUSES`).
- HTTP 408/409/429 and 500/502/503/504: a busy or restarting server: retried with backoff.
- Any other status (401, 403, 404, 501, ...): permanent, the stage stops at once without retrying.
- A refused connection (nothing listens) and a dropped one (a server accepted the request and closed
  the connection without an answer) are retried and named differently.
- A timeout: retried only while the server is making progress, i.e. when some other request was answered
  while this one waited (:class:`Progress`). A server that accepts connections but never completes an
  answer therefore fails the stage after one ``timeout_s``, while a busy server that answers slowly keeps
  being waited for.
"""

from __future__ import annotations

import threading
import time

# A server refuses one request for what it asks, not because it is down or misconfigured.
REQUEST_REJECTED_STATUSES = (400, 413, 422)
# A busy, rate-limited or restarting server: worth asking again.
RETRIED_STATUSES = (408, 409, 429, 500, 502, 503, 504)
MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After is capped (the stage would look hung)


class Progress:
    """When a request of this backend last got a complete answer (shared by its worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = float("-inf")

    def answered(self) -> None:
        with self._lock:
            self._last = time.monotonic()

    def answered_since(self, t0: float) -> bool:
        """Whether any request was answered after ``t0`` (a monotonic time)."""
        with self._lock:
            return self._last > t0


def backoff_s(attempt: int, retry_after: str | None = None) -> float:
    """Seconds before retry number ``attempt + 1``: exponential (0.5, 1, 2, ... 8 s), or the server's
    ``Retry-After`` when it asks for longer (capped at :data:`MAX_RETRY_AFTER_S`)."""
    wait = min(0.5 * 2**attempt, 8.0)
    try:
        asked = float(retry_after) if retry_after is not None else 0.0
    except ValueError:  # an HTTP date: keep the exponential wait
        asked = 0.0
    return max(wait, min(asked, MAX_RETRY_AFTER_S))


def connection_problem(err: BaseException) -> str:
    """Says which happened: nothing answered the connection, or the server dropped it mid-request."""
    cause = err.__cause__ or err.__context__
    name = type(cause).__name__ if cause is not None else type(err).__name__
    detail = str(cause or err).strip()[:200]
    if name in ("ConnectError", "ConnectTimeout"):
        return f"is unreachable: the connection was refused or not made ({name}: {detail})"
    return (
        "accepted the connection but dropped it before a complete answer (it is running; "
        f"it may have crashed, restarted or hit a proxy limit) ({name}: {detail})"
    )


def timeout_problem(url: str, timeout_s: float, bytes_received: int, tried: int) -> str:
    """A request that ran out of its total deadline while no other request was answered."""
    got = f"received {bytes_received} bytes of a reply, too slowly" if bytes_received else "received no reply"
    return (
        f"teacher server {url} accepted the request POST /chat/completions but {got} within the total "
        f"deadline of {timeout_s:g} s (models.teacher.timeout_s), and no other request was answered "
        f"meanwhile ({tried} attempt(s)); is it stuck, or is generation slower than this? A slow server "
        "needs a larger timeout_s"
    )

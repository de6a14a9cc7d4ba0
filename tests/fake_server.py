"""A bounded fake OpenAI-compatible server on 127.0.0.1 for failure-path tests (a thread in the test).

``serve(reply)`` runs ``reply(handler) -> (status, content_type, body)`` for every POST and answers GET
/models with 200 unless ``hang_s`` makes it sit silent; the server stops when the ``with`` block ends.
A ``reply`` that returns None has answered (or not) by itself through ``handler.wfile``: :func:`drip`
and :func:`drop` are such replies.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[BaseHTTPRequestHandler], tuple[int, str, bytes] | None]


def completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()  # fmt: skip


def drip(interval_s: float, n_bytes: int) -> Reply:
    """A reply whose headers come at once and whose body (a valid completion, padded with spaces to
    ``n_bytes``) comes one byte every ``interval_s``: every read is quick, the whole is slow."""

    def reply(h: BaseHTTPRequestHandler) -> None:
        body = completion("dripped").ljust(n_bytes)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(interval_s)
        except OSError:  # the client gave up
            pass

    return reply


def drop(h: BaseHTTPRequestHandler) -> None:
    """A reply that closes the connection without a byte: a server that accepts and drops."""
    h.close_connection = True


@contextmanager
def serve(reply: Reply, hang_s: float = 0.0) -> Iterator[tuple[str, list[int]]]:
    """Yields (base_url, calls): ``calls[0]`` counts the POSTs received."""
    calls = [0]

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if hang_s:
                time.sleep(hang_s)
            self._send(200, "application/json", b'{"object": "list", "data": []}')

        def do_POST(self) -> None:  # noqa: N802
            calls[0] += 1
            self.body = self.rfile.read(int(self.headers.get("Content-Length", 0)))  # for ``reply``
            if hang_s:
                time.sleep(hang_s)
            answer = reply(self)
            if answer is not None:
                self._send(*answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", calls
    finally:
        server.shutdown()
        server.server_close()

"""The openai backend against a real OpenAI-compatible server on 127.0.0.1, and against failures."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from compeffdist_utils.core.config import DecodingParams, Params
from compeffdist_utils.teacher.backends import make_teacher
from compeffdist_utils.teacher.base import TeacherUnavailableError
from compeffdist_utils.teacher.cache import ResponseCache
from compeffdist_utils.teacher.openai import OpenAIBackend
from tests.conftest import count_in_flight
from tests.fake_server import completion, serve

GREEDY = DecodingParams(max_new_tokens=8, temperature=0.0)
PROMPTS = [
    "Say hello.",
    "Name a fruit.",
    "Is 'awful food' positive or negative?",
    "Count to three.",
    "Name a colour.",
]


def _params(tmp_path, base_url, model, **teacher):
    return Params.model_validate(
        {
            "cache_dir": str(tmp_path),
            "models": {"teacher": {"backend": "openai", "base_url": base_url, "model": model, **teacher}},
        }
    )


@pytest.mark.slow
def test_real_server_answers_concurrently_and_reuses_the_cache(tmp_path, served_smollm):
    """Complete, bounded and cached against a real server.

    Not compared with answers asked one at a time: a server may batch concurrent requests, and greedy
    text can change with the batch. Order under concurrency is tested exactly against the echo server
    below, where each answer is a function of its own prompt.
    """
    base_url, model = served_smollm
    conc = make_teacher(_params(tmp_path / "b", base_url, model, max_concurrency=4))
    peak = count_in_flight(conc)
    answers = conc.chat(PROMPTS, GREEDY, desc="concurrent")
    assert len(answers) == len(PROMPTS) and all(answers)
    assert 1 < peak[0] <= 4, f"requests in flight: {peak[0]} (concurrent, bounded by max_concurrency=4)"
    assert conc.usage.cache_misses == len(PROMPTS) and conc.usage.completion_tokens > 0
    assert ResponseCache(tmp_path / "b" / "responses.sqlite").count() == len(PROMPTS)

    again = make_teacher(_params(tmp_path / "b", base_url, model, max_concurrency=4))
    again._one = None  # any request to the server would fail now
    assert again.chat(PROMPTS[::-1], GREEDY) == answers[::-1]
    assert again.usage.cache_hits == len(PROMPTS) and again.usage.cache_misses == 0


def test_concurrent_answers_come_back_in_input_order_with_the_sampling_settings(tmp_path):
    """An echo server answers each prompt reversed, the early prompts slowest: order is the kit's job."""
    prompts = [f"prompt number {i}" for i in range(12)]
    bodies: list[dict] = []

    def echo(h):
        body = json.loads(h.body)
        bodies.append(body)
        text = body["messages"][-1]["content"]
        time.sleep(0.02 * (12 - int(text.rsplit(" ", 1)[1])))  # the first asked answer last
        return 200, "application/json", completion(text[::-1])

    sampled = DecodingParams(max_new_tokens=16, temperature=0.7, top_p=0.9, seed=11)
    with serve(echo) as (url, calls):
        t = make_teacher(_params(tmp_path, url, "m", max_concurrency=4))
        peak = count_in_flight(t)
        answers = t.chat(prompts, sampled)
    assert answers == [p[::-1] for p in prompts]
    asked = sorted(b["messages"][-1]["content"] for b in bodies)
    assert calls[0] == len(prompts) and asked == sorted(prompts)  # each prompt asked once
    assert 2 <= peak[0] <= 4  # concurrent, bounded by max_concurrency (measured: 4)
    for b in bodies:  # what the server received: the decoding settings of the request, the seed included
        assert (b["max_tokens"], b["temperature"], b["top_p"], b["seed"]) == (16, 0.7, 0.9, 11), b


def test_closed_port_gives_a_clear_error_naming_the_url(tmp_path):
    from tests.conftest import _free_port

    url = f"http://127.0.0.1:{_free_port()}/v1"
    t = make_teacher(_params(tmp_path, url, "m", max_retries=1, timeout_s=2))
    t0 = time.time()
    with pytest.raises(TeacherUnavailableError, match=f"teacher server {url} is unreachable"):
        t.chat(["hi"], GREEDY)
    # Refused connections fail at once; the bound only catches a hang (measured: ~1 s).
    assert time.time() - t0 < 60
    assert ResponseCache(tmp_path / "responses.sqlite").count() == 0


class _Flaky(BaseHTTPRequestHandler):
    """Fails twice with 503 / 429, then answers like an OpenAI server."""

    calls = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls <= 2:
            self.send_response(503 if type(self).calls == 1 else 429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        body = json.dumps(
            {
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        ).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_retries_with_backoff_on_503_and_429(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        t = make_teacher(_params(tmp_path, url, "m", max_retries=3, timeout_s=5))
        assert isinstance(t, OpenAIBackend)
        assert t.chat(["hi"], GREEDY) == ["ok"]
        assert _Flaky.calls == 3
    finally:
        server.shutdown()


class _RejectsLong(BaseHTTPRequestHandler):
    """Answers "ok", except HTTP 400 (like vLLM for a prompt over its context) when a message says LONG."""

    calls = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        type(self).calls += 1
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if any("LONG" in m["content"] for m in req["messages"]):
            body = json.dumps({"object": "error", "message": "maximum context length is 4096 tokens"})
            status = 400
        else:
            body = json.dumps(
                {
                    "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                }
            )  # fmt: skip
            status = 200
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_rejected_request_is_a_counted_uncached_failure_not_a_stop(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RejectsLong)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        # 1 of 3 rejected: under a threshold of 0.5 the step goes on (test_attempts covers the stop)
        t = make_teacher(_params(tmp_path, url, "m", max_retries=3, timeout_s=5, max_failed_fraction=0.5))
        assert t.chat(["hi", "LONG text", "bye"], GREEDY, desc="step") == ["ok", "", "ok"]
        assert _RejectsLong.calls == 3, "a 400 is final: it must not be retried"
        usage = t.usage.as_dict()
        assert usage["failed"] == 1 and usage["cache_misses"] == 2
        assert usage["by_step"]["step"]["failed"] == 1
        assert "HTTP 400" in usage["failure_examples"][0] and "context length" in usage["failure_examples"][0]
        assert ResponseCache(tmp_path / "responses.sqlite").count() == 2  # the failure is not cached

        again = make_teacher(_params(tmp_path, url, "m", max_retries=3, timeout_s=5, max_failed_fraction=0.5))
        assert again.chat(["hi", "LONG text", "bye"], GREEDY) == ["ok", "", "ok"]
        assert _RejectsLong.calls == 4, "the rerun asks again only for the rejected request"
    finally:
        server.shutdown()

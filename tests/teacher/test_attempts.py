"""Failure paths of the openai backend that must neither hang nor pass silently (issue 21, cases 1-3).

Each test uses a fake server on 127.0.0.1 and short timeouts, so a hang shows as a slow test, not a
stuck one: every server here ends on its own within seconds.
"""

import threading
import time

import pytest

from compeffdist_utils.core.config import DecodingParams, Params
from compeffdist_utils.teacher.backends import make_teacher
from compeffdist_utils.teacher.base import TeacherFailuresError, TeacherUnavailableError
from compeffdist_utils.teacher.cache import ResponseCache
from tests.fake_server import completion, drip, drop, serve

GREEDY = DecodingParams(max_new_tokens=8, temperature=0.0)


def _teacher(tmp_path, url, **teacher):
    params = Params.model_validate(
        {
            "cache_dir": str(tmp_path),
            "models": {"teacher": {"backend": "openai", "base_url": url, "model": "m", **teacher}},
        }
    )
    return make_teacher(params, stage="01_attributes")


def test_a_server_that_never_completes_fails_after_one_timeout_naming_what_was_waited_for(tmp_path):
    """GET /models answers; POST sleeps. Default retries (4) must not multiply the wait (case 1)."""

    def sleepy(h):
        time.sleep(8)
        return 200, "application/json", completion("too late")

    with serve(sleepy) as (url, calls):
        t = _teacher(tmp_path, url, timeout_s=1)
        t0 = time.monotonic()
        with pytest.raises(TeacherUnavailableError) as info:
            t.chat([f"prompt {i}" for i in range(5)], GREEDY)
        elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert url in msg and "POST /chat/completions" in msg and "received no reply" in msg, msg
    assert "timeout_s" in msg
    assert elapsed < 2 * 1 + 1.0, f"{elapsed:.1f} s for timeout_s=1 (the bound is ~2 x timeout_s)"
    assert calls[0] == 5, "each request asked once: a stuck server's timeouts are not retried"


def test_a_dripping_reply_is_cut_at_the_total_deadline(tmp_path):
    """One byte every 0.05 s: each read is quick, the reply would take ~25 s; timeout_s=1 is total (case 2)."""
    with serve(drip(0.05, 500)) as (url, _):
        t = _teacher(tmp_path, url, timeout_s=1, max_retries=0)
        t0 = time.monotonic()
        with pytest.raises(TeacherUnavailableError, match=r"received \d+ bytes of a reply, too slowly"):
            t.chat(["hi"], GREEDY)
        elapsed = time.monotonic() - t0
    assert elapsed < 2.5, f"{elapsed:.1f} s for a 1 s deadline"


def test_a_busy_server_that_answers_slowly_is_waited_for(tmp_path):
    """One answer at a time, 0.3 s each, 6 requests 6 at a time: the last waits ~1.8 s > timeout_s=1.
    The others being answered meanwhile shows progress, so its timeout is retried and everything is
    answered (the defaults serve a slow, busy server as well as they fail a stuck one)."""
    one_at_a_time = threading.Lock()

    def busy(h):
        with one_at_a_time:
            time.sleep(0.3)
        return 200, "application/json", completion("ok")

    with serve(busy) as (url, calls):
        t = _teacher(tmp_path, url, timeout_s=1, max_concurrency=6)
        assert t.chat([f"p{i}" for i in range(6)], GREEDY) == ["ok"] * 6
    assert calls[0] > 6  # some request timed out and was asked again
    assert ResponseCache(tmp_path / "responses.sqlite").count() == 6


def test_every_request_rejected_fails_the_step_with_counts_and_the_first_error(tmp_path):
    """HTTP 400 for everything must not leave the stage "ok" with nothing in it (case 3)."""
    reject = (400, "application/json", b'{"object": "error", "message": "bad model name"}')
    with serve(lambda h: reject) as (url, calls):
        t = _teacher(tmp_path, url)
        with pytest.raises(TeacherFailuresError) as info:
            t.chat(["a", "b", "c"], GREEDY, desc="01 attribute enumeration")
    msg = str(info.value)
    assert "3 of 3 failed" in msg and "HTTP 400" in msg and "bad model name" in msg
    assert "max_failed_fraction=0.2" in msg
    assert calls[0] == 3


def test_some_rejections_under_the_threshold_are_counted_and_the_step_goes_on(tmp_path):
    def one_bad(h):
        if b"LONG" in h.body:
            return 400, "application/json", b'{"message": "context length"}'
        return 200, "application/json", completion("ok")

    prompts = ["LONG"] + [f"p{i}" for i in range(9)]
    with serve(one_bad) as (url, _):
        t = _teacher(tmp_path, url, max_failed_fraction=0.1)
        assert t.chat(prompts, GREEDY)[:2] == ["", "ok"]
        assert t.usage.failed == 1
        strict = _teacher(tmp_path / "strict", url, max_failed_fraction=0.05)
        with pytest.raises(TeacherFailuresError, match="1 of 10 failed"):
            strict.chat(prompts, GREEDY)


@pytest.mark.parametrize("status", [401, 404, 501])
def test_a_permanent_status_is_not_retried(tmp_path, status):
    with serve(lambda h: (status, "application/json", b'{"message": "no"}')) as (url, calls):
        t = _teacher(tmp_path, url, max_retries=4)
        with pytest.raises(TeacherUnavailableError, match=f"HTTP {status}.*not retried"):
            t.chat(["hi"], GREEDY)
    assert calls[0] == 1


def test_a_dropped_connection_is_not_called_unreachable(tmp_path):
    with serve(drop) as (url, calls):
        t = _teacher(tmp_path, url, max_retries=1)
        with pytest.raises(TeacherUnavailableError) as info:
            t.chat(["hi"], GREEDY)
    msg = str(info.value)
    assert "dropped it" in msg and "unreachable" not in msg, msg
    assert calls[0] == 2  # retried once

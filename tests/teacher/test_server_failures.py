"""Servers that misbehave: wrong-shape or HTML replies, echoed keys, silence. Nothing is cached or leaked."""

import json
import os
import sqlite3
import time

import pytest

from compeffdist_utils.core.config import DecodingParams, Params
from compeffdist_utils.teacher.backends import make_teacher
from compeffdist_utils.teacher.base import TeacherUnavailableError
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache, request_key
from compeffdist_utils.teacher.requests import ChatRequest
from tests.fake_server import completion, serve

GREEDY = DecodingParams(max_new_tokens=8, temperature=0.0)


def _teacher(tmp_path, url, **teacher):
    params = Params.model_validate(
        {
            "cache_dir": str(tmp_path),
            "models": {"teacher": {"backend": "openai", "base_url": url, "model": "m", **teacher}},
        }
    )
    teacher = make_teacher(params)
    teacher.stage = "01_attributes"  # what Stage.teacher() sets: cached answers are tagged with it
    return teacher


def _rows(tmp_path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "responses.sqlite") as conn:
        return conn.execute("SELECT response, stage FROM responses").fetchall()


@pytest.mark.parametrize(
    ("ctype", "body", "why"),
    [
        ("application/json", b'{"id": "x", "object": "chat.completion"}', "choices"),
        ("text/html", b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        ("application/json", completion("half an answer")[:40], "not JSON"),
        ("application/json", completion("   "), "empty answer"),
    ],
    ids=["no-choices", "html", "cut-off-json", "empty"],
)
def test_malformed_replies_are_retried_never_cached_and_name_the_url(tmp_path, ctype, body, why):
    with serve(lambda h: (200, ctype, body)) as (url, calls):
        t = _teacher(tmp_path, url, max_retries=2, timeout_s=5)
        with pytest.raises(TeacherUnavailableError) as info:
            t.chat(["hi"], GREEDY)
    msg = str(info.value)
    assert url in msg and why in msg and "nothing was cached" in msg
    assert repr(body.decode()[:200])[1:30] in msg  # what came back, quoted
    assert calls[0] == 3  # first try + 2 retries
    assert _rows(tmp_path) == []


def test_poisoned_cache_rows_are_asked_again_and_replaced(tmp_path):
    """An empty answer cached by an older version is not served: the fixed server is asked again."""
    with serve(lambda h: (200, "application/json", completion("fixed"))) as (url, calls):
        t = _teacher(tmp_path, url)
        key = request_key(t.identity, ChatRequest.user("hi", GREEDY).as_dict())
        t.cache.put(key, "openai", "m", {}, CachedAnswer("", 0, 0))
        assert t.chat(["hi"], GREEDY) == ["fixed"] and calls[0] == 1
    assert _rows(tmp_path) == [("fixed", "01_attributes")]


def test_cache_drop_by_stage_or_model_keeps_the_file(tmp_path):
    cache = ResponseCache(tmp_path / "responses.sqlite")
    for i, (stage, model) in enumerate([("01_a", "m1"), ("01_a", "m2"), ("03_b", "m1")]):
        cache.put(f"k{i}", "openai", model, {}, CachedAnswer("x", 1, 1), stage)
    assert cache.summary() == [("01_a", "m1", 1), ("01_a", "m2", 1), ("03_b", "m1", 1)]
    assert cache.drop(stage="01_a") == 2
    assert cache.drop(model="m1") == 1 and cache.count() == 0
    with pytest.raises(ValueError, match="say which"):
        cache.drop()


def test_cli_cache_drop(tmp_path, capsys):
    from compeffdist_utils.cli import main

    params = tmp_path / "p.yaml"
    params.write_text(f"cache_dir: {tmp_path}\n")
    cache = ResponseCache(tmp_path / "responses.sqlite")
    cache.put("k", "hf", "m1", {}, CachedAnswer("x", 1, 1), "01_attributes")
    cache.close()
    assert main(["cache", "info", str(params)]) == 0
    assert "01_attributes" in capsys.readouterr().out
    assert main(["cache", "drop", str(params), "--stage", "01"]) == 0
    assert "dropped 1 cached answer" in capsys.readouterr().out
    assert ResponseCache(tmp_path / "responses.sqlite").count() == 0


def test_an_echoed_api_key_is_redacted_from_the_error(tmp_path, monkeypatch):
    secret = "sk-live-" + "a1b2c3d4" * 4
    monkeypatch.setenv("CDK_ECHO_KEY", secret)

    def echo(h):
        body = json.dumps({"error": {"message": f"bad key; you sent {h.headers['Authorization']}"}})
        return 401, "application/json", body.encode()

    with serve(echo) as (url, _):
        t = _teacher(tmp_path, url, api_key_env="CDK_ECHO_KEY", max_retries=0)
        with pytest.raises(TeacherUnavailableError) as info:
            t.chat(["hi"], GREEDY)
    msg = str(info.value)
    assert "HTTP 401" in msg and url in msg and "[redacted]" in msg
    assert secret not in msg and secret[8:20] not in msg


def test_a_silent_server_fails_fast(tmp_path):
    """Connections accepted, nothing answered: the probe fails in seconds, not timeout x retries."""
    hang_s = 30  # the server would answer after this; without the probe the request would wait for it
    with serve(lambda h: (200, "application/json", completion("late")), hang_s=hang_s) as (url, calls):
        t = _teacher(tmp_path, url, probe_timeout_s=1, timeout_s=120, max_retries=4)
        t0 = time.time()
        with pytest.raises(TeacherUnavailableError, match=f"{url} accepts connections but did not answer"):
            t.chat(["hi"], GREEDY)
        # Failed before the silent server would have answered, and no completion was asked for.
        assert time.time() - t0 < hang_s and calls[0] == 0


def test_a_damaged_cache_is_moved_aside_and_a_fresh_one_used(tmp_path):
    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    for i in range(2000):
        cache.put(f"k{i}", "hf", "m", {"i": i}, CachedAnswer("answer " * 40, 1, 1))
    cache.close()
    os.truncate(path, path.stat().st_size // 2)
    with pytest.warns(UserWarning, match=rf"{path} is damaged .*moved to .*damaged-.*fresh cache"):
        fresh = ResponseCache(path)
    assert fresh.count() == 0 and fresh.moved_aside is not None and fresh.moved_aside.stat().st_size > 0


def test_a_cache_that_breaks_mid_run_names_its_file(tmp_path):
    from compeffdist_utils.teacher.cache import CacheError

    path = tmp_path / "responses.sqlite"
    cache = ResponseCache(path)
    cache._conn.execute("DROP TABLE responses")  # stands in for a file damaged after it was opened
    with pytest.raises(CacheError, match=rf"response cache {path}: no such table"):
        cache.get_many(["k"])

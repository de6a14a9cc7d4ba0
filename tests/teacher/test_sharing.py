"""Runs sharing one response cache ask each prompt once (issue 21, case 7); read-only commands move nothing."""

import socket
import threading
import time

import pytest

from compeffdist_utils.cli import main
from compeffdist_utils.core.config import DecodingParams, Params
from compeffdist_utils.teacher.backends import make_teacher
from compeffdist_utils.teacher.cache import ResponseCache, request_key
from compeffdist_utils.teacher.requests import ChatRequest
from tests.fake_server import completion, serve

GREEDY = DecodingParams(max_new_tokens=8, temperature=0.0)
PROMPTS = [f"prompt {i}" for i in range(6)]


def _params(cache_dir, url):
    return Params.model_validate(
        {
            "cache_dir": str(cache_dir),
            "models": {"teacher": {"backend": "openai", "base_url": url, "model": "m", "max_concurrency": 2}},
        }
    )


def _slow_echo(h):
    time.sleep(0.2)
    return 200, "application/json", completion("answer to " + h.body.decode()[-40:])


def test_two_runs_sharing_a_cache_ask_each_prompt_once(tmp_path):
    """Two teachers (two runs' stage 01, each with its own cache connection) at the same time."""
    answers: dict[str, list[str]] = {}
    with serve(_slow_echo) as (url, calls):

        def run(name: str) -> None:
            answers[name] = make_teacher(_params(tmp_path, url)).chat(PROMPTS, GREEDY)

        threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert answers["a"] == answers["b"] and all(answers["a"])
    assert calls[0] == len(PROMPTS), f"{calls[0]} requests for {len(PROMPTS)} prompts"


def test_the_claims_of_a_run_that_died_are_taken_over(tmp_path):
    with serve(_slow_echo) as (url, calls):
        teacher = make_teacher(_params(tmp_path, url))
        key = request_key(teacher.identity, ChatRequest.user(PROMPTS[0], GREEDY).as_dict())
        dead = f"{socket.gethostname()}:{2**22 + 12345}:0"  # no such process
        teacher.cache.claim([key], dead, lease_s=3600)
        t0 = time.monotonic()
        assert teacher.chat(PROMPTS[:1], GREEDY)[0]
    assert calls[0] == 1 and time.monotonic() - t0 < 10


def test_cache_info_never_moves_a_damaged_cache(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(f"cache_dir: {tmp_path / 'cache'}\n")
    damaged = tmp_path / "cache" / "responses.sqlite"
    damaged.parent.mkdir()
    damaged.write_bytes(b"this is not a database" * 100)
    assert main(["cache", "info", str(tmp_path / "p.yaml")]) == 1
    err = capsys.readouterr().err
    assert str(damaged) in err and "damaged" in err and "Traceback" not in err
    assert sorted(p.name for p in damaged.parent.iterdir()) == ["responses.sqlite"]
    assert damaged.read_bytes().startswith(b"this is not a database")
    with pytest.warns(UserWarning, match="moved to"):
        ResponseCache(damaged)  # a run (read-write) still moves it aside and starts afresh
    assert len(list(damaged.parent.iterdir())) >= 2


def test_runs_opening_a_new_cache_at_once_neither_move_it_aside_nor_share_a_claim(tmp_path):
    """Found while testing claims: two runs creating one cache at once raced on its schema (a 'duplicate
    column' or 'database is locked' read as damage moved the fresh cache aside)."""
    for trial in range(20):
        path, claimed = tmp_path / f"{trial}.sqlite", {}

        def open_and_claim(owner: str, path=path, claimed=claimed) -> None:
            claimed[owner] = ResponseCache(path).claim(["k1", "k2"], owner, lease_s=60)[0]

        threads = [threading.Thread(target=open_and_claim, args=(o,)) for o in ("x", "y")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(p.name for p in tmp_path.iterdir() if "damaged" in p.name) == []
        assert sorted(map(len, claimed.values())) == [0, 2], claimed

"""Teacher backends and the response cache (hf backend here; the openai backend in test_openai_backend)."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from compeffdist_utils.backends import ChatRequest, HFBackend, make_teacher
from compeffdist_utils.cache import CachedAnswer, ResponseCache, request_key
from compeffdist_utils.config import DecodingParams, Params

GREEDY = DecodingParams(max_new_tokens=8, temperature=0.0)


class EchoBackend(HFBackend):
    """Answers with the prompt reversed; counts what it was asked (no model)."""

    def __init__(self, cache):
        super().__init__("echo", Params(), cache)
        self.asked: list[str] = []

    def _answer(self, requests):
        for i, r in reversed(list(enumerate(requests))):  # out of order on purpose
            self.asked.append(r.messages[-1][1])
            yield i, CachedAnswer(r.messages[-1][1][::-1], 3, 2)


def test_generate_keeps_order_dedupes_and_caches(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    b = EchoBackend(cache)
    out = b.chat(["abc", "xyz", "abc"], GREEDY, desc="step")
    assert out == ["cba", "zyx", "cba"]
    assert b.asked == ["xyz", "abc"]  # the repeat was asked once
    assert b.usage.cache_misses == 2 and b.usage.cache_hits == 1 and b.usage.completion_tokens == 4
    b2 = EchoBackend(ResponseCache(tmp_path / "c.sqlite"))
    assert b2.chat(["xyz", "abc"], GREEDY) == ["zyx", "cba"] and b2.asked == []
    assert b2.usage.cache_hits == 2 and b2.usage.cached_completion_tokens == 4
    # other decoding settings or tags are other requests
    b2.chat(["abc"], DecodingParams(max_new_tokens=9, temperature=0.0))
    b2.chat(["abc"], GREEDY, tags=["sample-2"])
    assert b2.asked == ["abc", "abc"]


def test_cache_key_covers_model_and_messages():
    req = ChatRequest.user("hi", GREEDY).as_dict()
    k = request_key({"backend": "hf", "model": "a"}, req)
    assert k != request_key({"backend": "hf", "model": "b"}, req)
    assert k != request_key({"backend": "hf", "model": "a"}, ChatRequest.user("hi!", GREEDY).as_dict())
    assert k == request_key({"backend": "hf", "model": "a"}, ChatRequest.user("hi", GREEDY).as_dict())


@pytest.mark.slow
def test_hf_backend_batched_equals_one_by_one(tmp_path, ci_params, smol):
    prompts = ["Name a colour.", "Is 'great movie!' positive or negative? Answer in one word.", "Say hello"]
    batched = HFBackend(
        ci_params.models.teacher.model, ci_params, ResponseCache(tmp_path / "a.sqlite"), batch_size=3
    )
    batched._model_and_tok = smol
    single = HFBackend(
        ci_params.models.teacher.model, ci_params, ResponseCache(tmp_path / "b.sqlite"), batch_size=1
    )
    single._model_and_tok = smol
    a = batched.chat(prompts, GREEDY)
    b = single.chat(prompts, GREEDY)
    assert a == b and all(a)
    assert batched.usage.completion_tokens > 0


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from compeffdist_utils.backends import make_teacher
    from compeffdist_utils.config import DecodingParams, Params
    p = Params(cache_dir=sys.argv[1], models={"teacher": {"batch_size": 2}})
    t = make_teacher(p)
    prompts = [f"Count to {i}." for i in range(10)]
    out = t.chat(prompts, DecodingParams(max_new_tokens=6, temperature=0.0), desc="kill-test")
    print("ANSWERS", len(out), sum(1 for o in out if o), t.usage.cache_hits, t.usage.cache_misses)
    """
)


@pytest.mark.slow
def test_sigkill_midway_then_rerun_answers_each_request_exactly_once(tmp_path):
    """Kill -9 while answers are being written; the rerun asks only what is missing."""
    cache_dir = tmp_path / "cache"
    models_dir = Params().resolved_cache_dir() / "models"
    cache_dir.mkdir()
    (cache_dir / "models").symlink_to(models_dir)  # reuse the converted SmolLM2
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT)
    db = cache_dir / "responses.sqlite"
    proc = subprocess.Popen([sys.executable, str(script), str(cache_dir)], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    answered = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                answered = sqlite3.connect(db).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            except sqlite3.OperationalError:
                answered = 0
            if answered >= 2:
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.2)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert 2 <= before < 10
    out = subprocess.run(
        [sys.executable, str(script), str(cache_dir)], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    answers, nonempty, hits, misses = (int(x) for x in out.stdout.split("ANSWERS")[1].split())
    assert answers == 10 and nonempty == 10
    assert hits == before and misses == 10 - before  # what was answered is not asked again
    rows = sqlite3.connect(db).execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM responses").fetchone()
    assert rows == (10, 10)


def test_make_teacher_openai_needs_its_key_variable(tmp_path, monkeypatch):
    from compeffdist_utils.backends import TeacherUnavailableError

    monkeypatch.delenv("CDK_TEST_MISSING_KEY", raising=False)
    p = Params.model_validate(
        {
            "cache_dir": str(tmp_path),
            "models": {
                "teacher": {
                    "backend": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key_env": "CDK_TEST_MISSING_KEY",
                }
            },
        }
    )
    with pytest.raises(TeacherUnavailableError, match="CDK_TEST_MISSING_KEY, which is not set"):
        make_teacher(p)

"""The teacher budget: a stage stops before its next batch would cross the limit, and resumes without paying twice."""

import json
from pathlib import Path

import pytest

from compeffdist_utils.core.config import BudgetParams, DecodingParams, Params, ParamsError, params_from_dict
from compeffdist_utils.run.runner import BudgetStop, Runner
from compeffdist_utils.teacher.base import TeacherBackend
from compeffdist_utils.teacher.budget import TeacherBudget, TeacherBudgetExceeded
from compeffdist_utils.teacher.cache import ResponseCache
from tests.run.toy_project import make_project

ROOT = Path(__file__).resolve().parents[2]
DEC = DecodingParams(max_new_tokens=5)

FAKE_TEACHER = '''
from compeffdist_utils.teacher.base import TeacherBackend
from compeffdist_utils.teacher.cache import CachedAnswer


class PairTeacher(TeacherBackend):
    """Answers two requests per batch at 10 prompt + 3 completion tokens each; reserves like the hf backend."""

    backend_name = "pairs"

    def __init__(self, cache):
        super().__init__("pairs", cache)
        self.asked = []

    def _answer(self, requests):
        for start in range(0, len(requests), 2):
            batch = list(range(start, min(start + 2, len(requests))))
            held = self._reserve(len(batch), 10 * len(batch), requests[start].decoding.max_new_tokens)
            answers = [CachedAnswer("answer to " + requests[i].messages[-1][1], 10, 3) for i in batch]
            self.asked += [requests[i].messages[-1][1] for i in batch]
            self._settle(held, answers)
            yield from zip(batch, answers)
'''
_ns: dict = {}
exec(FAKE_TEACHER, _ns)  # the same class here as in the notebook of the runner test
PairTeacher: type[TeacherBackend] = _ns["PairTeacher"]


def _budget(max_tokens: int, path: Path | None = None, before: tuple[int, int] = (0, 0)) -> TeacherBudget:
    return TeacherBudget(BudgetParams(max_teacher_tokens=max_tokens), before, path)


def test_stops_before_the_batch_that_would_cross_and_resumes_from_the_cache(tmp_path):
    prompts = [f"text {k}" for k in range(8)]
    teacher = PairTeacher(ResponseCache(tmp_path / "c.sqlite"))
    # each batch reserves 2 x (10 + 5) = 30 and costs 2 x 13 = 26: 26, 52, then 52 + 30 > 60 stops
    teacher.budget = _budget(60, tmp_path / "stop.json")
    with pytest.raises(TeacherBudgetExceeded, match="max_teacher_tokens = 60"):
        teacher.chat(prompts, DEC)
    assert teacher.asked == prompts[:4]
    stop = json.loads((tmp_path / "stop.json").read_text())
    assert stop["run_tokens"] == 52 and stop["next_batch"] == {"requests": 2, "tokens_at_most": 30}
    assert stop["teacher_usage"]["cache_misses"] == 4 and stop["limit"] == "max_teacher_tokens"

    again = PairTeacher(ResponseCache(tmp_path / "c.sqlite"))
    again.budget = _budget(200)
    answers = again.chat(prompts, DEC)
    assert answers == [f"answer to {p}" for p in prompts]
    assert again.asked == prompts[4:]  # the first four were not paid for twice
    assert again.usage.cache_hits == 4 and again.budget.usage["cached_prompt_tokens"] == 40
    assert again.budget.usage["prompt_tokens"] + again.budget.usage["completion_tokens"] == 52


def test_cached_answers_and_earlier_stages_count_but_never_stop(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    first = PairTeacher(cache)
    first.chat(["a", "b"], DEC)
    lowered = PairTeacher(cache)
    lowered.budget = _budget(20)  # already over it: the cached answers are still served
    assert lowered.chat(["a", "b"], DEC) == ["answer to a", "answer to b"]
    with pytest.raises(TeacherBudgetExceeded):
        lowered.chat(["c"], DEC)
    late = PairTeacher(cache)
    late.budget = _budget(100, before=(60, 20))  # earlier stages used 80 of the 100
    with pytest.raises(TeacherBudgetExceeded, match="used 80 teacher tokens"):
        late.chat(["c", "d"], DEC)
    assert late.asked == []


def test_dollar_budget_needs_prices_and_stops_on_dollars(tmp_path):
    with pytest.raises(ParamsError, match="max_usd needs budget.price_in"):
        params_from_dict({"budget": {"max_usd": 1.0}})
    teacher = PairTeacher(ResponseCache(tmp_path / "c.sqlite"))
    # $1 per 1M tokens in and out: $0.00005 allows the first batch (26 tokens, 30 reserved) only
    teacher.budget = TeacherBudget(BudgetParams(max_usd=0.00005, price_in=1.0, price_out=1.0))
    with pytest.raises(TeacherBudgetExceeded, match="max_usd"):
        teacher.chat(["a", "b", "c", "d"], DEC)
    assert teacher.asked == ["a", "b"]
    assert TeacherBudget.for_stage(Params(), tmp_path, "01_x") is None  # no limit: no budget


STAGE_CODE = (
    FAKE_TEACHER
    + """
import compeffdist_utils.stage.stage as stage_module
from compeffdist_utils.core.config import DecodingParams
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.stage.stage import Stage
from compeffdist_utils.teacher.backends import cache_path
from compeffdist_utils.teacher.cache import ResponseCache

# The stage's teacher is the fake one (Stage.teacher calls the make_teacher it imported).
stage_module.make_teacher = lambda params, cache=None, stage="": PairTeacher(ResponseCache(cache_path(params)))
stage = Stage.open("09_teacher", params_path, overrides, run_dir)
answers = stage.teacher().chat([f"text {k}" for k in range(8)], DecodingParams(max_new_tokens=5))
write_jsonl(stage.output("answers.jsonl"), [{"a": a} for a in answers])
stage.finish(asked=stage.teacher().asked)
"""
)


@pytest.mark.slow
def test_runner_marks_the_stage_stopped_and_a_higher_budget_continues(tmp_path):
    make_project(tmp_path, {"09_teacher": STAGE_CODE})
    sets = {"cache_dir": str(tmp_path / "cache"), "budget.max_teacher_tokens": 60}

    with pytest.raises(BudgetStop, match="09_teacher stopped: teacher budget reached"):
        Runner(tmp_path / "params/p.yaml", sets, root=tmp_path).run(progress=False)
    run_dir = tmp_path / "reports/ci"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (entry,) = manifest["stages"]
    assert entry["status"] == "stopped" and entry["stopped"] == "budget"
    assert entry["budget"]["run_tokens"] == 52 and entry["budget"]["max_teacher_tokens"] == 60
    assert entry["teacher_usage"]["cache_misses"] == 4
    assert manifest["plan"]["stages"][0]["stage"] == "09_teacher"  # written before the stage

    m = Runner(tmp_path / "params/p.yaml", {**sets, "budget.max_teacher_tokens": 200}, root=tmp_path).run(
        progress=False
    )
    (entry,) = m["stages"]
    assert entry["status"] == "ok"
    assert entry["notes"]["asked"] == [f"text {k}" for k in range(4, 8)]  # only what the stop left
    assert entry["teacher_usage"]["cache_hits"] == 4 and entry["teacher_usage"]["cache_misses"] == 4


@pytest.mark.parametrize("concurrency", [1, 4])
def test_openai_backend_reserves_per_request_and_caches_what_was_in_flight(tmp_path, concurrency):
    from types import SimpleNamespace

    from compeffdist_utils.core.config import TeacherParams
    from compeffdist_utils.teacher.openai import OpenAIBackend

    tp = TeacherParams(
        backend="openai", base_url="http://127.0.0.1:9/v1", model="m", max_concurrency=concurrency
    )
    teacher = OpenAIBackend(tp, ResponseCache(tmp_path / "c.sqlite"))
    body = json.dumps(
        {"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 8, "completion_tokens": 5}}
    )
    sent: list[str] = []

    def create(**kw):
        sent.append(kw["messages"][-1]["content"])
        return SimpleNamespace(text=body)

    raw = SimpleNamespace(create=create)
    completions = SimpleNamespace(with_raw_response=raw)
    teacher._client = SimpleNamespace(chat=SimpleNamespace(completions=completions))
    teacher._probed = True  # no server to probe: the fake client answers the requests only
    # a one-character prompt reserves 1 // 3 + 8 = 8 prompt tokens + 5 new: two of four fit in 30
    teacher.budget = _budget(30, tmp_path / "stop.json")
    with pytest.raises(TeacherBudgetExceeded):
        teacher.chat(list("abcd"), DEC)
    assert len(sent) == 2 and teacher.cache.count() == 2  # both answers in flight were kept
    assert json.loads((tmp_path / "stop.json").read_text())["teacher_usage"]["cache_misses"] == 2

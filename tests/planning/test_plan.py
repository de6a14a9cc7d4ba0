"""The plan: counted on real inputs where they exist, estimated otherwise, expected tokens from the cache."""

import json
from pathlib import Path

import pytest

from compeffdist_utils.cli import main
from compeffdist_utils.core.config import load_params
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.distillation_data.dataset import pair_instructions_with_texts
from compeffdist_utils.planning.context import PlanContext, Rates, cache_identity
from compeffdist_utils.planning.plan import make_plan, price
from compeffdist_utils.planning.teacher import plan_01, plan_04
from compeffdist_utils.teacher.backends import cache_path
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache, request_key

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    {
        "text_id": f"d{k % 2}-{k}",
        "domain": f"d{k % 2}",
        "text": f"Review number {k}: the food was cold but the staff smiled.",
    }
    for k in range(6)
]


@pytest.fixture()
def params(tmp_path):
    """CI params with an empty response cache that shares the converted models (no reconversion)."""
    from compeffdist_utils.core.config import Params

    models = Params().resolved_cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache/models").symlink_to(models)
    return load_params(ROOT / "tests/params/ci.yaml", {"cache_dir": str(tmp_path / "cache")})


@pytest.mark.slow
def test_stage01_counts_the_real_prompts_and_reads_expected_tokens_from_the_cache(tmp_path, params):
    from compeffdist_utils.attributes.enumeration import enumeration_requests
    from compeffdist_utils.models import load_tokenizer

    run_dir = tmp_path / "run"
    write_jsonl(run_dir / "corpus/texts.jsonl", TEXTS)
    requests = enumeration_requests(TEXTS, params.attributes)
    cache = ResponseCache(cache_path(params))
    for r, n in zip(requests[:2], (40, 60), strict=False):  # two of six answered already
        cache.put(
            request_key(cache_identity(params), r.as_dict()), "hf", "m", r.as_dict(), CachedAnswer("x", 1, n)
        )
    plan = plan_01(PlanContext(params, run_dir, ROOT))
    tok = load_tokenizer(params.models.teacher.model, params)
    counted = sum(
        len(tok(tok.apply_chat_template(r.as_messages(), tokenize=False, add_generation_prompt=True),
                add_special_tokens=False)["input_ids"])
        for r in requests
    )  # fmt: skip
    assert plan.teacher_requests == 6 and plan.prompt_tokens == counted  # what the hf backend counts
    assert plan.completion_tokens_max == 6 * params.attributes.decoding.max_new_tokens
    assert plan.cached_requests == 2 and plan.completion_tokens_expected == 100 + 4 * 50
    priced = price(plan, Rates(price_in=1.0, price_out=2.0, teacher_tokens_per_s=10.0))
    assert priced.usd_max == pytest.approx((counted + 2 * plan.completion_tokens_max) / 1e6)
    assert priced.teacher_hours == pytest.approx(300 / 10 / 3600)


@pytest.mark.slow
def test_stage04_pairs_the_pool_with_the_texts_as_the_stage_does(tmp_path, params):
    run_dir = tmp_path / "run"
    pool = [
        {"instruction_id": f"c0-a{k}", "cluster_id": 0, "task_name": "analysis", "task_type": "analysis",
         "prompt": f"Please analyze aspect {k} of the text.", "demos": []}
        for k in range(5)
    ]  # fmt: skip
    write_jsonl(run_dir / "corpus/texts.jsonl", TEXTS)
    write_jsonl(run_dir / "instructions/pool.jsonl", pool)
    exact = plan_04(PlanContext(params, run_dir, ROOT))
    samples, _ = pair_instructions_with_texts(pool, TEXTS, params.distill_data)
    assert exact.teacher_requests == len(samples) == min(10, params.distill_data.max_samples)
    assert "paired from the run's pool" in exact.teacher_basis
    (run_dir / "instructions/pool.jsonl").unlink()
    estimated = plan_04(PlanContext(params, run_dir, ROOT))
    assert estimated.teacher_basis.startswith("answers: estimated")
    assert estimated.teacher_requests > 0 and estimated.cached_requests == 0


@pytest.mark.slow
def test_plan_cli_on_paper_params_without_gpu_or_server(capsys):
    code = main(["plan", "params/paper.yaml", "--price-in", "0.6", "--price-out", "0.6", "--stages", "00-08"])
    out = capsys.readouterr().out
    assert code == 0
    for stage in ("01_attributes", "03_instructions", "04_distillation_data", "08_data_efficiency", "total"):
        assert stage in out
    assert "USD <=" in out and "not found, so their `limit`" in out  # the paper corpus is not on this machine
    assert main(["plan", "params/paper.yaml", "--stages", "01", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in plan["stages"]] == ["01_attributes"]
    assert plan["stages"][0]["teacher_requests"] == 5 * 4000  # the files' `limit`
    assert plan["totals"]["usd_max"] is None  # no prices given


def test_bad_input_names_the_problem(tmp_path, capsys):
    assert main(["plan", "tests/params/ci.yaml", "--stages", "42"]) == 1
    assert "unknown stage(s) ['42']" in capsys.readouterr().err
    bad = tmp_path / "p.yaml"
    bad.write_text("corpus: {source: files, files: [{path: data/nowhere.csv}]}\n")
    assert main(["plan", str(bad), "--stages", "01"]) == 1
    err = capsys.readouterr().err
    assert "corpus file(s) not found: data/nowhere.csv" in err and "limit" in err


def test_rates_from_params_yield_to_flags(params):
    p = load_params(ROOT / "tests/params/ci.yaml", {"budget.price_in": 1.0, "budget.price_out": 3.0})
    rates = Rates.from_params(p, price_in=0.5, price_out=None)
    assert (rates.price_in, rates.price_out, rates.teacher_tokens_per_s) == (0.5, 3.0, None)
    plan = make_plan(params, ROOT, None, ["00_environment_and_corpus", "02_clustering"])
    assert plan["totals"]["teacher_requests"] == 0 and plan["totals"]["usd_max"] is None


def _manifest(run_dir: Path, params) -> None:
    plan = {"stages": [{"stage": "04_distillation_data", "teacher_requests": 4, "prompt_tokens": 300,
                        "completion_tokens_max": 64, "seconds": None}]}  # fmt: skip
    entry = {
        "name": "04_distillation_data", "status": "stopped", "stopped": "budget", "seconds": 3.0,
        "planned": {"teacher_requests": 4, "prompt_tokens": 311, "completion_tokens_max": 64, "seconds": 2.0},
        "teacher_usage": {"requests": 1, "prompt_tokens": 56, "completion_tokens": 16, "cached_prompt_tokens": 0},
    }  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text(
        json.dumps({"plan": plan, "stages": [entry], "params": params.model_dump(mode="json")})
    )


def test_cost_table_puts_plan_beside_actuals(tmp_path, params):
    from compeffdist_utils.planning.report import cost_table
    from compeffdist_utils.run.report import HEADLINES

    assert cost_table(tmp_path) is None
    _manifest(tmp_path, params)
    row = cost_table(tmp_path).loc["04_distillation_data"]
    assert row["status"] == "stopped: budget" and row["requests planned"] == 4 and row["requests actual"] == 1
    assert row["prompt tok planned (before run)"] == 300 and row["prompt tok planned (stage start)"] == 311
    assert row["prompt tok actual"] == 56 and row["completion tok actual"] == 16
    assert any("Cost: planned vs actual" in (h(tmp_path, {}) or "") for h in HEADLINES)


@pytest.mark.slow
def test_filtering_savings_per_budget_of_the_grid(tmp_path, params):
    from compeffdist_utils.planning.report import filtering_savings

    records = [
        {"sample_id": f"s{k}", "instruction": "Rate this. " * (k + 1) + "\n\nInput: text", "output": "ok " * (k + 1),
         "cluster_id": 0, "task_name": "t"}
        for k in range(8)
    ]  # fmt: skip
    scores = [
        {"sample_id": f"s{k}", "rank": k / 10, "ifd": 1.0, "ppl": 2.0, "length": k, "n_tokens": k}
        for k in range(8)
    ]
    write_jsonl(tmp_path / "distill/dataset.jsonl", records)
    write_jsonl(tmp_path / "difficulty/scores.jsonl", scores)
    assert filtering_savings(tmp_path) is None  # no manifest yet
    _manifest(tmp_path, params)
    table = filtering_savings(tmp_path)
    assert list(table.index) == params.efficiency.budgets == [0.5, 1.0]
    half, full = table.loc[0.5], table.loc[1.0]
    assert half["samples kept"] == 4 and full["samples kept"] == 8 and full["tokens saved"] == 0
    # hard selection by rank keeps the hardest (here the longest) half: more than half the tokens
    assert (
        half["training tokens full pool"] / 2
        < half["training tokens kept"]
        < half["training tokens full pool"]
    )


def test_the_plan_counts_the_specialists_tokens_with_its_base_tokenizer():
    """The shipped specialist is an adapter folder without a tokenizer: the plan counts with its base model's
    tokenizer instead of falling back to characters / 4."""
    from compeffdist_utils.core.config import EMBEDDED_SPECIALIST
    from compeffdist_utils.planning.context import TokenCounter

    counter = TokenCounter(
        EMBEDDED_SPECIALIST, load_params(Path(__file__).parents[2] / "params" / "tiny.yaml")
    )
    assert counter.basis == f"{EMBEDDED_SPECIALIST} tokenizer"
    assert counter.texts(["a short text"])[0] < len("a short text")

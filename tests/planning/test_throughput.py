"""Hours per student stage from measured throughputs: bench_gpu.py's JSON or a preset."""

import json

import pytest

from compeffdist_utils.cli import main
from compeffdist_utils.core.config import load_params
from compeffdist_utils.planning.context import PlanError
from compeffdist_utils.planning.throughput import GPU_PRESETS, Throughput, load_throughput, stage_hours
from tests.conftest import ROOT

PAPER = str(ROOT / "params" / "paper.yaml")


def bench_json(tmp_path, generation: bool = True):
    fig = {"tokens_per_s": 1000.0}
    results = {k: dict(fig) for k in ("scoring", "prefill", "train_full", "train_lora")}
    results["train_lora"]["tokens_per_s"] = 2000.0
    if generation:
        results["generation"] = {"tokens_per_s": 100.0}
    path = tmp_path / "bench.json"
    path.write_text(
        json.dumps(
            {"device": "NVIDIA H200", "shape": "llama-3.2-3b", "dtype": "bfloat16", "results": results}
        )
    )
    return path


def test_hours_follow_each_kind_of_work():
    tp = Throughput("test", score=1000, prefill=2000, train_full=100, train_lora=400, generate=50)
    plan = {"stages": [
        {"stage": "05_difficulty_selection", "student_forward_tokens": 3_600_000, "student_training_tokens": 0, "details": {}},
        {"stage": "06_student_training", "student_forward_tokens": 0, "student_training_tokens": 360_000, "details": {}},
        {"stage": "07_evaluation", "student_forward_tokens": 7_380_000, "student_training_tokens": 0,
         "details": {"generated_tokens": 180_000}},
    ]}  # fmt: skip
    full = load_params(PAPER)
    hours = {r["stage"][:2]: r["hours"] for r in stage_hours(plan, full, tp)}
    assert hours == pytest.approx({"05": 1.0, "06": 1.0, "07": 1.0 + 1.0})
    lora = load_params(PAPER, {"training.method": "lora"})
    assert stage_hours(plan, lora, tp)[1]["hours"] == pytest.approx(0.25)
    no_gen = Throughput("test", score=1000, prefill=2000, train_full=100, train_lora=400)
    row = stage_hours(plan, full, no_gen)[2]
    assert row["hours"] == pytest.approx(1.0) and "NOT counted" in row["what"]


def test_bench_json_and_presets_load_and_bad_input_is_named(tmp_path):
    tp = load_throughput(str(bench_json(tmp_path)), None)
    assert tp.train_lora == 2000 and tp.generate == 100 and "H200" in tp.source
    assert load_throughput(None, "H200") is GPU_PRESETS["h200"]
    assert load_throughput(None, None) is None
    with pytest.raises(PlanError, match="available"):
        load_throughput(None, "tpu9")
    with pytest.raises(PlanError, match="not both"):
        load_throughput("x.json", "h200")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PlanError, match="bad.json: not a bench_gpu.py summary"):
        load_throughput(str(tmp_path / "bad.json"), None)


def test_plan_prints_hours_per_stage(tmp_path, capsys):
    assert main(["plan", PAPER, "--stages", "05-08", "--throughput", str(bench_json(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "Hours on one GPU" in out and "total 05-08" in out
    for stage in ("05_difficulty_selection", "06_student_training", "07_evaluation", "08_data_efficiency"):
        assert any(line.strip().startswith(stage) and line.rstrip().count(" h ") for line in out.splitlines())
    assert main(["plan", PAPER, "--stages", "05", "--gpu", "nope"]) == 1

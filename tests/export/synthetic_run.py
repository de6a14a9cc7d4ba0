"""A small synthetic run folder with every file the export reads: 12 answered samples in 2 clusters, 2
held out, difficulty scores, stage 05's selection, two stage-08 grid points (one whose recorded selection
cannot be reproduced), stage 07's CI tables and, optionally, a tiny Llama student with a LoRA adapter."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import Params, params_from_dict
from compeffdist_utils.core.io import write_json, write_jsonl
from compeffdist_utils.data_efficiency.grid import selection_hash
from compeffdist_utils.data_efficiency.points import GridPoint, grid_params, point_params
from compeffdist_utils.difficulty_selection.selection import select_samples
from compeffdist_utils.models import peft_quietly

STAGES = ["00_environment_and_corpus", "01_attributes", "02_clustering", "03_instructions",
          "04_distillation_data", "05_difficulty_selection", "06_student_training", "07_evaluation",
          "08_data_efficiency"]  # fmt: skip
TEXTS = [
    ("imdb", "A warm, funny and moving film."),
    ("imdb", "Dull plot and wooden acting."),
    ("rotten_tomatoes", "I loved every minute of it."),
    ("tweets", "@airline lost my bag again, thanks a lot"),
]


def _records(prefix: str, n: int, texts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        t = texts[i % len(texts)]
        cluster = i % 2
        prompt = f"Task {i % 3} of cluster {cluster}: say how the writer feels."
        out.append({
            "sample_id": f"{prefix}{i}__{t['text_id']}", "instruction_id": f"c{cluster}-t{i % 3}",
            "cluster_id": cluster, "task_name": f"task {i % 3}", "task_type": "analysis" if i % 3 else "polarity",
            "prompt": prompt, "text_id": t["text_id"], "domain": t["domain"],
            "instruction": f"{prompt}\n\nInput: {t['text']}", "output": f"Answer {i}: mixed.",
            "teacher_model": "embedded:smollm2-135m-instruct", "decoding": {"max_new_tokens": 16},
        })  # fmt: skip
    return out


def _csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _eval_tables(run: Path) -> None:
    rows = []
    for model, base in (("distilled_student", 60.0), ("base_student", 50.0)):
        for i, ds in enumerate(("sc/sst2", "overall")):
            s = base + i
            rows.append(
                {"model": model, "dataset": ds, "score": s, "ci_low": s - 9, "ci_high": s + 9, "n": 8}
            )
    _csv(run / "tables/07_evaluation_scores_ci.csv", rows)
    diffs = [{"model": "distilled_student", "versus": "base_student", "measure": ds, "difference": 10.0,
              "ci_low": 2.5, "ci_high": 17.5, "n": 8, "significant": True} for ds in ("sc/sst2", "overall")]  # fmt: skip
    _csv(run / "tables/07_evaluation_differences_ci.csv", diffs)


def _grid(run: Path, params: Params, records: list[dict[str, Any]], scores: list[dict[str, Any]]) -> None:
    rows = []
    for point in (GridPoint("rank_hard", 0.5, 42), GridPoint("random", 0.5, 42)):
        selected, _ = select_samples(records, scores, point_params(grid_params(params), point).selection)
        rows.append({"point": point.slug, "selector": point.selector, "budget": point.budget, "seed": point.seed,
                     "selection_hash": selection_hash(selected), "setup": "s1", "scores": {"sc/sst2": 50.0}})  # fmt: skip
    rows[1]["selection_hash"] = "0" * 16  # as if the grid had trained on other samples: must be left out
    rows.insert(
        0, {"point": "base__b0__s0", "selector": "base", "budget": 0.0, "seed": 0, "selection_hash": ""}
    )
    write_jsonl(run / "efficiency/results.jsonl", rows)


def make_run(root: Path, ci_params: Params, student: str | None = None) -> Path:
    """Write the run folder under ``root``/run; ``student`` names a base model folder for the manifest."""
    run = root / "run"
    data = ci_params.model_dump(mode="json")
    data["selection"].update(budget=0.5, method="hard", score="rank")
    if student:
        data["models"]["student"] = student
    params = params_from_dict(data)
    texts = [{"text_id": f"{d}-{i}", "domain": d, "text": t, "label": None} for i, (d, t) in enumerate(TEXTS)]
    write_jsonl(run / "corpus/texts.jsonl", texts)
    write_jsonl(run / "clusters/clusters.jsonl", [
        {"cluster_id": c, "size": 2, "total_count": 5, "exemplar": name, "attributes": []}
        for c, name in enumerate(("tone", "target"))
    ])  # fmt: skip
    records = _records("s", 12, texts)
    write_jsonl(run / "distill/dataset.jsonl", records)
    write_jsonl(run / "distill/heldout.jsonl", _records("h", 2, texts))
    scores = [{"sample_id": r["sample_id"], "rank": i / 12, "ifd": 0.5, "ppl": 3.0 + i, "ppl_uncond": 5.0,
               "length": 4 + i, "n_tokens": 4 + i} for i, r in enumerate(records)]  # fmt: skip
    write_jsonl(run / "difficulty/scores.jsonl", scores)
    selected, summary = select_samples(records, scores, params.selection)
    write_jsonl(run / "selection/selected.jsonl", selected)
    write_json(run / "selection/summary.json", summary)
    write_json(run / "student/summary.json", {"n_records": len(selected), "n_train": 5, "n_eval": 1,
               "global_step": 2, "epochs_done": 1.0, "train_tokens": 100, "final_train_loss": 2.5,
               "final_eval_loss": 2.7, "num_processes": 1})  # fmt: skip
    _eval_tables(run)
    _grid(run, params, records, scores)
    stages = [{"name": s, "status": "ok", "fingerprint": "f", "outputs": []} for s in STAGES]
    write_json(run / "manifest.json", {"run_name": "synthetic", "params_path": "tests/params/ci.yaml",
               "overrides": {"selection.budget": 0.5}, "params": params.model_dump(mode="json"),
               "updated": "2026-12-05T05:00:00+0000", "packages": {"compeffdist-kit": "0.1.0"},
               "stages": stages})  # fmt: skip
    return run


def tiny_lora_student(root: Path, tokenizer: Any) -> tuple[Path, Any]:
    """A 2-layer Llama base folder (with ``tokenizer``) and a LoRA adapter on it whose B matrices are
    non-zero (so merging changes the weights); returns (base folder, the peft model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                         pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    base_dir = root / "base"
    LlamaForCausalLM(config).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    with peft_quietly():
        peft_model = get_peft_model(
            LlamaForCausalLM.from_pretrained(base_dir),
            LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return base_dir, peft_model

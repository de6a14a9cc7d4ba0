"""Stage 07: evaluate causal LMs on SentiBench (or its fallback) with the paper's 4-shot protocol.

For each model, dataset and demo seed: build the prompts, let the model answer (:mod:`.generation`:
first-token logits for classification, greedy generation for extraction), read extraction answers as
records (:mod:`.parsing`) and score them (:mod:`.scoring`).

- Prompts follow ``evaluation.protocol`` (default: the authors', :mod:`sentibench_protocol`) and are cut
  only when one exceeds :func:`sentibench_prompts.prompt_limit`; cut prompts are counted (``truncated_prompts``).
- Every prediction goes to ``<out_dir>/predictions/<model>/<dataset>__seed<S>.jsonl`` with the full
  prompt text the model was given (``prompt``), so errors can be inspected; scores are x100
  per (model, dataset, seed); :func:`.report.summarise` gives means over seeds, group means and the
  overall mean (plain mean of the dataset means, as in the paper).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from compeffdist_utils.core.config import EvaluationParams, Params
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.evaluation.generation import classify, generate, label_token_ids
from compeffdist_utils.evaluation.heldout import write_heldout_loss
from compeffdist_utils.evaluation.parsing import items_to_records, parse_json_array
from compeffdist_utils.evaluation.predictions import prediction_path, settings_key, write_settings
from compeffdist_utils.evaluation.scoring import same_tuples, score_predictions
from compeffdist_utils.models import ModelSpecError, load_causal_lm, resolve_alias
from compeffdist_utils.sentibench import BenchDataset, Prompt, build_prompts, prompt_limit, test_subset
from compeffdist_utils.sentibench.metrics import normalise_label

RESULT_COLUMNS = ["model", "dataset", "group", "seed", "score"]


class ModelUnavailable(RuntimeError):
    """A model listed in evaluation.models cannot be loaded in this run (reported as a counted skip)."""


def _base_record(p: Prompt) -> dict[str, Any]:
    rec = {"prompt_id": p.prompt_id, "uid": p.example.uid, "sentence": p.example.sentence, "prompt": p.text}
    if p.example.target is not None:
        rec["target"] = p.example.target
    return rec


def _classification_answers(
    model: Any,
    tokenizer: Any,
    ds: BenchDataset,
    prompts: Sequence[Prompt],
    ep: EvaluationParams,
    desc: str,
    progress: bool,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """(predicted labels, prediction records) of a classification set, from first-token label logits."""
    spec = ds.spec
    ids = label_token_ids(tokenizer, spec.labels, ds.name)
    idx, scores = classify(model, tokenizer, [p.text for p in prompts], ids, ep.batch_size, progress, desc)
    predictions: list[Any] = [spec.labels[i] for i in idx]
    records = [
        _base_record(p)
        | {
            "gold": p.example.gold,
            "prediction": pred,
            "correct": normalise_label(p.example.gold) == pred,
        }
        | {"label_logits": dict(zip(spec.labels, sc, strict=True))}
        | {"demo_uids": p.demo_uids, "truncation": p.truncation}
        for p, pred, sc in zip(prompts, predictions, scores, strict=True)
    ]
    return predictions, records


def _extraction_answers(
    model: Any,
    tokenizer: Any,
    ds: BenchDataset,
    prompts: Sequence[Prompt],
    ep: EvaluationParams,
    max_new: int,
    desc: str,
    progress: bool,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """(predicted answer records, prediction records) of an extraction set, from greedy generations."""
    spec = ds.spec
    raws = generate(model, tokenizer, [p.text for p in prompts], max_new, ep.batch_size, progress, desc)
    predictions: list[Any] = []
    records = []
    for p, raw in zip(prompts, raws, strict=True):
        items, status = parse_json_array(raw)
        recs, n_bad = items_to_records(items, spec.fields)
        predictions.append(recs)
        records.append(
            _base_record(p)
            | {
                "gold": p.example.gold,
                "prediction": recs,
                "correct": same_tuples(spec, p.example.gold, recs),
            }
            | {"raw": raw, "parse_status": status}
            | {"invalid_items": n_bad, "demo_uids": p.demo_uids, "truncation": p.truncation}
        )
    return predictions, records


def evaluate_dataset(
    model: Any,
    tokenizer: Any,
    ds: BenchDataset,
    seed: int,
    ep: EvaluationParams,
    out_dir: Path,
    model_name: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate one dataset with one demo seed; writes its predictions file and returns a result row."""
    t0 = time.time()
    spec = ds.spec
    examples = test_subset(ds, ep.n_test, ep.subset_seed)
    max_new = ep.max_new_tokens_opener if spec.metric == "opener_f1" else ep.max_new_tokens
    limit = prompt_limit(model, tokenizer, ep, max_new if spec.kind == "extraction" else 1)
    prompts = build_prompts(ds, examples, seed, ep.shots, tokenizer, limit, ep.protocol)
    desc = f"{model_name} {ds.name} s{seed}"
    if spec.kind == "classification":
        predictions, records = _classification_answers(model, tokenizer, ds, prompts, ep, desc, progress)
    else:
        predictions, records = _extraction_answers(model, tokenizer, ds, prompts, ep, max_new, desc, progress)
    score = score_predictions(spec, prompts, predictions)
    write_jsonl(prediction_path(out_dir, model_name, ds.name, seed), records)
    return {
        "model": model_name,
        "dataset": ds.name,
        "group": spec.group,
        "seed": seed,
        "score": round(100 * score, 4),
        "metric": spec.metric,
        "n_examples": len(prompts),
        "parse_failures": sum(r.get("parse_status") == "failed" for r in records),
        "invalid_items": sum(r.get("invalid_items", 0) for r in records),
        "truncated_prompts": sum(bool(p.truncation) for p in prompts),
        "protocol": ep.protocol,
        "source": ds.source,
        "seconds": round(time.time() - t0, 2),
    }


def evaluate_model(
    model: Any,
    tokenizer: Any,
    datasets: Sequence[BenchDataset],
    ep: EvaluationParams,
    out_dir: Path,
    model_name: str,
    progress: bool = True,
) -> pd.DataFrame:
    """Every dataset x demo seed for one loaded model: a DataFrame with one row per (dataset, seed),
    columns model, dataset, group, seed, score (x100) then diagnostics (n_examples, parse_failures,
    invalid_items, truncated_prompts, source, seconds)."""
    rows = []
    jobs = [(ds, seed) for ds in datasets for seed in ep.seeds]
    for ds, seed in tqdm(jobs, desc=f"evaluate {model_name}", disable=not progress):
        rows.append(evaluate_dataset(model, tokenizer, ds, seed, ep, Path(out_dir), model_name, progress))
    return pd.DataFrame(rows)


# -- models of this run ----------------------------------------------------------------------------------


def load_eval_model(spec: str, params: Params, run_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) for an evaluation.models entry; :class:`ModelUnavailable` when this run
    cannot provide it (no trained student yet, a teacher served over HTTP, a missing folder)."""

    try:
        resolved = resolve_alias(spec, params, run_dir)
        if spec == "distilled" and not Path(resolved).exists():
            raise ModelUnavailable(f"no trained student in {resolved}: run stage 06_student_training first")
        return load_causal_lm(resolved, params)
    except ModelSpecError as err:
        raise ModelUnavailable(str(err)) from None


def evaluate_models(
    params: Params, run_dir: Path, datasets: Sequence[BenchDataset], out_dir: Path, progress: bool = True
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Evaluate every model in ``evaluation.models``, one loaded at a time. Returns the results and the
    models skipped (name -> reason), so a missing model is reported rather than crashing the stage."""

    frames, skipped = [], {}
    for name, spec in params.evaluation.models.items():
        try:
            model, tok = load_eval_model(spec, params, run_dir)
        except ModelUnavailable as err:
            skipped[name] = str(err)
            continue
        frames.append(evaluate_model(model, tok, datasets, params.evaluation, out_dir, name, progress))
        write_heldout_loss(model, tok, params, run_dir, out_dir, name)
        write_settings(out_dir, name, settings_key(params, spec, run_dir))  # lets stage 08 reuse them
        del model, tok
        gc.collect()
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    return results, skipped

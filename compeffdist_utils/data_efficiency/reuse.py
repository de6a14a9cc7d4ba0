"""Evaluate a model once per run: stage 08's base-student point reuses stage 07's predictions.

The untrained student is evaluated in stage 07 (as ``base_student``) and again as the reference point
of stage 08's grid; with the study preset's 600 prompts that is minutes of CPU. Stage 07 writes, beside
each model's predictions, ``settings.json``: a key of everything that decides them (the resolved model
spec and dtype, the evaluation settings but the dataset list, the held-out samples and the length they
are scored at). The grid's base point copies stage 07's files when its own key is the same and every
dataset and demo seed it needs is there; otherwise it evaluates as before.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.io import read_json, read_jsonl
from compeffdist_utils.evaluation.heldout import heldout_path
from compeffdist_utils.evaluation.predictions import (
    SETTINGS_FILE,
    load_predictions,
    prediction_path,
    settings_key,
)
from compeffdist_utils.evaluation.significance import model_roles, prediction_stats
from compeffdist_utils.stats.uncertainty import point_score

if TYPE_CHECKING:
    from compeffdist_utils.core.config import Params
    from compeffdist_utils.sentibench import BenchDataset


def reuse_evaluation(
    src_dir: str | Path,
    src_name: str,
    dst_dir: str | Path,
    dst_name: str,
    datasets: Sequence[str],
    seeds: Sequence[int],
    key: str,
) -> bool:
    """Copy ``src_name``'s predictions (and held-out loss) into ``dst_dir`` as ``dst_name`` when they were
    made under ``key`` and cover every dataset and seed; False (nothing copied) otherwise."""
    settings = Path(src_dir) / "predictions" / src_name / SETTINGS_FILE
    if not settings.exists() or read_json(settings).get("key") != key:
        return False
    pairs = [
        (prediction_path(src_dir, src_name, d, s), prediction_path(dst_dir, dst_name, d, s))
        for d in datasets
        for s in seeds
    ]
    if not all(src.exists() for src, _ in pairs):
        return False
    held = heldout_path(src_dir, src_name)
    if held.exists():
        pairs.append((held, heldout_path(dst_dir, dst_name)))
    for src, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return True


def reused_base_outcome(
    params: Params,
    run_dir: str | Path,
    eval_dir: str | Path,
    point_name: str,
    datasets: Sequence[BenchDataset],
) -> dict[str, Any] | None:
    """The grid's base point from stage 07's ``student`` predictions, when they match (see the module
    docstring): copies them into ``eval_dir`` and returns the point's scores and held-out loss."""

    reference, _ = model_roles(params.evaluation.models)
    seeds = params.evaluation.seeds
    key = settings_key(params, "student", run_dir)
    src = Path(run_dir) / "eval"
    if reference is None or not reuse_evaluation(
        src, reference, eval_dir, point_name, [d.name for d in datasets], seeds, key
    ):
        return None
    scores = {
        ds.name: round(
            point_score(
                prediction_stats(ds, [load_predictions(eval_dir, point_name, ds.name, s) for s in seeds])
            ),
            4,
        )
        for ds in datasets
    }
    held = heldout_path(eval_dir, point_name)
    loss = None
    if held.exists():
        rows = read_jsonl(held)
        n = sum(r["n_tokens"] for r in rows)
        loss = round(sum(r["nll_sum"] for r in rows) / n, 6) if n else None
    return {
        "scores": scores,
        "eval_seconds": 0.0,
        "heldout_loss": loss,
        "reused_evaluation": f"{src}/{reference}",
    }

"""Stage 07's prediction files: where each model's predictions per dataset and demo seed live, and the
``settings.json`` key of everything that decided them (so stage 08 can reuse the base student's).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.io import read_jsonl, write_json
from compeffdist_utils.distillation_data.heldout_split import HELDOUT_FILE
from compeffdist_utils.models import resolve_alias, resolve_dtype


def prediction_path(out_dir: Path, model_name: str, dataset: str, seed: int) -> Path:
    return Path(out_dir) / "predictions" / model_name / f"{dataset}__seed{seed}.jsonl"


def load_predictions(out_dir: Path, model_name: str, dataset: str, seed: int) -> list[dict[str, Any]]:
    return read_jsonl(prediction_path(out_dir, model_name, dataset, seed))


SETTINGS_FILE = "settings.json"


def settings_key(params: Params, spec: str, run_dir: str | Path) -> str:
    """A hash of what decides a model's predictions and held-out loss in this run (not the datasets)."""

    ev = params.evaluation.model_dump(mode="json")
    for irrelevant in ("models", "batch_size", "datasets"):
        ev.pop(irrelevant)
    heldout = Path(run_dir) / HELDOUT_FILE
    meta = {
        "model": resolve_alias(spec, params, Path(run_dir)),
        "dtype": resolve_dtype(params.models.dtype, params.models.device),
        "evaluation": ev,
        "heldout": hashlib.sha256(heldout.read_bytes()).hexdigest() if heldout.exists() else None,
        "heldout_max_length": params.training.max_length,
    }
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def write_settings(out_dir: str | Path, model_name: str, key: str) -> None:
    write_json(Path(out_dir) / "predictions" / model_name / SETTINGS_FILE, {"key": key})

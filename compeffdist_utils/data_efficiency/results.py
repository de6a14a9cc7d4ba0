"""Stage 08's results file, ``efficiency/results.jsonl`` (one line per finished point), and its tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from compeffdist_utils.core.io import read_jsonl

RESULTS_FILE = "efficiency/results.jsonl"
OUTCOME_KEYS = (
    "n_train",
    "train_seconds",
    "train_tokens",
    "processed_tokens",
    "global_step",
    "final_train_loss",
    "scores",
    "eval_seconds",
    "benchmark",
    "heldout_loss",
)


def row_key(row: dict[str, Any]) -> tuple[str, float, int]:
    return (row["selector"], float(row["budget"]), int(row["seed"]))


def read_results(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / RESULTS_FILE
    return read_jsonl(path) if path.exists() else []


def results_frame(rows: Sequence[dict[str, Any]], setup: str | None = None) -> pd.DataFrame:
    """One row per point (of ``setup`` when given), one ``score: <dataset>`` column per dataset."""
    keep = [r for r in rows if setup is None or r.get("setup") == setup]
    flat = []
    for r in keep:
        rec = {k: v for k, v in r.items() if k != "scores"}
        rec |= {f"score: {d}": s for d, s in (r.get("scores") or {}).items()}
        flat.append(rec)
    return pd.DataFrame(flat)


def summarise_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (selector, budget): mean score with its spread over seeds, and the mean training cost."""
    if frame.empty:
        return frame
    grouped = frame.groupby(["selector", "budget"])
    table = grouped["mean_score"].agg(["mean", "std", "min", "max", "count"])
    table.columns = ["score_mean", "score_std", "score_min", "score_max", "n_seeds"]
    costs = grouped[["n_train", "train_seconds", "train_tokens"]].mean()
    return table.join(costs).round(3).reset_index()

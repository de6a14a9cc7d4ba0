"""What notebook 08 shows and records about its grid: the layout before running, what the run did, the
results and per-dataset tables, and the notes of the stage record."""

from __future__ import annotations

from typing import Any

import pandas as pd

from compeffdist_utils.data_efficiency.grid import GridReport
from compeffdist_utils.data_efficiency.points import BASE, GridPoint

FALLBACK_WARNING = (
    "**Scores are NOT SentiBench**: `evaluation.sentibench_dir` is not set, so points are scored on "
    "held-out labelled corpus texts (see stage 07)."
)


def grid_layout(points: list[GridPoint]) -> pd.DataFrame:
    """Selectors x budgets, counting the seeds of each point."""
    frame = pd.DataFrame([p.__dict__ for p in points])
    return frame.pivot_table(index="selector", columns="budget", values="seed", aggfunc="count")


def run_table(run: GridReport) -> pd.DataFrame:
    return pd.Series(run.__dict__, name="value").to_frame()


def run_notes(run: GridReport) -> list[str]:
    """Sentences on what the results below leave out: lines of other setups, points that selected nothing."""
    notes = []
    if run.n_stale:
        notes.append(
            f"{run.n_stale} line(s) in the results file come from other settings or data; they are kept in the file but left out below."
        )
    if run.n_empty:
        notes.append(
            f"{run.n_empty} point(s) selected no samples (budget too small for this pool) and were not trained."
        )
    return notes


def score_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("score: ")]


def results_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The results frame's columns worth reading: the point, what it trained on and cost, its scores."""
    cols = ["point", "selector", "budget", "seed", "n_selected", "n_train", "train_seconds", "train_tokens"]
    return frame[[*cols, "mean_score", *score_columns(frame), "reused_from"]]


def per_dataset_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (selector, budget) of the trained points: each dataset's score, mean over seeds."""
    trained = frame[frame["selector"] != BASE]
    return trained.groupby(["selector", "budget"])[score_columns(frame)].mean().round(2)


def stage_notes(run: GridReport, frame: pd.DataFrame, summary: pd.DataFrame) -> dict[str, Any]:
    """What the stage record keeps: the grid's counts, the benchmark(s) scored on, and the best point."""
    best = summary.loc[summary["score_mean"].idxmax()] if not summary.empty else None
    best_point = None
    if best is not None:
        best_point = {
            "selector": best["selector"],
            "budget": float(best["budget"]),
            "score": float(best["score_mean"]),
        }
    return {
        "n_points": run.n_points,
        "n_run": run.n_run,
        "n_reused": run.n_reused,
        "n_empty": run.n_empty,
        "n_stale": run.n_stale,
        "benchmark": benchmarks(frame),
        "best_point": best_point,
    }


def benchmarks(frame: pd.DataFrame) -> list[str]:
    """The benchmarks the points were scored on (``sentibench``, ``fallback``)."""
    return sorted(set(frame["benchmark"].dropna()))

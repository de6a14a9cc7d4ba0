"""Stage 05's bookkeeping for its notebook: timing the scoring, the scores as a table joined to the
samples, the per-token panels of the easiest and hardest sample, the selection's summary tables and the
notes the stage record keeps. Drawing is :mod:`.plots`'."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from compeffdist_utils.core.config import DifficultyParams, Params
from compeffdist_utils.difficulty_selection.dataset_scores import score_dataset
from compeffdist_utils.difficulty_selection.scoring import token_breakdown
from compeffdist_utils.difficulty_selection.selection import SCORE_KEYS
from compeffdist_utils.models.batching import batch_reports

SCORE_CACHE_FILE = "difficulty_scores.sqlite"  # in the cache folder (``cache_dir``), shared by runs


def scorer_name(params: Params) -> str:
    """The scoring LM's spec: ``difficulty.scorer``, else the student."""
    return params.difficulty.scorer or params.models.student


def timed_scores(
    samples: Sequence[dict[str, Any]], model: Any, tokenizer: Any, params: Params
) -> tuple[list[dict[str, Any]], float]:
    """(scores through the run's score cache, seconds it took); cached scores cost next to nothing."""
    t0 = time.perf_counter()
    cache = params.resolved_cache_dir() / SCORE_CACHE_FILE
    scores = score_dataset(samples, model, tokenizer, params.difficulty, cache_path=cache)
    return scores, time.perf_counter() - t0


def score_frame(samples: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Samples joined to their scores; cluster, task name and task type "-" where data made elsewhere
    lacks them, so that the per-group views still work."""
    df = pd.DataFrame(samples).merge(pd.DataFrame(scores), on="sample_id", validate="one_to_one")
    for col in ("cluster_id", "task_name", "task_type"):
        df[col] = df[col].astype("object").where(df[col].notna(), "-").astype(str) if col in df else "-"
    return df


def scoring_line(params: Params, df: pd.DataFrame, seconds: float) -> str:
    """What was scored, with which settings, in how long, and how many outputs were cut to the window."""
    dp = params.difficulty
    return (
        f"scored {len(df)} samples with {scorer_name(params)} ({dp.dtype}, nucleus {dp.nucleus_p}, "
        f"include_rank0={dp.include_rank0}) in {seconds:.1f} s (cached scores are reused); "
        f"{int(df['truncated'].sum())} cut to max_length={dp.max_length}"
    )


def score_table(df: pd.DataFrame) -> pd.DataFrame:
    """Count, mean, spread and quartiles of every score and token count."""
    return df[[*SCORE_KEYS, "ppl_uncond", "n_tokens", "n_nonzero"]].describe().round(3)


def token_panels(
    model: Any, tokenizer: Any, easiest: pd.DataFrame, hardest: pd.DataFrame, settings: DifficultyParams
) -> list[tuple[str, pd.Series, pd.DataFrame]]:
    """(label, sample, its per-token breakdown) for the easiest and the hardest sample."""
    return [
        (label, r, pd.DataFrame(token_breakdown(model, tokenizer, r["instruction"], r["output"], settings)))
        for label, r in (("easiest", easiest.iloc[0]), ("hardest", hardest.iloc[0]))
    ]


def summary_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The selection's summary without its per-group rows, one setting or count per row."""
    return pd.Series({k: v for k, v in summary.items() if k != "groups"}, name="value").astype(str).to_frame()


def groups_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The selection's per-group rows (pool size, expected and selected counts, quota or b)."""
    return pd.DataFrame(summary["groups"]).set_index("group")


def keep_rate(summary: dict[str, Any]) -> float:
    """The expected kept fraction of the scored pool."""
    return summary["expected"] / summary["n_pool"]


def selected_rows(df: pd.DataFrame, selected: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The rows of ``df`` that the selection kept."""
    return df[df["sample_id"].isin({r["sample_id"] for r in selected})]


def groups_kept_line(summary: dict[str, Any]) -> str:
    """How many groups keep a sample, and how many expected to keep one kept none."""
    groups = groups_table(summary)
    lost = groups[(groups["n_selected"] == 0) & (groups["expected"] >= 1)]
    return (
        f"{summary['n_groups_selected']} of {summary['n_groups']} groups keep at least one sample; "
        f"{len(lost)} group(s) expected to keep one or more kept none"
    )


def stage_notes(
    params: Params,
    records: Sequence[dict[str, Any]],
    skipped: Sequence[dict[str, Any]],
    scores: Sequence[dict[str, Any]],
    scoring_seconds: float,
    summary: dict[str, Any],
    corr: pd.DataFrame,
) -> dict[str, Any]:
    """The notes of stage 05's record: what was scored by whom and how fast, what was kept, and how the
    rank score correlates with the baselines (Spearman), and the batch sizes scoring used
    (``difficulty.batch_size: auto`` picks them; empty when every score came from the cache)."""
    return {
        "n_records": len(records),
        "n_skipped": len(skipped),
        "n_scored": len(scores),
        "scorer": scorer_name(params),
        "scoring_seconds": round(scoring_seconds, 1),
        "n_selected": summary["n_selected"],
        "expected_selected": summary["expected"],
        "groups_kept": f"{summary['n_groups_selected']}/{summary['n_groups']}",
        "spearman_rank_vs": {k: (None if math.isnan(v) else round(v, 3)) for k, v in corr["rank"].items()},
        "batch_sizes": {k: r["line"] for k, r in batch_reports().items()},
    }

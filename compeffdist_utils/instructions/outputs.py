"""Stage 03's bookkeeping around the pool: building it with the run's embedder, writing the pool, the
removed near-duplicates and the funnel, and the notes of the stage record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.core.io import write_json, write_jsonl
from compeffdist_utils.instructions.funnel import Funnel
from compeffdist_utils.instructions.pool import build_pool
from compeffdist_utils.models import embed_texts
from compeffdist_utils.stage.stage import Stage


def build_and_save_pool(
    stage: Stage,
    analysis_prompts: Sequence[dict[str, Any]],
    standardised: Sequence[dict[str, Any]],
    grounded: dict[tuple[Any, int], list[dict[str, str]]],
    funnel: Funnel,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`.pool.build_pool` with ``models.embedder``; writes ``instructions/pool.jsonl``,
    ``duplicates.jsonl`` and ``funnel.json`` (the funnel even when the pool is empty and
    :class:`.funnel.EmptyPoolError` stops the stage, to see where the yield went)."""
    params = stage.params
    try:
        pool, duplicates = build_pool(
            analysis_prompts,
            standardised,
            grounded,
            params.instructions,
            lambda texts: embed_texts(params.models.embedder, texts, params),
            funnel,
        )
    finally:
        write_json(stage.output("instructions/funnel.json"), funnel.as_dict())
    write_jsonl(stage.output("instructions/pool.jsonl"), pool)
    write_jsonl(stage.output("instructions/duplicates.jsonl"), duplicates)
    return pool, duplicates


def stage_notes(
    n_clusters: int, pool: Sequence[dict[str, Any]], duplicates: Sequence[dict[str, Any]], funnel: Funnel
) -> dict[str, Any]:
    """The notes of stage 03's record: clusters used, the pool by task type, duplicates, the funnel."""
    return {
        "n_clusters": n_clusters,
        "n_instructions": len(pool),
        "by_task_type": funnel.pool,
        "n_duplicates": len(duplicates),
        "funnel": funnel.as_dict(),
    }

"""Stage 04's bookkeeping for its notebook: the settings line, the dataset as a table with the teacher's
answer length, the composition tables and the notes the stage record keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from compeffdist_utils.core.config import DistillDataParams


def settings_line(n_instructions: int, settings: DistillDataParams) -> str:
    """What the pairing will do, in one line (instructions x texts, domain mix, cap, seed)."""
    return (
        f"{n_instructions} instructions x {settings.texts_per_instruction} texts, domain mix "
        f"{settings.domain_mix}, cap {settings.max_samples}, seed {settings.seed}"
    )


def dataset_frame(dataset: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The dataset as a table, with ``answer_words`` = the words of the teacher's output."""
    df = pd.DataFrame(dataset)
    df["answer_words"] = df["output"].str.split().str.len()
    return df


def composition_table(df: pd.DataFrame) -> pd.DataFrame:
    """Samples per task type (rows) and domain (columns)."""
    return df.groupby(["task_type", "domain"]).size().unstack(fill_value=0)


def answer_lengths(df: pd.DataFrame) -> pd.DataFrame:
    """The teacher's answer length in words per task type (count, mean, quartiles ...)."""
    return df.groupby("task_type")["answer_words"].describe().round(1)


def stage_notes(df: pd.DataFrame, pairing: dict[str, Any], answering: dict[str, Any]) -> dict[str, Any]:
    """The notes of stage 04's record: dataset size, pairing and answering counts, samples per task type."""
    return {
        "n_samples": len(df),
        "pairing": pairing,
        "answers": answering,
        "by_task_type": df["task_type"].value_counts().to_dict(),
    }

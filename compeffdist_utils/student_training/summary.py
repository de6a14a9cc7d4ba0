"""Stage 06's bookkeeping for its notebook: one training example shown split into its unsupervised prompt
and supervised answer, the training run's summary table and the notes the stage record keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from compeffdist_utils.student_training.sft_data import IGNORE_INDEX, tokenize_records
from compeffdist_utils.student_training.training import TrainResult

REUSED_NOTE = "*A finished training with these params and this data was found; it is reported, not rerun.*"


def first_example(records: Sequence[dict[str, Any]], tokenizer: Any, max_length: int) -> str:
    """How many records train, and the first training example as text: the prompt part (no loss) and
    the supervised part. Raises when no record fits ``max_length``, as training would."""
    examples, report = tokenize_records(records, tokenizer, max_length)
    if not examples:
        raise ValueError(f"no selected record fits training.max_length={max_length}: {report.skipped}")
    ids = examples[0]["input_ids"]
    n_prompt = examples[0]["labels"].count(IGNORE_INDEX)
    return "\n".join(
        [
            f"{report.n_examples} of {report.n_records} records train; skipped: {report.skipped or 'none'}",
            f"--- prompt: {n_prompt} tokens, no loss ---",
            tokenizer.decode(ids[:n_prompt]),
            f"--- supervised: {len(ids) - n_prompt} tokens ---",
            tokenizer.decode(ids[n_prompt:]),
        ]
    )


def training_table(result: TrainResult) -> pd.DataFrame:
    """The run's summary for readers: data, tokens, steps, time, parameters and final losses."""
    rows = {
        "method": result.method,
        "training examples": result.n_train,
        "held-out examples": result.n_eval,
        "skipped records": sum(result.skipped.values()),
        "truncated outputs": result.n_truncated,
        "sequences per epoch (packed)" if result.packing else "sequences per epoch": result.n_sequences,
        "tokens per epoch": result.tokens_per_epoch,
        "tokens trained on (approx.)": result.train_tokens,
        "tokens processed incl. padding": result.processed_tokens,
        "optimiser steps": result.global_step,
        "epochs": result.epochs_done,
        "training seconds (this session)": result.train_seconds,
        "resumed from step": result.resumed_from_step,
        "trainable parameters": result.trainable_params,
        "total parameters": result.total_params,
        "trainable share": f"{result.trainable_params / result.total_params:.2%}",
        "final train loss": result.final_train_loss,
        "final eval loss": result.final_eval_loss,
    }
    return pd.Series(rows, name="value").to_frame()


def stage_notes(result: TrainResult) -> dict[str, Any]:
    """The notes of stage 06's record: data sizes, steps, time, tokens, final losses, whether reused."""
    keys = ("n_train", "n_eval", "global_step", "train_seconds", "train_tokens")
    keys += ("final_train_loss", "final_eval_loss", "reused")
    return {k: getattr(result, k) for k in keys}

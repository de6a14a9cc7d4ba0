"""Stage 06's notebook bookkeeping: the training example shown, the run's table and the stage notes."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from compeffdist_utils.student_training import summary
from compeffdist_utils.student_training.training import TrainResult
from tests.student_training.test_training import RECORDS


def _result(**kw: Any) -> TrainResult:
    base = {f.name: 0 for f in fields(TrainResult)}
    base.update(out_dir="o", model_dir="o/model", method="lora", base_model="m", fingerprint="f")
    base.update(completed=True, skipped={}, packing=False, total_params=100, trainable_params=5)
    base.update(final_train_loss=1.5, final_eval_loss=None, reused=False)
    return TrainResult(**{**base, **kw})


def test_training_table_and_notes() -> None:
    table = summary.training_table(_result(n_sequences=7))
    assert table.loc["trainable share", "value"] == "5.00%"
    assert table.loc["sequences per epoch", "value"] == 7
    notes = summary.stage_notes(_result(n_train=4, reused=True))
    assert notes["n_train"] == 4 and notes["reused"] is True and notes["final_eval_loss"] is None
    assert set(notes) == {"n_train", "n_eval", "global_step", "train_seconds", "train_tokens",
                          "final_train_loss", "final_eval_loss", "reused"}  # fmt: skip


def test_first_example_splits_prompt_and_supervised_part(smol: tuple[Any, Any]) -> None:
    _, tok = smol
    text = summary.first_example(RECORDS, tok, 256)
    assert text.startswith(f"{len(RECORDS)} of {len(RECORDS)} records train; skipped: none")
    prompt, supervised = text.split("--- supervised: ")
    assert "--- prompt: " in prompt and RECORDS[0]["output"] in supervised
    with pytest.raises(ValueError, match="no selected record fits"):
        summary.first_example(RECORDS, tok, 4)

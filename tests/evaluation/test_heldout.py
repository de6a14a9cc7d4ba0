"""The held-out teacher-answer loss is the training loss of the same sample, batched or not."""

from __future__ import annotations

import pytest

from compeffdist_utils.evaluation.heldout import heldout_loss_stats, teacher_answer_nll
from compeffdist_utils.stats.uncertainty import point_score
from compeffdist_utils.student_training.sft_data import SFTCollator, tokenize_records

RECORDS = [
    {
        "sample_id": "s1",
        "instruction": "Is this review positive?\n\nInput: Great film.",
        "output": "Yes, it is.",
    },
    {
        "sample_id": "s2",
        "instruction": "Name the tone.\n\nInput: Meh, it was long.",
        "output": "Bored and tired.",
    },
    {"sample_id": "s3", "instruction": "", "output": "no instruction: left out"},
]


def test_nll_matches_the_training_loss_and_skips_untokenizable(smol):
    import torch

    model, tok = smol
    rows = teacher_answer_nll(model, tok, RECORDS, max_length=256, batch_size=2)
    assert [r["sample_id"] for r in rows] == ["s1", "s2"]
    for rec, row in zip(RECORDS, rows, strict=False):
        (ex,), _ = tokenize_records([rec], tok, 256)
        batch = SFTCollator(tok.pad_token_id)([ex])
        with torch.inference_mode():
            loss = model(**batch).loss.item()
        assert row["nll_sum"] / row["n_tokens"] == pytest.approx(loss, rel=1e-4)
    one_by_one = teacher_answer_nll(model, tok, RECORDS, max_length=256, batch_size=1)
    for a, b in zip(rows, one_by_one, strict=True):  # right padding does not change a sample's loss
        assert a["nll_sum"] == pytest.approx(b["nll_sum"], rel=1e-4)
    total = sum(r["nll_sum"] for r in rows) / sum(r["n_tokens"] for r in rows)
    assert point_score(heldout_loss_stats(rows)) == pytest.approx(total)

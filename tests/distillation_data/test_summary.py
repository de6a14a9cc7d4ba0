"""Stage 04's notebook bookkeeping: the dataset table, its composition and the stage notes."""

from __future__ import annotations

from compeffdist_utils.core.config import DistillDataParams
from compeffdist_utils.distillation_data import summary

DATASET = [
    {"task_type": "analysis", "domain": "imdb", "output": "A long and careful answer"},
    {"task_type": "analysis", "domain": "tweets", "output": "Short"},
    {"task_type": "label", "domain": "imdb", "output": "positive"},
]


def test_tables_count_samples_and_answer_words() -> None:
    df = summary.dataset_frame(DATASET)
    assert df["answer_words"].tolist() == [5, 1, 1]
    assert summary.composition_table(df).loc["analysis"].to_dict() == {"imdb": 1, "tweets": 1}
    assert summary.answer_lengths(df).loc["analysis", "mean"] == 3.0
    line = summary.settings_line(6, DistillDataParams())
    assert line.startswith("6 instructions x ")


def test_notes_say_what_the_dataset_holds() -> None:
    notes = summary.stage_notes(summary.dataset_frame(DATASET), {"pairs": 3}, {"answered": 3})
    assert notes == {
        "n_samples": 3,
        "pairing": {"pairs": 3},
        "answers": {"answered": 3},
        "by_task_type": {"analysis": 2, "label": 1},
    }

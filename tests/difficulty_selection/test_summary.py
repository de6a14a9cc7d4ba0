"""Stage 05's notebook bookkeeping: scores joined to samples, the selection's tables and the stage notes."""

from __future__ import annotations

import math

import pandas as pd

from compeffdist_utils.core.config import SelectionParams, params_from_dict
from compeffdist_utils.difficulty_selection import summary
from compeffdist_utils.difficulty_selection.selection import select_samples

SAMPLES = [
    {"sample_id": f"s{i}", "instruction": f"Do {i}", "output": f"answer {i}", "cluster_id": i % 2}
    for i in range(6)
]
SCORES = [
    {"sample_id": f"s{i}", "rank": i / 10, "ifd": 1.0 + i, "ppl": 2.0 + i, "length": i + 1,
     "ppl_uncond": 3.0, "n_tokens": 4, "n_nonzero": 2, "truncated": i == 0}
    for i in range(6)
]  # fmt: skip


def test_score_frame_fills_missing_groups() -> None:
    df = summary.score_frame(SAMPLES, SCORES)
    assert df["cluster_id"].tolist() == ["0", "1", "0", "1", "0", "1"]
    assert set(df["task_name"]) == {"-"} and set(df["task_type"]) == {"-"}
    assert summary.score_table(df).loc["count", "rank"] == 6


def test_selection_tables_and_notes() -> None:
    selected, result = select_samples(SAMPLES, SCORES, SelectionParams(budget=0.5, stratify="full"))
    df = summary.score_frame(SAMPLES, SCORES)
    assert summary.groups_table(result).loc["all", "n_selected"] == 3
    assert summary.keep_rate(result) == 0.5
    assert "groups" not in summary.summary_table(result).index
    assert sorted(summary.selected_rows(df, selected)["sample_id"]) == ["s3", "s4", "s5"]
    assert summary.groups_kept_line(result).startswith("1 of 1 groups keep at least one sample; 0 group")
    params = params_from_dict({"run_name": "t"})
    corr = pd.DataFrame({"rank": {"rank": 1.0, "ifd": math.nan}})
    notes = summary.stage_notes(params, SAMPLES, [], SCORES, 1.234, result, corr)
    assert notes["scoring_seconds"] == 1.2 and notes["groups_kept"] == "1/1"
    assert notes["scorer"] == params.models.student and notes["spearman_rank_vs"] == {
        "rank": 1.0,
        "ifd": None,
    }

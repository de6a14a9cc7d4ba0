"""Stage figures and tables: the drawing helpers of compeffdist_utils.difficulty_selection.plots, read back from what they draw."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.core.config import SelectionParams  # noqa: E402
from compeffdist_utils.difficulty_selection import plots as difficulty_report  # noqa: E402
from compeffdist_utils.difficulty_selection.selection import (  # noqa: E402
    SCORE_KEYS,
    select_samples,
    selector_picks,
)


@pytest.fixture()
def scored():
    rng = np.random.default_rng(1)
    n = 12
    samples = [
        {"sample_id": f"s{i}", "instruction": f"Do task {i}", "output": f"answer {i}",
         "cluster_id": str(i % 3), "task_type": ["analysis", "scoring"][i % 2], "prompt_id": f"p{i % 3}"}
        for i in range(n)
    ]  # fmt: skip
    scores = [
        {"sample_id": f"s{i}", "rank": float(rng.uniform()), "ifd": float(rng.uniform(0.5, 2)),
         "ppl": float(rng.uniform(2, 50)), "length": int(rng.integers(1, 30))}
        for i in range(n)
    ]  # fmt: skip
    df = pd.DataFrame(samples).merge(pd.DataFrame(scores), on="sample_id")
    return samples, scores, df


def test_difficulty_views(scored):
    samples, scores, df = scored
    assert len(difficulty_report.score_distributions(df).axes) == len(SCORE_KEYS)
    clusters = difficulty_report.largest_clusters(df)
    assert set(clusters) == {"0", "1", "2"}
    assert len(difficulty_report.scores_by_group(df, "rank", clusters).axes) == 2
    assert difficulty_report.median_by_task_type(df)["samples"].sum() == len(df)
    corr = difficulty_report.spearman(df)
    assert np.allclose(np.diag(corr), 1.0)
    difficulty_report.scatter_matrix(df)
    easiest, hardest = difficulty_report.easiest_and_hardest(df, "rank")
    assert easiest["rank"].max() <= hardest["rank"].min() and len(easiest) == 3
    page = difficulty_report.side_by_side_html(easiest.assign(output="<b>x</b>"), hardest, "rank")
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # sample texts are escaped
    tokens = pd.DataFrame({"token": ["a", "b"], "rank": [0, 9], "nucleus": [3, 3], "score": [0.0, 1.0]})
    fig = difficulty_report.token_scores([("easiest", easiest.iloc[0], tokens)])
    assert [p.get_height() for p in fig.axes[0].patches] == [0.0, 1.0]
    assert len(difficulty_report.soft_keep_curves(0.25, 0.5).axes[0].lines) == 4


def test_selection_views(scored):
    samples, scores, df = scored
    settings = SelectionParams(budget=0.5)
    selected, _ = select_samples(samples, scores, settings)  # the stage's own: hard by rank
    picks = selector_picks(samples, scores, settings, selected)
    assert picks["hard rank"] == {r["sample_id"] for r in selected}
    overlap = difficulty_report.selector_overlap(picks)
    assert list(overlap.index) == [f"hard {k}" for k in SCORE_KEYS] + ["random"]
    assert np.allclose(np.diag(overlap), 1.0)
    sel = df.head(6)
    table = difficulty_report.composition_table(df, sel)
    assert table["pool"].sum() == 12 and table["selected"].sum() == 6
    fig = difficulty_report.selection_composition(df, sel, difficulty_report.largest_clusters(df))
    assert len(fig.axes) == 2
    kit = df.assign(cluster_id=df["cluster_id"].replace("2", "-1"))  # stage 05 holds ids as text
    fig = difficulty_report.selection_composition(kit, sel, difficulty_report.largest_clusters(kit))
    assert "kit" in [t.get_text() for t in fig.axes[1].get_xticklabels()]
    fig = difficulty_report.scores_by_group(kit, "rank", difficulty_report.largest_clusters(kit))
    assert sorted(t.get_text() for t in fig.axes[1].get_xticklabels()) == ["0", "1", "kit"]
    difficulty_report.overlap_heatmap(overlap)

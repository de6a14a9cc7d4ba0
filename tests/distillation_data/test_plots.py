"""Stage figures and tables: the drawing helpers of compeffdist_utils.distillation_data.plots, read back from what they draw."""

from __future__ import annotations

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.distillation_data import plots as distill_report  # noqa: E402


def test_distill_composition():
    df = pd.DataFrame(
        {"task_type": ["analysis", "scoring", "analysis"], "cluster_id": [0, 0, 1],
         "domain": ["imdb", "tweets", "imdb"], "answer_words": [10, 3, 12]}
    )  # fmt: skip
    fig = distill_report.composition(df)
    assert sorted(p.get_height() for p in fig.axes[0].patches) == [1, 2]
    df.loc[1, "cluster_id"] = -1  # a kit task: no perspective, named on the axis
    assert [t.get_text() for t in distill_report.composition(df).axes[1].get_xticklabels()] == [
        "kit",
        "0",
        "1",
    ]

"""Stage figures and tables: the drawing helpers of compeffdist_utils.environment_and_corpus.plots, read back from what they draw."""

from __future__ import annotations

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.environment_and_corpus import plots as corpus_report  # noqa: E402


def test_corpus_overview_counts_every_text():
    texts = pd.DataFrame(
        {"text": ["a b c", "d e", "f g h i", "j"], "domain": ["imdb", "imdb", "tweets", "tweets"]}
    )
    holdout = pd.DataFrame({"text": ["x"], "domain": ["imdb"]})
    fig = corpus_report.overview(texts, holdout)
    hist_total = sum(p.get_height() for p in fig.axes[0].patches)
    assert hist_total == len(texts)
    assert corpus_report.length_table(texts).loc["tweets", "max"] == 4

"""Stage figures and tables: the drawing helpers of compeffdist_utils.environment_and_corpus.plots, read back from what they draw."""

from __future__ import annotations

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.core.config import params_from_dict  # noqa: E402
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


def test_models_table_names_every_role_and_marks_a_proxy_scorer():
    table = corpus_report.models_table(params_from_dict({"difficulty": {"scorer": "my-scorer"}}))
    assert list(table["role"]) == ["teacher", "student", "difficulty scorer", "embedder"]
    assert table.set_index("role").loc["difficulty scorer", "notes"] == "proxy"
    assert table.set_index("role").loc["difficulty scorer", "what it is"] == "user-named model"

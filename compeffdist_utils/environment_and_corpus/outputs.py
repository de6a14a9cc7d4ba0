"""Stage 00's files: the sampled texts, the labelled holdout and the counts per domain."""

from __future__ import annotations

from typing import Any

import pandas as pd

from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.stage.stage import Stage


def save_corpus(
    stage: Stage, texts: pd.DataFrame, holdout: pd.DataFrame, report: dict[str, Any]
) -> pd.DataFrame:
    """Write ``corpus/texts.jsonl``, ``corpus/holdout.jsonl`` and the counts table; return that table."""
    write_jsonl(stage.output("corpus/texts.jsonl"), texts.to_dict("records"))
    write_jsonl(stage.output("corpus/holdout.jsonl"), holdout.to_dict("records"))
    counts = pd.DataFrame(report).T
    stage.save_table(counts, "corpus_counts")
    return counts

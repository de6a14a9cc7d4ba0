"""Figures of stage 04: what the distillation data is made of."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from compeffdist_utils.instructions.kit_tasks import cluster_label


def composition(df: pd.DataFrame) -> Figure:
    """Samples per task type, per cluster and domain, and the teacher's answer length per task type.

    ``df`` is the dataset with an ``answer_words`` column (words of the teacher's output).
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    df["task_type"].value_counts().plot.bar(ax=axes[0], rot=20)
    axes[0].set(title="Samples per task type", xlabel="task type", ylabel="samples")
    per_cluster = df.groupby(["cluster_id", "domain"]).size().unstack(fill_value=0)
    per_cluster.rename(index=cluster_label).plot.bar(ax=axes[1], stacked=True, rot=0)
    axes[1].set(title="Samples per cluster and domain", xlabel="cluster id", ylabel="samples")
    for task_type, grp in df.groupby("task_type"):
        axes[2].hist(grp["answer_words"], bins=15, alpha=0.6, label=task_type)
    axes[2].set(title="Teacher answer length", xlabel="words", ylabel="samples")
    axes[2].legend()
    fig.tight_layout()
    return fig

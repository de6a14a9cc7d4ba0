"""Tables and figures of stage 03: the yield funnel and the composition of the instruction pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

FUNNEL_STEPS = ("analysis", "ideation", "standardisation", "demonstrations", "dedup")
FUNNEL_COUNTS = ("requests", "answers_parsed", "items_parsed", "items_kept")


def funnel_tables(steps: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From ``Funnel.as_dict()``: counts per step (rows) and the reasons for the drops, one row each."""
    funnel_df = pd.DataFrame({name: {k: steps[name][k] for k in FUNNEL_COUNTS} for name in FUNNEL_STEPS}).T
    drops_df = pd.DataFrame(
        [(name, reason, n) for name in funnel_df.index for reason, n in steps[name]["dropped"].items()],
        columns=["step", "reason", "count"],
    )
    return funnel_df, drops_df


def funnel_chart(funnel_df: pd.DataFrame) -> Figure:
    """Grouped bars: requests, answers parsed, items parsed and items kept per step."""
    fig, ax = plt.subplots(figsize=(10, 4))
    funnel_df.plot.bar(ax=ax, rot=0)
    ax.set(title="Stage 03 yield funnel", xlabel="step", ylabel="count")
    fig.tight_layout()
    return fig


def pool_by_cluster(pool: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Instructions per cluster (rows) and task type (columns)."""
    return pd.DataFrame(pool).groupby(["cluster_id", "task_type"]).size().unstack(fill_value=0)


def pool_composition(pool: Sequence[dict[str, Any]]) -> Figure:
    """Left: instructions per task type; right: per cluster, stacked by task type."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    pd.DataFrame(pool)["task_type"].value_counts().plot.bar(ax=axes[0], rot=20)
    axes[0].set(title="Instructions per task type", xlabel="task type", ylabel="instructions")
    pool_by_cluster(pool).plot.bar(ax=axes[1], stacked=True, rot=0)
    axes[1].set(title="Instructions per cluster", xlabel="cluster id", ylabel="instructions")
    fig.tight_layout()
    return fig

"""Tables and figures of stage 03: the yield funnel and the composition of the instruction pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from compeffdist_utils.instructions.kit_tasks import cluster_label

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
    pool_by_cluster(pool).rename(index=cluster_label).plot.bar(ax=axes[1], stacked=True, rot=0)
    axes[1].set(title="Instructions per cluster", xlabel="cluster id", ylabel="instructions")
    fig.tight_layout()
    return fig


def task_heading(task: dict[str, Any]) -> str:
    """Markdown: a standardised task's name, type and definition."""
    return f"**{task['task_name']}** ({task['task_type']}): {task['definition']}"


def grounded_demos_table(grounded: dict[tuple[Any, int], list[dict[str, str]]]) -> pd.DataFrame:
    """One row per grounded demo: its cluster, task index, input and output."""
    rows = [
        {"cluster_id": cid, "task_index": ti, **pair}
        for (cid, ti), pairs in grounded.items()
        for pair in pairs
    ]
    return pd.DataFrame(rows, columns=["cluster_id", "task_index", "input", "output"])


def example_instructions(pool: Sequence[dict[str, Any]], max_chars: int = 1200) -> str:
    """Markdown: the first instruction of each task type, its cluster, id and task name, and its prompt
    (the first ``max_chars`` characters) as a code block."""
    parts = []
    for task_type, group in pd.DataFrame(pool).groupby("task_type"):
        r = group.iloc[0]
        parts.append(
            f"**{task_type}** · cluster {r['cluster_id']} · `{r['instruction_id']}` · {r['task_name']}"
        )
        parts.append("````text\n" + r["prompt"][:max_chars] + "\n````")  # 4 backticks: a prompt may hold 3
    return "\n\n".join(parts)

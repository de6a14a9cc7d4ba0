"""Tables and figures of stage 05: score distributions, how the scores relate, the easiest and hardest
samples, and what a selection keeps against the pool.

``df`` below is the stage's frame: the usable samples merged with their scores, one row per sample,
with ``cluster_id``, ``task_type`` and the score columns of :data:`selection.SCORE_KEYS`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from compeffdist_utils.difficulty_selection.selection import SCORE_KEYS, soft_keep_probs
from compeffdist_utils.instructions.kit_tasks import cluster_label

TITLES = {
    "rank": "rank score",
    "ifd": "log10 IFD = log10 PPL(y|x) / PPL(y)",
    "ppl": "log10 PPL(y|x)",
    "length": "response length (tokens)",
}
LOG_SCALED = ("ifd", "ppl")  # both span orders of magnitude


def score_distributions(df: pd.DataFrame) -> Figure:
    """One histogram per score (IFD and PPL on a log10 axis)."""
    fig, axes = plt.subplots(1, len(SCORE_KEYS), figsize=(17, 3.6))
    for ax, key in zip(axes, SCORE_KEYS, strict=True):
        values = df[key].dropna().astype(float)
        ax.hist(np.log10(values) if key in LOG_SCALED else values, bins=20, color="steelblue")
        ax.set(title=TITLES[key], xlabel=TITLES[key], ylabel="samples")
    fig.tight_layout()
    return fig


def largest_clusters(df: pd.DataFrame, n: int = 30) -> list[str]:
    """The ``n`` clusters with the most samples, largest first: the order of every per-cluster view."""
    return list(df["cluster_id"].value_counts().index[:n])


def scores_by_group(df: pd.DataFrame, key: str, clusters: Sequence[str]) -> Figure:
    """Box and strip plots of score ``key`` per task type and per cluster (in the given order)."""
    fig, axes = plt.subplots(1, 2, figsize=(16, 4.5), gridspec_kw={"width_ratios": [1, 2.5]})
    sns.boxplot(data=df, x="task_type", y=key, ax=axes[0], color="lightsteelblue", fliersize=0)
    sns.stripplot(data=df, x="task_type", y=key, ax=axes[0], color="k", size=3)
    axes[0].set(title=f"{TITLES[key]} per task type", xlabel="task type", ylabel=TITLES[key])
    axes[0].tick_params(axis="x", rotation=20)
    sub = df[df["cluster_id"].isin(clusters)].assign(cluster_id=lambda d: d["cluster_id"].map(cluster_label))
    order = [cluster_label(c) for c in clusters]
    sns.boxplot(data=sub, x="cluster_id", y=key, order=order, ax=axes[1], color="lightsteelblue", fliersize=0)
    sns.stripplot(data=sub, x="cluster_id", y=key, order=order, ax=axes[1], color="k", size=3)
    axes[1].set(title=f"{TITLES[key]} per cluster (largest first)", xlabel="cluster id", ylabel=TITLES[key])
    fig.tight_layout()
    return fig


def median_by_task_type(df: pd.DataFrame) -> pd.DataFrame:
    """Median of every score per task type, with the number of samples."""
    by_type = df.groupby("task_type")[list(SCORE_KEYS)].median().round(3)
    by_type.insert(0, "samples", df["task_type"].value_counts())
    return by_type


def scatter_matrix(df: pd.DataFrame) -> Figure:
    """Every score against every other (IFD and PPL in log10), coloured by task type."""
    rel = df[[*SCORE_KEYS, "task_type"]].dropna().copy()
    for col in LOG_SCALED:
        rel[col] = np.log10(rel[col].astype(float))
    rel = rel.rename(columns={c: f"log10 {c}" for c in LOG_SCALED})
    grid = sns.pairplot(rel, hue="task_type", corner=True, diag_kind="hist", height=2.3, plot_kws={"s": 18})
    grid.figure.suptitle("Scores against each other", y=1.02)
    return grid.figure


def spearman(df: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation between the scores."""
    return df[list(SCORE_KEYS)].astype(float).corr(method="spearman")


def correlation_heatmap(corr: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    sns.heatmap(corr, annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, ax=ax)
    ax.set(title="Spearman correlation between scores")
    return fig


def easiest_and_hardest(df: pd.DataFrame, key: str, k: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` easiest (ascending) and hardest (descending) samples by ``key``; at most half each."""
    k = max(1, min(k, len(df) // 2))
    ranked = df.dropna(subset=[key]).sort_values(key, kind="stable")
    return ranked.head(k), ranked.tail(k).iloc[::-1]


def _card(r: pd.Series) -> str:
    head = (
        f"<b>{html.escape(r['sample_id'])}</b> · {html.escape(r['task_type'])} · "
        f"cluster {html.escape(r['cluster_id'])}"
        f"<br>rank {r['rank']:.3f} · IFD {r['ifd']:.3f} · PPL {r['ppl']:.1f} · {r['length']} tokens"
    )
    body = html.escape(r["instruction"][-300:]) + "\n\n<b>OUTPUT:</b> " + html.escape(r["output"][:400])
    return f"{head}<pre style='white-space:pre-wrap;font-size:11px'>{body}</pre>"


def side_by_side_html(easiest: pd.DataFrame, hardest: pd.DataFrame, key: str) -> str:
    """An HTML table: easiest samples on the left, hardest on the right (texts escaped)."""
    cell = "<td style='vertical-align:top;width:50%'>{}</td>"
    rows = "".join(
        f"<tr>{cell.format(_card(e))}{cell.format(_card(h))}</tr>"
        for (_, e), (_, h) in zip(easiest.iterrows(), hardest.iterrows(), strict=True)
    )
    return f"<table><tr><th>easiest ({key})</th><th>hardest ({key})</th></tr>{rows}</table>"


def token_scores(panels: Sequence[tuple[str, pd.Series, pd.DataFrame]], max_tokens: int = 80) -> Figure:
    """Per panel (label, sample row, ``difficulty.token_breakdown`` frame): s_t of each output token,
    red where the teacher's token lies outside the scorer's nucleus."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(15, 3.5 * len(panels)), squeeze=False)
    for ax, (label, r, tokens) in zip(axes[:, 0], panels, strict=True):
        tokens = tokens.head(max_tokens)
        inside = tokens["rank"] < tokens["nucleus"]
        ax.bar(range(len(tokens)), tokens["score"], color=np.where(inside, "steelblue", "indianred"))
        ax.set_xticks(range(len(tokens)), [repr(t)[1:-1] for t in tokens["token"]], rotation=90, fontsize=7)
        ax.set_xlim(-0.5, max(len(tokens), 20) - 0.5)
        ax.set(
            title=f"{label}: {r['sample_id']} (rank score {r['rank']:.3f}; red = outside the nucleus)",
            ylabel="s_t = r_t / n_t",
            ylim=(0, 1.05),
        )
    fig.tight_layout()
    return fig


def soft_keep_curves(rate: float, soft_peak: float) -> Figure:
    """Keep probability against the difficulty percentile for the configured peak and three others."""
    x = np.linspace(0.001, 0.999, 500)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for a in sorted({soft_peak, 1.0, 0.7, 0.4}, reverse=True):
        probs, b = soft_keep_probs(x, rate, a)
        ax.plot(x, probs, label=f"peak a = {a:g}, b = {b:.2f}")
    ax.set(
        title=f"Soft selection: keep probability at rate {rate:.2f}",
        xlabel="difficulty percentile in the group",
        ylabel="keep probability F(x)",
    )
    ax.legend()
    return fig


def selection_composition(df: pd.DataFrame, sel: pd.DataFrame, clusters: Sequence[str]) -> Figure:
    """Share of the pool and of the selection per task type and per cluster (in the given order)."""
    fig, axes = plt.subplots(1, 2, figsize=(16, 4), gridspec_kw={"width_ratios": [1, 2.5]})
    for ax, col, order in ((axes[0], "task_type", None), (axes[1], "cluster_id", list(clusters))):
        comp = pd.DataFrame(
            {"pool": df[col].value_counts(normalize=True), "selected": sel[col].value_counts(normalize=True)}
        ).fillna(0.0)
        if order is not None:
            comp = comp.loc[order].rename(index=cluster_label)
        (comp * 100).plot.bar(ax=ax, rot=20 if order is None else 0)
        label = col.replace("_", " ")
        ax.set(title=f"Share per {label}", xlabel=label, ylabel="% of samples")
    fig.tight_layout()
    return fig


def composition_table(df: pd.DataFrame, sel: pd.DataFrame) -> pd.DataFrame:
    """Samples in the pool and in the selection per (cluster, task type)."""
    return (
        pd.DataFrame(
            {
                "pool": df.groupby(["cluster_id", "task_type"]).size(),
                "selected": sel.groupby(["cluster_id", "task_type"]).size(),
            }
        )
        .fillna(0)
        .astype(int)
    )


def selector_overlap(picks: dict[str, set[str]]) -> pd.DataFrame:
    """Jaccard overlap between the sample ids each selector kept (:func:`.selection.selector_picks`)."""
    return pd.DataFrame(
        [[len(a & b) / max(len(a | b), 1) for b in picks.values()] for a in picks.values()],
        index=list(picks),
        columns=list(picks),
    )


def overlap_heatmap(overlap: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sns.heatmap(overlap, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, ax=ax)
    ax.set(title="Jaccard overlap of the selections")
    return fig

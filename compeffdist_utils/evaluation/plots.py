"""Stage 07's figures: scores per dataset and group, and the confusion matrices of the classification sets."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from compeffdist_utils.sentibench import BenchDataset


def plot_scores(results: pd.DataFrame, summary: pd.DataFrame, title: str = "") -> Figure:
    """Left: grouped bars per dataset (mean over demo seeds; error bar = std over seeds when there
    are several); right: group means and the overall mean."""
    models = list(dict.fromkeys(results["model"]))
    datasets = list(dict.fromkeys(results["dataset"]))
    stats = results.groupby(["dataset", "model"], sort=False)["score"].agg(["mean", "std"])
    tail = summary[summary.index.str.startswith("mean: ") | (summary.index == "overall")]
    fig, axes = plt.subplots(
        1, 2, figsize=(min(18, 3 + 0.55 * len(datasets) * len(models)), 4.4),
        gridspec_kw={"width_ratios": [max(len(datasets), 1), max(len(tail), 1)]},
    )  # fmt: skip
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        sub = stats.xs(model, level="model").reindex(datasets)
        x = np.arange(len(datasets)) - 0.4 + width * (k + 0.5)
        yerr = sub["std"] if results["seed"].nunique() > 1 else None
        axes[0].bar(x, sub["mean"], width, yerr=yerr, capsize=2, label=model)
        axes[1].bar(np.arange(len(tail)) - 0.4 + width * (k + 0.5), tail[model], width, label=model)
    axes[0].set_xticks(np.arange(len(datasets)), datasets, rotation=35, ha="right")
    axes[0].set(ylabel="score (x100)", ylim=(0, 100), title=f"Per dataset {title}".strip())
    axes[1].set_xticks(
        np.arange(len(tail)), [i.replace("mean: ", "") for i in tail.index], rotation=35, ha="right"
    )
    axes[1].set(ylim=(0, 100), title="Group means and overall")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusions(preds: pd.DataFrame, datasets: Sequence[BenchDataset]) -> Figure | None:
    """Confusion matrices (counts over all demo seeds) of the classification sets, datasets x models."""
    cls = [d for d in datasets if d.spec.kind == "classification" and d.name in set(preds.get("dataset", []))]
    models = list(dict.fromkeys(preds["model"])) if not preds.empty else []
    if not cls or not models:
        return None
    panels = [(ds, model) for ds in cls for model in models]
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (ds, model) in zip(axes.flat, panels, strict=False):
        labels = list(ds.spec.labels)
        sub = preds[(preds["dataset"] == ds.name) & (preds["model"] == model)]
        cm = confusion_matrix(sub["gold"], sub["prediction"], labels=labels)
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="black" if v <= cm.max() / 2 else "white")
        short = [lab.replace(" intimate", "") for lab in labels]
        ax.set_xticks(range(len(labels)), short, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), short, fontsize=8)
        ax.set_title(f"{ds.name}\n{model}", fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("gold", fontsize=8)
    fig.tight_layout()
    return fig

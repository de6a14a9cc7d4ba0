"""Tables and figures of stage 02: how many perspectives, how big, and the 2-D attribute map."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .clustering import Cluster, ClusteringResult, InventoryEntry

N_COLOURED = 20  # clusters beyond the 20 most mentioned share a grey: tab20 has 20 colours


def overview_table(result: ClusteringResult, n_attributes: int) -> pd.DataFrame:
    """Counts that say whether the clustering is usable: clusters, singletons, sizes, concentration."""
    sizes = pd.Series([c.size for c in result.clusters])
    totals = pd.Series([c.total_count for c in result.clusters])
    return pd.Series(
        {
            "clusters": len(result.clusters),
            "attributes": n_attributes,
            "singleton clusters": int((sizes == 1).sum()),
            "median size": float(sizes.median()),
            "largest size": int(sizes.max()),
            "share of mentions in the 10 largest-by-count clusters": round(
                totals.head(10).sum() / totals.sum(), 3
            ),
        },
        name="value",
    ).to_frame()


def cluster_sizes(clusters: Sequence[Cluster], n_shown: int = 25) -> Figure:
    """Left: distribution of cluster sizes; right: total count of the most mentioned clusters."""
    sizes = [c.size for c in clusters]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    axes[0].hist(sizes, bins=range(1, max(sizes) + 2), align="left", rwidth=0.85)
    axes[0].set(title="Cluster size distribution", xlabel="attributes in the cluster", ylabel="clusters")
    shown = clusters[:n_shown]
    axes[1].bar([str(c.cluster_id) for c in shown], [c.total_count for c in shown])
    axes[1].set(
        title=f"Total count of the {len(shown)} most mentioned clusters",
        xlabel="cluster id",
        ylabel="occurrences",
    )
    fig.tight_layout()
    return fig


def attribute_map(
    xy: np.ndarray,
    labels: Sequence[int],
    entries: Sequence[InventoryEntry],
    projection: str,
    n_labelled: int = 20,
) -> Figure:
    """The attribute names in 2-D, coloured by cluster, point size by count, the most frequent labelled."""
    labels = np.asarray(labels)
    palette = plt.get_cmap("tab20")
    colors = [palette(lab % N_COLOURED) if lab < N_COLOURED else (0.75, 0.75, 0.75, 0.6) for lab in labels]
    counts = np.array([e.count for e in entries])
    size = 12 + 60 * np.log1p(counts) / max(np.log1p(counts).max(), 1)
    fig, ax = plt.subplots(figsize=(10, 7.5))
    ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=size, alpha=0.8)
    for i in np.argsort(-counts, kind="stable")[:n_labelled]:
        ax.annotate(
            f"{entries[i].attr} [{labels[i]}]", xy[i], fontsize=8, xytext=(3, 3), textcoords="offset points"
        )
    ax.set(
        title=f"Attribute names ({projection}), coloured by cluster; [n] = cluster id",
        xlabel=f"{projection} 1",
        ylabel=f"{projection} 2",
    )
    fig.tight_layout()
    return fig

"""Stage figures and tables: the drawing helpers of compeffdist_utils.clustering.plots, read back from what they draw."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")  # the helpers draw; these tests only read the figures back

from compeffdist_utils.clustering import plots as clustering_report  # noqa: E402


def test_cluster_views():
    from compeffdist_utils.clustering.cluster import InventoryEntry, cluster_inventory
    from compeffdist_utils.core.config import ClusteringParams

    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(c, 0.01, size=(3, 4)) for c in (0, 5)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    entries = [InventoryEntry(attr=f"a{i}", count=i + 1) for i in range(6)]
    result = cluster_inventory(entries, vectors, ClusteringParams(method="kmeans", n_clusters=2))
    overview = clustering_report.overview_table(result, len(entries))
    assert overview.loc["clusters", "value"] == 2 and overview.loc["attributes", "value"] == 6
    fig = clustering_report.cluster_sizes(result.clusters)
    assert sorted(p.get_height() for p in fig.axes[1].patches) == sorted(
        c.total_count for c in result.clusters
    )
    fig = clustering_report.attribute_map(vectors[:, :2], result.labels, entries, "pca")
    assert len(fig.axes[0].collections[0].get_offsets()) == 6 and len(fig.axes[0].texts) == 6
    summary = clustering_report.fit_summary(result, len(entries), 0.25)
    assert summary.startswith("kmeans: 2 clusters from 6 attributes") and "in 0.2 s" in summary
    assert "Warning" not in summary

"""Stage 02 (notebook ``02_clustering``): attribute embeddings grouped into analytical perspectives by
Affinity Propagation (weighted by frequency, or on the authors' repeated points), at a target
granularity, and the 2-D map; inventories from elsewhere; its figures.
"""

from compeffdist_utils.clustering.cluster import (
    Cluster,
    ClusteringError,
    ClusteringResult,
    assignment_records,
    cluster_file,
    cluster_inventory,
    project_2d,
    resolve_inventory,
    similarity,
)
from compeffdist_utils.clustering.inventory import InventoryEntry, InventoryError, load_inventory
from compeffdist_utils.clustering.plots import (
    cluster_table,
    explorer_widget,
    interactive_frontend,
    preference_curve,
)
from compeffdist_utils.clustering.repeated_points import extra_copies, point_origin, repeated_ap
from compeffdist_utils.clustering.weighted_ap import APFit, search_preference, weighted_affinity_propagation

__all__ = [
    "APFit",
    "Cluster",
    "ClusteringError",
    "ClusteringResult",
    "InventoryEntry",
    "InventoryError",
    "assignment_records",
    "cluster_file",
    "cluster_inventory",
    "cluster_table",
    "explorer_widget",
    "extra_copies",
    "interactive_frontend",
    "load_inventory",
    "point_origin",
    "preference_curve",
    "project_2d",
    "repeated_ap",
    "resolve_inventory",
    "search_preference",
    "similarity",
    "weighted_affinity_propagation",
]

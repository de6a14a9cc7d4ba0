"""Stage 02 (notebook ``02_clustering``): attribute embeddings grouped into analytical perspectives by
Affinity Propagation (weighted by frequency, or on the authors' repeated points), at a target
granularity, and the 2-D map; inventories from elsewhere; its figures.
"""

from compeffdist_utils.clustering.cluster import cluster_inventory, project_2d
from compeffdist_utils.clustering.inventory import InventoryEntry
from compeffdist_utils.clustering.repeated_points import extra_copies

__all__ = [
    "InventoryEntry",
    "cluster_inventory",
    "extra_copies",
    "project_2d",
]

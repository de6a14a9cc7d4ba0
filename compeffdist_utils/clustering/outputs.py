"""Stage 02's bookkeeping: the inventory it reads, the timed embedding and fit, its files and the notes
of its stage record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from compeffdist_utils.clustering.cluster import (
    ClusteringResult,
    assignment_records,
    cluster_inventory,
    resolve_inventory,
)
from compeffdist_utils.clustering.inventory import InventoryEntry
from compeffdist_utils.core.config import ClusteringParams, Params
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.models import embed_texts
from compeffdist_utils.stage.stage import Stage, find_project_root


def stage_inventory(stage: Stage) -> tuple[list[InventoryEntry], str]:
    """The inventory to cluster and its source: ``clustering.inventory_file``, else stage 01's output."""
    params = stage.params
    stage01 = (
        None
        if params.clustering.inventory_file
        else stage.require("attributes/inventory.jsonl", "01_attributes")
    )
    return resolve_inventory(params.clustering, stage01, find_project_root(), params.attributes.min_count)


def embed_names(entries: Sequence[InventoryEntry], params: Params) -> tuple[np.ndarray, float]:
    """The attribute names' vectors from ``models.embedder``, and the seconds it took."""
    t0 = time.time()
    vectors = embed_texts(params.models.embedder, [e.attr for e in entries], params)
    return vectors, time.time() - t0


def timed_clustering(
    entries: Sequence[InventoryEntry], vectors: np.ndarray, params_clustering: ClusteringParams
) -> tuple[ClusteringResult, float]:
    """:func:`.cluster.cluster_inventory`, and the seconds the fit took (kept in the stage record)."""
    t0 = time.time()
    result = cluster_inventory(entries, vectors, params_clustering)
    return result, time.time() - t0


def save_clusters(stage: Stage, result: ClusteringResult) -> None:
    """Write ``clusters/clusters.jsonl`` (one perspective with its attributes per line)."""
    write_jsonl(stage.output("clusters/clusters.jsonl"), [c.model_dump() for c in result.clusters])


def save_assignments(
    stage: Stage, entries: Sequence[InventoryEntry], result: ClusteringResult, xy: np.ndarray
) -> None:
    """Write ``clusters/assignments.jsonl`` (each attribute's cluster and map position)."""
    write_jsonl(stage.output("clusters/assignments.jsonl"), assignment_records(entries, result, xy))


def stage_notes(
    n_attributes: int,
    source: str,
    result: ClusteringResult,
    projection: str,
    fit_seconds: float,
    params_clustering: ClusteringParams,
) -> dict[str, Any]:
    """The notes of stage 02's record: the inventory, the fit and its convergence, the granularity."""
    return {
        "n_attributes": n_attributes,
        "inventory_source": source,
        "n_clusters": len(result.clusters),
        "method": result.method,
        "converged": result.converged,
        "n_iter": result.n_iter,
        "n_fit_points": result.n_fit_points,
        "projection": projection,
        "fit_seconds": round(fit_seconds, 2),
        "ap_solver": params_clustering.ap_solver,
        "preference": result.preference,
        "target_clusters": result.target_clusters,
        "preference_search": result.search,
        "convergence_warning": result.convergence_warning,
    }

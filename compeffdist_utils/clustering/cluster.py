"""Stage 02 (docs/METHOD.md, step 3): cluster attribute names into "analytical perspectives".

Only the attribute *name* is embedded. The paper's clustering is Affinity Propagation on the negative
squared Euclidean similarity of the (normalised) name vectors, with a preference at a low percentile of
the names' similarity matrix so that few clusters form, and with frequent attributes given more weight
by repeating each vector ``int(log1p(count))`` extra times. The kit runs that weighting as AP with
multiplicities on the unique names (:mod:`.weighted_ap`, derivation there), which gives the repeated
points' clusters at a fraction of the time and memory; ``clustering.ap_solver: repeated`` materialises
the copies as the authors did.

The preference percentile is tied to the embedder's geometry (the paper's 0.5 suits UAE-Large-V1; with
MiniLM the same percentile leaves near-synonyms apart). ``clustering.target_clusters`` instead searches
the preference that gives a requested number of clusters, so the granularity is the same whatever the
embedder. k-means and agglomerative (Ward) clustering are offered as the alternatives the authors also
tried; they see the repeated points, which for them is weighting by ``1 + int(log1p(count))``.

Clusters are ordered by total attribute count (the sum of their members' counts) and numbered
0..K-1 in that order, so cluster 0 is the perspective the teacher mentioned most often.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import euclidean_distances

from compeffdist_utils.clustering.inventory import InventoryEntry, load_inventory
from compeffdist_utils.clustering.repeated_points import extra_copies, point_origin, repeated_ap
from compeffdist_utils.clustering.weighted_ap import APFit, search_preference, weighted_affinity_propagation
from compeffdist_utils.core.array_cache import array_key, cached_array
from compeffdist_utils.core.config import ClusteringParams, Params, params_from_dict
from compeffdist_utils.core.hashing import code_hash
from compeffdist_utils.models import embed_texts


class ClusteringError(ValueError):
    """Clustering that cannot run or produced no clusters; the message says what to change."""


class ClusterMember(BaseModel):
    attr: str
    count: int
    top_description: str | None = None


class Cluster(BaseModel):
    """A line of ``clusters/clusters.jsonl``; members most frequent first."""

    cluster_id: int
    size: int
    total_count: int
    exemplar: str
    attributes: list[ClusterMember]


class ClusteringResult(BaseModel):
    labels: list[int]  # cluster_id per inventory entry, in inventory order
    clusters: list[Cluster]
    method: str
    converged: bool = True
    n_iter: int | None = None
    n_fit_points: int  # points after frequency weighting (represented, not materialised, when weighted)
    notes: list[str] = []
    preference: float | None = None  # AP's preference actually used
    target_clusters: int | None = None  # the count the preference search aimed at
    search: list[dict[str, Any]] = []  # the search's runs: {preference, n_clusters, converged, n_iter}
    convergence_warning: str | None = None  # set when AP did not converge: what happened, what to change


# ---------------------------------------------------------------------------------------------------
# Inventory input (formats: .inventory)
# ---------------------------------------------------------------------------------------------------


def resolve_inventory(
    params_clustering: ClusteringParams, stage01_inventory: Path | None, project_root: Path, min_count: int
) -> tuple[list[InventoryEntry], str]:
    """The inventory to cluster and where it came from: ``clustering.inventory_file`` or stage 01's.

    ``stage01_inventory`` is only read (and only needed) when no ``inventory_file`` is set.

    An empty inventory is an error here, where its cause is known, instead of a confusing failure
    inside the clustering library.
    """
    if params_clustering.inventory_file:
        path = Path(params_clustering.inventory_file).expanduser()
        if not path.is_absolute():
            path = project_root / path
        entries = load_inventory(path)
        if not entries:
            raise ClusteringError(f"the inventory file {path} holds no attributes")
        return entries, str(path)
    if stage01_inventory is None or not stage01_inventory.exists():
        raise FileNotFoundError(
            f"{stage01_inventory} is missing: run stage 01 first, or set clustering.inventory_file"
        )
    entries = load_inventory(stage01_inventory)
    if not entries:
        raise ClusteringError(
            f"stage 01 kept no attributes: none was seen more than attributes.min_count={min_count} "
            "times (names that are not attributes, such as 'sentence 1', are left out whatever their "
            "count). Lower attributes.min_count (e.g. 0 or 1 for a tiny corpus) or enumerate more texts."
        )
    return entries, str(stage01_inventory)


# ---------------------------------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------------------------------


def similarity(x: np.ndarray) -> np.ndarray:
    """Negative squared Euclidean distances of the rows (float64: AP's messages are sums of them)."""
    return -euclidean_distances(np.asarray(x, dtype=np.float64), squared=True)


def _target(cp: ClusteringParams, n: int) -> int | None:
    """``clustering.target_clusters`` as a count for ``n`` names, never more than ``n``.

    A fraction is rounded and raised to ``clustering.min_clusters``: a tenth of a small inventory is one
    or two clusters, a map with a single perspective that stage 03 cannot draw different tasks from.
    """
    if cp.target_clusters is None:
        return None
    if isinstance(cp.target_clusters, float):
        return min(max(cp.min_clusters, round(cp.target_clusters * n)), n)
    return min(cp.target_clusters, n)


def convergence_advice(cp: ClusteringParams, fit: APFit) -> str:
    """What a non-converged AP run means and what to change (shown in the notebook, kept in the manifest)."""
    return (
        f"Affinity Propagation did not converge in max_iter={cp.max_iter} iterations "
        f"(damping {cp.damping}): its {fit.exemplars.size} exemplars were still changing, so the clusters "
        "may be unstable. Raise clustering.max_iter (e.g. 2000), raise clustering.damping (e.g. 0.95), "
        "or choose the granularity with clustering.target_clusters instead of a percentile."
    )


def _choose_preference(
    run: Callable[[float], APFit], s: np.ndarray, target: int | None, cp: ClusteringParams
) -> tuple[float, APFit, list[dict[str, Any]], list[str]]:
    """The preference and its AP fit: the percentile of ``s``, or the search for ``target`` clusters.

    Returns (preference, fit, search steps, notes for the notebook and the manifest).
    """
    if target is None:
        # The percentile is taken over the names' own similarity matrix, as the authors' script does.
        preference = float(np.percentile(s, cp.preference_percentile))
        note = f"preference = {preference:.4f} (percentile {cp.preference_percentile} of the similarities)"
        return preference, run(preference), [], [note]
    tolerance = round(cp.target_tolerance * target)
    preference, fit, found = search_preference(
        run, s, target, tolerance=tolerance, max_steps=cp.target_max_steps
    )
    notes = [
        f"preference = {preference:.4f}: {fit.exemplars.size} clusters for a target of {target} "
        f"(+-{tolerance}), found in {len(found)} AP runs"
    ]
    if abs(fit.exemplars.size - target) > tolerance:
        notes.append(
            f"the preference search ended after {len(found)} runs without reaching {target} +- "
            f"{tolerance} clusters (clustering.target_max_steps={cp.target_max_steps}, or the count "
            "jumps over the target between close preferences); it uses the closest count. Raise "
            "clustering.target_tolerance or target_max_steps"
        )
    return preference, fit, [asdict(step) for step in found], notes


def _affinity(x: np.ndarray, counts: Sequence[int], cp: ClusteringParams) -> dict[str, Any]:
    """AP labels for the names plus iterations, convergence, preference, search and notes."""
    s = similarity(x)
    m = 1 + extra_copies(counts, cp.frequency_weighting)

    def run(preference: float) -> APFit:
        if cp.ap_solver == "repeated":
            return repeated_ap(s, m, preference, cp)
        return weighted_affinity_propagation(
            s, m, preference, damping=cp.damping, max_iter=cp.max_iter,
            convergence_iter=cp.convergence_iter, random_state=cp.random_state, dtype=np.dtype(cp.ap_dtype).type,
        )  # fmt: skip

    target = _target(cp, len(x))
    preference, fit, steps, notes = _choose_preference(run, s, target, cp)
    if fit.exemplars.size == 0:
        raise ClusteringError(
            f"Affinity Propagation did not converge in max_iter={cp.max_iter} iterations and found no "
            "clusters; raise clustering.max_iter, change clustering.damping, or use method 'kmeans'"
        )
    advice = None if fit.converged else convergence_advice(cp, fit)
    if advice:
        warnings.warn(advice, stacklevel=3)
        notes.insert(0, advice)
    return {
        "labels": fit.labels,
        "exemplars": {lab: int(ex) for lab, ex in enumerate(fit.exemplars)},
        "n_iter": fit.n_iter,
        "converged": fit.converged,
        "notes": notes,
        "preference": preference,
        "target_clusters": target,
        "search": steps,
        "convergence_warning": advice,
        "n_fit_points": int(m.sum()),
    }


def _fit_labels(x: np.ndarray, counts: Sequence[int], cp: ClusteringParams) -> dict[str, Any]:
    """Labels for the original points plus fit details (exemplar per label for AP)."""
    if cp.method == "affinity":
        return _affinity(x, counts, cp)
    points = x[point_origin(extra_copies(counts, cp.frequency_weighting))]
    info: dict[str, Any] = {"n_fit_points": len(points), "notes": [], "converged": True, "n_iter": None}
    n = len(x)
    k = min(cp.n_clusters, n)
    if k < cp.n_clusters:
        info["notes"].append(f"n_clusters={cp.n_clusters} capped at the number of attributes ({n})")
    if cp.method == "kmeans":
        model: Any = KMeans(n_clusters=k, random_state=cp.random_state, n_init=10)
    else:
        model = AgglomerativeClustering(n_clusters=k, linkage="ward")
    info["labels"] = np.asarray(model.fit_predict(points))[:n]
    return info


def _central_member(x: np.ndarray, members: np.ndarray, counts: np.ndarray) -> int:
    """The member closest to the count-weighted centre (exemplar for methods that have none)."""
    weights = 1 + extra_copies(counts[members].tolist(), True)
    centre = np.average(x[members], axis=0, weights=weights)
    return int(members[np.argmin(((x[members] - centre) ** 2).sum(axis=1))])


def _ordered_clusters(
    entries: Sequence[InventoryEntry], vectors: np.ndarray, labels: np.ndarray, exemplars: dict[int, int]
) -> tuple[np.ndarray, list[Cluster]]:
    """The clusters ordered by total count and renumbered 0..K-1, and each entry's new label."""
    counts = np.array([e.count for e in entries])
    n = len(entries)
    clusters_raw = []
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        members = members[np.lexsort(([entries[i].attr for i in members], -counts[members]))]
        ex = exemplars.get(int(lab))
        if ex is None or ex not in members:
            ex = _central_member(vectors, members, counts)
        clusters_raw.append((int(counts[members].sum()), members, ex))
    # Most mentioned perspective first; ties broken by size, then by exemplar name (deterministic).
    clusters_raw.sort(key=lambda c: (-c[0], -len(c[1]), entries[c[2]].attr))

    new_labels = np.empty(n, dtype=int)
    clusters = []
    for cid, (total, members, ex) in enumerate(clusters_raw):
        new_labels[members] = cid
        clusters.append(
            Cluster(
                cluster_id=cid,
                size=len(members),
                total_count=total,
                exemplar=entries[ex].attr,
                attributes=[
                    ClusterMember(
                        attr=entries[i].attr,
                        count=entries[i].count,
                        top_description=entries[i].top_description,
                    )
                    for i in members
                ],
            )
        )
    return new_labels, clusters


def cluster_inventory(
    entries: Sequence[InventoryEntry], vectors: np.ndarray, cp: ClusteringParams
) -> ClusteringResult:
    """Cluster the attribute vectors (one row per entry) and order the clusters by total count."""
    n = len(entries)
    if n == 0:
        raise ClusteringError("no attributes to cluster")
    if vectors.shape[0] != n:
        raise ValueError(f"{vectors.shape[0]} vectors for {n} attributes")
    counts = np.array([e.count for e in entries])
    if n == 1:
        labels = np.zeros(1, dtype=int)
        info: dict[str, Any] = {
            "n_fit_points": 1,
            "notes": ["a single attribute: one cluster, nothing to fit"],
            "converged": True,
            "n_iter": None,
            "exemplars": {0: 0},
        }
    else:
        info = _fit_labels(vectors, counts.tolist(), cp)
        labels = info["labels"]
    exemplars: dict[int, int] = info.get("exemplars", {})

    new_labels, clusters = _ordered_clusters(entries, vectors, np.asarray(labels), exemplars)
    return ClusteringResult(
        labels=new_labels.tolist(),
        clusters=clusters,
        method=cp.method,
        converged=info["converged"],
        n_iter=info["n_iter"],
        n_fit_points=info["n_fit_points"],
        notes=info["notes"],
        preference=info.get("preference"),
        target_clusters=info.get("target_clusters"),
        search=info.get("search", []),
        convergence_warning=info.get("convergence_warning"),
    )


def cluster_file(
    path: str | Path, *, embedder: str | None = None, params: Params | None = None, **clustering: Any
) -> ClusteringResult:
    """Cluster an inventory file in one call, e.g. the authors' released inventory::

        from compeffdist_utils.clustering.cluster import cluster_file, cluster_table
        result = cluster_file("attributes.json", target_clusters=180)
        cluster_table(result.clusters).head(20)

    ``embedder`` defaults to ``params.models.embedder`` (the embedded MiniLM); keyword arguments
    override ``params.clustering`` fields. No stage-01 output is needed.
    """

    params = params or params_from_dict({})
    cp = ClusteringParams.model_validate({**params.clustering.model_dump(), **clustering})
    entries = load_inventory(path)
    if not entries:
        raise ClusteringError(f"the inventory file {path} holds no attributes")
    vectors = embed_texts(embedder or params.models.embedder, [e.attr for e in entries], params)
    return cluster_inventory(entries, vectors, cp)


# ---------------------------------------------------------------------------------------------------
# 2-D map
# ---------------------------------------------------------------------------------------------------

# Below this many points UMAP's neighbour graph is meaningless; PCA shows the same thing honestly.
MIN_UMAP_POINTS = 5


def project_2d(
    vectors: np.ndarray, method: str, seed: int, cache_dir: Path | None = None
) -> tuple[np.ndarray, str]:
    """2-D coordinates for the map, and the method actually used (UMAP falls back to PCA when tiny).

    A UMAP map is stored in ``cache_dir`` (when given) per (vectors, seed, umap version): a rerun skips
    numba's compile, which dominates small maps.
    """
    n = len(vectors)
    if method == "umap" and n >= MIN_UMAP_POINTS:
        import umap  # deferred: heavy (numba compile), only for a UMAP map

        def fit() -> np.ndarray:
            reducer = umap.UMAP(
                n_components=2, n_neighbors=min(15, n - 1), metric="cosine", random_state=seed, init="random"
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": expected, seeded run
                return np.asarray(reducer.fit_transform(vectors), dtype=float)

        key = array_key(vectors, seed, umap.__version__, code_hash(["clustering.cluster"]))
        return cached_array(cache_dir, "umap", key, fit), "umap"
    used = "pca" if method == "pca" else f"pca (fewer than {MIN_UMAP_POINTS} attributes for umap)"
    out = np.zeros((n, 2))
    k = min(2, n, vectors.shape[1]) if n > 1 else 0
    if k:
        out[:, :k] = PCA(n_components=k, random_state=seed).fit_transform(vectors)
    return out, used


def assignment_records(
    entries: Sequence[InventoryEntry], result: ClusteringResult, xy: np.ndarray
) -> list[dict[str, Any]]:
    """Lines of ``clusters/assignments.jsonl``: {attr, count, cluster_id, x, y}."""
    return [
        {"attr": e.attr, "count": e.count, "cluster_id": lab, "x": float(p[0]), "y": float(p[1])}
        for e, lab, p in zip(entries, result.labels, xy, strict=True)
    ]

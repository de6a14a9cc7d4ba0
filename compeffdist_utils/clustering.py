"""Stage 3 of the method: cluster attribute names into "analytical perspectives".

Only the attribute *name* is embedded. The paper's clustering is Affinity Propagation on the negative
squared Euclidean similarity of the (normalised) name vectors, with a preference at a low percentile of
that similarity matrix so that few clusters form, and with frequent attributes given more weight by
repeating each vector ``int(log1p(count))`` extra times before fitting. Repeated copies are identical
points, so they always land in their original's cluster; labels are read back for the originals.
k-means and agglomerative (Ward) clustering are offered as the alternatives the authors also tried;
they see the same repeated points, which for them is the same as weighting by ``1 + int(log1p(count))``.

Clusters are ordered by total attribute count (the sum of their members' counts) and numbered
0..K-1 in that order, so cluster 0 is the perspective the teacher mentioned most often.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from .array_cache import array_key, cached_array
from .code_hash import code_hash
from .config import ClusteringParams
from .io import DataFileError, iter_jsonl_numbered


class InventoryError(ValueError):
    """An attribute inventory that cannot be used; the message names the file and the problem."""


class ClusteringError(ValueError):
    """Clustering that cannot run or produced no clusters; the message says what to change."""


class InventoryEntry(BaseModel):
    attr: str
    count: int
    top_description: str | None = None


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
    n_fit_points: int  # points after frequency weighting
    notes: list[str] = []


# ---------------------------------------------------------------------------------------------------
# Inventory input
# ---------------------------------------------------------------------------------------------------

_REQUIRED = ("attr", "count")


def _entry(raw: dict[str, Any], where: str) -> InventoryEntry:
    missing = [c for c in _REQUIRED if c not in raw]
    if missing:
        raise InventoryError(f"{where}: missing column(s) {missing}; an inventory needs {list(_REQUIRED)}")
    attr = str(raw["attr"] or "").strip()
    if not attr:
        raise InventoryError(f"{where}: empty 'attr'")
    try:
        count_f = float(raw["count"])
    except (TypeError, ValueError):
        raise InventoryError(f"{where}: 'count' must be a whole number, got {raw['count']!r}") from None
    if not count_f.is_integer() or count_f < 0:
        raise InventoryError(f"{where}: 'count' must be a whole number >= 0, got {raw['count']!r}")
    desc = raw.get("top_description")
    return InventoryEntry(attr=attr, count=int(count_f), top_description=str(desc) if desc else None)


def load_inventory(path: str | Path) -> list[InventoryEntry]:
    """Read an ``{attr, count}`` inventory from JSONL (``.jsonl``/``.json``) or CSV (``.csv``).

    Extra columns are ignored except ``top_description``, which the notebooks show when present.
    A repeated ``attr`` is an error rather than a silent merge: it usually means the file was built
    without normalising names, and summing its counts would hide that.
    """
    path = Path(path)
    if not path.is_file():
        raise InventoryError(f"inventory file not found: {path}")
    suffix = path.suffix.lower()
    rows: list[tuple[str, dict[str, Any]]] = []
    if suffix in (".jsonl", ".json"):
        try:
            rows = [(f"{path}:{lineno}", rec) for lineno, rec in iter_jsonl_numbered(path)]
        except DataFileError as err:
            raise InventoryError(f"{err}; an inventory has one {{attr, count}} object per line") from None
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                raise InventoryError(
                    f"{path}: missing column(s) {missing} in the header {header}; "
                    f"an inventory needs {list(_REQUIRED)}"
                )
            rows = [(f"{path}:{i}", rec) for i, rec in enumerate(reader, 2)]
    else:
        raise InventoryError(f"{path}: unsupported inventory format {suffix!r}; use .jsonl or .csv")
    entries = [_entry(rec, where) for where, rec in rows]
    seen: dict[str, int] = {}
    for e in entries:
        seen[e.attr] = seen.get(e.attr, 0) + 1
    dups = sorted(a for a, n in seen.items() if n > 1)
    if dups:
        raise InventoryError(f"{path}: attribute(s) listed more than once: {dups[:10]}")
    return entries


def resolve_inventory(
    params_clustering: ClusteringParams, stage01_inventory: Path, project_root: Path, min_count: int
) -> tuple[list[InventoryEntry], str]:
    """The inventory to cluster and where it came from: ``clustering.inventory_file`` or stage 01's.

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
    if not stage01_inventory.exists():
        raise FileNotFoundError(
            f"{stage01_inventory} is missing: run stage 01 first, or set clustering.inventory_file"
        )
    entries = load_inventory(stage01_inventory)
    if not entries:
        raise ClusteringError(
            f"stage 01 kept no attributes: none was seen more than attributes.min_count={min_count} "
            "times. Lower attributes.min_count (e.g. 0 or 1 for a tiny corpus) or enumerate more texts."
        )
    return entries, str(stage01_inventory)


# ---------------------------------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------------------------------


def extra_copies(counts: Sequence[int], weighting: bool) -> np.ndarray:
    """How many extra times each vector is repeated: ``int(log1p(count))``, or 0 without weighting."""
    if not weighting:
        return np.zeros(len(counts), dtype=int)
    return np.array([int(math.log1p(c)) for c in counts], dtype=int)


def _expand(x: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Originals first, then their copies; returns the points and each point's original index."""
    origin = np.concatenate([np.arange(len(x)), np.repeat(np.arange(len(x)), extra)])
    return x[origin], origin


def _affinity(points: np.ndarray, cp: ClusteringParams) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Labels and exemplar indices of the points, plus iterations, convergence and notes."""
    from sklearn.cluster import AffinityPropagation
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics.pairwise import euclidean_distances

    s = -euclidean_distances(points, squared=True)
    preference = float(np.percentile(s, cp.preference_percentile))
    ap = AffinityPropagation(
        affinity="precomputed",
        damping=cp.damping,
        max_iter=cp.max_iter,
        convergence_iter=cp.convergence_iter,
        preference=preference,
        random_state=cp.random_state,
        copy=False,  # s is ours: saves one n x n matrix
    )
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ap.fit(s)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if len(ap.cluster_centers_indices_) == 0:
        raise ClusteringError(
            f"Affinity Propagation did not converge in max_iter={cp.max_iter} iterations and found no "
            "clusters; raise clustering.max_iter, change clustering.damping, or use method 'kmeans'"
        )
    if not converged:
        msg = (
            f"Affinity Propagation did not converge in max_iter={cp.max_iter} iterations; its "
            f"{len(ap.cluster_centers_indices_)} clusters may be unstable (raise clustering.max_iter)"
        )
        warnings.warn(msg, stacklevel=3)
        notes.append(msg)
    notes += [str(w.message) for w in caught if not issubclass(w.category, ConvergenceWarning)]
    notes.append(f"preference = {preference:.4f} (percentile {cp.preference_percentile} of the similarities)")
    info = {"n_iter": int(ap.n_iter_), "converged": converged, "notes": notes}
    return ap.labels_, np.asarray(ap.cluster_centers_indices_), info


def _fit_labels(
    x: np.ndarray, counts: Sequence[int], cp: ClusteringParams
) -> tuple[np.ndarray, dict[str, Any]]:
    """Labels for the original points plus fit details (exemplar per label for AP)."""
    points, origin = _expand(x, extra_copies(counts, cp.frequency_weighting))
    info: dict[str, Any] = {"n_fit_points": len(points), "notes": [], "converged": True, "n_iter": None}
    n = len(x)
    if cp.method == "affinity":
        labels, centers, ap_info = _affinity(points, cp)
        info.update(ap_info)
        info["exemplars"] = {int(labels[c]): int(origin[c]) for c in centers}
    else:
        from sklearn.cluster import AgglomerativeClustering, KMeans

        k = min(cp.n_clusters, n)
        if k < cp.n_clusters:
            info["notes"].append(f"n_clusters={cp.n_clusters} capped at the number of attributes ({n})")
        if cp.method == "kmeans":
            model: Any = KMeans(n_clusters=k, random_state=cp.random_state, n_init=10)
        else:
            model = AgglomerativeClustering(n_clusters=k, linkage="ward")
        labels = model.fit_predict(points)
    return np.asarray(labels[:n]), info


def _central_member(x: np.ndarray, members: np.ndarray, counts: np.ndarray) -> int:
    """The member closest to the count-weighted centre (exemplar for methods that have none)."""
    weights = 1 + extra_copies(counts[members].tolist(), True)
    centre = np.average(x[members], axis=0, weights=weights)
    return int(members[np.argmin(((x[members] - centre) ** 2).sum(axis=1))])


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
        labels, info = _fit_labels(vectors, counts.tolist(), cp)
    exemplars: dict[int, int] = info.get("exemplars", {})

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
    return ClusteringResult(
        labels=new_labels.tolist(),
        clusters=clusters,
        method=cp.method,
        converged=info["converged"],
        n_iter=info["n_iter"],
        n_fit_points=info["n_fit_points"],
        notes=info["notes"],
    )


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
        import umap

        def fit() -> np.ndarray:
            reducer = umap.UMAP(
                n_components=2, n_neighbors=min(15, n - 1), metric="cosine", random_state=seed, init="random"
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": expected, seeded run
                return np.asarray(reducer.fit_transform(vectors), dtype=float)

        key = array_key(vectors, seed, umap.__version__, code_hash(["clustering"]))
        return cached_array(cache_dir, "umap", key, fit), "umap"
    used = "pca" if method == "pca" else f"pca (fewer than {MIN_UMAP_POINTS} attributes for umap)"
    out = np.zeros((n, 2))
    k = min(2, n, vectors.shape[1]) if n > 1 else 0
    if k:
        from sklearn.decomposition import PCA

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


# ---------------------------------------------------------------------------------------------------
# Showing clusters in a notebook
# ---------------------------------------------------------------------------------------------------


def cluster_table(clusters: Sequence[Cluster], top_attrs: int = 6) -> Any:
    """A pandas table: one row per cluster with its exemplar and most frequent attributes."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "cluster_id": c.cluster_id,
                "size": c.size,
                "total_count": c.total_count,
                "exemplar": c.exemplar,
                "top attributes (count)": ", ".join(
                    f"{m.attr} ({m.count})" for m in c.attributes[:top_attrs]
                ),
            }
            for c in clusters
        ]
    ).set_index("cluster_id")


def members_table(cluster: Cluster) -> Any:
    import pandas as pd

    return pd.DataFrame([m.model_dump() for m in cluster.attributes]).rename(
        columns={"top_description": "typical description"}
    )


# Set in the kernel's environment by jupyter_server (JupyterLab, Notebook 7) and by VS Code; papermill,
# nbclient and nbconvert start kernels without them.
_FRONTEND_ENV = ("JPY_SESSION_NAME", "VSCODE_PID")


def interactive_frontend() -> bool:
    """True in a Jupyter kernel that a live front-end started, where a widget can be used.

    Headless runs (papermill, nbmake) get False and show only the static table, which is always shown.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    in_kernel = shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
    return in_kernel and any(os.environ.get(v) for v in _FRONTEND_ENV)


def explorer_widget(clusters: Sequence[Cluster]) -> Any:
    """A dropdown (cluster -> its attributes with counts and typical descriptions)."""
    import ipywidgets as widgets
    from IPython.display import display

    options = [
        (f"{c.cluster_id}: {c.exemplar} ({c.size} attrs, {c.total_count} mentions)", i)
        for i, c in enumerate(clusters)
    ]
    dropdown = widgets.Dropdown(options=options, description="cluster", layout=widgets.Layout(width="70%"))
    out = widgets.Output()

    def show(change: Any = None) -> None:
        out.clear_output()
        with out:
            display(members_table(clusters[dropdown.value]))

    dropdown.observe(show, names="value")
    show()
    return widgets.VBox([dropdown, out])

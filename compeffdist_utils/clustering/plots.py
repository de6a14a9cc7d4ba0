"""Stage 02's tables, widget and figures: how many perspectives, how big, the 2-D attribute map and the
preference search (the numbers come from :mod:`.clustering`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython import get_ipython
from IPython.display import display
from matplotlib.figure import Figure

from compeffdist_utils.clustering.cluster import Cluster, ClusteringResult
from compeffdist_utils.clustering.inventory import InventoryEntry

if TYPE_CHECKING:
    import matplotlib.figure


def preference_curve(
    search: Sequence[dict[str, Any]], target: int | None, chosen: float | None
) -> matplotlib.figure.Figure:
    """The preference-to-cluster-count curve the target search explored (one point per AP run).

    Preferences are negative squared distances spread over orders of magnitude, so the x axis shows
    ``-preference`` on a log scale; runs that did not converge are drawn hollow.
    """
    fig, ax = plt.subplots(figsize=(7, 3.8))
    steps = sorted(search, key=lambda st: st["preference"])
    xs = [-st["preference"] for st in steps]
    ax.plot(xs, [st["n_clusters"] for st in steps], color="0.6", zorder=1)
    for st in steps:
        ax.scatter(
            -st["preference"], st["n_clusters"], zorder=2, s=30, edgecolors="C0",
            facecolors="C0" if st["converged"] else "none",
        )  # fmt: skip
    if target is not None:
        ax.axhline(target, color="C3", ls="--", lw=1, label=f"target {target}")
    if chosen is not None:
        ax.axvline(-chosen, color="C2", ls=":", lw=1, label=f"chosen {chosen:.3g}")
    order = {st["preference"]: i + 1 for i, st in enumerate(search)}
    for st in steps:
        ax.annotate(str(order[st["preference"]]), (-st["preference"], st["n_clusters"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set(
        title="Preference search (numbers: order of the AP runs; hollow: not converged)",
        xlabel="- preference (log scale; lower preference -> fewer clusters)",
        ylabel="clusters",
    )
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def cluster_table(clusters: Sequence[Cluster], top_attrs: int = 6) -> Any:
    """A pandas table: one row per cluster with its exemplar and most frequent attributes."""
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
    shell = get_ipython()
    in_kernel = shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
    return in_kernel and any(os.environ.get(v) for v in _FRONTEND_ENV)


def explorer_widget(clusters: Sequence[Cluster]) -> Any:
    """A dropdown (cluster -> its attributes with counts and typical descriptions)."""
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


def fit_summary(result: ClusteringResult, n_attributes: int, fit_seconds: float) -> str:
    """Markdown: clusters from how many attributes and fit points, convergence, the fit's notes, and a
    warning when Affinity Propagation did not converge."""
    lines = [
        f"{result.method}: {len(result.clusters)} clusters from {n_attributes} attributes "
        f"({result.n_fit_points} points after frequency weighting) in {fit_seconds:.1f} s; "
        f"converged: {result.converged}; iterations: {result.n_iter}",
        *(f"note: {note}" for note in result.notes),
    ]
    if result.convergence_warning:
        lines.append(f"**Warning: Affinity Propagation did not converge.** {result.convergence_warning}")
    return "\n\n".join(lines)


def show_explorer(clusters: Sequence[Cluster]) -> None:
    """The interactive cluster explorer in a live Jupyter session; a note that it is skipped otherwise."""
    if interactive_frontend():
        display(explorer_widget(clusters))
    else:
        print("(headless run: the interactive explorer is skipped; the table above lists the clusters)")

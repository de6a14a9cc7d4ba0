"""Stage 02's tables, widget and figures for the notebook (the numbers come from :mod:`.clustering`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .clustering import Cluster

if TYPE_CHECKING:
    import matplotlib.figure


def preference_curve(
    search: Sequence[dict[str, Any]], target: int | None, chosen: float | None
) -> matplotlib.figure.Figure:
    """The preference-to-cluster-count curve the target search explored (one point per AP run).

    Preferences are negative squared distances spread over orders of magnitude, so the x axis shows
    ``-preference`` on a log scale; runs that did not converge are drawn hollow.
    """
    import matplotlib.pyplot as plt

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

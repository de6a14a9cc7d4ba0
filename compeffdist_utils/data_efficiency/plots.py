"""Figures with confidence intervals (the numbers come from :mod:`.significance`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compeffdist_utils.data_efficiency.grid import BASE, _budget_axis

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas as pd


def plot_efficiency_ci(
    table: pd.DataFrame, frame: pd.DataFrame, title: str = "Data efficiency"
) -> matplotlib.figure.Figure:
    """Left: mean score vs budget per selector with its 95% bootstrap interval (shade) and each seed's
    score (small markers: the spread over seeds); the base student dashed with its interval. Right, when
    the grid has held-out samples: the held-out teacher-answer loss with its interval (lower is better).

    ``table`` is ``significance.grid_uncertainty(...).table``; ``frame`` is ``efficiency.results_frame``.
    """
    import matplotlib.pyplot as plt

    trained = table[table["selector"] != BASE]
    if trained.empty:
        raise ValueError("no trained grid points to plot yet")
    has_loss = "heldout_loss" in table and trained["heldout_loss"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_loss else 1, figsize=(12 if has_loss else 7, 4.5), squeeze=False)
    ax_s = axes[0][0]
    seeds = frame[frame["selector"] != BASE]
    for selector, part in trained.groupby("selector", sort=False):
        part = part.sort_values("budget")
        (line,) = ax_s.plot(part["budget"], part["score"], "o-", label=selector)
        color = line.get_color()
        ax_s.fill_between(part["budget"], part["ci_low"], part["ci_high"], color=color, alpha=0.15)
        mine = seeds[seeds["selector"] == selector]
        ax_s.plot(mine["budget"], mine["mean_score"], "x", color=color, alpha=0.6, markersize=5)
        if has_loss:
            ax_l = axes[0][1]
            ok = part["heldout_loss"].notna()
            p = part[ok]
            ax_l.errorbar(
                p["budget"],
                p["heldout_loss"],
                yerr=[p["heldout_loss"] - p["heldout_loss_low"], p["heldout_loss_high"] - p["heldout_loss"]],
                fmt="o-",
                color=color,
                capsize=3,
                label=selector,
            )
    base = table[table["selector"] == BASE]
    bands = {"score": (ax_s, "ci_low", "ci_high")}
    if has_loss:
        bands["heldout_loss"] = (axes[0][1], "heldout_loss_low", "heldout_loss_high")
    for col, (ax, low, high) in bands.items():
        if not base.empty and col in base and base[col].notna().any():
            row = base.iloc[0]
            ax.axhline(row[col], color="grey", linestyle="--", label="student, untrained (95% CI shaded)")
            ax.axhspan(row[low], row[high], color="grey", alpha=0.12)
    for ax in axes[0]:
        _budget_axis(ax, trained["budget"].tolist())
        ax.grid(alpha=0.3)
    ax_s.set_ylabel("mean benchmark score (x100)")
    ax_s.set_title(f"{title}: mean over seeds, 95% CI (shade), seeds (x)")
    ax_s.legend(fontsize=8)
    if has_loss:
        axes[0][1].set_ylabel("loss on held-out teacher answers (nats/token)")
        axes[0][1].set_title("Held-out teacher-answer loss, 95% CI (lower is better)")
    fig.tight_layout()
    return fig

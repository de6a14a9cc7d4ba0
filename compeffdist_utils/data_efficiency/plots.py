"""Stage 08's figures: the data-efficiency curve with its training cost, and the same curve with
confidence intervals (the numbers come from :mod:`.uncertainty`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from compeffdist_utils.data_efficiency.points import BASE
from compeffdist_utils.data_efficiency.results import summarise_grid

COST_LABELS = {
    "train_seconds": "training seconds per point",
    "train_tokens": "tokens trained on per point",
    "processed_tokens": "tokens processed per point (incl. padding)",
}


def _budget_axis(ax: Any, budgets: Sequence[float]) -> None:
    """Budgets on a log axis, ticked at the grid's budgets (as percentages when they are fractions)."""
    ticks = sorted(set(budgets))
    fractions = all(b <= 1 for b in ticks)
    if all(b > 0 for b in ticks):
        ax.set_xscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{b:.0%}" if fractions else f"{b:g}" for b in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("budget (share of the pool)" if fractions else "budget (samples)")


def plot_efficiency(
    frame: pd.DataFrame, title: str = "Data efficiency", cost: str = "train_seconds"
) -> Figure:
    """Left: mean score vs budget per selector, shaded min-max over seeds, the untrained student dashed.
    Right: the training cost of each point (``cost``: one of ``COST_LABELS``) vs budget."""
    if cost not in COST_LABELS:
        raise ValueError(f"cost must be one of {list(COST_LABELS)}; got {cost!r}")
    trained = frame[frame["selector"] != BASE]
    if trained.empty or trained["mean_score"].isna().all():
        raise ValueError("no trained grid points to plot yet")
    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(12, 4.5))
    summary = summarise_grid(trained)
    costs = trained.groupby(["selector", "budget"])[cost].mean()
    for selector, part in summary.groupby("selector", sort=False):
        part = part.sort_values("budget")
        (line,) = ax_s.plot(part["budget"], part["score_mean"], "o-", label=selector)
        if (part["n_seeds"] > 1).any():
            ax_s.fill_between(
                part["budget"], part["score_min"], part["score_max"], color=line.get_color(), alpha=0.15
            )
        ax_c.plot(part["budget"], costs.loc[selector].reindex(part["budget"]), "o-", color=line.get_color())
    base = frame[frame["selector"] == BASE]["mean_score"].dropna()
    if not base.empty:
        ax_s.axhline(float(base.mean()), color="grey", linestyle="--", label="student, untrained")
    for ax in (ax_s, ax_c):
        _budget_axis(ax, trained["budget"].tolist())
        ax.grid(alpha=0.3)
    ax_s.set_ylabel("mean benchmark score (x100)")
    ax_s.set_title(f"{title}: score vs budget (shade: min-max over seeds)")
    ax_s.legend(fontsize=8)
    ax_c.set_ylabel(COST_LABELS[cost])
    ax_c.set_title("Training cost per point")
    fig.tight_layout()
    return fig


def plot_efficiency_ci(table: pd.DataFrame, frame: pd.DataFrame, title: str = "Data efficiency") -> Figure:
    """Left: mean score vs budget per selector with its 95% bootstrap interval (shade) and each seed's
    score (small markers: the spread over seeds); the base student dashed with its interval. Right, when
    the grid has held-out samples: the held-out teacher-answer loss with its interval (lower is better).

    ``table`` is :func:`.uncertainty.grid_uncertainty`'s ``table``; ``frame`` is :func:`.results.results_frame`'s.
    """

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

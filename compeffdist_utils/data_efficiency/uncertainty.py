"""Confidence intervals for stage 08's grid: each point's scores with CIs (seeds pooled) and the comparisons
the paper's claims rest on (rank_hard against random at the same budget, against all the data, and against
the untrained student), paired on the same test examples; read from the points' prediction files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.data_efficiency.points import BASE, grid_params
from compeffdist_utils.data_efficiency.results import read_results
from compeffdist_utils.evaluation.heldout import agreement_stats, heldout_loss_stats, heldout_path
from compeffdist_utils.evaluation.significance import (
    difference_table,
    model_roles,
    prediction_runs,
    prediction_stats,
)
from compeffdist_utils.sentibench import load_for_run
from compeffdist_utils.stats import uncertainty as bootstrap

if TYPE_CHECKING:
    from compeffdist_utils.core.config import Params
    from compeffdist_utils.sentibench import BenchDataset


def point_eval_dir(run_dir: str | Path, row: dict[str, Any]) -> tuple[Path, str]:
    """(eval folder, model name) holding a grid row's predictions (a reused point: its twin's)."""
    slug = row.get("reused_from") or row["point"]
    return Path(run_dir) / "efficiency" / "points" / slug / "eval", slug


def grid_stats(
    run_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    datasets: Sequence[BenchDataset],
    seeds: Sequence[int],
) -> dict[tuple[str, float], list[bootstrap.Stats]]:
    """Per (selector, budget): one :class:`~compeffdist_utils.stats.uncertainty.Stats` per dataset, the grid seeds' runs stacked (each grid
    seed x each demo seed is one run), so the interval covers the mean over seeds as plotted."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("skipped") and r.get("scores"):
            groups.setdefault((r["selector"], float(r["budget"])), []).append(r)
    out: dict[tuple[str, float], list[bootstrap.Stats]] = {}
    for key, members in groups.items():
        folders = [point_eval_dir(run_dir, r) for r in sorted(members, key=lambda x: x["seed"])]
        out[key] = [
            prediction_stats(
                ds,
                [run for folder, model in folders for run in prediction_runs(folder, model, ds.name, seeds)],
            )
            for ds in datasets
        ]
    return out


def grid_table(stats: dict[tuple[str, float], list[bootstrap.Stats]]) -> pd.DataFrame:
    """selector, budget, score (mean over datasets and seeds), ci_low, ci_high, n."""
    rows = [
        {"selector": s, "budget": b} | bootstrap.as_row(bootstrap.estimate(parts))
        for (s, b), parts in sorted(stats.items())
    ]
    return pd.DataFrame(rows)


def grid_differences(
    stats: dict[tuple[str, float], list[bootstrap.Stats]],
    selector: str,
    versus: str,
    budgets: Sequence[float],
) -> list[bootstrap.Difference]:
    """``selector`` minus ``versus`` at each budget both have (paired over test examples, seeds pooled)."""
    out = []
    for b in budgets:
        a, c = stats.get((selector, float(b))), stats.get((versus, float(b)))
        if a and c:
            out.append(bootstrap.compare(a, c, (selector, versus), f"mean score at budget {b:g}"))
    return out


def full_data_key(stats: dict[tuple[str, float], list[bootstrap.Stats]]) -> tuple[str, float] | None:
    """The grid's 100% point: rank_hard's at budget 1.0, else any selector's (at 1.0 every selector keeps
    the whole pool, so they are the same training data)."""
    if ("rank_hard", 1.0) in stats:
        return ("rank_hard", 1.0)
    return next((k for k in sorted(stats) if k[1] == 1.0 and k[0] != BASE), None)


def claim_differences(
    stats: dict[tuple[str, float], list[bootstrap.Stats]], compare_budgets: Sequence[float]
) -> list[bootstrap.Difference]:
    """The paper's data-efficiency claim on the mean score: rank_hard at each compared budget against
    random there, against all the data (it should come close) and against the untrained student; and all
    the data against the untrained student."""
    diffs = grid_differences(stats, "rank_hard", "random", compare_budgets)
    full, base = full_data_key(stats), stats.get((BASE, 0.0))
    hard = [
        (f"rank_hard @ {b:g}", stats[("rank_hard", float(b))])
        for b in compare_budgets
        if ("rank_hard", float(b)) in stats
    ]
    if full is not None:
        diffs += [
            bootstrap.compare(st, stats[full], (name, "all data (@ 1)"), "mean score") for name, st in hard
        ]
        hard.append(("all data (@ 1)", stats[full]))
    if base is not None:
        diffs += [bootstrap.compare(st, base, (name, "base student"), "mean score") for name, st in hard]
    return diffs


@dataclass
class GridUncertainty:
    """What notebook 08 shows: per (selector, budget) the score, held-out loss and teacher agreement with
    95% intervals (seeds pooled), the base student's, and the paired selector comparisons."""

    table: pd.DataFrame  # selector, budget, score, ci_low, ci_high, n (+ heldout_loss*, agreement*)
    differences: pd.DataFrame
    sentences: list[str]
    notes: list[str]


def _stacked(parts: Sequence[bootstrap.Stats]) -> bootstrap.Stats:
    first = parts[0]
    if any(p.uids != first.uids for p in parts):
        raise ValueError(f"{first.name}: the seeds were not scored on the same samples")
    values = np.concatenate([p.values for p in parts], axis=0)
    return bootstrap.Stats(first.name, first.kind, first.uids, values, first.scale, first.higher_is_better)


def _heldout_and_agreement(
    run_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    stats: dict[tuple[str, float], list[bootstrap.Stats]],
    datasets: Sequence[BenchDataset],
    seeds: Sequence[int],
    teacher_eval: tuple[str | Path, str] | None,
) -> tuple[
    dict[tuple[str, float], bootstrap.Stats], dict[tuple[str, float], list[bootstrap.Stats]], list[str]
]:
    """Per (selector, budget) of ``stats``: the held-out loss (seeds stacked) when every seed wrote one,
    agreement with the teacher's predictions when ``teacher_eval`` is given, and notes on what failed."""
    notes: list[str] = []
    held: dict[tuple[str, float], bootstrap.Stats] = {}
    agree: dict[tuple[str, float], list[bootstrap.Stats]] = {}
    for key in stats:
        members = sorted(
            (r for r in rows if (r["selector"], float(r["budget"])) == key), key=lambda r: r["seed"]
        )
        folders = [point_eval_dir(run_dir, r) for r in members]
        paths = [heldout_path(f, m) for f, m in folders]
        if all(p.exists() for p in paths):
            held[key] = _stacked([heldout_loss_stats(read_jsonl(p)) for p in paths])
        if teacher_eval is not None:
            t_dir, t_name = teacher_eval
            try:
                agree[key] = [
                    agreement_stats(
                        ds.name,
                        [run for f, m in folders for run in prediction_runs(f, m, ds.name, seeds)],
                        [
                            run
                            for _ in folders
                            for run in prediction_runs(Path(t_dir), t_name, ds.name, seeds)
                        ],
                    )
                    for ds in datasets
                ]
            except (ValueError, OSError) as err:
                notes.append(f"no teacher agreement for {key}: {err}")
    return held, agree, notes


def grid_uncertainty(
    run_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    datasets: Sequence[BenchDataset],
    seeds: Sequence[int],
    compare_budgets: Sequence[float] = (0.1, 0.25),
    teacher_eval: tuple[str | Path, str] | None = None,
) -> GridUncertainty:
    """Intervals for the grid ``rows`` (the current setup's), :func:`claim_differences` at ``compare_budgets``,
    every trained point vs the base student on the held-out loss, and agreement with the teacher when
    ``teacher_eval`` = (stage 07's eval folder, teacher name) holds predictions on the same prompts."""

    stats = grid_stats(run_dir, rows, datasets, seeds)
    held, agree, notes = _heldout_and_agreement(run_dir, rows, stats, datasets, seeds, teacher_eval)
    table = grid_table(stats).set_index(["selector", "budget"])
    for col, source in (("heldout_loss", held), ("teacher_agreement", agree)):
        if source:
            table[[col, f"{col}_low", f"{col}_high"]] = float("nan")
        for key, st in source.items():
            est = bootstrap.estimate(st)
            table.loc[key, [col, f"{col}_low", f"{col}_high"]] = [est.score, est.low, est.high]
    diffs = claim_differences(stats, compare_budgets)
    base_key = (BASE, 0.0)
    if base_key in held:
        diffs += [
            bootstrap.compare(
                st, held[base_key], (f"{k[0]} @ {k[1]:g}", "base student"), "held-out teacher-answer loss"
            )
            for k, st in held.items()
            if k != base_key
        ]
    sentences = (
        bootstrap.describe_differences(diffs)
        if diffs
        else ["No rank_hard point at the compared budgets to compare."]
    )
    n_min = min((len(s.uids) for parts in stats.values() for s in parts), default=0)
    if (warning := bootstrap.smoke_warning(n_min)) is not None:
        sentences.insert(0, warning)
    return GridUncertainty(table.reset_index(), difference_table(diffs), sentences, notes)


def grid_uncertainty_for_run(
    params: Params, run_dir: str | Path, setup: str, root: Path | None = None
) -> GridUncertainty:
    """:func:`grid_uncertainty` for stage 08 of a run: its current grid rows, the grid's benchmark, and
    stage 07's teacher predictions for the agreement (when the teacher was evaluated on the same prompts)."""

    ev = grid_params(params).evaluation
    bench = load_for_run(ev.sentibench_dir, ev.datasets, ev.shots, Path(run_dir), root)
    rows = [r for r in read_results(run_dir) if r.get("setup") == setup]
    _, teacher = model_roles(params.evaluation.models)
    teacher_eval = (Path(run_dir) / "eval", teacher) if teacher else None
    return grid_uncertainty(run_dir, rows, bench.datasets, ev.seeds, teacher_eval=teacher_eval)

"""The study's two tables for readers, ``results.csv`` and ``efficiency.csv``, read from a run folder.

Stage 07's rows are its own saved table of scores with 95% intervals (``tables/07_evaluation_scores_ci.csv``),
renamed by role: the run's teacher, untrained student and distilled student become ``teacher``,
``base_student`` and ``distilled_student``. Stage 08's rows are computed from the grid points' prediction
files with the very functions notebook 08 uses (:mod:`compeffdist_utils.data_efficiency.uncertainty`), so a
grid that is still running is published as far as it got and nothing is scored or made up here.

Seeds: a grid point ``selector@budget`` in ``results.csv`` pools its grid seeds (each seed x demo seed is
one run of the bootstrap), as notebook 08's figure and its significance tests do; ``efficiency.csv`` has
one row per seed and the pooled row (``seed`` = ``pooled``), which is the one ``results.csv`` and the
figure show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from compeffdist_utils.core.io import DataFileError
from compeffdist_utils.data_efficiency.points import GridPoint, grid_params, grid_points
from compeffdist_utils.data_efficiency.results import RESULTS_FILE, read_results, results_frame, row_key
from compeffdist_utils.data_efficiency.uncertainty import GridUncertainty, grid_stats, grid_uncertainty
from compeffdist_utils.evaluation.significance import OVERALL
from compeffdist_utils.export.run_files import STAGE_OF, ExportError, RunFolder
from compeffdist_utils.sentibench import Benchmark, load_for_run, resolve_sentibench_dir
from compeffdist_utils.stats import uncertainty as bootstrap

RESULTS_COLUMNS = ["model", "dataset", "metric", "n_examples", "score", "ci_low", "ci_high"]
EFFICIENCY_COLUMNS = ["selector", "budget", "seed", "score", "ci_low", "ci_high", "heldout_loss"]
ROLE_NAMES = {"teacher": "teacher", "student": "base_student", "distilled": "distilled_student"}
OVERALL_METRIC = "mean"  # an overall row is the plain mean of the datasets' scores
POOLED = "pooled"


def reader_names(models: dict[str, str]) -> dict[str, str]:
    """Stage 07's model name -> its name for readers: by role for the run's own three, else unchanged."""
    names = {name: ROLE_NAMES.get(spec, name) for name, spec in models.items()}
    clash = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if clash:
        raise ExportError(
            f"evaluation.models {models} gives two models the reader name(s) {clash}; rename the extra one"
        )
    return names


def point_name(selector: str, budget: float) -> str:
    """A grid point's model name in ``results.csv``: ``rank_hard@0.1``, ``base@0``."""
    return f"{selector}@{float(budget):g}"


def _read_csv(run: RunFolder, rel: str, columns: list[str]) -> pd.DataFrame:
    path = run.need(rel)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ExportError(f"{path} does not parse: {err}") from None
    if lacking := [c for c in columns if c not in frame.columns]:
        raise ExportError(f"{path} lacks the column(s) {lacking}; rerun stage {STAGE_OF[rel]}")
    return frame


def _row(model: str, dataset: str, metric: str, n: Any, score: Any, low: Any, high: Any) -> dict[str, Any]:
    return dict(zip(RESULTS_COLUMNS, (model, dataset, metric, int(n), score, low, high), strict=True))


def stage07_results(run: RunFolder) -> pd.DataFrame:
    """``results.csv``'s rows of stage 07: every model x dataset and its overall, as the stage saved them."""
    scores = _read_csv(run, "tables/07_evaluation_scores_ci.csv", ["model", "dataset", "score", "ci_low", "ci_high", "n"])  # fmt: skip
    metrics = _read_csv(run, "eval/results.csv", ["dataset", "metric"])
    metric = dict(zip(metrics["dataset"], metrics["metric"], strict=True))
    names = reader_names(run.params.evaluation.models)
    rows = []
    for model, part in scores.groupby("model", sort=False):
        name = names.get(str(model), str(model))
        per = part[part["dataset"] != OVERALL]
        rows += [
            _row(name, r.dataset, metric.get(r.dataset, ""), r.n, r.score, r.ci_low, r.ci_high)
            for r in per.itertuples()
        ]
        overall = part[part["dataset"] == OVERALL]
        if overall.empty and len(per) != 1:
            raise ExportError(
                f"tables/07_evaluation_scores_ci.csv has no overall row of {model!r}; rerun stage 07"
            )
        o = overall.iloc[0] if not overall.empty else per.iloc[0]  # one dataset: its mean is itself
        rows.append(_row(name, OVERALL, OVERALL_METRIC, o["n"], o["score"], o["ci_low"], o["ci_high"]))
    return pd.DataFrame(rows, columns=RESULTS_COLUMNS)


@dataclass
class Grid:
    """Stage 08 as far as it got: the lines of its latest setup, the preset's points, its benchmark."""

    rows: list[dict[str, Any]]  # the latest setup's lines, points that selected nothing included
    expected: list[GridPoint]  # the points params.efficiency asks for
    n_stale: int  # lines of earlier setups, left out
    benchmark: Benchmark | None  # None when no point was scored
    seeds: list[int]  # the grid's evaluation demo seeds

    @property
    def scored(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r.get("skipped") and r.get("scores")]

    @property
    def missing(self) -> list[GridPoint]:
        done = {row_key(r) for r in self.rows}
        return [p for p in self.expected if p.key not in done]

    @property
    def partial(self) -> bool:
        return bool(self.missing)


def read_grid(run: RunFolder, root: Path | None = None, sentibench_dir: str | None = None) -> Grid:
    """The grid of ``run``; the lines of the setup of its latest line count (as the resumed grid's would),
    and its benchmark is loaded as the grid loaded it (``sentibench_dir`` overrides where SentiBench is)."""
    expected = grid_points(run.params)
    ev = grid_params(run.params).evaluation
    try:
        lines = read_results(run.path)
    except DataFileError as err:
        raise ExportError(str(err)) from None
    setup = lines[-1].get("setup") if lines else None
    rows = [r for r in lines if r.get("setup") == setup]
    grid = Grid(rows, expected, len(lines) - len(rows), None, list(ev.seeds))
    if grid.scored:
        folder = sentibench_dir or ev.sentibench_dir
        grid.benchmark = load_for_run(folder, ev.datasets, ev.shots, run.path, root)
        if grid.benchmark.fallback and any(r.get("benchmark") == "sentibench" for r in grid.scored):
            where = resolve_sentibench_dir(folder, root) if folder else "evaluation.sentibench_dir (unset)"
            raise ExportError(
                f"{run.path / RESULTS_FILE} was scored on SentiBench, which is not at {where}; "
                "pass --sentibench-dir DIR (SentiBench's datasets/ folder)"
            )
    return grid


@dataclass
class GridTables:
    """Stage 08's share of the study folder: its ``results.csv`` rows, ``efficiency.csv``, and notebook
    08's interval table and comparisons (for the figure and the README)."""

    results: pd.DataFrame
    efficiency: pd.DataFrame
    uncertainty: GridUncertainty | None
    frame: pd.DataFrame  # the results file's lines as notebook 08 plots them


def _per_seed_rows(grid: Grid, run_dir: Path) -> list[dict[str, Any]]:
    """One efficiency row per grid point and seed: that seed's score with its interval (over test examples
    and demo seeds) and the held-out loss its line recorded."""
    datasets = grid.benchmark.datasets if grid.benchmark else []
    out = []
    for seed in sorted({int(r["seed"]) for r in grid.scored}):
        rows = [r for r in grid.scored if int(r["seed"]) == seed]
        loss = {(r["selector"], float(r["budget"])): r.get("heldout_loss") for r in rows}
        for key, parts in grid_stats(run_dir, rows, datasets, grid.seeds).items():
            est = bootstrap.estimate(parts)
            out.append(dict(zip(EFFICIENCY_COLUMNS, (*key, str(seed), est.score, est.low, est.high, loss[key]), strict=True)))  # fmt: skip
    return out


def grid_tables(run: RunFolder, grid: Grid) -> GridTables:
    """Every scored grid point per dataset and overall (seeds pooled), and per seed and pooled."""
    if not grid.scored or grid.benchmark is None:
        empty = pd.DataFrame(columns=EFFICIENCY_COLUMNS)
        return GridTables(pd.DataFrame(columns=RESULTS_COLUMNS), empty, None, pd.DataFrame())
    datasets = grid.benchmark.datasets
    metric = {d.name: d.spec.metric for d in datasets}
    results = []
    for (selector, budget), parts in sorted(grid_stats(run.path, grid.scored, datasets, grid.seeds).items()):
        name = point_name(selector, budget)
        for st in parts:
            est = bootstrap.estimate(st)
            results.append(_row(name, st.name, metric[st.name], est.n, est.score, est.low, est.high))
        est = bootstrap.estimate(parts)
        results.append(_row(name, OVERALL, OVERALL_METRIC, est.n, est.score, est.low, est.high))
    unc = grid_uncertainty(run.path, grid.scored, datasets, grid.seeds)
    pooled = unc.table.assign(seed=POOLED)
    if "heldout_loss" not in pooled:
        pooled["heldout_loss"] = float("nan")
    efficiency = pd.concat([pd.DataFrame(_per_seed_rows(grid, run.path)), pooled[EFFICIENCY_COLUMNS]])
    efficiency = efficiency.sort_values(["selector", "budget"], kind="stable").reset_index(drop=True)
    return GridTables(
        pd.DataFrame(results, columns=RESULTS_COLUMNS), efficiency, unc, results_frame(grid.rows)
    )

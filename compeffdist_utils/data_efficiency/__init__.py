"""Stage 08 (notebook ``08_data_efficiency``): the grid of selectors x budgets x seeds, each point trained
and evaluated (the base point reusing stage 07's predictions), with CIs; the data-efficiency curve.
"""

from compeffdist_utils.data_efficiency.grid import GridReport, run_grid
from compeffdist_utils.data_efficiency.plots import plot_efficiency, plot_efficiency_ci
from compeffdist_utils.data_efficiency.points import BASE, GridPoint, grid_params, grid_points, point_params
from compeffdist_utils.data_efficiency.report import (
    FALLBACK_WARNING,
    benchmarks,
    grid_layout,
    per_dataset_scores,
    results_table,
    run_notes,
    run_table,
    score_columns,
    stage_notes,
)
from compeffdist_utils.data_efficiency.results import (
    OUTCOME_KEYS,
    RESULTS_FILE,
    read_results,
    results_frame,
    row_key,
    summarise_grid,
)
from compeffdist_utils.data_efficiency.reuse import reuse_evaluation, reused_base_outcome
from compeffdist_utils.data_efficiency.uncertainty import grid_uncertainty, grid_uncertainty_for_run

__all__ = [
    "BASE",
    "FALLBACK_WARNING",
    "GridPoint",
    "GridReport",
    "OUTCOME_KEYS",
    "RESULTS_FILE",
    "benchmarks",
    "grid_layout",
    "grid_params",
    "grid_points",
    "grid_uncertainty",
    "grid_uncertainty_for_run",
    "per_dataset_scores",
    "plot_efficiency",
    "plot_efficiency_ci",
    "point_params",
    "read_results",
    "results_frame",
    "results_table",
    "reuse_evaluation",
    "reused_base_outcome",
    "row_key",
    "run_grid",
    "run_notes",
    "run_table",
    "score_columns",
    "stage_notes",
    "summarise_grid",
]

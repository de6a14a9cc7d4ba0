"""Stage 08 (notebook ``08_data_efficiency``): the grid of selectors x budgets x seeds, each point trained
and evaluated (the base point reusing stage 07's predictions), with CIs; the data-efficiency curve.
"""

from compeffdist_utils.data_efficiency.grid import run_grid
from compeffdist_utils.data_efficiency.plots import plot_efficiency, plot_efficiency_ci
from compeffdist_utils.data_efficiency.points import BASE, grid_params, grid_points
from compeffdist_utils.data_efficiency.results import read_results, results_frame, summarise_grid
from compeffdist_utils.data_efficiency.uncertainty import grid_uncertainty_for_run

__all__ = [
    "BASE",
    "grid_params",
    "grid_points",
    "grid_uncertainty_for_run",
    "plot_efficiency",
    "plot_efficiency_ci",
    "read_results",
    "results_frame",
    "run_grid",
    "summarise_grid",
]

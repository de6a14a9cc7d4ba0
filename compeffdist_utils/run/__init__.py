"""Running a study: the runner (skips, papermill, manifest, budget stops, report), the run-folder lock,
the results-first HTML report and its screenshot in headless Chromium.
"""

from compeffdist_utils.run.browser import BrowserError, check_page, find_chromium, screenshot_report
from compeffdist_utils.run.report import build_report, cost_table
from compeffdist_utils.run.runlock import run_lock
from compeffdist_utils.run.runner import BudgetStop, RunError, Runner, select_stages

__all__ = [
    "BrowserError",
    "BudgetStop",
    "RunError",
    "Runner",
    "build_report",
    "check_page",
    "cost_table",
    "find_chromium",
    "run_lock",
    "screenshot_report",
    "select_stages",
]

"""Running a study: the runner (skips, papermill, manifest, budget stops, report), the run-folder lock,
the results-first HTML report and its screenshot in headless Chromium.
"""

from compeffdist_utils.run.runner import RunError, Runner, select_stages

__all__ = [
    "RunError",
    "Runner",
    "select_stages",
]

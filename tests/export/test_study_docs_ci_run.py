"""`compeffdist publish-study` on the session's CI pipeline run (`ci_run`, not run again here): the numbers are
the ones notebooks 07 and 08 saved (the grid's recomputed intervals equal notebook 08's table), the report
is the run's own and self-contained, and the README says the grid is complete."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from compeffdist_utils.export.study_tables import EFFICIENCY_COLUMNS, RESULTS_COLUMNS
from tests.ci_run import run_cli


def check_published(run_dir: Path, out: Path, printed: str) -> None:
    """What a study folder published from a finished run must hold (also usable on any finished run)."""
    results = pd.read_csv(out / "results.csv")
    efficiency = pd.read_csv(out / "efficiency.csv", dtype={"seed": str})
    assert list(results.columns) == RESULTS_COLUMNS and list(efficiency.columns) == EFFICIENCY_COLUMNS
    indexed = results.set_index(["model", "dataset"])
    own07 = pd.read_csv(run_dir / "tables/07_evaluation_scores_ci.csv")
    for r in own07.itertuples():
        assert tuple(indexed.loc[(r.model, r.dataset), ["score", "ci_low", "ci_high"]]) == pytest.approx(
            (r.score, r.ci_low, r.ci_high)
        )
    own08 = pd.read_csv(run_dir / "tables/08_data_efficiency_summary_ci.csv")
    pooled = efficiency[efficiency["seed"] == "pooled"].set_index(["selector", "budget"])
    assert len(pooled) == len(own08)
    for r in own08.itertuples():  # recomputed from the points' predictions: notebook 08's very intervals
        name = f"{r.selector}@{r.budget:g}"
        assert tuple(indexed.loc[(name, "overall"), ["score", "ci_low", "ci_high"]]) == pytest.approx(
            (r.score, r.ci_low, r.ci_high)
        )
        assert tuple(pooled.loc[(r.selector, r.budget), ["score", "ci_low", "ci_high"]]) == pytest.approx(
            (r.score, r.ci_low, r.ci_high)
        )
    assert all(results.groupby("model")["dataset"].apply(lambda d: (d == "overall").sum() == 1))
    assert (results["ci_low"] <= results["ci_high"]).all() and (
        efficiency["ci_low"] <= efficiency["ci_high"]
    ).all()
    readme = (out / "README.md").read_text()
    assert "Complete grid" in readme and "PARTIAL" not in readme and "the run's own report.html" in printed
    assert (out / "report.html").read_bytes() == (run_dir / "report.html").read_bytes()
    for png in ("attribute_map.png", "data_efficiency.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG", png


@pytest.mark.slow
@pytest.mark.pipeline
def test_ci_run_publishes_the_numbers_its_notebooks_saved(ci_run, tmp_path) -> None:
    run_dir, _, _ = ci_run
    t0 = time.time()
    proc = run_cli(["publish-study", str(run_dir), "--out", str(tmp_path / "study")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.time() - t0 < 120, f"publish-study took {time.time() - t0:.0f} s"
    check_published(run_dir, tmp_path / "study", proc.stdout)

"""`compeffdist publish-study` on a small synthetic study run folder: the two tables have exactly their
columns, an overall row per model, grid points named `selector@budget` and numbers that are the run's own;
every interval holds its score; a partial grid is labelled partial with its missing points; a run without
stage 07 is refused in one line naming the file and the stage; a run without stage 08 still publishes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.export import ExportError, publish_study
from compeffdist_utils.export.study_docs import MAX_REPORT_BYTES, check_self_contained
from compeffdist_utils.export.study_tables import EFFICIENCY_COLUMNS, RESULTS_COLUMNS
from tests.export.study_run import make_study_run

ROOT = Path(__file__).resolve().parents[2]
GRID_MODELS = {"base@0", "random@0.1", "random@1", "rank_hard@0.1", "rank_hard@1"}


@pytest.fixture(scope="module")
def complete(ci_params: Params, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("study")
    run = make_study_run(root, ci_params)
    publish_study(run, root / "docs" / "study")
    return run, root / "docs" / "study"


def _csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype={"seed": str})


def test_tables_have_their_columns_and_an_overall_row_per_model(complete) -> None:
    _, out = complete
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "attribute_map.png", "data_efficiency.png", "efficiency.csv", "report.html", "results.csv",
    ]  # fmt: skip
    results, efficiency = _csv(out, "results.csv"), _csv(out, "efficiency.csv")
    assert list(results.columns) == RESULTS_COLUMNS and list(efficiency.columns) == EFFICIENCY_COLUMNS
    assert set(results["model"]) == {"teacher", "base_student", "distilled_student"} | GRID_MODELS
    datasets = {"fallback/imdb", "fallback/tweets"}
    for model, rows in results.groupby("model"):
        assert sorted(rows["dataset"]) == sorted([*datasets, "overall"]), model
        overall = rows[rows["dataset"] == "overall"].iloc[0]
        assert overall["metric"] == "mean" and overall["n_examples"] == 60
        assert overall["score"] == pytest.approx(rows[rows["dataset"] != "overall"]["score"].mean(), abs=1e-3)
    assert set(results[results["dataset"] != "overall"]["metric"]) == {"macro_f1"}


def test_every_interval_holds_its_score(complete) -> None:
    _, out = complete
    for name in ("results.csv", "efficiency.csv"):
        table = _csv(out, name)
        assert table[["score", "ci_low", "ci_high"]].notna().all().all(), name
        assert ((table["ci_low"] <= table["score"]) & (table["score"] <= table["ci_high"])).all(), name
        assert (table["ci_low"] < table["ci_high"]).any(), name  # real intervals, not the score thrice


def test_stage07_rows_are_the_runs_own_table(complete) -> None:
    run, out = complete
    results = _csv(out, "results.csv").set_index(["model", "dataset"])
    own = pd.read_csv(run / "tables/07_evaluation_scores_ci.csv").set_index(["model", "dataset"])
    for key, row in own.iterrows():
        assert tuple(results.loc[key, ["score", "ci_low", "ci_high", "n_examples"]]) == pytest.approx(
            (row["score"], row["ci_low"], row["ci_high"], row["n"])
        )
    assert results.loc[("teacher", "overall"), "score"] > results.loc[("base_student", "overall"), "score"]


def test_grid_points_are_pooled_over_seeds_and_match_efficiency(complete) -> None:
    run, out = complete
    results = _csv(out, "results.csv").set_index(["model", "dataset"])
    eff = _csv(out, "efficiency.csv")
    lines = [r for r in read_jsonl(run / "efficiency/results.jsonl") if r["setup"] == "s2"]
    for r in lines:  # each seed's row is that point's recorded score and held-out loss
        row = eff[
            (eff["selector"] == r["selector"])
            & (eff["budget"] == r["budget"])
            & (eff["seed"] == str(r["seed"]))
        ]
        assert len(row) == 1 and row["score"].iloc[0] == pytest.approx(r["mean_score"], abs=1e-3)
        assert row["heldout_loss"].iloc[0] == pytest.approx(r["heldout_loss"])
    pooled = eff[eff["seed"] == "pooled"]
    assert len(pooled) == len(GRID_MODELS) and set(eff["seed"]) == {"0", "1", "2", "pooled"}
    for p in pooled.itertuples():
        name = f"{p.selector}@{p.budget:g}"
        assert tuple(results.loc[(name, "overall"), ["score", "ci_low", "ci_high"]]) == pytest.approx(
            (p.score, p.ci_low, p.ci_high)
        )
        seeds = eff[(eff["selector"] == p.selector) & (eff["budget"] == p.budget) & (eff["seed"] != "pooled")]
        assert p.score == pytest.approx(seeds["score"].mean(), abs=1e-3)  # the mean over seeds, not one seed
    assert (
        results.loc[("rank_hard@0.1", "overall"), "score"] > results.loc[("random@0.1", "overall"), "score"]
    )


def test_a_complete_grid_says_so_and_names_the_run(complete) -> None:
    _, out = complete
    readme = (out / "README.md").read_text()
    assert "Complete grid: all 9 points" in readme and "PARTIAL" not in readme
    for must in ("params/study.yaml", "2026-12-05T05:00:00", "x86_64, 2 CPUs", "`rank_hard@0.1` (seed 1, 2)",
                 "1 line(s) of earlier settings", "FALLBACK", "SMOKE RUN: 30 test examples"):  # fmt: skip
        assert must in readme, must
    assert (out / "report.html").read_text() == (complete[0] / "report.html").read_text()
    assert (out / "data_efficiency.png").read_bytes()[:4] == b"\x89PNG"


def test_a_partial_grid_is_labelled_partial_with_its_missing_points(ci_params: Params, tmp_path) -> None:
    run = make_study_run(tmp_path, ci_params, leave_out={("rank_hard", 0.1, 2), ("rank_hard", 1.0, 2)})
    docs = publish_study(run, tmp_path / "study")
    readme = (tmp_path / "study" / "README.md").read_text()
    assert docs.partial and "(PARTIAL grid)" in readme.splitlines()[1]
    assert "**PARTIAL grid**: 7 of 9 points" in readme
    assert "Missing (not run yet): `rank_hard@0.1` (seed 2), `rank_hard@1` (seed 2)" in readme
    eff = _csv(tmp_path / "study", "efficiency.csv")
    assert eff[(eff["selector"] == "rank_hard") & (eff["budget"] == 0.1)]["seed"].tolist() == ["1", "pooled"]
    assert "drawn now" in docs.sources["data_efficiency.png"]  # stage 08 did not finish: figure of these rows


def test_without_stage_08_the_tables_are_published_and_efficiency_is_a_header(ci_params, tmp_path) -> None:
    run = make_study_run(tmp_path, ci_params, grid=False)
    docs = publish_study(run, tmp_path / "study")
    assert (tmp_path / "study" / "efficiency.csv").read_text().strip() == ",".join(EFFICIENCY_COLUMNS)
    assert set(_csv(tmp_path / "study", "results.csv")["model"]) == {
        "teacher",
        "base_student",
        "distilled_student",
    }
    assert "data_efficiency.png" not in docs.sources and docs.partial
    assert "**No grid**: stage 08 has not finished a point" in (tmp_path / "study" / "README.md").read_text()


def test_without_stage_07_the_command_names_the_file_and_the_stage(ci_params, tmp_path) -> None:
    run = make_study_run(tmp_path, ci_params)
    (run / "tables/07_evaluation_scores_ci.csv").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "compeffdist_utils.cli", "publish-study", str(run), "--out", str(tmp_path / "s")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "tables/07_evaluation_scores_ci.csv" in proc.stderr and "07_evaluation" in proc.stderr
    assert "--stages 07" in proc.stderr and not (tmp_path / "s").exists()


def test_a_stale_report_is_rendered_again_and_out_is_replaced_only_if_ours(ci_params, tmp_path) -> None:
    run = make_study_run(tmp_path, ci_params)
    later = time.time() + 5
    os.utime(run / "efficiency/results.jsonl", (later, later))  # a point finished after the report
    docs = publish_study(run, tmp_path / "study")
    assert "rendered now" in docs.sources["report.html"]
    assert "CompEffDist run study" in (tmp_path / "study" / "report.html").read_text()
    publish_study(run, tmp_path / "study")  # our own folder: replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.md").write_text("not generated")
    with pytest.raises(ExportError, match="not written by publish-study"):
        publish_study(run, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.md").exists()


def test_a_report_that_is_not_self_contained_or_too_big_is_refused() -> None:
    check_self_contained('<a href="#x">x</a><img src="data:image/png;base64,AA"><a href="https://x.org">')
    with pytest.raises(ExportError, match="not self-contained.*figures/a.png"):
        check_self_contained('<img src="figures/a.png">')
    with pytest.raises(ExportError, match="not self-contained"):
        check_self_contained("<script src='https://cdn.example/x.js'></script>")
    with pytest.raises(ExportError, match="over the 10 MB"):
        check_self_contained("x" * (MAX_REPORT_BYTES + 1))

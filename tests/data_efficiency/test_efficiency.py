"""Stage 08 bookkeeping: resume skips finished points, extension runs only new ones, setups are kept apart."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from compeffdist_utils.core.config import Params, params_from_dict
from compeffdist_utils.data_efficiency.grid import run_grid
from compeffdist_utils.data_efficiency.plots import plot_efficiency
from compeffdist_utils.data_efficiency.points import BASE, GridPoint
from compeffdist_utils.data_efficiency.results import read_results, results_frame, summarise_grid

POOL = [
    {
        "sample_id": f"s{i}",
        "cluster_id": i % 2,
        "task_name": "polarity",
        "instruction": f"Classify the sentiment.\n\nInput: text number {i}",
        "output": "positive" if i % 3 else "negative",
    }
    for i in range(20)
]
_rng = random.Random(0)
SCORES = [
    {
        "sample_id": r["sample_id"],
        "rank": _rng.random(),
        "ifd": _rng.random(),
        "ppl": 1 + _rng.random(),
        "length": i,
    }
    for i, r in enumerate(POOL)
]


def _params(efficiency: dict[str, Any], **sections: Any) -> Params:
    data: dict[str, Any] = {
        "efficiency": {"selectors": ["random", "rank_hard"], "budgets": [0.5], "seeds": [1], "max_steps": 3}
    }
    data["efficiency"].update(efficiency)
    data.update(sections)
    return params_from_dict(data)


class FakeRunner:
    """Stands in for train-and-evaluate; checks what each point is given and records the calls."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls: list[str] = []
        self.fail_on_call = fail_on_call

    def __call__(self, point: GridPoint, selected: list[dict[str, Any]], params: Params, point_dir: Path):
        if self.fail_on_call is not None and len(self.calls) + 1 == self.fail_on_call:
            raise RuntimeError("simulated crash")
        self.calls.append(point.slug)
        if point.selector != BASE:
            assert params.selection.budget == point.budget and params.selection.seed == point.seed
            assert params.training.seed == point.seed
            assert params.training.max_steps == 3 and params.training.eval_fraction == 0.0
        return {
            "n_train": len(selected),
            "train_seconds": 0.5 * len(selected),
            "train_tokens": 10 * len(selected),
            "scores": {"sc/sst2": 50.0 + len(selected), "sc/imdb": 40.0},
            "benchmark": "fake",
        }


def test_grid_resumes_extends_and_reuses(tmp_path: Path) -> None:
    run = FakeRunner()
    report = run_grid(POOL, SCORES, _params({}), tmp_path, run_point=run, progress=False)
    assert run.calls == ["base__b0__s0", "random__b0.5__s1", "rank_hard__b0.5__s1"]
    assert (report.n_run, report.n_done_before, report.n_points) == (3, 0, 3)
    rows = read_results(tmp_path)
    assert [r["n_selected"] for r in rows] == [0, 10, 10]
    assert rows[1]["mean_score"] == pytest.approx((60.0 + 40.0) / 2)

    # Same params again: nothing to do.
    again = FakeRunner()
    report = run_grid(POOL, SCORES, _params({}), tmp_path, run_point=again, progress=False)
    assert again.calls == [] and report.n_done_before == 3 and len(read_results(tmp_path)) == 3

    # Extended grid: only the new points run; at budget 1.0 both selectors keep every sample, so the
    # second one of each seed reuses the first one's outcome instead of training again.
    more = FakeRunner()
    bigger = _params({"budgets": [0.5, 1.0], "seeds": [1, 2]})
    report = run_grid(POOL, SCORES, bigger, tmp_path, run_point=more, progress=False)
    assert more.calls == ["random__b1__s1", "random__b0.5__s2", "rank_hard__b0.5__s2", "random__b1__s2"]
    assert report.n_reused == 2 and report.n_done_before == 3
    rows = read_results(tmp_path)
    assert len(rows) == 9
    reused = [r for r in rows if r["reused_from"]]
    assert {(r["point"], r["reused_from"]) for r in reused} == {
        ("rank_hard__b1__s1", "random__b1__s1"),
        ("rank_hard__b1__s2", "random__b1__s2"),
    }
    assert all(r["n_train"] == 20 for r in reused)


def test_grid_resumes_after_a_crash(tmp_path: Path) -> None:
    crashing = FakeRunner(fail_on_call=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_grid(POOL, SCORES, _params({}), tmp_path, run_point=crashing, progress=False)
    assert [r["point"] for r in read_results(tmp_path)] == ["base__b0__s0", "random__b0.5__s1"]
    rest = FakeRunner()
    run_grid(POOL, SCORES, _params({}), tmp_path, run_point=rest, progress=False)
    assert rest.calls == ["rank_hard__b0.5__s1"]
    assert len(read_results(tmp_path)) == 3


def test_changed_setup_reruns_and_keeps_old_lines_apart(tmp_path: Path) -> None:
    first = run_grid(POOL, SCORES, _params({}), tmp_path, run_point=FakeRunner(), progress=False)
    changed = _params({}, training={"learning_rate": 1e-3})
    run = FakeRunner()
    report = run_grid(POOL, SCORES, changed, tmp_path, run_point=run, progress=False)
    assert len(run.calls) == 3 and report.n_stale == 3 and report.setup != first.setup
    rows = read_results(tmp_path)
    assert len(results_frame(rows, report.setup)) == 3 and len(results_frame(rows)) == 6
    # Other scores are another setup too.
    other = [dict(s, rank=-s["rank"]) for s in SCORES]
    assert (
        run_grid(POOL, other, changed, tmp_path, run_point=FakeRunner(), progress=False).setup != report.setup
    )


def test_changed_code_reruns_finished_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compeffdist_utils.data_efficiency import grid as efficiency

    run_grid(POOL, SCORES, _params({}), tmp_path, run_point=FakeRunner(), progress=False)
    monkeypatch.setattr(efficiency, "code_hash", lambda roots: "edited-trainer")
    run = FakeRunner()
    report = run_grid(POOL, SCORES, _params({}), tmp_path, run_point=run, progress=False)
    assert len(run.calls) == 3 and report.n_done_before == 0 and report.n_stale == 3


def test_empty_selection_is_recorded_not_trained(tmp_path: Path) -> None:
    run = FakeRunner()
    params = _params({"budgets": [0.01], "seeds": [1, 2, 3, 4, 5, 6], "include_base": False})
    report = run_grid(POOL, SCORES, params, tmp_path, run_point=run, progress=False)
    # 0.01 x 20 = 0.2 expected samples: stochastic rounding keeps none at most seeds; such points are
    # recorded as skipped, not trained.
    rows = read_results(tmp_path)
    assert len(rows) == 12 and report.n_empty > 0
    assert report.n_empty == sum(r["n_selected"] == 0 for r in rows)
    assert all((r["skipped"] is not None) == (r["n_selected"] == 0) for r in rows)
    assert len(run.calls) == sum(r["n_selected"] > 0 for r in rows)


def test_summary_and_figure(tmp_path: Path) -> None:
    params = _params({"budgets": [0.25, 0.5, 1.0], "seeds": [1, 2]})
    report = run_grid(POOL, SCORES, params, tmp_path, run_point=FakeRunner(), progress=False)
    frame = results_frame(read_results(tmp_path), report.setup)
    table = summarise_grid(frame[frame["selector"] != BASE])
    row = table[(table["selector"] == "random") & (table["budget"] == 0.5)].iloc[0]
    assert row["n_seeds"] == 2 and row["n_train"] == 10 and row["score_mean"] == pytest.approx(50.0)
    fig = plot_efficiency(frame)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel().startswith("mean benchmark score")


@pytest.mark.slow
def test_one_real_grid_point(ci_params: Params, sentibench_dir: Path, tmp_path: Path) -> None:
    """A real point: select, LoRA-train 2 steps, evaluate on 4 SST-2 prompts."""
    data = ci_params.model_dump(mode="json")
    data["evaluation"].update(sentibench_dir=str(sentibench_dir), seeds=[42])
    data["efficiency"] = {
        "selectors": ["random"],
        "budgets": [0.4],
        "seeds": [42],
        "datasets": ["sc/sst2"],
        "n_test": 4,
        "max_steps": 2,
        "include_base": False,
    }
    report = run_grid(POOL, SCORES, params_from_dict(data), tmp_path, progress=False)
    assert report.n_run == 1
    (row,) = read_results(tmp_path)
    assert row["n_train"] == 8 and row["global_step"] == 2 and row["train_seconds"] > 0
    assert row["benchmark"] == "sentibench" and set(row["scores"]) == {"sc/sst2"}
    assert 0.0 <= row["mean_score"] <= 100.0
    point_dir = tmp_path / "efficiency" / "points" / row["point"]
    assert (point_dir / "eval" / "predictions").is_dir()
    assert not (point_dir / "student" / "model").exists()  # keep_models is off


def test_random_is_the_authors_global_draw_and_random_inprompt_the_stratified_one() -> None:
    from compeffdist_utils.data_efficiency.points import grid_params, point_params
    from compeffdist_utils.difficulty_selection.selection import select_samples

    gp = grid_params(_params({"selectors": ["random", "random_inprompt", "rank_hard"]}))
    assert gp.selection.stratify == "inprompt"
    strata = {s: point_params(gp, GridPoint(s, 0.5, 1)).selection.stratify for s in gp.efficiency.selectors}
    assert strata == {"random": "full", "random_inprompt": "inprompt", "rank_hard": "inprompt"}
    counts = []
    for seed in range(20):
        sel, _ = select_samples(
            POOL, SCORES, point_params(gp, GridPoint("random_inprompt", 0.5, seed)).selection
        )
        assert sorted(sum(r["cluster_id"] == c for r in sel) for c in (0, 1)) == [5, 5]
        glob, _ = select_samples(POOL, SCORES, point_params(gp, GridPoint("random", 0.5, seed)).selection)
        counts.append(sum(r["cluster_id"] == 0 for r in glob))
    assert len(set(counts)) > 1  # the global draw does not keep each cluster's share

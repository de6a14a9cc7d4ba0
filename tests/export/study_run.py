"""A small synthetic study run folder with the files `publish-study` reads, written as the stages write them:
stage 00's labelled holdout (so the benchmark is the flagged fallback, two datasets of 30 test texts),
stage 02's attribute map, stage 07's predictions, ``eval/results.csv`` and its CI tables (made by
``evaluation_uncertainty``, as notebook 07 makes them), stage 08's results lines with each point's
predictions and held-out loss (one point reused from its twin), and a self-contained ``report.html``.
Predictions are drawn with a fixed accuracy per model, so the models differ."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from compeffdist_utils.core.config import Params, params_from_dict
from compeffdist_utils.core.io import write_json, write_jsonl
from compeffdist_utils.data_efficiency.points import BASE, GridPoint, grid_points
from compeffdist_utils.evaluation.heldout import heldout_path
from compeffdist_utils.evaluation.predictions import prediction_path
from compeffdist_utils.evaluation.significance import evaluation_uncertainty, prediction_stats
from compeffdist_utils.sentibench import load_fallback
from compeffdist_utils.stats.uncertainty import point_score

STAGES = ["00_environment_and_corpus", "01_attributes", "02_clustering", "03_instructions",
          "04_distillation_data", "05_difficulty_selection", "06_student_training", "07_evaluation",
          "08_data_efficiency"]  # fmt: skip
MODELS = {"teacher": 0.9, "base_student": 0.6, "distilled_student": 0.7}  # name -> share answered right
SELECTOR_SKILL = {BASE: 0.6, "random": 0.65, "rank_hard": 0.8}
SEED = 42  # the evaluation demo seed


def study_params(ci_params: Params) -> Params:
    data = ci_params.model_dump(mode="json")
    data["evaluation"].update(
        sentibench_dir=None, seeds=[SEED], n_test=None,
        models={"teacher": "teacher", "base_student": "student", "distilled_student": "distilled"},
    )  # fmt: skip
    data["efficiency"].update(
        selectors=["random", "rank_hard"], budgets=[0.1, 1.0], seeds=[1, 2], datasets=None, n_test=None
    )
    return params_from_dict(data)


def _predictions(out_dir: Path, name: str, datasets: list[Any], skill: float, seed: int) -> dict[str, float]:
    """Write ``name``'s predictions per dataset (right with probability ``skill``); its scores back."""
    scores = {}
    for k, ds in enumerate(datasets):
        rng = random.Random(f"{name}|{seed}|{k}")
        labels = sorted({e.gold for e in ds.test})
        recs = [
            {"uid": e.uid, "prediction": e.gold if rng.random() < skill else rng.choice(labels)}
            for e in ds.test
        ]
        write_jsonl(prediction_path(out_dir, name, ds.name, SEED), recs)
        scores[ds.name] = round(point_score(prediction_stats(ds, [recs])), 4)
    return scores


def _heldout(out_dir: Path, name: str, loss: float) -> float:
    rows = [{"sample_id": f"h{i}", "nll_sum": loss * 5 + (i % 3) * 0.1, "n_tokens": 5} for i in range(20)]
    write_jsonl(heldout_path(out_dir, name), rows)
    return round(sum(r["nll_sum"] for r in rows) / sum(r["n_tokens"] for r in rows), 6)


def _stage07(run: Path, datasets: list[Any]) -> None:
    eval_dir = run / "eval"
    rows = []
    for name, skill in MODELS.items():
        for ds, score in _predictions(eval_dir, name, datasets, skill, 0).items():
            rows.append({"model": name, "dataset": ds, "group": "fallback", "seed": SEED, "score": score,
                         "metric": "macro_f1", "n_examples": 30})  # fmt: skip
    pd.DataFrame(rows).to_csv(eval_dir / "results.csv", index=False)
    unc = evaluation_uncertainty(eval_dir, list(MODELS), datasets, [SEED], "base_student", "teacher")
    (run / "tables").mkdir(exist_ok=True)
    for table, frame in unc.tables().items():
        frame.to_csv(run / "tables" / f"07_evaluation_{table}.csv", index=True)  # as Stage.save_table


def _grid(run: Path, params: Params, datasets: list[Any], leave_out: set[tuple[str, float, int]]) -> None:
    rows = []
    for p in grid_points(params):
        if p.key in leave_out:
            continue
        row = {"point": p.slug, "selector": p.selector, "budget": p.budget, "seed": p.seed, "n_selected": 4,
               "reused_from": None, "skipped": None, "selection_hash": "h", "setup": "s2", "benchmark": "fallback"}  # fmt: skip
        twin = GridPoint("random", 1.0, p.seed)
        if p.selector == "rank_hard" and p.budget == 1.0:  # at 100% both select the whole pool: reused
            row["reused_from"] = twin.slug
            row |= {k: v for r in rows if r["point"] == twin.slug for k, v in r.items() if k in ("scores", "heldout_loss")}  # fmt: skip
        else:
            eval_dir = run / "efficiency" / "points" / p.slug / "eval"
            skill = SELECTOR_SKILL[p.selector] + 0.1 * p.budget
            row["scores"] = _predictions(eval_dir, p.slug, datasets, skill, p.seed)
            row["heldout_loss"] = _heldout(eval_dir, p.slug, 3.0 - p.budget - 0.1 * p.seed)
        row["mean_score"] = round(float(np.mean(list(row["scores"].values()))), 4)
        rows.append(row)
    stale = {**rows[1], "setup": "s1", "scores": {d.name: 1.0 for d in datasets}}  # an earlier setup's line
    write_jsonl(run / "efficiency/results.jsonl", [stale, *rows])


def make_study_run(
    root: Path, ci_params: Params, leave_out: set[tuple[str, float, int]] = frozenset(), grid: bool = True
) -> Path:
    """The run folder under ``root``/run; ``leave_out`` grid points (selector, budget, seed) are not run yet,
    ``grid=False`` means stage 08 never ran."""
    run = root / "run"
    params = study_params(ci_params)
    holdout = [
        {
            "text_id": f"{d}-{i}",
            "domain": d,
            "text": f"{d} text {i}",
            "label": "positive" if i % 2 else "negative",
        }
        for d in ("imdb", "tweets")
        for i in range(40)
    ]
    write_jsonl(run / "corpus/holdout.jsonl", holdout)
    datasets, _ = load_fallback(run / "corpus/holdout.jsonl", params.evaluation.shots)
    fig = plt.figure(figsize=(1, 1))
    (run / "figures").mkdir(parents=True)
    fig.savefig(run / "figures/02_clustering_attribute_map.png")
    plt.close(fig)
    _stage07(run, datasets)
    stages = [{"name": s, "status": "ok", "fingerprint": "f", "outputs": [], "seconds": 1.0} for s in STAGES]
    stages[7]["notes"] = {"benchmark": "fallback", "fallback": True}  # as notebook 07 records it
    if grid:
        _grid(run, params, datasets, set(leave_out))
        stages[-1]["status"] = "interrupted" if leave_out else "ok"
    else:
        stages.pop()
    write_json(run / "manifest.json", {"run_name": "study", "params_path": "params/study.yaml",
               "overrides": {}, "params": params.model_dump(mode="json"), "updated": "2026-12-05T05:00:00+0000",
               "machine": {"platform": "Linux", "python": "3.11.7", "processor": "x86_64", "cpu_count": 2, "cuda": None},
               "packages": {"compeffdist-kit": "0.1.0"}, "stages": stages})  # fmt: skip
    (run / "report.html").write_text(
        '<html><body><a href="#top">top</a><img src="data:image/png;base64,AAAA"></body></html>'
    )
    return run

"""Stage 08: running the data-efficiency grid (the paper's headline figure).

A grid of selectors x budgets x seeds (:mod:`.points`). At each point the distillation pool (stage 04's
dataset with stage 05's difficulty scores) is cut down by the selector to the budget, the student is
fine-tuned on what is kept (stage 06's trainer), and the result is evaluated (stage 07's protocol). The
claim under study: difficulty-based selection reaches the full-data score with ~10% of the data and beats
random, IFD, perplexity and length selection at equal budget.

Bookkeeping: ``efficiency/results.jsonl`` (:mod:`.results`) gets one line per finished point (the file is
rewritten atomically, so a crash never leaves half a line). Each line carries a ``setup`` fingerprint of
what decides the outcome apart from the point itself (data, scores, student, training and evaluation
settings, and this module's code with everything it imports). Rerunning skips points already done under
the same setup, so an interrupted grid resumes and adding budgets, selectors or seeds runs only the new
points; lines from another setup are kept but left out of the tables and plots (and counted as stale).
Two points with the same seed that select the very same samples (e.g. every hard selector at budget 1.0)
would train identically, so the second reuses the first one's outcome (``reused_from``) instead of
training again.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.hashing import code_hash
from compeffdist_utils.core.io import write_jsonl
from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.data_efficiency.points import BASE, GridPoint, grid_params, grid_points, point_params
from compeffdist_utils.data_efficiency.results import OUTCOME_KEYS, RESULTS_FILE, read_results, row_key
from compeffdist_utils.data_efficiency.reuse import reused_base_outcome
from compeffdist_utils.difficulty_selection.selection import select_samples
from compeffdist_utils.evaluation.evaluate import evaluate_model
from compeffdist_utils.evaluation.heldout import write_heldout_loss
from compeffdist_utils.models import load_causal_lm, resolve_dtype
from compeffdist_utils.sentibench import load_for_run
from compeffdist_utils.student_training.checkpoints import training_settings
from compeffdist_utils.student_training.training import completed_run, train_student


def setup_fingerprint(
    gparams: Params, records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]] | None
) -> str:
    """Hash of everything but the point that decides a result: data, scores, student, settings, and the
    code that selects, trains and evaluates (:func:`code_hash.code_hash` of this module's imports)."""
    ev = gparams.evaluation.model_dump(mode="json")
    for irrelevant in ("models", "batch_size"):
        ev.pop(irrelevant, None)
    training = training_settings(gparams)
    training.pop("seed")
    meta = {
        "code": code_hash(["data_efficiency.grid"]),
        "student": gparams.models.student,
        "dtype": resolve_dtype(gparams.models.dtype, gparams.models.device),
        "training": training,
        "selection": {"stratify": gparams.selection.stratify, "soft_peak": gparams.selection.soft_peak},
        "evaluation": ev,
    }
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for rec in records:
        h.update(json.dumps([rec.get("sample_id"), rec.get("instruction"), rec.get("output")]).encode())
    for row in scores or []:
        h.update(json.dumps(row, sort_keys=True).encode())
    return h.hexdigest()[:16]


def selection_hash(selected: Sequence[dict[str, Any]]) -> str:
    ids = sorted(str(r["sample_id"]) for r in selected)
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


PointRunner = Callable[[GridPoint, list[dict[str, Any]], Params, Path], dict[str, Any]]


@dataclass
class GridReport:
    results_path: Path
    setup: str
    n_points: int
    n_done_before: int
    n_run: int
    n_reused: int
    n_empty: int
    n_stale: int
    seconds: float


def _scores_by_dataset(frame: pd.DataFrame) -> dict[str, float]:
    """Mean over evaluation demo seeds, per dataset."""
    means = frame.groupby("dataset", sort=False)["score"].mean()
    return {str(k): round(float(v), 4) for k, v in means.items()}


class TrainAndEvaluate:
    """The real point runner: load the student, fine-tune it on the selection, evaluate it.

    The benchmark is loaded once, on the first point. The model trained in memory is evaluated
    directly (it equals the saved one); only a point whose training had finished in an earlier,
    interrupted session is reloaded from its folder.
    """

    def __init__(self, run_dir: Path, root: Path | None = None, progress: bool = True):
        self.run_dir = run_dir
        self.root = root
        self.progress = progress
        self._bench: Any = None

    def benchmark(self, params: Params) -> Any:
        if self._bench is None:
            ev = params.evaluation
            self._bench = load_for_run(ev.sentibench_dir, ev.datasets, ev.shots, self.run_dir, self.root)
        return self._bench

    def __call__(
        self, point: GridPoint, selected: list[dict[str, Any]], params: Params, point_dir: Path
    ) -> dict[str, Any]:

        bench = self.benchmark(params)
        if point.selector == BASE and not bench.fallback:  # stage 07 may have evaluated it already
            reused = reused_base_outcome(params, self.run_dir, point_dir / "eval", point.slug, bench.datasets)
            if reused is not None:
                return reused | {"benchmark": "sentibench"}
        student_dir = point_dir / "student"
        done = completed_run(selected, params, student_dir) if point.selector != BASE else None
        # A finished point loads its trained model; otherwise the base, which training changes in place.
        dtype = None if point.selector == BASE else resolve_dtype(params.models.dtype, training=True)
        model, tok = load_causal_lm(done.model_dir if done else params.models.student, params, dtype=dtype)
        out: dict[str, Any] = {}
        if point.selector != BASE:
            result = done or train_student(selected, params, student_dir, base=(model, tok))
            out = {
                "n_train": result.n_train,
                "train_seconds": result.train_seconds,
                "train_tokens": result.train_tokens,
                "processed_tokens": result.processed_tokens,
                "global_step": result.global_step,
                "final_train_loss": result.final_train_loss,
            }
        t0 = time.time()
        frame = evaluate_model(
            model, tok, bench.datasets, params.evaluation, point_dir / "eval", point.slug, self.progress
        )
        heldout_loss = write_heldout_loss(model, tok, params, self.run_dir, point_dir / "eval", point.slug)
        out |= {
            "scores": _scores_by_dataset(frame),
            "eval_seconds": round(time.time() - t0, 2),
            "benchmark": "fallback" if bench.fallback else "sentibench",
            "heldout_loss": heldout_loss,
        }
        del model, tok
        gc.collect()
        if not params.efficiency.keep_models:
            for sub in ("student/model", "student/checkpoints"):
                shutil.rmtree(point_dir / sub, ignore_errors=True)
        return out


def _trained_twin(rows: Sequence[dict[str, Any]], seed: int, sel: str) -> dict[str, Any] | None:
    """A finished point of the same seed that trained on exactly these samples, if any."""
    for r in rows:
        if (
            r["selector"] != BASE
            and r["seed"] == seed
            and r["selection_hash"] == sel
            and not r.get("skipped")
        ):
            return r
    return None


def _result_row(
    point: GridPoint, selected: Sequence[dict[str, Any]], outcome: dict[str, Any], sel: str, setup: str
) -> dict[str, Any]:
    """The results-file line of a finished point."""
    point_scores = outcome.get("scores") or {}
    return {
        "point": point.slug,
        "selector": point.selector,
        "budget": point.budget,
        "seed": point.seed,
        "n_selected": len(selected),
        **{k: outcome.get(k) for k in OUTCOME_KEYS},
        "mean_score": round(sum(point_scores.values()) / len(point_scores), 4) if point_scores else None,
        "reused_from": outcome.get("reused_from"),
        "skipped": outcome.get("skipped"),
        "selection_hash": sel,
        "setup": setup,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def run_grid(
    records: Sequence[dict[str, Any]],
    scores: Sequence[dict[str, Any]] | None,
    params: Params,
    run_dir: str | Path,
    *,
    run_point: PointRunner | None = None,
    root: Path | None = None,
    progress: bool = True,
) -> GridReport:
    """Run (or resume, or extend) the grid; append one line per finished point to the results file.

    ``records`` is the whole distillation pool (stage 04), ``scores`` stage 05's difficulty scores.
    ``run_point`` replaces the train-and-evaluate step (tests use a fake one); it returns a dict
    with at least ``scores`` ({dataset: score}) and the training figures in ``OUTCOME_KEYS``.
    """
    t0 = time.time()
    run_dir = Path(run_dir)
    gparams = grid_params(params)
    setup = setup_fingerprint(gparams, records, scores)
    rows = read_results(run_dir)
    current = [r for r in rows if r.get("setup") == setup]
    done = {row_key(r) for r in current}
    points = grid_points(params)
    todo = [p for p in points if p.key not in done]
    runner = run_point or TrainAndEvaluate(run_dir, root, progress)
    counts = {"run": 0, "reused": 0, "empty": 0}
    for point in tqdm(todo, desc="efficiency grid", disable=not progress or not todo):
        pparams = point_params(gparams, point)
        selected: list[dict[str, Any]] = []
        if point.selector != BASE:
            selected, _ = select_samples(records, scores, pparams.selection)
        sel = selection_hash(selected)
        twin = _trained_twin(current, point.seed, sel) if selected else None
        if point.selector != BASE and not selected:
            outcome = {"skipped": "the selection kept no samples (budget too small for the pool)"}
            counts["empty"] += 1
        elif point.selector != BASE and twin is not None:
            outcome = {k: twin.get(k) for k in OUTCOME_KEYS} | {"reused_from": twin["point"]}
            counts["reused"] += 1
        else:
            outcome = runner(point, selected, pparams, run_dir / "efficiency" / "points" / point.slug)
            counts["run"] += 1
        row = _result_row(point, selected, outcome, sel, setup)
        rows.append(row)
        current.append(row)
        write_jsonl(run_dir / RESULTS_FILE, rows)
    return GridReport(
        results_path=run_dir / RESULTS_FILE,
        setup=setup,
        n_points=len(points),
        n_done_before=len(points) - len(todo),
        n_run=counts["run"],
        n_reused=counts["reused"],
        n_empty=counts["empty"],
        n_stale=sum(r.get("setup") != setup for r in rows),
        seconds=round(time.time() - t0, 2),
    )

"""Stage 08: the data-efficiency study (the paper's headline figure).

A grid of selectors x budgets x seeds. At each point the distillation pool (stage 04's dataset with
stage 05's difficulty scores) is cut down by the selector to the budget, the student is fine-tuned on
what is kept (stage 06's trainer), and the result is evaluated (stage 07's protocol). The claim under
study: difficulty-based selection reaches the full-data score with ~10% of the data and beats random,
IFD, perplexity and length selection at equal budget.

Selectors map onto ``selection.select_samples``: ``random`` (a uniform sample of the whole pool, the
authors' random baseline: their ``random_sample`` draws globally, never per group), ``random_inprompt``
(a uniform sample inside each (cluster, task) group, i.e. stratified like the difficulty selectors, so
stratification and difficulty can be told apart), ``rank_hard`` / ``rank_soft`` (the rank score, hard
top-k or soft sampling), ``ifd`` / ``ppl`` / ``length`` (hard top-k by that score). All but the two
random selectors use the run's ``selection.stratify``. The
grid seed drives both the selection (random draws, stochastic quota rounding, tie-breaks) and the
training seed, so the spread over seeds covers both sources of variation; evaluation demo seeds stay
``evaluation.seeds``. Points train without a held-out slice (``eval_fraction`` 0): every selected
sample is training data, and the benchmark score is the measure.

Bookkeeping: ``efficiency/results.jsonl`` gets one line per finished point (the file is rewritten
atomically, so a crash never leaves half a line). Each line carries a ``setup`` fingerprint of what
decides the outcome apart from the point itself (data, scores, student, training and evaluation
settings). Rerunning skips points already done under the same setup, so an interrupted grid resumes
and adding budgets, selectors or seeds runs only the new points; lines from another setup are kept but
left out of the tables and plots (and counted as stale). Two points with the same seed that select the
very same samples (e.g. every hard selector at budget 1.0) would train identically, so the second
reuses the first one's outcome (``reused_from``) instead of training again.
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
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.config import Params, params_from_dict
from compeffdist_utils.core.hashing import code_hash
from compeffdist_utils.core.io import read_jsonl, write_jsonl
from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.data_efficiency.reuse import reused_base_outcome
from compeffdist_utils.difficulty_selection.selection import select_samples
from compeffdist_utils.evaluation.evaluate import evaluate_model
from compeffdist_utils.evaluation.heldout import write_heldout_loss
from compeffdist_utils.models import load_causal_lm, resolve_dtype
from compeffdist_utils.sentibench import load_for_run
from compeffdist_utils.student_training.training import completed_run, train_student

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas as pd

SELECTORS: dict[str, tuple[str, str]] = {  # name -> (selection.method, selection.score)
    "random": ("random", "rank"),
    "random_inprompt": ("random", "rank"),
    "rank_hard": ("hard", "rank"),
    "rank_soft": ("soft", "rank"),
    "ifd": ("hard", "ifd"),
    "ppl": ("hard", "ppl"),
    "length": ("hard", "length"),
}
RANDOM_STRATA = {"random": "full", "random_inprompt": "inprompt"}  # fixed, whatever selection.stratify says
BASE = "base"  # the untrained student, drawn as a reference line
RESULTS_FILE = "efficiency/results.jsonl"
OUTCOME_KEYS = (
    "n_train",
    "train_seconds",
    "train_tokens",
    "processed_tokens",
    "global_step",
    "final_train_loss",
    "scores",
    "eval_seconds",
    "benchmark",
    "heldout_loss",
)


@dataclass(frozen=True)
class GridPoint:
    selector: str
    budget: float
    seed: int

    @property
    def key(self) -> tuple[str, float, int]:
        return (self.selector, float(self.budget), int(self.seed))

    @property
    def slug(self) -> str:
        return f"{self.selector}__b{self.budget:g}__s{self.seed}"


def grid_points(params: Params) -> list[GridPoint]:
    """Every point, seed by seed and budget by budget, so a half-run grid already compares selectors."""
    ep = params.efficiency
    points = [GridPoint(s, b, seed) for seed in ep.seeds for b in ep.budgets for s in ep.selectors]
    if ep.include_base:
        points.insert(0, GridPoint(BASE, 0.0, 0))
    return points


def grid_params(params: Params) -> Params:
    """The run's params with the efficiency section's overrides applied (steps, datasets, n_test)."""
    ep = params.efficiency
    data = params.model_dump(mode="json")
    data["training"]["eval_fraction"] = 0.0
    if ep.max_steps is not None:
        data["training"]["max_steps"] = ep.max_steps
    if ep.datasets is not None:
        data["evaluation"]["datasets"] = list(ep.datasets)
    if ep.n_test is not None:
        data["evaluation"]["n_test"] = ep.n_test
    return params_from_dict(data, source="efficiency grid")


def point_params(gparams: Params, point: GridPoint) -> Params:
    """Params for one point: the selector's method and score, the budget, and the point's seed."""
    data = gparams.model_dump(mode="json")
    if point.selector != BASE:
        method, score = SELECTORS[point.selector]
        data["selection"].update(method=method, score=score, budget=point.budget, seed=point.seed)
        if point.selector in RANDOM_STRATA:
            data["selection"]["stratify"] = RANDOM_STRATA[point.selector]
        data["training"]["seed"] = point.seed
    return params_from_dict(data, source=f"efficiency point {point.slug}")


def setup_fingerprint(
    gparams: Params, records: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]] | None
) -> str:
    """Hash of everything but the point that decides a result: data, scores, student, settings, and the
    code that selects, trains and evaluates (:func:`code_hash.code_hash` of this module's imports)."""
    ev = gparams.evaluation.model_dump(mode="json")
    for irrelevant in ("models", "batch_size"):
        ev.pop(irrelevant, None)
    training = gparams.training.model_dump(mode="json")
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


def row_key(row: dict[str, Any]) -> tuple[str, float, int]:
    return (row["selector"], float(row["budget"]), int(row["seed"]))


def read_results(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / RESULTS_FILE
    return read_jsonl(path) if path.exists() else []


# -- running the grid --------------------------------------------------------------------------------

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
    n_run = n_reused = n_empty = 0
    for point in tqdm(todo, desc="efficiency grid", disable=not progress or not todo):
        pparams = point_params(gparams, point)
        selected: list[dict[str, Any]] = []
        if point.selector != BASE:
            selected, _ = select_samples(records, scores, pparams.selection)
        sel = selection_hash(selected)
        point_dir = run_dir / "efficiency" / "points" / point.slug
        twin = _trained_twin(current, point.seed, sel) if selected else None
        if point.selector != BASE and not selected:
            outcome = {"skipped": "the selection kept no samples (budget too small for the pool)"}
            n_empty += 1
        elif point.selector != BASE and twin is not None:
            outcome = {k: twin.get(k) for k in OUTCOME_KEYS} | {"reused_from": twin["point"]}
            n_reused += 1
        else:
            outcome = runner(point, selected, pparams, point_dir)
            n_run += 1
        point_scores = outcome.get("scores") or {}
        row = {
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
        rows.append(row)
        current.append(row)
        write_jsonl(run_dir / RESULTS_FILE, rows)
    return GridReport(
        results_path=run_dir / RESULTS_FILE,
        setup=setup,
        n_points=len(points),
        n_done_before=len(points) - len(todo),
        n_run=n_run,
        n_reused=n_reused,
        n_empty=n_empty,
        n_stale=sum(r.get("setup") != setup for r in rows),
        seconds=round(time.time() - t0, 2),
    )


# -- tables and figures ------------------------------------------------------------------------------


def results_frame(rows: Sequence[dict[str, Any]], setup: str | None = None) -> pd.DataFrame:
    """One row per point (of ``setup`` when given), one ``score: <dataset>`` column per dataset."""
    import pandas as pd

    keep = [r for r in rows if setup is None or r.get("setup") == setup]
    flat = []
    for r in keep:
        rec = {k: v for k, v in r.items() if k != "scores"}
        rec |= {f"score: {d}": s for d, s in (r.get("scores") or {}).items()}
        flat.append(rec)
    return pd.DataFrame(flat)


def summarise_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (selector, budget): mean score with its spread over seeds, and the mean training cost."""
    if frame.empty:
        return frame
    grouped = frame.groupby(["selector", "budget"])
    table = grouped["mean_score"].agg(["mean", "std", "min", "max", "count"])
    table.columns = ["score_mean", "score_std", "score_min", "score_max", "n_seeds"]
    costs = grouped[["n_train", "train_seconds", "train_tokens"]].mean()
    return table.join(costs).round(3).reset_index()


COST_LABELS = {
    "train_seconds": "training seconds per point",
    "train_tokens": "tokens trained on per point",
    "processed_tokens": "tokens processed per point (incl. padding)",
}


def _budget_axis(ax: Any, budgets: Sequence[float]) -> None:
    """Budgets on a log axis, ticked at the grid's budgets (as percentages when they are fractions)."""
    from matplotlib.ticker import NullFormatter

    ticks = sorted(set(budgets))
    fractions = all(b <= 1 for b in ticks)
    if all(b > 0 for b in ticks):
        ax.set_xscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{b:.0%}" if fractions else f"{b:g}" for b in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("budget (share of the pool)" if fractions else "budget (samples)")


def plot_efficiency(
    frame: pd.DataFrame, title: str = "Data efficiency", cost: str = "train_seconds"
) -> matplotlib.figure.Figure:
    """Left: mean score vs budget per selector, shaded min-max over seeds, the untrained student dashed.
    Right: the training cost of each point (``cost``: one of ``COST_LABELS``) vs budget."""
    import matplotlib.pyplot as plt

    if cost not in COST_LABELS:
        raise ValueError(f"cost must be one of {list(COST_LABELS)}; got {cost!r}")
    trained = frame[frame["selector"] != BASE]
    if trained.empty or trained["mean_score"].isna().all():
        raise ValueError("no trained grid points to plot yet")
    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(12, 4.5))
    summary = summarise_grid(trained)
    costs = trained.groupby(["selector", "budget"])[cost].mean()
    for selector, part in summary.groupby("selector", sort=False):
        part = part.sort_values("budget")
        (line,) = ax_s.plot(part["budget"], part["score_mean"], "o-", label=selector)
        if (part["n_seeds"] > 1).any():
            ax_s.fill_between(
                part["budget"], part["score_min"], part["score_max"], color=line.get_color(), alpha=0.15
            )
        ax_c.plot(part["budget"], costs.loc[selector].reindex(part["budget"]), "o-", color=line.get_color())
    base = frame[frame["selector"] == BASE]["mean_score"].dropna()
    if not base.empty:
        ax_s.axhline(float(base.mean()), color="grey", linestyle="--", label="student, untrained")
    for ax in (ax_s, ax_c):
        _budget_axis(ax, trained["budget"].tolist())
        ax.grid(alpha=0.3)
    ax_s.set_ylabel("mean benchmark score (x100)")
    ax_s.set_title(f"{title}: score vs budget (shade: min-max over seeds)")
    ax_s.legend(fontsize=8)
    ax_c.set_ylabel(COST_LABELS[cost])
    ax_c.set_title("Training cost per point")
    fig.tight_layout()
    return fig

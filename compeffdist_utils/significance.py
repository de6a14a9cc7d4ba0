"""Confidence intervals and paired comparisons for stages 07 and 08, read from their prediction files.

Stage 07 writes ``eval/predictions/<model>/<dataset>__seed<S>.jsonl``; every grid point of stage 08
writes the same under ``efficiency/points/<point>/eval``. Everything here is computed from those files
and the benchmark's gold answers, so intervals can be added to a finished run without rerunning a model.
The statistics are :mod:`.uncertainty`'s; the held-out loss and teacher agreement are :mod:`.heldout`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evaluation import load_predictions, metric_inputs
from .heldout import agreement_stats, heldout_loss_stats, heldout_path
from .io import read_jsonl
from .uncertainty import (
    Difference,
    Stats,
    as_row,
    compare,
    describe_differences,
    estimate,
    metric_stats,
    smoke_warning,
)

if TYPE_CHECKING:
    import pandas as pd

    from .config import Params
    from .sentibench import BenchDataset

OVERALL = "overall"


def prediction_stats(ds: BenchDataset, runs: Sequence[Sequence[dict[str, Any]]]) -> Stats:
    """Bootstrap statistics of one model on one dataset; ``runs`` = prediction records per demo seed."""
    by_uid = {e.uid: e for e in ds.test}
    uids = sorted(r["uid"] for r in runs[0])
    missing = [u for u in uids if u not in by_uid]
    if missing:
        raise ValueError(f"{ds.name}: predictions for examples not in the test set, e.g. {missing[:3]}")
    gold_pred = []
    for recs in runs:
        pred = {r["uid"]: r["prediction"] for r in recs}
        if sorted(pred) != uids:
            raise ValueError(f"{ds.name}: the demo seeds were not evaluated on the same test examples")
        gold_pred.append(metric_inputs(ds.spec, [by_uid[u] for u in uids], [pred[u] for u in uids]))
    return metric_stats(ds.name, ds.spec.metric, uids, gold_pred)


def _runs(out_dir: Path, model: str, dataset: str, seeds: Sequence[int]) -> list[list[dict[str, Any]]]:
    return [load_predictions(out_dir, model, dataset, s) for s in seeds]


def model_stats(
    out_dir: str | Path, model: str, datasets: Sequence[BenchDataset], seeds: Sequence[int]
) -> list[Stats]:
    """One :class:`Stats` per dataset for a model evaluated into ``out_dir`` (stage 07's ``eval/``)."""
    return [prediction_stats(ds, _runs(Path(out_dir), model, ds.name, seeds)) for ds in datasets]


def _with_overall(per_model: dict[str, list[Stats]]) -> list[tuple[str, str, Stats | list[Stats]]]:
    rows: list[tuple[str, str, Stats | list[Stats]]] = []
    for model, stats in per_model.items():
        rows += [(model, s.name, s) for s in stats]
        if len(stats) > 1:
            rows.append((model, OVERALL, stats))
    return rows


def score_table(per_model: dict[str, list[Stats]]) -> pd.DataFrame:
    """model, dataset, score, ci_low, ci_high, n: every score with its 95% interval (and the overall)."""
    import pandas as pd

    rows = [{"model": m, "dataset": d} | as_row(estimate(s)) for m, d, s in _with_overall(per_model)]
    return pd.DataFrame(rows)


def differences(per_model: dict[str, list[Stats]], reference: str) -> list[Difference]:
    """Every other model minus ``reference``, per dataset and overall (paired over test examples)."""
    if reference not in per_model:
        raise ValueError(f"no predictions of the reference model {reference!r}; have {sorted(per_model)}")
    ref = {s.name: s for s in per_model[reference]}
    out = []
    for model, stats in per_model.items():
        if model == reference:
            continue
        for s in stats:
            out.append(compare(s, ref[s.name], (model, reference), s.name))
        if len(stats) > 1:
            out.append(compare(stats, [ref[s.name] for s in stats], (model, reference), OVERALL))
    return out


def difference_table(diffs: Sequence[Difference]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "model": d.a,
                "versus": d.b,
                "measure": d.measure,
                "difference": d.diff,
                "ci_low": d.low,
                "ci_high": d.high,
                "n": d.n,
                "significant": d.significant,
            }
            for d in diffs
        ]
    )


def agreement_table(
    out_dir: str | Path,
    models: Sequence[str],
    teacher: str,
    datasets: Sequence[BenchDataset],
    seeds: Sequence[int],
) -> pd.DataFrame:
    """model, dataset, agreement with ``teacher``'s predictions in % with its interval (and overall)."""
    import pandas as pd

    out = Path(out_dir)
    per_model = {
        m: [
            agreement_stats(ds.name, _runs(out, m, ds.name, seeds), _runs(out, teacher, ds.name, seeds))
            for ds in datasets
        ]
        for m in models
        if m != teacher
    }
    rows = [{"model": m, "dataset": d} | as_row(estimate(s)) for m, d, s in _with_overall(per_model)]
    return pd.DataFrame(rows)


# -- the efficiency grid -------------------------------------------------------------------------------------


def point_eval_dir(run_dir: str | Path, row: dict[str, Any]) -> tuple[Path, str]:
    """(eval folder, model name) holding a grid row's predictions (a reused point: its twin's)."""
    slug = row.get("reused_from") or row["point"]
    return Path(run_dir) / "efficiency" / "points" / slug / "eval", slug


def grid_stats(
    run_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    datasets: Sequence[BenchDataset],
    seeds: Sequence[int],
) -> dict[tuple[str, float], list[Stats]]:
    """Per (selector, budget): one :class:`Stats` per dataset, the grid seeds' runs stacked (each grid
    seed x each demo seed is one run), so the interval covers the mean over seeds as plotted."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("skipped") and r.get("scores"):
            groups.setdefault((r["selector"], float(r["budget"])), []).append(r)
    out: dict[tuple[str, float], list[Stats]] = {}
    for key, members in groups.items():
        folders = [point_eval_dir(run_dir, r) for r in sorted(members, key=lambda x: x["seed"])]
        out[key] = [
            prediction_stats(
                ds, [run for folder, model in folders for run in _runs(folder, model, ds.name, seeds)]
            )
            for ds in datasets
        ]
    return out


def grid_table(stats: dict[tuple[str, float], list[Stats]]) -> pd.DataFrame:
    """selector, budget, score (mean over datasets and seeds), ci_low, ci_high, n."""
    import pandas as pd

    rows = [{"selector": s, "budget": b} | as_row(estimate(parts)) for (s, b), parts in sorted(stats.items())]
    return pd.DataFrame(rows)


def grid_differences(
    stats: dict[tuple[str, float], list[Stats]], selector: str, versus: str, budgets: Sequence[float]
) -> list[Difference]:
    """``selector`` minus ``versus`` at each budget both have (paired over test examples, seeds pooled)."""
    out = []
    for b in budgets:
        a, c = stats.get((selector, float(b))), stats.get((versus, float(b)))
        if a and c:
            out.append(compare(a, c, (selector, versus), f"mean score at budget {b:g}"))
    return out


# -- stage 07 in one call ----------------------------------------------------------------------------------------


@dataclass
class EvalUncertainty:
    """What notebook 07 shows beside its score table: intervals, paired differences, and the verdicts."""

    scores: pd.DataFrame  # model, dataset, score, ci_low, ci_high, n
    differences: pd.DataFrame  # model minus the reference, per dataset and overall
    agreement: pd.DataFrame  # agreement with the teacher's predictions (empty without a teacher)
    heldout: pd.DataFrame  # held-out teacher-answer loss per model (empty without held-out samples)
    sentences: list[str]  # plain-language verdicts


def heldout_stats(out_dir: str | Path, models: Sequence[str]) -> dict[str, Stats]:
    """The held-out loss statistics of every model that has a ``heldout/<model>.jsonl``, on the samples
    all of them scored (so their differences are paired)."""
    rows = {m: read_jsonl(p) for m in models if (p := heldout_path(out_dir, m)).exists()}
    if not rows:
        return {}
    common = set.intersection(*({r["sample_id"] for r in rs} for rs in rows.values()))
    return {m: heldout_loss_stats([r for r in rs if r["sample_id"] in common]) for m, rs in rows.items()}


def evaluation_uncertainty(
    out_dir: str | Path,
    models: Sequence[str],
    datasets: Sequence[BenchDataset],
    seeds: Sequence[int],
    reference: str,
    teacher: str | None = None,
) -> EvalUncertainty:
    """Intervals for every evaluated model, differences against ``reference`` (the base student) on
    SentiBench and on the held-out loss, and agreement with ``teacher`` when it was evaluated."""
    import pandas as pd

    per_model = {m: model_stats(out_dir, m, datasets, seeds) for m in models}
    diffs = differences(per_model, reference) if reference in per_model else []
    held = heldout_stats(out_dir, models)
    held_diffs = [
        compare(s, held[reference], (m, reference), "held-out teacher-answer loss")
        for m, s in held.items()
        if m != reference and reference in held
    ]
    agreement = (
        agreement_table(out_dir, models, teacher, datasets, seeds) if teacher in per_model else pd.DataFrame()
    )
    held_table = pd.DataFrame([{"model": m} | as_row(estimate(s)) for m, s in held.items()])
    sentences = describe_differences(diffs, "points") if diffs else []
    if held_diffs:
        sentences = describe_differences(held_diffs, "nats/token") + sentences
    n_min = min((len(s.uids) for stats in per_model.values() for s in stats), default=0)
    if (warning := smoke_warning(n_min)) is not None:
        sentences.insert(0, warning)
    return EvalUncertainty(
        score_table(per_model), difference_table([*held_diffs, *diffs]), agreement, held_table, sentences
    )


def model_roles(models: dict[str, str]) -> tuple[str | None, str | None]:
    """(reference, teacher) among ``evaluation.models``: the names given to the specs ``student`` (the
    untrained base, what distillation must beat) and ``teacher``."""
    reference = next((name for name, spec in models.items() if spec == "student"), None)
    teacher = next((name for name, spec in models.items() if spec == "teacher"), None)
    return reference, teacher


# -- stage 08 in one call ----------------------------------------------------------------------------------------


@dataclass
class GridUncertainty:
    """What notebook 08 shows: per (selector, budget) the score, held-out loss and teacher agreement with
    95% intervals (seeds pooled), the base student's, and the paired selector comparisons."""

    table: pd.DataFrame  # selector, budget, score, ci_low, ci_high, n (+ heldout_loss*, agreement*)
    differences: pd.DataFrame
    sentences: list[str]
    notes: list[str]


def _stacked(parts: Sequence[Stats]) -> Stats:
    import numpy as np

    first = parts[0]
    if any(p.uids != first.uids for p in parts):
        raise ValueError(f"{first.name}: the seeds were not scored on the same samples")
    values = np.concatenate([p.values for p in parts], axis=0)
    return Stats(first.name, first.kind, first.uids, values, first.scale, first.higher_is_better)


def grid_uncertainty(
    run_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    datasets: Sequence[BenchDataset],
    seeds: Sequence[int],
    compare_budgets: Sequence[float] = (0.1, 0.25),
    teacher_eval: tuple[str | Path, str] | None = None,
) -> GridUncertainty:
    """Intervals for the grid ``rows`` (the current setup's), rank_hard vs random at ``compare_budgets``,
    every trained point vs the base student on the held-out loss, and agreement with the teacher when
    ``teacher_eval`` = (stage 07's eval folder, teacher name) holds predictions on the same prompts."""
    from .efficiency import BASE

    stats = grid_stats(run_dir, rows, datasets, seeds)
    table = grid_table(stats).set_index(["selector", "budget"])
    notes: list[str] = []
    held: dict[tuple[str, float], Stats] = {}
    agree: dict[tuple[str, float], list[Stats]] = {}
    for key in stats:
        members = sorted(
            (r for r in rows if (r["selector"], float(r["budget"])) == key), key=lambda r: r["seed"]
        )
        folders = [point_eval_dir(run_dir, r) for r in members]
        paths = [heldout_path(f, m) for f, m in folders]
        if all(p.exists() for p in paths):
            held[key] = _stacked([heldout_loss_stats(read_jsonl(p)) for p in paths])
        if teacher_eval is not None:
            t_dir, t_name = teacher_eval
            try:
                agree[key] = [
                    agreement_stats(
                        ds.name,
                        [run for f, m in folders for run in _runs(f, m, ds.name, seeds)],
                        [run for _ in folders for run in _runs(Path(t_dir), t_name, ds.name, seeds)],
                    )
                    for ds in datasets
                ]
            except (ValueError, OSError) as err:
                notes.append(f"no teacher agreement for {key}: {err}")
    for col, source in (("heldout_loss", held), ("teacher_agreement", agree)):
        if source:
            table[[col, f"{col}_low", f"{col}_high"]] = float("nan")
        for key, st in source.items():
            est = estimate(st)
            table.loc[key, [col, f"{col}_low", f"{col}_high"]] = [est.score, est.low, est.high]
    diffs = grid_differences(stats, "rank_hard", "random", compare_budgets)
    base_key = (BASE, 0.0)
    if base_key in held:
        diffs += [
            compare(
                st, held[base_key], (f"{k[0]} @ {k[1]:g}", "base student"), "held-out teacher-answer loss"
            )
            for k, st in held.items()
            if k != base_key
        ]
    sentences = (
        describe_differences(diffs) if diffs else ["No rank_hard / random pair at the compared budgets."]
    )
    n_min = min((len(s.uids) for parts in stats.values() for s in parts), default=0)
    if (warning := smoke_warning(n_min)) is not None:
        sentences.insert(0, warning)
    return GridUncertainty(table.reset_index(), difference_table(diffs), sentences, notes)


def grid_uncertainty_for_run(
    params: Params, run_dir: str | Path, setup: str, root: Path | None = None
) -> GridUncertainty:
    """:func:`grid_uncertainty` for stage 08 of a run: its current grid rows, the grid's benchmark, and
    stage 07's teacher predictions for the agreement (when the teacher was evaluated on the same prompts)."""
    from .efficiency import grid_params, read_results
    from .sentibench import load_for_run

    ev = grid_params(params).evaluation
    bench = load_for_run(ev.sentibench_dir, ev.datasets, ev.shots, Path(run_dir), root)
    rows = [r for r in read_results(run_dir) if r.get("setup") == setup]
    _, teacher = model_roles(params.evaluation.models)
    teacher_eval = (Path(run_dir) / "eval", teacher) if teacher else None
    return grid_uncertainty(run_dir, rows, bench.datasets, ev.seeds, teacher_eval=teacher_eval)

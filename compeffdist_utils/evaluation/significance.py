"""Confidence intervals and paired comparisons for stages 07 and 08, read from their prediction files.

Stage 07 writes ``eval/predictions/<model>/<dataset>__seed<S>.jsonl``; every grid point of stage 08
writes the same under ``efficiency/points/<point>/eval``. Everything here is computed from those files
and the benchmark's gold answers, so intervals can be added to a finished run without rerunning a model.
The statistics are :mod:`compeffdist_utils.stats.uncertainty`'s; the held-out loss and teacher agreement
are :mod:`.heldout`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.evaluation.heldout import agreement_stats, heldout_loss_stats, heldout_path
from compeffdist_utils.evaluation.predictions import load_predictions
from compeffdist_utils.evaluation.scoring import metric_inputs
from compeffdist_utils.stats import uncertainty as bootstrap

if TYPE_CHECKING:
    from compeffdist_utils.sentibench import BenchDataset

OVERALL = "overall"


def prediction_stats(ds: BenchDataset, runs: Sequence[Sequence[dict[str, Any]]]) -> bootstrap.Stats:
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
    return bootstrap.metric_stats(ds.name, ds.spec.metric, uids, gold_pred)


def prediction_runs(
    out_dir: Path, model: str, dataset: str, seeds: Sequence[int]
) -> list[list[dict[str, Any]]]:
    return [load_predictions(out_dir, model, dataset, s) for s in seeds]


def model_stats(
    out_dir: str | Path, model: str, datasets: Sequence[BenchDataset], seeds: Sequence[int]
) -> list[bootstrap.Stats]:
    """One :class:`Stats` per dataset for a model evaluated into ``out_dir`` (stage 07's ``eval/``)."""
    return [prediction_stats(ds, prediction_runs(Path(out_dir), model, ds.name, seeds)) for ds in datasets]


def _with_overall(
    per_model: dict[str, list[bootstrap.Stats]],
) -> list[tuple[str, str, bootstrap.Stats | list[bootstrap.Stats]]]:
    rows: list[tuple[str, str, bootstrap.Stats | list[bootstrap.Stats]]] = []
    for model, stats in per_model.items():
        rows += [(model, s.name, s) for s in stats]
        if len(stats) > 1:
            rows.append((model, OVERALL, stats))
    return rows


def score_table(per_model: dict[str, list[bootstrap.Stats]]) -> pd.DataFrame:
    """model, dataset, score, ci_low, ci_high, n: every score with its 95% interval (and the overall)."""
    rows = [
        {"model": m, "dataset": d} | bootstrap.as_row(bootstrap.estimate(s))
        for m, d, s in _with_overall(per_model)
    ]
    return pd.DataFrame(rows)


def differences(per_model: dict[str, list[bootstrap.Stats]], reference: str) -> list[bootstrap.Difference]:
    """Every other model minus ``reference``, per dataset and overall (paired over test examples)."""
    if reference not in per_model:
        raise ValueError(f"no predictions of the reference model {reference!r}; have {sorted(per_model)}")
    ref = {s.name: s for s in per_model[reference]}
    out = []
    for model, stats in per_model.items():
        if model == reference:
            continue
        for s in stats:
            out.append(bootstrap.compare(s, ref[s.name], (model, reference), s.name))
        if len(stats) > 1:
            out.append(bootstrap.compare(stats, [ref[s.name] for s in stats], (model, reference), OVERALL))
    return out


def difference_table(diffs: Sequence[bootstrap.Difference]) -> pd.DataFrame:
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
    out = Path(out_dir)
    per_model = {
        m: [
            agreement_stats(
                ds.name,
                prediction_runs(out, m, ds.name, seeds),
                prediction_runs(out, teacher, ds.name, seeds),
            )
            for ds in datasets
        ]
        for m in models
        if m != teacher
    }
    rows = [
        {"model": m, "dataset": d} | bootstrap.as_row(bootstrap.estimate(s))
        for m, d, s in _with_overall(per_model)
    ]
    return pd.DataFrame(rows)


# -- stage 07 in one call ----------------------------------------------------------------------------------------


@dataclass
class EvalUncertainty:
    """What notebook 07 shows beside its score table: intervals, paired differences, and the verdicts."""

    scores: pd.DataFrame  # model, dataset, score, ci_low, ci_high, n
    differences: pd.DataFrame  # model minus the reference, per dataset and overall
    agreement: pd.DataFrame  # agreement with the teacher's predictions (empty without a teacher)
    heldout: pd.DataFrame  # held-out teacher-answer loss per model (empty without held-out samples)
    sentences: list[str]  # plain-language verdicts

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by the names the stage saves them under."""
        return {
            "scores_ci": self.scores,
            "differences_ci": self.differences,
            "teacher_agreement_ci": self.agreement,
            "heldout_loss_ci": self.heldout,
        }


def heldout_stats(out_dir: str | Path, models: Sequence[str]) -> dict[str, bootstrap.Stats]:
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
    reference: str | None,
    teacher: str | None = None,
) -> EvalUncertainty:
    """Intervals for every evaluated model, differences against ``reference`` (the base student) on
    SentiBench and on the held-out loss, and agreement with ``teacher`` when it was evaluated."""
    per_model = {m: model_stats(out_dir, m, datasets, seeds) for m in models}
    diffs = differences(per_model, reference) if reference in per_model else []
    held = heldout_stats(out_dir, models)
    held_diffs = [
        bootstrap.compare(s, held[reference], (m, reference), "held-out teacher-answer loss")
        for m, s in held.items()
        if m != reference and reference in held
    ]
    agreement = (
        agreement_table(out_dir, models, teacher, datasets, seeds) if teacher in per_model else pd.DataFrame()
    )
    held_table = pd.DataFrame(
        [{"model": m} | bootstrap.as_row(bootstrap.estimate(s)) for m, s in held.items()]
    )
    sentences = bootstrap.describe_differences(diffs, "points") if diffs else []
    if held_diffs:
        sentences = bootstrap.describe_differences(held_diffs, "nats/token") + sentences
    n_min = min((len(s.uids) for stats in per_model.values() for s in stats), default=0)
    if (warning := bootstrap.smoke_warning(n_min)) is not None:
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


def evaluation_uncertainty_for_run(
    params: Params, out_dir: str | Path, results: pd.DataFrame, datasets: Sequence[BenchDataset]
) -> EvalUncertainty:
    """:func:`evaluation_uncertainty` for stage 07 of a run: the models in ``results``, compared with the
    untrained student and the teacher named in ``evaluation.models`` (:func:`model_roles`)."""
    reference, teacher = model_roles(params.evaluation.models)
    models = list(dict.fromkeys(results["model"]))
    return evaluation_uncertainty(out_dir, models, datasets, params.evaluation.seeds, reference, teacher)

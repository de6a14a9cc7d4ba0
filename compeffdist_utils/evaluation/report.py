"""What notebook 07 shows and records, read back from the results and the saved predictions.

Kept apart from :mod:`.evaluate` (which runs models), so the notebook's report can be rebuilt from the
run folder alone, without loading a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from compeffdist_utils.core.config import EvaluationParams
from compeffdist_utils.evaluation.predictions import load_predictions, prediction_path
from compeffdist_utils.models.batching import batch_reports
from compeffdist_utils.sentibench import GROUPS, BenchDataset, Benchmark, build_prompts, test_subset
from compeffdist_utils.stage.stage import Stage


def benchmark_note(bench: Benchmark) -> str:
    """Where the benchmark comes from (in bold when it is the fallback, with the records it skipped)."""
    if not bench.fallback:
        return bench.note
    skipped = f"\n\nHeld-out records skipped: {bench.skipped}" if any(bench.skipped.values()) else ""
    return f"**{bench.note}**{skipped}"


def settings_line(settings: EvaluationParams) -> str:
    return (
        f"models: {settings.models}; demo seeds: {settings.seeds}; shots: {settings.shots}; "
        f"max prompt tokens: {settings.max_prompt_tokens}"
    )


def scores_heading(bench: Benchmark) -> str:
    return "### Scores (x100, mean over demo seeds)" + (
        " — FALLBACK, not SentiBench" if bench.fallback else ""
    )


def benchmark_overview(datasets: Sequence[BenchDataset], settings: EvaluationParams) -> pd.DataFrame:
    """One row per dataset: its group, task kind, metric, and how many examples are evaluated and drawn from."""
    rows = [
        {
            "dataset": d.name,
            "group": d.spec.group,
            "task": d.spec.kind,
            "metric": d.spec.metric,
            "test set": len(d.test),
            "evaluated": len(test_subset(d, settings.n_test, settings.subset_seed)),
            "demo pool": len(d.demos),
        }
        for d in datasets
    ]
    return pd.DataFrame(rows).set_index("dataset")


def example_prompts(datasets: Sequence[BenchDataset], settings: EvaluationParams) -> list[str]:
    """One prompt of each task kind, exactly as the model is given it (first demo seed), headed by its
    dataset and gold answer; a very long one is shown by its two ends."""
    shown = []
    for kind in ("classification", "extraction"):
        ds = next((d for d in datasets if d.spec.kind == kind), None)
        if ds is None:
            continue
        examples = test_subset(ds, 1, settings.subset_seed)
        prompt = build_prompts(ds, examples, settings.seeds[0], settings.shots, protocol=settings.protocol)[0]
        text = prompt.text
        if len(text) >= 4000:
            text = text[:1800] + "\n[...]\n" + text[-1800:]
        shown.append(f"===== {ds.name} ({kind}); gold: {prompt.example.gold} =====\n{text}\n")
    return shown


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Datasets x models (mean score over seeds), then one row per group mean and the overall mean.

    Group and overall means are plain means of the dataset means, as in the paper.
    """
    if results.empty:
        return pd.DataFrame(columns=["group"])
    models = list(dict.fromkeys(results["model"]))
    per = results.groupby(["dataset", "group", "model"], sort=False)["score"].mean().unstack("model")[models]
    per = per.reset_index().set_index("dataset")
    groups = [g for g in (*GROUPS, *sorted(set(per["group"]) - set(GROUPS))) if g in set(per["group"])]
    means = [per[per["group"] == g][models].mean().rename(f"mean: {g}") for g in groups]
    overall = per[models].mean().rename("overall")
    tail = pd.DataFrame([*means, overall])
    tail.insert(0, "group", [*groups, "all"])
    return pd.concat([per, tail]).round(2).rename_axis("row")


def save_results(stage: Stage, results: pd.DataFrame) -> pd.DataFrame:
    """Write the result rows and their summary (``eval/results.csv``, ``eval/summary.csv``, and the
    stage's tables when a model was evaluated); returns the summary."""
    results.to_csv(stage.output("eval/results.csv"), index=False)
    summary = summarise(results)
    summary.to_csv(stage.output("eval/summary.csv"))
    if not results.empty:
        stage.output("eval/predictions")
        stage.save_table(summary, "summary")
        stage.save_table(results.set_index(["model", "dataset", "seed"]), "results")
    return summary


def predictions_frame(out_dir: Path, results: pd.DataFrame) -> pd.DataFrame:
    """Every saved prediction of the evaluated (model, dataset, seed) rows, one row each."""
    frames = []
    for model, dataset, seed in results[["model", "dataset", "seed"]].itertuples(index=False):
        if prediction_path(out_dir, model, dataset, seed).is_file():
            recs = load_predictions(out_dir, model, dataset, seed)
            frame = pd.DataFrame(recs).drop(columns="prompt", errors="ignore")  # large; stays in the file
            frames.append(frame.assign(model=model, dataset=dataset, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def parse_failure_table(results: pd.DataFrame, preds: pd.DataFrame) -> pd.DataFrame:
    """Per model and JSON task: answers that did not parse, that parsed only via the [...] fallback,
    and answer objects dropped for missing fields."""
    gen = results[results["metric"] != "macro_f1"] if not results.empty else results
    if gen.empty:
        return pd.DataFrame()
    agg = gen.groupby(["model", "dataset"], sort=False)[
        ["n_examples", "parse_failures", "invalid_items"]
    ].sum()
    status = preds[preds["dataset"].isin(set(gen["dataset"]))]
    fallback = status[status["parse_status"] == "fallback"].groupby(["model", "dataset"]).size()
    agg["parsed via fallback"] = fallback.reindex(agg.index).fillna(0).astype(int)
    agg["parse failure rate %"] = (100 * agg["parse_failures"] / agg["n_examples"]).round(1)
    return agg


def wrong_answers(preds: pd.DataFrame, per_dataset: int = 2) -> pd.DataFrame:
    """A few wrong predictions per (model, dataset), first demo seed only."""
    if preds.empty:
        return preds
    first = preds[preds["seed"] == preds.groupby(["model", "dataset"])["seed"].transform("min")]
    cols = [c for c in ("model", "dataset", "sentence", "target", "gold", "prediction", "raw") if c in first]
    wrong = first[~first["correct"].astype(bool)]
    return wrong.groupby(["model", "dataset"], sort=False).head(per_dataset)[cols]


def stage_notes(
    bench: Benchmark, results: pd.DataFrame, skipped: dict[str, str], summary: pd.DataFrame
) -> dict[str, Any]:
    """What the stage record keeps: the benchmark, the models evaluated and skipped, the overall scores,
    the counts of parse failures and cut prompts, and the batch sizes used (``evaluation.batch_size: auto``
    picks them; one line per job and model)."""
    overall = (
        {m: float(v) for m, v in summary.loc["overall"].drop("group").items()}
        if "overall" in summary.index
        else {}
    )
    return {
        "benchmark": "fallback" if bench.fallback else "sentibench",
        "fallback": bench.fallback,
        "fallback_note": bench.note if bench.fallback else None,
        "datasets": [d.name for d in bench.datasets],
        "n_models": int(results["model"].nunique()) if not results.empty else 0,
        "n_models_skipped": len(skipped),
        "models_skipped": skipped,
        "overall": overall,
        "parse_failures": int(results["parse_failures"].sum()) if not results.empty else 0,
        "truncated_prompts": int(results["truncated_prompts"].sum()) if not results.empty else 0,
        "batch_sizes": {k: r["line"] for k, r in batch_reports().items()},
    }

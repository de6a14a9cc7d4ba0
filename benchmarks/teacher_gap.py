"""The teacher-student gap on the study's evaluation: specialist teacher vs base student vs plain 135M teacher.

Issue 22 item 2. The evaluation is the study preset's (``params/study.yaml``): the authors' protocol, 4-shot,
first-token label logits, ``--n-test`` examples (default 200, the same subset for every model) of each of
the study's classification sets, and the protocol's three demo seeds (42, 52, 62). Scores are macro-F1 x100
(as stage 07). Intervals are 95% percentile bootstraps that resample the test examples AND the demo seeds
(``stats.uncertainty`` with ``resample_runs``), so the demo-draw variance is carried into every interval;
differences are paired (same examples, same demo draws, same resamples).

Models (``--models`` picks some; each one's predictions are kept in ``--out`` and reused by ``--table``):

- ``specialist_teacher``: ``embedded:smollm2-135m-sentiment`` (models/specialist.py);
- ``base_student``: the study preset's student (SmolLM2 depth-pruned to 15 layers);
- ``plain_teacher``: ``embedded:smollm2-135m-instruct``.

    nice -n 10 .venv/bin/python benchmarks/teacher_gap.py [--models base_student plain_teacher]
        [--out /tmp/teacher_gap] [--n-test 200] [--datasets sc/sst2 ...] [--table] [--ask]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import pandas as pd
from _common import machine_line

from compeffdist_utils.core.config import EMBEDDED_CAUSAL_LM, EMBEDDED_SPECIALIST, load_params
from compeffdist_utils.evaluation import evaluate_model
from compeffdist_utils.evaluation.significance import model_stats
from compeffdist_utils.models import load_causal_lm
from compeffdist_utils.sentibench import load_sentibench, resolve_sentibench_dir
from compeffdist_utils.stats import uncertainty as bootstrap
from compeffdist_utils.student_training.inference import chat_answers

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [42, 52, 62]
REFERENCE = "base_student"
# Free-form questions of the kinds the method's teacher is asked (no SentiBench text): does the model still
# answer them, or only print a label?
QUESTIONS = [
    "Which aspects of the film does this review evaluate, and how? Review: The plot drags in the middle, "
    "but the acting is superb and the soundtrack is unforgettable.",
    "Write one sentence explaining why this tweet is negative: my flight was delayed three hours and "
    "nobody at the gate would tell us anything",
    'Return a JSON object with keys "aspect" and "opinion" for: The battery lasts all day but the screen '
    "scratches easily.",
]


def model_specs(params) -> dict[str, str]:
    return {
        "specialist_teacher": EMBEDDED_SPECIALIST,
        "base_student": params.models.student,
        "plain_teacher": EMBEDDED_CAUSAL_LM,
    }


def run_models(names, params, datasets, out: Path) -> None:
    """Evaluate each named model on every dataset x demo seed; predictions go to ``out``."""
    specs = model_specs(params)
    for name in names:
        t0 = time.time()
        model, tok = load_causal_lm(specs[name], params)
        df = evaluate_model(model, tok, datasets, params.evaluation, out, name, progress=False)
        seconds = round(time.time() - t0, 1)
        (out / f"{name}.json").write_text(json.dumps({"spec": specs[name], "seconds": seconds}) + "\n")
        print(f"{name}: {seconds} s", df[["dataset", "seed", "score"]].to_string(index=False), sep="\n")
        del model, tok
        gc.collect()


def ask(names, params) -> None:
    """Print each model's greedy answers to :data:`QUESTIONS` (chat template, 80 new tokens)."""
    specs = model_specs(params)
    for name in names:
        model, tok = load_causal_lm(specs[name], params)
        for q, a in zip(QUESTIONS, chat_answers(model, tok, QUESTIONS, max_new_tokens=80), strict=True):
            print(f"--- {name}\nQ: {q}\nA: {a}\n")
        del model, tok
        gc.collect()


def tables(names, datasets, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores with CIs, differences against the base student with CIs), overall rows included."""
    stats = {n: model_stats(out, n, datasets, SEEDS) for n in names}
    rows = []
    for name, per_ds in stats.items():
        for part, label in [*((s, s.name) for s in per_ds), (per_ds, "overall")]:
            est = bootstrap.estimate(part, resample_runs=True)
            rows.append(
                {"model": name, "dataset": label, "n": est.n}
                | {"score": est.score, "ci_low": est.low, "ci_high": est.high}
            )
    diffs = []
    pairs = [(a, REFERENCE) for a in names if a != REFERENCE and REFERENCE in names]
    if {"specialist_teacher", "plain_teacher"} <= set(names):
        pairs.append(("specialist_teacher", "plain_teacher"))
    for a, b in pairs:
        for i, ds in enumerate(datasets):
            d = bootstrap.compare(stats[a][i], stats[b][i], (a, b), ds.name, resample_runs=True)
            diffs.append(d)
        diffs.append(bootstrap.compare(stats[a], stats[b], (a, b), "overall", resample_runs=True))
    diff_rows = [
        {
            "model": d.a,
            "minus": d.b,
            "dataset": d.measure,
            "difference": d.diff,
            "ci_low": d.low,
            "ci_high": d.high,
        }
        | {"ci_excludes_0": d.significant}
        for d in diffs
    ]
    return pd.DataFrame(rows), pd.DataFrame(diff_rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["specialist_teacher", "base_student", "plain_teacher"])
    ap.add_argument("--out", type=Path, default=Path("/tmp/teacher_gap"))
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument(
        "--datasets", nargs="*", help="evaluate only these (e.g. one per process); the table reads all"
    )
    ap.add_argument("--table", action="store_true", help="only print the table from the saved predictions")
    ap.add_argument(
        "--ask", action="store_true", help="only print the models' answers to free-form questions"
    )
    args = ap.parse_args()
    overrides = {"evaluation.seeds": SEEDS, "evaluation.n_test": args.n_test}
    params = load_params(ROOT / "params" / "study.yaml", overrides)
    ep = params.evaluation
    datasets = load_sentibench(resolve_sentibench_dir(ep.sentibench_dir, ROOT), ep.datasets)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.ask:
        ask(args.models, params)
        return
    if not args.table:
        chosen = [d for d in datasets if not args.datasets or d.name in args.datasets]
        run_models(args.models, params, chosen, args.out)
    have = [n for n in model_specs(params) if all((args.out / "predictions" / n).glob("*"))]
    have = [n for n in have if (args.out / f"{n}.json").exists()]
    scores, diffs = tables(have, datasets, args.out)
    print(
        f"\n{machine_line()}; protocol {ep.protocol}, {ep.shots}-shot, demo seeds {SEEDS}, n_test {args.n_test}"
    )
    print("95% CIs resample test examples and demo seeds (paired differences)\n")
    with pd.option_context("display.width", 200):
        print(scores.round(1).to_string(index=False), "\n")
        print(diffs.round(1).to_string(index=False))
    scores.to_csv(args.out / "scores.csv", index=False)
    diffs.to_csv(args.out / "differences.csv", index=False)


if __name__ == "__main__":
    main()

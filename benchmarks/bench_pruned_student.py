"""Which pruned student shows distillation best? Layers kept x LoRA vs full fine-tuning, measured.

The teacher is the embedded SmolLM2-135M (30 layers). Each candidate student keeps ``--keep`` layers
(``pruning.kept_layers``, rule spread) and is trained for ``--steps`` optimiser steps on the teacher's
answers to ``--train`` distillation-style samples (analysis prompts on packaged corpus texts, answered
through the kit's cached teacher backend), then measured against its untrained self on

- the loss on ``--heldout`` teacher answers never trained on (paired bootstrap over samples);
- SentiBench macro-F1 (4-shot, ``--n-test`` examples per set, paired bootstrap over examples);
- agreement with the teacher's predictions on the same prompts.

It prints one line per (keep, method) with the before/after figures and whether each difference is
significant, and the seconds per training step (what a study preset can afford on this CPU).

    .venv/bin/python benchmarks/bench_pruned_student.py [--keep 15 20 24] [--methods lora full]
        [--train 96] [--heldout 32] [--steps 24] [--n-test 100] [--datasets sc/sst2 sc/twitter]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import machine_line

from compeffdist_utils import sentibench as sb
from compeffdist_utils.core.config import EMBEDDED_CAUSAL_LM, params_from_dict
from compeffdist_utils.environment_and_corpus.corpus import load_corpus
from compeffdist_utils.evaluation.evaluate import evaluate_model
from compeffdist_utils.evaluation.heldout import heldout_loss_stats, teacher_answer_nll
from compeffdist_utils.evaluation.significance import model_stats
from compeffdist_utils.models import load_causal_lm
from compeffdist_utils.stats.uncertainty import compare, estimate
from compeffdist_utils.student_training.training import train_student
from compeffdist_utils.teacher.backends import make_teacher

SENTIBENCH = "/work/shared/sentibench" if Path("/work/shared/sentibench").is_dir() else "../shared/sentibench"
PROMPTS = [
    "What is the overall sentiment of the text? Answer with one word, then explain in one sentence.",
    "Please analyze the emotions the author expresses and how strong they are.",
    "Which aspects does the text evaluate, and is each one positive or negative?",
    "Is the text sarcastic? Say yes or no and give the reason.",
]
LR = {"lora": 1e-3, "full": 1e-4}


def build_records(params, n: int) -> list[dict]:
    texts, _, _ = load_corpus(
        params.corpus.model_copy(update={"per_domain": {"rotten_tomatoes": n, "tweets": n}, "max_chars": 300})
    )
    pool = list(texts["text"])[: 2 * n]
    return [
        {"sample_id": f"p{i}", "instruction": f"{PROMPTS[i % len(PROMPTS)]}\n\nInput: {pool[i]}"}
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=int, nargs="+", default=[15, 20, 24])
    ap.add_argument("--methods", nargs="+", default=["lora", "full"])
    ap.add_argument("--train", type=int, default=96)
    ap.add_argument("--heldout", type=int, default=32)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--datasets", nargs="+", default=["sc/sst2", "sc/twitter"])
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--skip-teacher", action="store_true", help="do not evaluate the teacher itself")
    args = ap.parse_args()

    load_before = os.getloadavg()
    base = {
        "models": {"teacher": {"batch_size": 8}},
        "evaluation": {"datasets": args.datasets, "n_test": args.n_test, "seeds": [42], "batch_size": 8},
        "training": {
            "max_length": 384,
            "per_device_batch_size": 4,
            "epochs": 100,
            "max_steps": args.steps,
            "eval_fraction": 0.0,
            "save_steps": 10_000,
        },
    }
    params = params_from_dict(base)
    records = build_records(params, args.train + args.heldout)
    t0 = time.perf_counter()
    teacher = make_teacher(params)
    decoding = params.distill_data.decoding.model_copy(update={"max_new_tokens": args.max_new_tokens})
    answers = teacher.chat([r["instruction"] for r in records], decoding, desc="teacher answers")
    for r, a in zip(records, answers, strict=True):
        r["output"] = a
    teacher_s = time.perf_counter() - t0
    train, held = records[: args.train], records[args.train :]
    bench = sb.load_sentibench(SENTIBENCH, args.datasets)
    ep = params.evaluation

    def measure(model, tok, name: str, out: Path) -> tuple:
        evaluate_model(model, tok, bench, ep, out, name, progress=False)
        nll = heldout_loss_stats(teacher_answer_nll(model, tok, held, 384))
        return model_stats(out, name, bench, ep.seeds), nll

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        print(
            f"machine: {machine_line()}; teacher answers: {len(records)} in {teacher_s:.0f} s (cached on rerun)"
        )
        if not args.skip_teacher:
            tm, tt = load_causal_lm(EMBEDDED_CAUSAL_LM, params, device="cpu")
            t_scores, t_nll = measure(tm, tt, "teacher", out)
            del tm
            print(
                f"teacher: score {estimate(t_scores).score:.1f} (mean of {', '.join(args.datasets)}), "
                f"held-out loss {estimate(t_nll).score:.3f}",
                flush=True,
            )
        for keep in args.keep:
            spec = f"{EMBEDDED_CAUSAL_LM}#keep_layers={keep}"
            for method in args.methods:
                p = params_from_dict(
                    base
                    | {"models": {"student": spec}}
                    | {"training": base["training"] | {"method": method, "learning_rate": LR[method]}}
                )
                model, tok = load_causal_lm(spec, p, device="cpu")
                b_scores, b_nll = measure(model, tok, f"base{keep}{method}", out)
                res = train_student(train, p, out / f"train{keep}{method}", base=(model, tok), resume=False)
                d_scores, d_nll = measure(model, tok, f"dist{keep}{method}", out)
                dl = compare(d_nll, b_nll, ("distilled", "base"))
                ds_ = compare(d_scores, b_scores, ("distilled", "base"))
                per_ds = [compare(a, b) for a, b in zip(d_scores, b_scores, strict=True)]
                print(
                    f"keep {keep:2d} {method:4s}: {res.train_seconds / max(res.global_step, 1):5.2f} s/step; "
                    f"held-out loss {estimate(b_nll).score:.3f} -> {estimate(d_nll).score:.3f} "
                    f"(diff {dl.diff:+.3f} [{dl.low:+.3f}, {dl.high:+.3f}] {'SIG' if dl.significant else 'n.s.'}); "
                    f"score {estimate(b_scores).score:.1f} -> {estimate(d_scores).score:.1f} "
                    f"(diff {ds_.diff:+.1f} [{ds_.low:+.1f}, {ds_.high:+.1f}] {'SIG' if ds_.significant else 'n.s.'}; "
                    + ", ".join(
                        f"{s.name} {d.diff:+.1f}{'*' if d.significant else ''}"
                        for s, d in zip(d_scores, per_ds, strict=True)
                    )
                    + ")",
                    flush=True,
                )
                del model, tok
    load = " / ".join(f"{x:.1f}" for x in load_before + os.getloadavg())
    print(f"load average before/after: {load}")


if __name__ == "__main__":
    main()

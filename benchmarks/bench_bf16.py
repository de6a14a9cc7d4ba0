"""bf16 vs fp32 forward passes, in one run: the difficulty scorer and the classification evaluation.

``dtype: auto`` picks bf16 only on hardware that runs it natively (``models.fast_bf16``: AMX or
AVX512-BF16 on CPU). This script is the measurement behind that rule and behind using bf16 in a preset:
the criterion is **>= 2x faster, >= 98% identical predictions, rank-score Spearman >= 0.99**. It
prints the CPU's bf16 flags, what ``auto`` resolves to here, the two speedups, the agreement of the
predictions, the Spearman correlation of the rank scores, and a verdict per criterion.

Modes alternate ``--repeats`` times and the best CPU time (all threads) of each counts: on a shared
machine wall time measures the other jobs too.

    .venv/bin/python benchmarks/bench_bf16.py [--samples 48] [--tokens 120] [--prompts 48] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import machine_line
from bench_difficulty import build_samples

from compeffdist_utils import sentibench as sb
from compeffdist_utils.core.config import DifficultyParams, Params
from compeffdist_utils.difficulty_selection.dataset_scores import score_dataset
from compeffdist_utils.evaluation import generation as ev
from compeffdist_utils.models import BF16_CPU_FLAGS, cpu_flags, load_causal_lm, resolve_dtype

SENTIBENCH = Path(__file__).resolve().parents[2] / "shared" / "sentibench"
DTYPES = ("float32", "bfloat16")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48, help="scorer: distillation-like samples")
    ap.add_argument("--tokens", type=int, default=120, help="scorer: response tokens per sample")
    ap.add_argument("--prompts", type=int, default=48, help="evaluation: 4-shot prompts per dataset")
    ap.add_argument("--datasets", nargs="+", default=["sc/sst2", "sc/twitter"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sentibench", default=str(SENTIBENCH))
    args = ap.parse_args()

    import torch
    from scipy.stats import spearmanr

    load_before = os.getloadavg()
    params = Params()
    models = {
        d: load_causal_lm("embedded:smollm2-135m-instruct", params, dtype=d, device="cpu") for d in DTYPES
    }
    tok = models["float32"][1]
    samples = build_samples(args.samples, args.tokens)
    jobs = []
    for ds in sb.load_sentibench(args.sentibench, args.datasets):
        prompts = sb.build_prompts(ds, sb.test_subset(ds, args.prompts, 42), 42, 4, tok, 2048)
        jobs.append(([p.text for p in prompts], ev.label_token_ids(tok, ds.spec.labels, ds.name)))

    def score(d: str) -> list[float]:
        model, t = models[d]
        settings = DifficultyParams(batch_size=args.batch_size, dtype=d)
        return [
            r["rank"] for r in score_dataset(samples, model, t, settings, cache_path=None, progress=False)
        ]

    def classify(d: str) -> list[int]:
        model, t = models[d]
        return [p for texts, ids in jobs for p in ev.classify(model, t, texts, ids, args.batch_size)[0]]

    # CPU seconds (all threads), not wall time: on a shared machine the wall clock measures the others too.
    best = {(task, d): float("inf") for task in ("scorer", "evaluation") for d in DTYPES}
    out: dict[tuple[str, str], list] = {}
    for d in DTYPES:  # warm-up
        ev.classify(*models[d], jobs[0][0][:2], jobs[0][1], batch_size=2)
    for _ in range(args.repeats):
        for task, fn in (("scorer", score), ("evaluation", classify)):
            for d in DTYPES:
                t0 = time.process_time()
                out[(task, d)] = fn(d)
                best[(task, d)] = min(best[(task, d)], time.process_time() - t0)

    flags = sorted(cpu_flags() & set(BF16_CPU_FLAGS))
    load = " / ".join(f"{x:.1f}" for x in load_before + os.getloadavg())
    print(
        f"machine: {machine_line()}; torch threads {torch.get_num_threads()}; load average before/after {load}"
    )
    print(f"bf16 CPU flags: {flags or 'none'} -> dtype auto resolves to {resolve_dtype('auto', 'cpu')}")
    n_prompts = sum(len(t) for t, _ in jobs)
    print(
        f"scorer: {len(samples)} samples x ~{args.tokens} response tokens; evaluation: {n_prompts} prompts "
        f"({', '.join(args.datasets)}); batch {args.batch_size}; best of {args.repeats} alternating runs"
    )
    for task in ("scorer", "evaluation"):
        fp32, bf16 = best[(task, "float32")], best[(task, "bfloat16")]
        print(
            f"  {task:10s} fp32 {fp32:6.1f} CPU s  bf16 {bf16:6.1f} CPU s  speedup {fp32 / bf16:4.2f}x (target >= 2x)"
        )
    rho = float(spearmanr(out[("scorer", "float32")], out[("scorer", "bfloat16")]).statistic)
    a, b = out[("evaluation", "float32")], out[("evaluation", "bfloat16")]
    same = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    print(f"  rank-score Spearman fp32 vs bf16: {rho:.4f} (target >= 0.99)")
    print(f"  identical evaluation predictions: {same:.1%} (target >= 98%)")
    verdict = {
        "scorer >= 2x": best[("scorer", "float32")] / best[("scorer", "bfloat16")] >= 2,
        "evaluation >= 2x": best[("evaluation", "float32")] / best[("evaluation", "bfloat16")] >= 2,
        "predictions >= 98% identical": same >= 0.98,
        "Spearman >= 0.99": rho >= 0.99,
    }
    print("verdict: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in verdict.items()))
    print("use bf16 here: " + ("yes" if all(verdict.values()) else "no (keep fp32 / dtype auto)"))


if __name__ == "__main__":
    main()

"""Difficulty scoring: the fast scorer against the literal reference, SmolLM2-135M on this CPU.

256 samples whose outputs are ~200 tokens (IMDB reviews cut to 200 tokens stand in for teacher
answers; the instructions are analysis prompts on Rotten Tomatoes snippets). Each scorer runs in its
own child process, so peak memory is measured separately (peak RSS, and its growth after the model is
loaded and warmed up). Prints samples/s, tokens/s (response tokens), peak memory, the speedup
(target >= 10x) and the largest |rank score difference| (target < 1e-5).

The fast scorer computes more than the reference: rank, PPL(y|x) AND the second pass for PPL(y)/IFD;
the reference computes the rank score only, as the authors' script does. ``--reference-samples N``
times the reference on the first N samples only (it scores one sample at a time, so its rate does not
depend on N); the score difference is then taken over those N. Wall and CPU seconds are both printed:
on a shared machine, ``--threads 1`` makes CPU seconds a fair measure of the work each scorer does.

    .venv/bin/python benchmarks/bench_difficulty.py [--samples 256] [--tokens 200] [--batch-size 8]
        [--reference-samples 256] [--threads 0] [--fast-dtype float32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_line, peak_rss_mb

PROMPTS = [
    "Please analyze the overall sentiment of the text and explain what drives it.",
    "How intense are the emotions expressed in the text? Point to the words that show it.",
    "What does the author think about the acting, and how can you tell?",
    "Which aspects of the film does the text evaluate, and with what polarity?",
]


def build_samples(n: int, n_tokens: int) -> list[dict]:
    from compeffdist_utils.core.config import Params
    from compeffdist_utils.environment_and_corpus.corpus import load_corpus
    from compeffdist_utils.models import load_tokenizer

    params = Params()
    tok = load_tokenizer("embedded:smollm2-135m-instruct", params)
    texts, _, _ = load_corpus(
        params.corpus.model_copy(
            update={"per_domain": {"imdb": 3 * n, "rotten_tomatoes": n}, "max_chars": 4000}
        )
    )
    reviews = [t for t in texts[texts["domain"] == "imdb"]["text"] if len(tok(t)["input_ids"]) >= n_tokens]
    snippets = list(texts[texts["domain"] == "rotten_tomatoes"]["text"])
    if len(reviews) < n or len(snippets) < n:
        sys.exit(f"the embedded corpus gave only {len(reviews)} long reviews / {len(snippets)} snippets")
    samples = []
    for i in range(n):
        output = tok.decode(tok(reviews[i])["input_ids"][:n_tokens])
        instruction = f"{PROMPTS[i % len(PROMPTS)]}\n\nInput: {snippets[i]}"
        samples.append({"sample_id": f"b{i}", "instruction": instruction, "output": " " + output})
    return samples


def worker(mode: str, samples_path: Path, out_path: Path, batch_size: int, threads: int, dtype: str) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)

    from compeffdist_utils.core.config import DifficultyParams, Params
    from compeffdist_utils.difficulty_selection.dataset_scores import score_dataset
    from compeffdist_utils.difficulty_selection.reference import reference_rank_score, reference_token_scores
    from compeffdist_utils.difficulty_selection.scoring import encode_pairs
    from compeffdist_utils.models import load_causal_lm

    samples = json.loads(samples_path.read_text())
    dtype = dtype if mode == "fast" else "float32"  # the reference is the authors' fp32 script
    model, tok = load_causal_lm("embedded:smollm2-135m-instruct", Params(), dtype=dtype, device="cpu")
    settings = DifficultyParams(batch_size=batch_size, dtype=dtype)
    warm = samples[:2]
    if mode == "fast":
        score_dataset(warm, model, tok, settings, cache_path=None, progress=False)
    else:
        reference_token_scores(model, tok, warm[0]["instruction"], warm[0]["output"])
    rss_loaded = peak_rss_mb()
    t0, cpu0 = time.perf_counter(), time.process_time()
    pass_seconds = {"conditional": 0.0, "unconditional": 0.0}
    if mode == "fast":
        from compeffdist_utils.difficulty_selection import scoring as difficulty

        real_pass = difficulty.response_token_stats

        def timed_pass(*args, **kwargs):  # splits the time between the two forward passes
            start = time.perf_counter()
            out = real_pass(*args, **kwargs)
            which = "conditional" if kwargs.get("need_rank", True) else "unconditional"
            pass_seconds[which] += time.perf_counter() - start
            return out

        difficulty.response_token_stats = timed_pass
        rows = score_dataset(samples, model, tok, settings, cache_path=None, progress=True)
        ranks = [r["rank"] for r in rows]
    else:
        ranks = []
        for i, s in enumerate(samples, 1):
            ranks.append(
                reference_rank_score(reference_token_scores(model, tok, s["instruction"], s["output"]))
            )
            if i % 16 == 0:
                print(f"reference: {i}/{len(samples)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    pairs = encode_pairs(tok, [s["instruction"] for s in samples], [s["output"] for s in samples])
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "pass_seconds": pass_seconds,
        "ranks": ranks,
        "response_tokens": sum(len(y) for _, y in pairs),
        "mean_instruction_tokens": sum(len(x) for x, _ in pairs) / len(pairs),
        "peak_rss_mb": peak_rss_mb(),
        "rss_growth_mb": peak_rss_mb() - rss_loaded,
        "threads": torch.get_num_threads(),
    }
    out_path.write_text(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--reference-samples", type=int, default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per scorer (0: torch's default)")
    ap.add_argument("--fast-dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--worker", choices=["fast", "reference"], help=argparse.SUPPRESS)
    ap.add_argument("--io", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(
            args.worker, Path(args.io[0]), Path(args.io[1]), args.batch_size, args.threads, args.fast_dtype
        )
        return

    print(f"machine: {machine_line()}")
    load_before = os.getloadavg()
    samples = build_samples(args.samples, args.tokens)
    n_ref = min(args.reference_samples or args.samples, args.samples)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, subset in (("fast", samples), ("reference", samples[:n_ref])):
            inp, out = Path(tmp) / f"{mode}_in.json", Path(tmp) / f"{mode}_out.json"
            inp.write_text(json.dumps(subset))
            cmd = [sys.executable, __file__, "--worker", mode, "--io", str(inp), str(out)]
            subprocess.run(
                [*cmd, "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
                + ["--fast-dtype", args.fast_dtype],
                check=True,
            )
            results[mode] = json.loads(out.read_text())
            results[mode]["n"] = len(subset)

    fast, ref = results["fast"], results["reference"]
    load = " / ".join(f"{x:.1f}" for x in load_before + os.getloadavg())
    print(
        f"samples: {args.samples} (reference timed on {n_ref}); mean response "
        f"{fast['response_tokens'] / fast['n']:.0f} tokens, mean instruction {fast['mean_instruction_tokens']:.0f} "
        f"tokens; fast scorer in {args.fast_dtype}, reference in float32; torch threads {fast['threads']}; load average before/after {load}"
    )
    cond_share = fast["pass_seconds"]["conditional"] / fast["seconds"]
    rows = [
        (f"fast, all scores (batch {args.batch_size})", fast, 1.0),
        ("  of which pass 1: rank + PPL(y|x)", fast, cond_share),
        ("reference: rank only", ref, 1.0),
    ]
    print(
        f"{'scorer':<38}{'wall s':>8}{'CPU s':>8}{'samples/s':>11}{'tokens/s':>10}{'peak RSS MB':>13}{'growth MB':>11}"
    )
    for name, r, share in rows:
        sec = r["seconds"] * share
        mem = f"{r['peak_rss_mb']:>13.0f}{r['rss_growth_mb']:>11.0f}" if share == 1.0 else ""
        print(
            f"{name:<38}{sec:>8.1f}{r['cpu_seconds'] * share:>8.1f}{r['n'] / sec:>11.3f}"
            f"{r['response_tokens'] / sec:>10.0f}{mem}"
        )
    ref_rate = ref["n"] / ref["seconds"]
    print(
        f"speedup, all scores vs reference rank only: {fast['n'] / fast['seconds'] / ref_rate:.1f}x (target >= 10x)"
    )
    print(
        "speedup, like for like (rank + PPL(y|x) pass vs reference): "
        f"{fast['n'] / (fast['seconds'] * cond_share) / ref_rate:.1f}x"
    )
    diff = max(abs(a - b) for a, b in zip(fast["ranks"], ref["ranks"], strict=False))
    print(f"max |rank score difference| over {n_ref} samples: {diff:.2e} (target < 1e-5 in float32)")


if __name__ == "__main__":
    main()

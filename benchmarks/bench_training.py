"""Student training throughput: LoRA on SmolLM2-135M (fp32, CPU), with and without packing.

Samples look like distillation data of mixed length: an analysis prompt on a Rotten Tomatoes
snippet (instruction) and the first 20-200 tokens of an IMDB review (a stand-in teacher answer).
Each configuration trains one full epoch over the same samples (``--batch-size`` sequences per step,
``--max-length`` tokens at most) through ``training.train_student`` in its own child process, so peak
memory is measured separately, and the token count is exact (every example is seen once). Prints real tokens/s (tokens of the examples, padding excluded), the share of
processed positions that were padding, seconds per step and peak RSS. Tokens per CPU-second (process
time of all threads) is printed too: on a shared machine it is steadier than wall-clock tokens/s.

Packing changes what a step holds (a packed block carries several examples), so tokens/s is the
figure to compare, not steps/s.

    .venv/bin/python benchmarks/bench_training.py [--samples 64] [--batch-size 4] [--max-length 512]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_line, peak_rss_mb

PROMPTS = [
    "Please analyze the overall sentiment of the text and explain what drives it.",
    "How intense are the emotions expressed in the text? Point to the words that show it.",
    "Which aspects does the text evaluate, and with what polarity?",
]


def build_samples(n: int, seed: int = 0) -> list[dict]:
    from compeffdist_utils.core.config import Params
    from compeffdist_utils.environment_and_corpus.corpus import load_corpus
    from compeffdist_utils.models import load_tokenizer

    params = Params()
    tok = load_tokenizer("embedded:smollm2-135m-instruct", params)
    texts, _, _ = load_corpus(
        params.corpus.model_copy(update={"per_domain": {"imdb": n, "rotten_tomatoes": n}, "max_chars": 3000})
    )
    reviews = list(texts[texts["domain"] == "imdb"]["text"])
    snippets = list(texts[texts["domain"] == "rotten_tomatoes"]["text"])
    rng = random.Random(seed)
    samples = []
    for i in range(min(n, len(reviews), len(snippets))):
        answer = tok.decode(tok(reviews[i])["input_ids"][: rng.randint(20, 200)])
        samples.append(
            {"instruction": f"{PROMPTS[i % len(PROMPTS)]}\n\nInput: {snippets[i]}", "output": answer}
        )
    return samples


def worker(packing: bool, samples_path: Path, out_path: Path, args: argparse.Namespace) -> None:
    import torch

    from compeffdist_utils.core.config import params_from_dict
    from compeffdist_utils.models import load_causal_lm
    from compeffdist_utils.student_training.training import train_student

    params = params_from_dict(
        {
            "models": {"device": "cpu", "dtype": "float32"},
            "training": {
                "method": "lora",
                "epochs": 1,
                "max_steps": -1,
                "per_device_batch_size": args.batch_size,
                "max_length": args.max_length,
                "packing": packing,
                "eval_fraction": 0.0,
                "save_steps": 10_000,
                "learning_rate": 2e-4,
            },
        }
    )
    samples = json.loads(samples_path.read_text())
    base = load_causal_lm(params.models.student, params)
    rss_loaded = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = train_student(samples, params, Path(tmp) / "student", base=base, resume=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out_path.write_text(
        json.dumps(
            {
                "train_seconds": result.train_seconds,
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "train_tokens": result.train_tokens,
                "processed_tokens": result.processed_tokens,
                "steps": result.global_step,
                "sequences": result.n_sequences,
                "examples": result.n_train,
                "peak_rss_mb": peak_rss_mb(),
                "rss_growth_mb": peak_rss_mb() - rss_loaded,
                "threads": torch.get_num_threads(),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--worker", choices=["packed", "unpacked"], help=argparse.SUPPRESS)
    ap.add_argument("--io", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker == "packed", Path(args.io[0]), Path(args.io[1]), args)
        return

    print(f"machine: {machine_line()}; load average at start: {os.getloadavg()[0]:.1f}")
    samples = build_samples(args.samples)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "samples.json"
        inp.write_text(json.dumps(samples))
        for mode in ("unpacked", "packed"):
            out = Path(tmp) / f"{mode}.json"
            cmd = [sys.executable, __file__, "--worker", mode, "--io", str(inp), str(out)]
            opts = ["--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
            subprocess.run([*cmd, *opts], check=True)
            results[mode] = json.loads(out.read_text())

    first = results["unpacked"]
    print(
        f"LoRA r=8 on q/k/v/o, SmolLM2-135M fp32, one epoch over {first['examples']} examples, "
        f"batch {args.batch_size}, max_length {args.max_length}, torch threads {first['threads']}"
    )
    print(
        f"{'mode':<10}{'tokens/s':>10}{'tok/cpu-s':>11}{'s/step':>8}{'padding':>9}{'steps':>7}"
        f"{'peak RSS MB':>13}{'growth MB':>11}"
    )
    for mode, r in results.items():
        pad = 1 - r["train_tokens"] / r["processed_tokens"] if r["processed_tokens"] else 0.0
        print(
            f"{mode:<10}{r['train_tokens'] / r['train_seconds']:>10.0f}{r['train_tokens'] / r['cpu_seconds']:>11.0f}"
            f"{r['train_seconds'] / r['steps']:>8.2f}"
            f"{pad:>9.1%}{r['steps']:>7}{r['peak_rss_mb']:>13.0f}{r['rss_growth_mb']:>11.0f}"
        )
    gain = (results["packed"]["train_tokens"] / results["packed"]["train_seconds"]) / (
        first["train_tokens"] / first["train_seconds"]
    )
    print(f"packing speedup (real tokens/s): {gain:.2f}x; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

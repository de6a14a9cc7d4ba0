"""hf teacher backend: batched vs one-prompt-at-a-time generation with SmolLM2-135M on this CPU.

64 prompts, greedy, 64 new tokens. Prints tokens/s for both, the ratio (target >= 4x), whether the
outputs are identical, and peak memory. Each mode answers into a fresh, empty cache.

    .venv/bin/python benchmarks/bench_teacher.py [--prompts 64] [--new-tokens 64] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine_line, peak_rss_mb

from compeffdist_utils.core.config import DecodingParams, Params
from compeffdist_utils.environment_and_corpus.corpus import load_corpus
from compeffdist_utils.teacher.cache import ResponseCache
from compeffdist_utils.teacher.hf import HFBackend


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    params = Params()
    texts, _, _ = load_corpus(
        params.corpus.model_copy(update={"per_domain": {"rotten_tomatoes": args.prompts}})
    )
    prompts = [
        f"What is the sentiment of this review, and why?\n\n{t}" for t in texts["text"][: args.prompts]
    ]
    dec = DecodingParams(max_new_tokens=args.new_tokens, temperature=0.0)
    print(f"machine: {machine_line()}")
    results = {}
    shared = None
    for mode, bs in (("batched", args.batch_size), ("one-at-a-time", 1)):
        with tempfile.TemporaryDirectory() as tmp:
            backend = HFBackend(
                params.models.teacher.model, params, ResponseCache(Path(tmp) / "c.sqlite"), batch_size=bs
            )
            if shared is None:
                shared = backend.model_and_tokenizer  # load once, outside the timing
            backend._model_and_tok = shared
            t0 = time.perf_counter()
            out = backend.chat(prompts, dec, desc=mode)
            secs = time.perf_counter() - t0
            toks = backend.usage.completion_tokens
            results[mode] = (out, secs, toks)
            print(
                f"{mode:>14}: {secs:7.1f} s, {toks} tokens, {toks / secs:6.1f} tokens/s, {len(prompts) / secs:.2f} prompts/s"
            )
    (b_out, b_s, b_t), (s_out, s_s, s_t) = results["batched"], results["one-at-a-time"]
    same = sum(a == b for a, b in zip(b_out, s_out, strict=True))
    print(f"speed-up (tokens/s): {(b_t / b_s) / (s_t / s_s):.2f}x   target >= 4x")
    print(f"identical outputs: {same}/{len(prompts)}")
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

"""Stages 03-04 bookkeeping at paper scale, without a teacher: parsing, dedup and the text pairing.

The teacher's generation time is measured by ``bench_teacher.py``; this script checks that what the kit
does around it stays negligible at the paper's sizes (~180 clusters, tens of thousands of answers,
a pool of thousands of instructions, 50,000 samples over 20,000 texts).

    .venv/bin/python benchmarks/bench_instructions.py
"""

from __future__ import annotations

import time

import numpy as np
from _common import machine_line, peak_rss_mb

from compeffdist_utils.core.config import DistillDataParams
from compeffdist_utils.distillation_data.dataset import pair_instructions_with_texts
from compeffdist_utils.instructions.cleaning import clean_demo_pair
from compeffdist_utils.instructions.json_repair import extract_json_list
from compeffdist_utils.instructions.parsing import parse_io_pairs, parse_numbered_list, parse_standardisation
from compeffdist_utils.instructions.pool import near_duplicates

ANALYSIS = "Here you go:\n" + "\n".join(
    f"{i}. What does the author's wording reveal about aspect {i}?" for i in range(1, 9)
)
IDEATION = "```json\n[\n" + ",\n".join(
    f'  {{"task_name": "task {i}", "task_type": "scoring", "task_description": "Rate aspect {i} from 1 to 5."}}'
    for i in range(8)
) + ",\n]\n```"  # fmt: skip
STANDARDISATION = "Definition: Rate the aspect from 1 to 5. Output format: one integer.\n\n" + "\n".join(
    f"Input: Example user text number {i}, with a few words.\nOutput: {i % 5 + 1}" for i in range(8)
)
DEMOS = (
    'Input: "A brand-new text in the style of a tweet."\nOutput: 4\n\nInput: Another one.\nOutput: {"a": [1'
)


def timed(label: str, n: int, fn) -> None:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    dt = time.perf_counter() - t0
    print(f"{label:<46} {n:>7} x  {dt:7.2f} s  ({n / dt:,.0f}/s)")


def main() -> None:
    print(machine_line())
    timed("03a parse numbered list (8 items)", 20_000, lambda: parse_numbered_list(ANALYSIS))
    timed("03b extract JSON list (fence, trailing comma)", 20_000, lambda: extract_json_list(IDEATION))
    timed("03c parse standardisation (8 examples)", 20_000, lambda: parse_standardisation(STANDARDISATION))
    timed(
        "03d parse + clean two demo pairs",
        20_000,
        lambda: [clean_demo_pair(i, o, ["some reference text"] * 2, []) for i, o in parse_io_pairs(DEMOS)],
    )
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(6000, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    t0 = time.perf_counter()
    near_duplicates(vecs, 0.9)
    print(f"{'03e near-duplicate scan, 6,000 x 384-d':<46} {time.perf_counter() - t0:18.2f} s")
    pool = [
        {
            "instruction_id": f"i{i}",
            "cluster_id": i % 180,
            "task_name": "t",
            "task_type": "scoring",
            "prompt": "p",
        }
        for i in range(6250)
    ]
    texts = [{"text_id": f"x{i}", "domain": f"d{i % 5}", "text": "a user text"} for i in range(20_000)]
    t0 = time.perf_counter()
    samples, _ = pair_instructions_with_texts(pool, texts, DistillDataParams(texts_per_instruction=8))
    dt = time.perf_counter() - t0
    print(f"{'04 pairing: 6,250 instructions x 8 texts':<46} {len(samples):>7} samples in {dt:.2f} s")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

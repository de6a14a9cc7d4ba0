"""Every step that needs no teacher, at the paper's volume, with inputs in the kit's real formats.

Steps (sizes from params/paper.yaml and the paper): 01 parsing 20,000 enumeration answers and building
the inventory; 02 clustering 1,800 attribute names (Affinity Propagation with log1p weighting, as
configured); 03 the demonstration bookkeeping for 1,000 tasks x 16 answers and the pool dedup at 6,000
instructions; 04 pairing 6,250 instructions x 8 texts into 50,000 samples; 05 hard and soft stratified
selection over 50,000 samples with synthetic scores; 07 building every SentiBench prompt of the 12 full
test sets x 3 seeds (fitted to 2,048 tokens with the SmolLM2 tokenizer).

Each step runs at its full size n and at n/2 and prints seconds, peak traced memory (tracemalloc, the
step's own allocations) and the growth exponent log2(t(n) / t(n/2)) of the CPU time: about 1.0-1.1
for n log n. A step above 1.25 is flagged. Clustering is quadratic by nature (a full similarity matrix) and is reported,
not flagged; the pool dedup compares each instruction with the kept ones, also quadratic in pairs but
vectorised (a matrix product per block).

    .venv/bin/python benchmarks/bench_paper_volume.py [--skip-clustering] [--only 05] [--sentibench DIR]
"""

from __future__ import annotations

import argparse
import math
import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_line, peak_rss_mb
from bench_clustering import synthetic_inventory

from compeffdist_utils.attributes.enumeration import WORKED_EXAMPLE_ANSWER
from compeffdist_utils.attributes.inventory import aggregate, attribute_records
from compeffdist_utils.attributes.inventory import frequency_cut as attribute_cut
from compeffdist_utils.attributes.parsing import parse_answer
from compeffdist_utils.core.config import (
    SENTIBENCH_DATASETS,
    ClusteringParams,
    DistillDataParams,
    InstructionsParams,
    SelectionParams,
    params_from_dict,
)
from compeffdist_utils.difficulty_selection.selection import select_samples
from compeffdist_utils.distillation_data.dataset import pair_instructions_with_texts
from compeffdist_utils.instructions.demonstrations import generate_demonstrations
from compeffdist_utils.instructions.funnel import Funnel
from compeffdist_utils.instructions.pool import build_pool

ROOT = Path(__file__).resolve().parents[1]
FLAG_EXPONENT = 1.25
WORDS = "tone price service quality sarcasm delivery trust regret humour urgency staff design value".split()


def _answer(i: int) -> str:
    """An enumeration answer in the format the teacher is asked for, with varied names and a bad line."""
    rng = random.Random(i)
    lines = []
    for k in range(1, rng.randint(4, 9)):
        name = " ".join(rng.sample(WORDS, rng.randint(1, 2))).title()
        lines.append(
            f"{k}. **{name}**: Attribute Description - how the text shows {name.lower()}. "
            f"Attribute Value - {rng.choice(['high', 'low', 'mixed', 'none'])}."
        )
    if i % 7 == 0:
        lines.append("Note: these are my observations.")
    return "\n".join(lines) if i % 11 else WORKED_EXAMPLE_ANSWER


Run = Callable[[], int]  # the timed part of a step; returns how many things it produced


def step_attributes(n: int) -> Run:
    """Stage 01 after the teacher: parse every answer, normalise names, aggregate, cut by frequency."""
    answers = [_answer(i) for i in range(n)]

    def run() -> int:
        records = []
        for i, answer in enumerate(answers):
            records += attribute_records(f"t{i}", f"d{i % 5}", parse_answer(answer).items)
        return len(attribute_cut(aggregate(records), 10))

    return run


def step_clustering(n: int) -> Run:
    """Stage 02 on n attribute names: random unit vectors with planted near neighbours (no embedder)."""
    from compeffdist_utils.clustering.cluster import cluster_inventory

    entries = synthetic_inventory(n, 42)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(max(n // 10, 1), 384))
    vectors = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    cp = ClusteringParams(method="affinity", preference_percentile=0.5, damping=0.9, max_iter=1000)
    return lambda: len(cluster_inventory(entries, vectors, cp).clusters)


class _ReplayTeacher:
    """Answers every demonstration request with two pairs, one of them repeating across requests."""

    def generate(self, requests, desc: str = "") -> list[str]:
        return [
            f"Input: A fresh user text number {i} about the delivery and the staff.\nOutput: {i % 5 + 1}\n\n"
            f"Input: The same repeated example text for task {i // 16}.\nOutput: 3"
            for i in range(len(requests))
        ]


def step_demonstrations(n_tasks: int) -> Run:
    """Stage 03d bookkeeping: 16 answers per task parsed, cleaned and checked against earlier inputs."""
    tasks = [
        {
            "cluster_id": t // 6,
            "task_index": t % 6,
            "task_name": f"task {t}",
            "definition": f"Rate aspect {t} of the text from 1 to 5. Output format: one integer.",
            "demos": [
                {"input": f"Seed example {k} for task {t}.", "output": str(k % 5 + 1)} for k in range(7)
            ],
        }
        for t in range(n_tasks)
    ]
    ip = InstructionsParams(demo_requests_per_task=16)
    texts = [f"A real user text number {i}, long enough to be a reference." for i in range(2000)]

    def run() -> int:
        grounded, _ = generate_demonstrations(_ReplayTeacher(), tasks, texts, ip, Funnel())
        return sum(len(v) for v in grounded.values())

    return run


def step_pool_dedup(n: int) -> Run:
    """Stage 03e: assemble n pool records and drop near-duplicates (10% planted) by cosine >= 0.9."""
    n_analysis = n // 6
    analysis = [
        {"cluster_id": i % 180, "prompt": f"What does the text say about aspect {i}?"}
        for i in range(n_analysis)
    ]
    standardised = [
        {
            "cluster_id": i % 180,
            "task_index": i,
            "task_name": f"task {i}",
            "task_type": "scoring",
            "definition": f"Rate aspect {i} from 1 to 5.",
            "demos": [{"input": "x", "output": "1"}, {"input": "y", "output": "2"}],
        }
        for i in range(n - n_analysis)
    ]
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    dup = rng.choice(n, n // 10, replace=False)
    vectors[dup] = vectors[(dup + 1) % n] + 0.05 * rng.normal(size=(len(dup), 384))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed(texts: list[str]) -> np.ndarray:
        assert len(texts) == n
        return vectors

    ip = InstructionsParams(dedup_threshold=0.9)
    return lambda: len(build_pool(analysis, standardised, {}, ip, embed, Funnel())[0])


def _pool(n_instructions: int) -> list[dict[str, Any]]:
    return [
        {
            "instruction_id": f"i{i}",
            "cluster_id": i % 180,
            "task_name": f"task {i % 1000}",
            "task_type": "scoring",
            "prompt": f"Rate aspect {i % 1000} from 1 to 5.",
        }
        for i in range(n_instructions)
    ]


def step_pairing(n_samples: int) -> Run:
    """Stage 04 without the teacher: instructions x 8 texts each, balanced over 5 domains."""
    texts = [{"text_id": f"x{i}", "domain": f"d{i % 5}", "text": f"user text {i}"} for i in range(20_000)]
    pool, dp = _pool(n_samples // 8), DistillDataParams(texts_per_instruction=8)
    return lambda: len(pair_instructions_with_texts(pool, texts, dp)[0])


def _samples_and_scores(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng(2)
    samples = [
        {
            "sample_id": f"s{i}",
            "cluster_id": i % 180,
            "task_name": f"task {i % 1000}",
            "prompt": f"Rate aspect {i % 1000} from 1 to 5.",
            "instruction": f"Rate aspect {i % 1000} from 1 to 5.\n\nInput: user text {i}",
            "output": str(i % 5 + 1),
        }
        for i in range(n)
    ]
    scores = [{"sample_id": f"s{i}", "rank": float(v)} for i, v in enumerate(rng.gamma(2.0, 50.0, n))]
    return samples, scores


def step_selection(n: int, method: str) -> Run:
    """Stage 05 selection at budget 10%, stratified in-prompt (1,000 task groups x 180 clusters)."""
    samples, scores = _samples_and_scores(n)
    settings = SelectionParams(method=method, budget=0.1, stratify="inprompt")
    return lambda: len(select_samples(samples, scores, settings)[0])


def step_sentibench_prompts(fraction: float, sentibench: Path) -> Run:
    """Stage 07 prompt building: all 12 test sets (or a fraction of each) x 3 seeds, fitted to 2,048 tokens."""
    from compeffdist_utils.models import load_tokenizer
    from compeffdist_utils.sentibench import build_prompts, load_sentibench

    tok = load_tokenizer("embedded:smollm2-135m-instruct", params_from_dict({}))
    sets = [
        (ds, list(ds.test)[: max(1, math.ceil(len(ds.test) * fraction))])
        for ds in load_sentibench(sentibench, SENTIBENCH_DATASETS)
    ]
    return lambda: sum(
        len(build_prompts(ds, examples, seed, 4, tok, 2048)) for ds, examples in sets for seed in (42, 52, 62)
    )


def measure(prepare: Callable[[], Run]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak traced MiB, output) of the step itself; its synthetic inputs are not timed.

    CPU seconds (this process, all its threads) decide the growth exponent: on a shared machine the
    wall time also counts the waits for a core.
    """
    run = prepare()
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return wall, cpu, peak, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-clustering", action="store_true", help="leave out step 02 (minutes on 2 cores)")
    ap.add_argument("--only", default=None, help="run only the steps whose label starts with this, e.g. 02")
    ap.add_argument("--sentibench", default=str(ROOT.parent / "shared" / "sentibench"))
    args = ap.parse_args()
    print(f"machine: {machine_line()}")

    sentibench = Path(args.sentibench)
    steps: list[tuple[str, int, str, Callable[[int], Run], bool]] = [
        ("01 parse answers + inventory", 20_000, "answers", step_attributes, True),
        ("02 cluster attributes (AP, log1p)", 1_800, "names", step_clustering, False),
        ("03d demonstration bookkeeping", 1_000, "tasks x 16", step_demonstrations, True),
        ("03e pool dedup (cosine >= 0.9)", 6_000, "instructions", step_pool_dedup, False),
        ("04 pairing, 8 texts per instruction", 50_000, "samples", step_pairing, True),
        ("05 hard selection, in-prompt strata", 50_000, "samples", lambda n: step_selection(n, "hard"), True),
        ("05 soft selection, in-prompt strata", 50_000, "samples", lambda n: step_selection(n, "soft"), True),
        ("07 SentiBench prompts, 12 sets x 3 seeds", 100, "% of test", lambda p: step_sentibench_prompts(p / 100, sentibench), True),
    ]  # fmt: skip
    if args.skip_clustering:
        steps = [s for s in steps if not s[0].startswith("02")]
    if args.only:
        steps = [s for s in steps if s[0].startswith(args.only)]
    head = f"{'step':<42} {'n':>8} {'unit':<13} {'out':>8} {'wall s':>8} {'CPU s':>8} {'CPU n/2':>8}"
    print(f"{head} {'exp':>5} {'peak MiB':>9}")
    for label, n, unit, fn, flag in steps:
        _, half_cpu, _, _ = measure(lambda fn=fn, n=n: fn(n // 2))
        wall, cpu, peak, out = measure(lambda fn=fn, n=n: fn(n))
        exponent = math.log2(cpu / half_cpu) if half_cpu > 0 and cpu > 0 else float("nan")
        mark = "  <-- grows faster than n log n" if flag and exponent > FLAG_EXPONENT else ""
        row = f"{label:<42} {n:>8,} {unit:<13} {out:>8,} {wall:8.2f} {cpu:8.2f} {half_cpu:8.2f}"
        print(f"{row} {exponent:5.2f} {peak:9.0f}{mark}", flush=True)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

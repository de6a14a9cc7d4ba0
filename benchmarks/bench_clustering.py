"""Benchmark: stage 02 on a paper-sized inventory (2,000 attribute names, Zipf-like counts).

Embeds synthetic attribute names with the embedded MiniLM and clusters them with Affinity Propagation
and log1p frequency weighting, with the paper's settings (damping 0.9, max_iter 1000, preference at the
0.5th percentile). Prints seconds for embedding and for clustering separately, and peak memory.

    .venv/bin/python benchmarks/bench_clustering.py [--n 2000] [--percentile 0.5] [--method affinity]
"""

from __future__ import annotations

import argparse
import itertools
import time
import tracemalloc

import numpy as np
from _common import machine_line, peak_rss_mb

from compeffdist_utils.clustering import InventoryEntry, cluster_inventory, extra_copies
from compeffdist_utils.config import ClusteringParams, params_from_dict
from compeffdist_utils.models import embed_texts

HEADS = """sentiment tone sarcasm irony frustration anger joy sadness fear trust disgust surprise regret
gratitude disappointment excitement satisfaction politeness formality humour optimism pessimism
confidence uncertainty urgency empathy nostalgia criticism praise complaint recommendation loyalty
value quality price service reliability usability performance design durability comfort safety
clarity credibility bias sincerity enthusiasm boredom curiosity hostility admiration contempt""".split()
MODIFIERS = ["", "level", "intensity", "expression", "polarity", "degree", "strength", "target"]
PREFIXES = ["", "overall", "perceived", "implicit", "explicit", "expressed", "emotional", "customer"]


def synthetic_inventory(n: int, seed: int) -> list[InventoryEntry]:
    """``n`` distinct names "prefix head modifier" with counts ~ 8350 / rank^0.9, floored at 11.

    The floor mimics the paper's frequency cut (names seen more than 10 times); the top count is the
    paper's most frequent attribute (emotional intensity, 8,350).
    """
    names = sorted(
        {" ".join(p for p in combo if p) for combo in itertools.product(PREFIXES, HEADS, MODIFIERS)}
    )
    if n > len(names):
        raise SystemExit(f"at most {len(names)} synthetic names available")
    rng = np.random.default_rng(seed)
    chosen = [names[i] for i in rng.permutation(len(names))[:n]]
    counts = np.maximum(11, (8350 / np.arange(1, n + 1) ** 0.9).astype(int))
    return [InventoryEntry(attr=a, count=int(c)) for a, c in zip(chosen, counts, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--percentile", type=float, default=0.5)
    ap.add_argument("--method", choices=["affinity", "kmeans", "agglomerative"], default="affinity")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    print(f"machine: {machine_line()}")
    entries = synthetic_inventory(args.n, args.seed)
    params = params_from_dict({})
    cp = ClusteringParams(method=args.method, preference_percentile=args.percentile, random_state=args.seed)
    n_points = int(len(entries) + extra_copies([e.count for e in entries], True).sum())
    print(f"inventory: {len(entries)} names, {sum(e.count for e in entries)} mentions, "
          f"{n_points} points after log1p weighting")  # fmt: skip

    t0 = time.perf_counter()
    vectors = embed_texts(params.models.embedder, [e.attr for e in entries], params, use_cache=False)
    t_embed = time.perf_counter() - t0
    print(f"embedding ({params.models.embedder}): {t_embed:.1f} s ({len(entries) / t_embed:.0f} names/s)")

    tracemalloc.start()
    t0 = time.perf_counter()
    result = cluster_inventory(entries, vectors, cp)
    t_fit = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"clustering ({cp.method}, p={cp.preference_percentile}, damping={cp.damping}): {t_fit:.1f} s, "
          f"{len(result.clusters)} clusters, iterations {result.n_iter}, converged {result.converged}")  # fmt: skip
    print(f"peak memory: clustering allocations {traced_peak / 2**20:.0f} MiB (tracemalloc); "
          f"process peak RSS {peak_rss_mb():.0f} MiB (includes torch and the embedder)")  # fmt: skip
    top = result.clusters[:5]
    print("largest clusters by count:", "; ".join(f"{c.exemplar} ({c.size} names)" for c in top))


if __name__ == "__main__":
    main()

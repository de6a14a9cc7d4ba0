"""The whole run end to end, then stages 01-04 again from the response cache, on this machine.

1. ``compeffdist run <params>`` (default ``params/tiny.yaml``, all stages 00-08) into a fresh run
   folder with an empty response and score cache (only the converted models are shared, so the teacher
   really generates): wall time, per-stage seconds from the manifest (target: under 20 minutes on a
   2-core CPU) and, for the teacher stages 01-04, tokens generated and tokens per second of stage time.
2. ``--stages 01-04 --force``: the same four stages rerun, the teacher answering from the cache. Prints
   seconds per stage and the ratio cached / cold over 01-04 (target < 10%).

    .venv/bin/python benchmarks/bench_pipeline.py [--params params/tiny.yaml] [--keep reports/bench]
        [--stages 00-08]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_line

from compeffdist_utils.core.config import Params

ROOT = Path(__file__).resolve().parents[1]
TEACHER_STAGES = ("01", "02", "03", "04")


def run(params: str, run_dir: Path, cache_dir: Path, extra: list[str]) -> tuple[float, dict]:
    """One ``compeffdist run`` in a subprocess; returns its wall seconds and the manifest it wrote."""
    cmd = [sys.executable, "-m", "compeffdist_utils.cli", "run", params, "--run-dir", str(run_dir), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run([*cmd, "--set", f"cache_dir={cache_dir}", *extra], cwd=ROOT, check=True)
    return time.perf_counter() - t0, json.loads((run_dir / "manifest.json").read_text())


def by_prefix(manifest: dict) -> dict[str, dict]:
    return {st["name"][:2]: st for st in manifest["stages"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params/tiny.yaml")
    ap.add_argument("--keep", help="write the run here (kept) instead of a temporary folder")
    ap.add_argument("--stages", default="00-08", help="stages of the first run (must include 00-04)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    run_dir = Path(args.keep).resolve() if args.keep else work / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cache_dir = work / "cache"
    cache_dir.mkdir()
    models = Params().resolved_cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    (cache_dir / "models").symlink_to(models)

    print(f"machine: {machine_line()}; load average before: {os.getloadavg()[0]:.2f}")
    print(f"params: {args.params}; run folder: {run_dir}")
    try:
        cold_wall, cold = run(args.params, run_dir, cache_dir, ["--stages", args.stages])
        cold_stages = by_prefix(cold)
        print(
            f"\n1. stages {args.stages}, empty cache: {cold_wall / 60:.1f} min wall (all stages: target < 20 min)"
        )
        print(f"{'stage':28s} {'seconds':>8s} {'teacher tokens':>15s} {'tokens/s':>9s}")
        for st in cold["stages"]:
            usage = st.get("teacher_usage") or {}
            toks = usage.get("completion_tokens", 0)
            rate = f"{toks / st['seconds']:9.1f}" if toks else f"{'':9s}"
            print(f"{st['name']:28s} {st['seconds']:8.1f} {toks or '':>15} {rate}")
        print(f"{'sum of stages':28s} {sum(s['seconds'] for s in cold['stages']):8.1f}")

        warm_wall, warm = run(args.params, run_dir, cache_dir, ["--stages", "01-04", "--force"])
        warm_stages = by_prefix(warm)
        print(f"\n2. stages 01-04 again (--force), answers from the cache: {warm_wall:.1f} s wall")
        print(f"{'stage':28s} {'cold s':>8s} {'cached s':>9s} {'cache hits':>11s} {'misses':>7s}")
        for n in TEACHER_STAGES:
            c, w = cold_stages[n], warm_stages[n]
            usage = w.get("teacher_usage") or {}
            print(
                f"{w['name']:28s} {c['seconds']:8.1f} {w['seconds']:9.1f} "
                f"{usage.get('cache_hits', ''):>11} {usage.get('cache_misses', ''):>7}"
            )
        cold_sum = sum(cold_stages[n]["seconds"] for n in TEACHER_STAGES)
        warm_sum = sum(warm_stages[n]["seconds"] for n in TEACHER_STAGES)
        print(
            f"01-04: cold {cold_sum:.1f} s, cached {warm_sum:.1f} s = {100 * warm_sum / cold_sum:.1f}% of cold "
            "(target < 10%)"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

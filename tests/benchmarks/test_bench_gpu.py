"""benchmarks/bench_gpu.py --tiny: the GPU benchmark's CPU smoke run writes every figure it promises."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SECTIONS = ("scoring", "prefill", "generation", "train_full", "train_lora")
FIGURES = ("seconds", "samples_per_s", "tokens_per_s", "tflops", "peak_share", "gpu_peak_memory_gb")


@pytest.mark.slow
def test_tiny_run_writes_the_summary(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--tiny", "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert {"device", "machine", "shape", "dtype", "peak_tflops", "versions", "settings", "results"} <= set(
        summary
    )
    assert summary["versions"]["transformers"] and summary["shape"].startswith("tiny")
    for key in SECTIONS:
        r = summary["results"][key]
        assert set(FIGURES) <= set(r), key
        assert r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 and r["tflops"] > 0, key
        assert r["peak_share"] is None and r["gpu_peak_memory_gb"] is None  # CPU: no stated peak, no GPU
    scoring = summary["results"]["scoring"]
    assert scoring["reference_samples_per_s"] > 0 and scoring["speedup"] > 0
    assert scoring["max_rank_difference"] < 1e-2  # fp32, same samples: the kit agrees with the authors' loop
    assert "batch_size" in scoring["batch"]
    assert summary["results"]["train_full"]["tokens_per_step"] == 2 * 64
    assert "scoring vs the authors' batch-1 loop" in done.stdout

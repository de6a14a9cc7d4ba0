"""Shared fixtures: the CI params and the embedded SmolLM2, loaded once per test session."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from compeffdist_utils.core.config import Params, load_params
from tests.ci_run import ci_run  # noqa: F401 - the session's CI pipeline run, shared by several modules

ROOT = Path(__file__).resolve().parents[1]
# Beside the checkout; $COMPEFFDIST_SENTIBENCH names it for a checkout elsewhere (e.g. a git worktree).
SENTIBENCH = Path(os.environ.get("COMPEFFDIST_SENTIBENCH") or ROOT.parent / "shared" / "sentibench")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def ci_params() -> Params:
    return load_params(ROOT / "tests" / "params" / "ci.yaml")


@pytest.fixture(scope="session")
def smol(ci_params: Params):
    """(model, tokenizer) of the embedded SmolLM2-135M-Instruct, fp32 on CPU, left padding."""
    from compeffdist_utils.models import load_causal_lm

    return load_causal_lm("embedded:smollm2-135m-instruct", ci_params, dtype="float32", device="cpu")


@pytest.fixture()
def tiny_llama(tmp_path, ci_params):  # per test: one test edits the base's config
    # (used by the pruning and specialist-build tests)
    """A saved 4-layer random Llama with the embedded SmolLM2's tokenizer (any tokenizer would do)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from compeffdist_utils.models import embedded_smollm_dir

    tok = AutoTokenizer.from_pretrained(embedded_smollm_dir(ci_params.resolved_cache_dir()))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
    )
    base = tmp_path / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(base)
    tok.save_pretrained(base)
    return base


@pytest.fixture(scope="session")
def sentibench_dir() -> Path:
    if not (SENTIBENCH / "sc").is_dir():
        pytest.fail(f"SentiBench test data not found at {SENTIBENCH} (expected beside the repository)")
    return SENTIBENCH


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def served_smollm(ci_params: Params):
    """A real OpenAI-compatible server: `transformers serve` with the converted SmolLM2 on 127.0.0.1.

    Yields (base_url, model_name). It stands in for vLLM / SGLang / llama.cpp servers: same protocol.
    """
    import os
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    from compeffdist_utils.models import embedded_smollm_dir

    model_dir = embedded_smollm_dir(ci_params.resolved_cache_dir())
    exe = shutil.which("transformers", path=os.path.dirname(sys.executable))
    assert exe, "the `transformers` CLI is missing from the venv (transformers[serving])"
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("transformers serve did not come up within 240 s")
            time.sleep(1)
        yield base + "/v1", str(model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, installed with apt-get when absent and this runs as root.

    Skips loudly only where it cannot be had (not root, no apt-get, no package mirror).
    """
    import os
    import shutil
    import subprocess

    from compeffdist_utils.run.browser import find_chromium

    found = find_chromium()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        found = find_chromium()
    if found is None:
        pytest.skip(
            "SKIPPED LOUDLY: no Chromium, and it could not be installed here (needs root and apt-get: "
            "`apt-get install chromium`); report.html was NOT checked in a browser"
        )
    return found


def count_in_flight(teacher) -> list[int]:
    """Wrap the backend's one-request call; returns [peak in-flight requests], updated as they run."""
    in_flight, peak, lock = [0], [0], threading.Lock()
    real_one = teacher._one

    def counting(req):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            return real_one(req)
        finally:
            with lock:
                in_flight[0] -= 1

    teacher._one = counting
    return peak

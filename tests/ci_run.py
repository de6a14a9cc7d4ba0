"""The CI pipeline run that several test modules share: every notebook executed by the runner on
tests/params/ci.yaml with an empty response cache, once per test session (`ci_run`, registered in
tests/conftest.py), so that the export and the JupyterLab tests read the same run folder instead of
running the pipeline again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "compeffdist_utils.cli"]


def run_cli(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, **(env or {})},
    )


def fresh_cache(root: Path) -> Path:
    """An empty response/score cache that shares only the converted models (so the teacher really runs)."""
    from compeffdist_utils.core.config import Params

    cache_dir, models = root / "cache", Params().resolved_cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir()
    (cache_dir / "models").symlink_to(models)
    return cache_dir


def sentibench_sets() -> list[str]:
    """When SentiBench is beside the checkout (or named by $COMPEFFDIST_SENTIBENCH), the run must use it."""
    from tests.conftest import SENTIBENCH

    return ["--set", f"evaluation.sentibench_dir={SENTIBENCH}"] if (SENTIBENCH / "sc").is_dir() else []


def run_ci(run_dir: Path, cache_dir: Path, quiet: bool = True) -> subprocess.CompletedProcess:
    args = ["run", "tests/params/ci.yaml", "--run-dir", str(run_dir), "--set", f"cache_dir={cache_dir}"]
    return run_cli([*args, *sentibench_sets(), *(["--quiet"] if quiet else [])])


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    """(run folder, cache folder, manifest) of the CI run; its console output is in ../console.txt."""
    root = tmp_path_factory.mktemp("ci-run")
    run_dir, cache_dir = root / "run", fresh_cache(root)
    proc = run_ci(run_dir, cache_dir, quiet=False)  # with live progress: see test_console_shows_...
    assert proc.returncode == 0, f"pipeline failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    (root / "console.txt").write_text(proc.stdout)
    return run_dir, cache_dir, json.loads((run_dir / "manifest.json").read_text())

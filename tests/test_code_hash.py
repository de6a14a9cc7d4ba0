"""Code hashes: which package modules a stage runs, and that an edit there changes the hash."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from compeffdist_utils import code_hash as ch

ROOT = Path(__file__).resolve().parents[1]


def test_imports_are_found_in_every_form():
    src = """
import os
import compeffdist_utils.metrics
from compeffdist_utils.io import read_jsonl
from compeffdist_utils import selection, not_a_module
from . import samples
from .config import Params

def later():
    from .difficulty import score_dataset
"""
    assert ch.imported_modules(src) == {"metrics", "io", "selection", "samples", "config", "difficulty"}


def test_stage_closures_follow_the_notebooks():
    def closure(nb: str) -> list[str]:
        return ch.module_closure(ch.imported_modules(ch.notebook_code(ROOT / "notebooks" / nb)))

    five = closure("05_difficulty_selection.ipynb")
    assert {"difficulty", "selection", "samples", "config"} <= set(five) and "training" not in five
    assert {"evaluation", "sentibench_protocol", "sentibench_prompts", "metrics"} <= set(
        closure("07_evaluation.ipynb")
    )
    assert "difficulty" not in closure("01_attributes.ipynb")


def test_the_package_has_no_dynamic_imports():
    """A module reached only through importlib would escape the closure (see code_hash's docstring)."""
    pattern = re.compile(r"import_module\(|__import__\(")
    offenders = [p.name for p in ch.PACKAGE_DIR.glob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_an_edit_changes_the_hash_of_the_modules_that_import_it(tmp_path, monkeypatch):
    copy = tmp_path / "compeffdist_utils"
    shutil.copytree(ch.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(ch, "PACKAGE_DIR", copy)
    before = {m: ch.code_hash([m]) for m in ("difficulty", "attributes", "efficiency")}
    samples = copy / "samples.py"  # imported by difficulty (and efficiency through it), not by attributes
    samples.write_text(samples.read_text() + "\n# a changed helper\n")
    after = {m: ch.code_hash([m]) for m in before}
    assert after["difficulty"] != before["difficulty"] and after["efficiency"] != before["efficiency"]
    assert after["attributes"] == before["attributes"]
    (copy / "data" / "authors_protocol.json").write_text("{}")
    assert ch.code_hash(["attributes"]) != before["attributes"]  # the protocol data counts as code


def test_editing_the_difficulty_score_reruns_05_and_what_follows(tmp_path, monkeypatch):
    from compeffdist_utils.config import load_params
    from compeffdist_utils.fingerprints import discover_stages, fingerprint

    copy = tmp_path / "compeffdist_utils"
    shutil.copytree(ch.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(ch, "PACKAGE_DIR", copy)
    stages = discover_stages(ROOT / "notebooks")
    params = load_params(ROOT / "tests/params/ci.yaml")

    def fingerprints() -> list[str]:
        out, up = [], ""
        for st in stages:
            up = fingerprint(st, params, up)
            out.append(up)
        return out

    before = fingerprints()
    scoring = copy / "difficulty.py"
    scoring.write_text(scoring.read_text().replace("_FIRST_TOPK = 64", "_FIRST_TOPK = 32"))
    changed = [st.number for st, b, a in zip(stages, before, fingerprints(), strict=True) if b != a]
    assert changed == ["05", "06", "07", "08"]

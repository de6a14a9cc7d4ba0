"""Code hashes: which package modules a stage runs, and that an edit there changes the hash."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from compeffdist_utils.core import hashing as ch

ROOT = Path(__file__).resolve().parents[2]


def test_imports_are_found_in_every_form():
    src = """
import os
import compeffdist_utils.sentibench.metrics
from compeffdist_utils.core.io import read_jsonl
from compeffdist_utils.difficulty_selection import selection
from compeffdist_utils import not_a_module
from . import samples
from compeffdist_utils.core.config import Params

def later():
    from compeffdist_utils.difficulty_selection.scoring import score_dataset
"""
    # Importing a.b runs a/__init__.py first: the packages count too. "from . import samples" is
    # relative to the module the source is (here core.hashing).
    assert ch.imported_modules(src, "core.hashing") == {
        "sentibench", "sentibench.metrics", "core", "core.io", "core.config", "core.samples",
        "difficulty_selection", "difficulty_selection.selection", "difficulty_selection.scoring",
    }  # fmt: skip


def test_stage_closures_follow_the_notebooks():
    def closure(nb: str) -> list[str]:
        return ch.module_closure(ch.imported_modules(ch.notebook_code(ROOT / "notebooks" / nb)))

    five = closure("05_difficulty_selection.ipynb")
    assert {
        "difficulty_selection.scoring",
        "difficulty_selection.selection",
        "core.samples",
        "core.config",
    } <= set(five)
    assert "student_training.training" not in five
    assert {"evaluation.evaluate", "sentibench.protocol", "sentibench.prompts", "sentibench.metrics"} <= set(
        closure("07_evaluation.ipynb")
    )
    assert "difficulty_selection.scoring" not in closure("01_attributes.ipynb")


def test_the_package_has_no_dynamic_imports():
    """A module reached only through importlib would escape the closure (see code_hash's docstring)."""
    pattern = re.compile(r"import_module\(|__import__\(")
    offenders = [
        p.name for p in ch.PACKAGE_DIR.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_an_edit_changes_the_hash_of_the_modules_that_import_it(tmp_path, monkeypatch):
    copy = tmp_path / "compeffdist_utils"
    shutil.copytree(ch.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(ch, "PACKAGE_DIR", copy)
    modules = ("difficulty_selection.scoring", "attributes.enumeration", "data_efficiency.grid")
    before = {m: ch.code_hash([m]) for m in modules}
    # Imported by the scorer (and the grid through it), not by stage 01's enumeration.
    scorer = copy / "difficulty_selection" / "selection.py"  # runs with the package's __init__
    scorer.write_text(scorer.read_text() + "\n# a changed helper\n")
    after = {m: ch.code_hash([m]) for m in before}
    assert after["difficulty_selection.scoring"] != before["difficulty_selection.scoring"]
    assert after["data_efficiency.grid"] != before["data_efficiency.grid"]
    assert after["attributes.enumeration"] == before["attributes.enumeration"]
    (copy / "data" / "authors_protocol.json").write_text("{}")
    assert ch.code_hash(["attributes.enumeration"]) != before["attributes.enumeration"]  # data counts as code


def test_editing_the_difficulty_score_reruns_05_and_what_follows(tmp_path, monkeypatch):
    from compeffdist_utils.core.config import load_params
    from compeffdist_utils.stage.fingerprints import discover_stages, fingerprint

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
    token_stats = copy / "difficulty_selection" / "token_stats.py"  # the per-token statistics of the score
    token_stats.write_text(token_stats.read_text().replace("_FIRST_TOPK = 64", "_FIRST_TOPK = 32"))
    changed = [st.number for st, b, a in zip(stages, before, fingerprints(), strict=True) if b != a]
    assert changed == ["05", "06", "07", "08"]

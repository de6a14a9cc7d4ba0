"""The specialist teacher's spec: its key follows the recipe and the code version, and it resolves to the
shipped adapter, a cached build, or a clear error naming the build command."""

from __future__ import annotations

import pytest

from compeffdist_utils.core.config import EMBEDDED_SPECIALIST
from compeffdist_utils.models import ModelSpecError, resolve_model_path
from compeffdist_utils.models import specialist as sp
from compeffdist_utils.models.specs import COMPLETE_MARK


def test_the_key_changes_with_every_setting_and_with_the_version(monkeypatch):
    base = sp.SpecialistRecipe()
    key = sp.recipe_key(base)
    for change in ({"seed": 43}, {"steps": base.steps + 1}, {"fewshot": 1}, {"learning_rate": 1e-4}):
        assert sp.recipe_key(base.with_overrides(**change)) != key, change
    assert sp.recipe_key(sp.SpecialistRecipe()) == key
    monkeypatch.setattr(sp, "SPECIALIST_VERSION", sp.SPECIALIST_VERSION + 1)
    assert sp.recipe_key(base) != key


def test_an_unknown_setting_is_named():
    with pytest.raises(ValueError, match="unknown setting.*'stepz'"):
        sp.SpecialistRecipe().with_overrides(stepz=3)


def test_a_missing_build_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "SHIPPED_DIR", tmp_path / "shipped")
    with pytest.raises(ModelSpecError, match="compeffdist build-teacher --seed 42"):
        resolve_model_path(EMBEDDED_SPECIALIST, tmp_path / "cache")


def test_a_cached_build_resolves_and_an_unfinished_one_does_not(tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "SHIPPED_DIR", tmp_path / "shipped")
    folder = sp.built_dir(sp.SpecialistRecipe(), tmp_path / "cache")
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelSpecError):
        sp.specialist_dir(tmp_path / "cache")
    (folder / COMPLETE_MARK).write_text("done\n")
    assert resolve_model_path(EMBEDDED_SPECIALIST, tmp_path / "cache") == str(folder)


def test_the_shipped_adapter_is_the_default_recipe(tmp_path):
    """The committed adapter must match the recipe in the code: a changed recipe without a rebuild fails here."""
    folder = sp.specialist_dir(tmp_path / "empty-cache")
    assert folder.parent == sp.SHIPPED_DIR
    assert (folder / "adapter_model.safetensors").stat().st_size < 10 * 2**20

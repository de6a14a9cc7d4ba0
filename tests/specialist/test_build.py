"""A build end to end at a tiny size: SentiBench texts never reach the records, the folder is complete,
names its base by spec, and loads as a model."""

from __future__ import annotations

import json

from compeffdist_utils.environment_and_corpus import clean_text, embedded_frames
from compeffdist_utils.models import load_causal_lm
from compeffdist_utils.models.specialist import RECIPE_FILE, SpecialistRecipe
from compeffdist_utils.models.specs import COMPLETE_MARK
from compeffdist_utils.specialist import build_specialist, load_pool
from compeffdist_utils.specialist.overlap import keys


def _toy_bench(tmp_path, sentences):
    folder = tmp_path / "bench" / "sc" / "toy"
    folder.mkdir(parents=True)
    (folder / "test.json").write_text(json.dumps([{"sentence": s, "label": "positive"} for s in sentences]))
    return tmp_path / "bench"


def test_the_pool_holds_no_sentibench_text(tmp_path):
    recipe = SpecialistRecipe(pool_per_domain=50)
    leaked = [clean_text(t, 2000) for t in embedded_frames()["rotten_tomatoes"]["text"][:5]]
    pool, report = load_pool(recipe, _toy_bench(tmp_path, [t.upper() for t in leaked]))
    assert report["overlap_with_sentibench"]["sc/toy/test"]["rotten_tomatoes"] == 5
    assert report["domains"]["rotten_tomatoes"]["dropped_sentibench_overlap"] >= 5
    banned = set().union(*(keys(t) for t in leaked))
    assert not any(keys(t) & banned for rows in pool.values() for t, _ in rows)


def test_a_tiny_build_writes_a_loadable_adapter(tmp_path, tiny_llama, ci_params):
    recipe = SpecialistRecipe(
        base=str(tiny_llama), fewshot=4, classify=2, score=1, extract=1, json=1, analysis=1,
        pool_per_domain=20, steps=2, batch_size=2, lora_from_layer=2, max_length=512,
    )  # fmt: skip
    folder = build_specialist(
        recipe, ci_params, _toy_bench(tmp_path, ["y" * 30]), tmp_path / "out", progress=False
    )
    assert (folder / COMPLETE_MARK).exists() and not (folder / "checkpoints").exists()
    info = json.loads((folder / RECIPE_FILE).read_text())
    assert info["records"] == dict(sorted(recipe.kinds().items())) and info["training"]["examples"] == 10
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_llama
    )
    model, _ = load_causal_lm(str(folder), ci_params, dtype="float32", device="cpu")
    assert type(model).__name__.startswith("PeftModel")  # the adapter was applied

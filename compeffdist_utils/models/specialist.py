"""The embedded sentiment-specialist teacher: what ``embedded:smollm2-135m-sentiment`` names and where it is.

The only instruction model a package ships is SmolLM2-135M-Instruct, which has little sentiment skill to
pass on. The specialist is that model (all 30 layers) with a LoRA adapter trained by the kit's own recipe
on the labelled texts the packages ship (see :mod:`compeffdist_utils.specialist`, docs/SPECIALIST_TEACHER.md).

Its identity is :class:`SpecialistRecipe` (data mix, training settings, seed) plus :data:`SPECIALIST_VERSION`
(bumped when the data or training code changes what is built): the two are hashed into the folder name,
like the pruned student's. A spec resolves to, in order:

1. the adapter shipped in the package (``compeffdist_utils/data/specialist/<name>-<key>``), built by
   ``compeffdist build-teacher --seed 42``, so no user pays the build time;
2. a folder of the same key in the kit cache (``<cache>/models/specialist/``), built by that command;
3. otherwise a clear error naming the command. A changed recipe or version changes the key, so a stale
   adapter is never loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import EMBEDDED_CAUSAL_LM, EMBEDDED_SPECIALIST
from compeffdist_utils.models.specs import COMPLETE_MARK, ModelSpecError

SPECIALIST_VERSION = 1  # bump when specialist/data.py or specialist/build.py change what is built
SHIPPED_DIR = Path(__file__).parents[1] / "data" / "specialist"
RECIPE_FILE = "specialist.json"
BUILD_COMMAND = "compeffdist build-teacher --seed 42"


@dataclass(frozen=True)
class SpecialistRecipe:
    """Everything that decides the built adapter (the seed included); hashed into its folder name."""

    base: str = EMBEDDED_CAUSAL_LM
    seed: int = 42
    # records per kind (specialist/data.py) and text lengths in characters: ~2,000 records, one epoch of 250
    # steps x 8 (~15 min alone on 2 CPU cores, docs/SPECIALIST_TEACHER.md); ~140 tokens per record
    fewshot: int = 1200
    classify: int = 400
    score: int = 80
    extract: int = 80
    json: int = 80
    analysis: int = 160
    max_demos: int = 3
    demo_chars: int = 110
    query_chars: int = 220
    pool_per_domain: int = 6000  # texts per packaged domain drawn before records are built
    # training (the kit's LoRA recipe, student_training.trainer_setup)
    steps: int = 250
    batch_size: int = 8
    learning_rate: float = 5e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_from_layer: int = 18  # adapters on layers 18-29 only: backward stops there (the build's main cost)
    max_length: int = 256

    def kinds(self) -> dict[str, int]:
        """Records per kind, in the order specialist/data.py builds them."""
        return {k: getattr(self, k) for k in ("fewshot", "classify", "score", "extract", "json", "analysis")}

    def with_overrides(self, **changes: Any) -> SpecialistRecipe:
        """A copy with ``changes`` (unknown names are a clear error, not a silent no-op)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"specialist recipe: unknown setting(s) {unknown}")
        return replace(self, **changes)


def recipe_key(recipe: SpecialistRecipe) -> str:
    """The 12-hex key of a recipe under this version of the building code."""
    blob = json.dumps([SPECIALIST_VERSION, asdict(recipe)], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def weights_revision(spec: str) -> str | None:
    """The current recipe key when ``spec`` names the specialist, else None.

    The spec string stays the same when a new adapter ships; a teacher cache keyed on the spec alone would
    hand the old adapter's answers to the new one. Teachers put this key in their cache identity.
    """
    return recipe_key(SpecialistRecipe()) if spec == EMBEDDED_SPECIALIST else None


def folder_name(recipe: SpecialistRecipe) -> str:
    return f"smollm2-135m-sentiment-{recipe_key(recipe)}"


def built_dir(recipe: SpecialistRecipe, cache_dir: Path) -> Path:
    """Where the build command writes this recipe's adapter in the kit cache."""
    return cache_dir / "models" / "specialist" / folder_name(recipe)


def specialist_dir(cache_dir: Path, recipe: SpecialistRecipe | None = None) -> Path:
    """The adapter folder of ``recipe`` (default: the shipped recipe): shipped, else cached, else an error."""
    recipe = recipe or SpecialistRecipe()
    for folder in (SHIPPED_DIR / folder_name(recipe), built_dir(recipe, cache_dir)):
        if (folder / COMPLETE_MARK).exists() and (folder / "adapter_config.json").is_file():
            return folder
    raise ModelSpecError(
        f"{EMBEDDED_SPECIALIST} (recipe {recipe_key(recipe)}) is not built: neither the package nor the "
        f"cache {built_dir(recipe, cache_dir)} holds it. Build it once with `{BUILD_COMMAND}` "
        "(~30 min on 2 CPU cores; docs/SPECIALIST_TEACHER.md)"
    )

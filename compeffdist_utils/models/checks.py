"""Checking a run's model specs before stage 00 spends teacher tokens: nothing is loaded or downloaded."""

from __future__ import annotations

import functools
import os
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from compeffdist_utils.core.config import EMBEDDED_CAUSAL_LM, Params
from compeffdist_utils.models.loading import resolve_model_path
from compeffdist_utils.models.specs import COMPLETE_MARK, ModelSpecError, resolve_alias, smollm_gguf_dir

if TYPE_CHECKING:
    pass


@functools.cache
def _hub_reachable() -> bool:
    """Whether the model hub answers at all (asked once per process, 5 s at most)."""
    from huggingface_hub import constants  # deferred: heavy, only when the hub is asked

    try:
        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=5).close()
    except OSError:
        return False
    return True


def _spec_problem(spec: str, cache_dir: Path) -> str | None:
    """Why ``spec`` cannot be loaded now, or None; nothing is loaded, converted or downloaded."""
    try:
        if spec == EMBEDDED_CAUSAL_LM:
            if not (cache_dir / "models" / "smollm2-135m-instruct" / COMPLETE_MARK).exists():
                smollm_gguf_dir()
            return None
        resolved = resolve_model_path(spec, cache_dir)
    except ModelSpecError as err:
        return str(err)
    if Path(resolved).exists():
        return None
    if spec.startswith("embedded:"):
        return f"{resolved} (model {spec!r}) is missing from its package; reinstall it"
    from huggingface_hub import try_to_load_from_cache  # deferred: heavy, only for a hub id
    from huggingface_hub.errors import HFValidationError  # deferred: heavy, only for a hub id

    try:
        cached = [try_to_load_from_cache(spec, f) for f in ("config.json", "adapter_config.json")]
    except HFValidationError as err:
        return f"{spec!r} is neither a model folder nor a valid hub id ({str(err).splitlines()[0]})"
    if any(isinstance(c, str) for c in cached):
        return None
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return f"hub model {spec!r} is not cached and needs network, but HF_HUB_OFFLINE=1; download it first"
    if not _hub_reachable():
        return f"hub model {spec!r} is not cached and needs network: the model hub is not reachable from here"
    return None


def check_model_specs(params: Params) -> list[str]:
    """One line per model spec of this run that cannot be loaded now (checked before stage 00 spends tokens).

    The alias ``distilled`` is skipped: stage 06 writes it.
    """
    named: dict[str, str] = {
        "models.student": params.models.student,
        "models.embedder": params.models.embedder,
    }
    for name, tp in params.models.teachers():
        if tp.backend == "hf":
            named[f"{name}.model"] = tp.model
    if params.difficulty.scorer:
        named["difficulty.scorer"] = params.difficulty.scorer
    problems = []
    for name, spec in params.evaluation.models.items():
        if spec == "distilled":
            continue
        try:
            named[f"evaluation.models.{name}"] = resolve_alias(spec, params)
        except ModelSpecError as err:
            problems.append(f"evaluation.models.{name}: {err}")
    for field, spec in named.items():
        why = _spec_problem(spec, params.resolved_cache_dir())
        if why:
            problems.append(f"{field}: {why.splitlines()[0].split('; available specs:')[0]}")
    return problems

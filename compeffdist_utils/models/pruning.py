"""A student smaller than its teacher: depth pruning of a Llama-family decoder.

The only instruct LM a package ships here is SmolLM2-135M, so teacher and student would otherwise be the
same model and distillation could show no gap. Prune-then-distill work (Minitron, Sheared-LLaMA) derives
the student from the teacher by dropping whole decoder layers and then trains it; the kit does the same.

Spec syntax (a model spec like any other, usable wherever params take one)::

    embedded:smollm2-135m-instruct#keep_layers=15            # the default rule, "spread"
    embedded:smollm2-135m-instruct#keep_layers=15,rule=front

or, in YAML, the mapping ``{base: embedded:smollm2-135m-instruct, keep_layers: 15, rule: spread}``, which
:func:`normalise_spec` turns into the string form when params load.

Which layers are kept (:func:`kept_layers`, tested in tests/models/test_pruning.py):

- ``spread`` (default): ``keep`` layers evenly spaced over the depth, always the first and the last
  (layer ``i * (n - 1) / (keep - 1)`` rounded half up, for ``i = 0 .. keep-1``). The first layer turns embeddings
  into the residual stream and the last one turns it back into next-token logits; the layers between
  are the most redundant, so it drops every other one of them rather than one block.
- ``front``: the first ``keep - 1`` layers and the last one, i.e. one contiguous block of deep layers
  is dropped (the deeper layers of an LLM matter least: Gromov et al., "The Unreasonable Ineffectiveness
  of the Deeper Layers").

The pruned model is built once into ``<cache>/models/pruned/<name>-<hash>`` through a temporary folder
renamed into place when complete (like the GGUF conversion), so an interrupted build never leaves a
folder that loads as broken. The hash covers the base spec, its config and weight files, the kept layers
and :data:`PRUNE_VERSION`, so a change to the base model or to this code builds a new folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from compeffdist_utils.core.model_spec import RULES, PrunedSpec, PruneSpecError
from compeffdist_utils.models.specs import COMPLETE_MARK, building_model_folder, resolve_plain_path

log = logging.getLogger(__name__)

PRUNE_VERSION = 1  # bump when the way a pruned folder is built changes (invalidates the cache)
RECIPE_FILE = "pruning.json"


def kept_layers(n_layers: int, keep: int, rule: str = "spread") -> list[int]:
    """Indices (ascending) of the decoder layers a pruned model keeps; see the module docstring."""
    if not 1 <= keep < n_layers:
        raise PruneSpecError(f"keep_layers must be between 1 and {n_layers - 1} for a {n_layers}-layer model")
    if rule not in RULES:
        raise PruneSpecError(f"rule must be one of {list(RULES)}, got {rule!r}")
    if keep == 1:
        return [n_layers - 1] if rule == "front" else [0]
    if rule == "front":
        return [*range(keep - 1), n_layers - 1]
    span, steps = n_layers - 1, keep - 1  # i * span / steps rounded half up, in whole numbers (no float ties)
    return [(2 * i * span + steps) // (2 * steps) for i in range(keep)]  # distinct: the step is >= 1


# -- building the folder ----------------------------------------------------------------------------------


def _base_fingerprint(base_path: str) -> str:
    """The base folder's config and weight files (name, size), so a changed base builds anew."""
    path = Path(base_path)
    if not path.is_dir():
        return base_path  # a hub id: the id is all there is to hash
    h = hashlib.sha256((path / "config.json").read_bytes() if (path / "config.json").is_file() else b"")
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()


def _n_layers(base_path: str, spec: str) -> int:
    from transformers import AutoConfig  # deferred: heavy, only when pruning

    config = AutoConfig.from_pretrained(base_path)
    n = getattr(config, "num_hidden_layers", None)
    if not isinstance(n, int):
        raise PruneSpecError(f"pruned model {spec!r}: the base's config has no num_hidden_layers")
    return n


def pruned_dir(ps: PrunedSpec, cache_dir: Path) -> Path:
    """The built folder of ``ps`` in the kit cache, building it on first use."""
    base_path = resolve_plain_path(ps.base, cache_dir)
    n = _n_layers(base_path, ps.spec)
    try:
        layers = kept_layers(n, ps.keep_layers, ps.rule)
    except PruneSpecError as err:
        raise PruneSpecError(f"pruned model {ps.spec!r}: {err}") from None
    key = json.dumps([PRUNE_VERSION, ps.base, _base_fingerprint(base_path), layers]).encode()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", ps.base.split(":")[-1].strip("/")) or "model"
    target = cache_dir / "models" / "pruned" / f"{name}-L{len(layers)}-{hashlib.sha256(key).hexdigest()[:12]}"
    if not (target / COMPLETE_MARK).exists():
        _build(base_path, ps, layers, n, target)
    return target


def prune_model(model: Any, layers: list[int]) -> Any:
    """Keep only ``layers`` of a loaded Llama-family model, in place; returns the model.

    Each kept layer gets its new position as ``layer_idx`` (the KV cache is indexed by it), and the
    config's per-layer lists (e.g. ``layer_types``) are cut to match.
    """
    import torch  # deferred: heavy, only when pruning

    decoder = getattr(model, "model", None)
    old = getattr(decoder, "layers", None)
    if not isinstance(old, torch.nn.ModuleList):
        raise PruneSpecError(
            f"depth pruning needs a Llama-family decoder (model.model.layers); got {type(model).__name__}"
        )
    n = len(old)
    decoder.layers = torch.nn.ModuleList([old[i] for i in layers])
    for new_idx, layer in enumerate(decoder.layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
    config = model.config
    for attr, value in list(vars(config).items()):
        if isinstance(value, list) and len(value) == n and attr != "architectures":
            setattr(config, attr, [value[i] for i in layers])
    config.num_hidden_layers = len(layers)
    return model


def _build(base_path: str, ps: PrunedSpec, layers: list[int], n: int, target: Path) -> None:
    import torch  # deferred: heavy, only when pruning
    from transformers import AutoModelForCausalLM, AutoTokenizer  # deferred: heavy, only when pruning

    log.info("building %s (%d of %d layers) in %s (one time)", ps.spec, len(layers), n, target)
    with building_model_folder(target, ps.spec) as tmp:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
        prune_model(model, layers).save_pretrained(tmp)
        AutoTokenizer.from_pretrained(base_path).save_pretrained(tmp)
        recipe = {"base": ps.base, "rule": ps.rule, "base_layers": n, "kept_layers": layers}
        (tmp / RECIPE_FILE).write_text(json.dumps(recipe | {"version": PRUNE_VERSION}, indent=2) + "\n")

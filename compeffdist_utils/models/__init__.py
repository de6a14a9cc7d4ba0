"""Models: what a model spec names, where and in which precision it runs, loading it, and pruned students.

- :mod:`.specs`: the embedded models the packages ship, local folders, hub ids, the run aliases
  (``student``, ``teacher``, ``distilled``) and the atomic model-folder builder;
- :mod:`.pruning`: a student depth-pruned from a Llama-family spec (``<spec>#keep_layers=K``);
- :mod:`.loading`: spec -> loadable path, tokenizer, causal LM (with its adapter), sentence embeddings;
- :mod:`.device`: device and dtype (bf16 only where it is native);
- :mod:`.checks`: every model spec of a run checked before stage 00 spends teacher tokens;
- :mod:`.batching`: `batch_size: auto`, the largest batch that fits (memory budget, OOM back-off).
"""

from compeffdist_utils.models.checks import check_model_specs
from compeffdist_utils.models.device import BF16_CPU_FLAGS, cpu_flags, fast_bf16, pick_device, resolve_dtype
from compeffdist_utils.models.loading import (
    embed_texts,
    load_causal_lm,
    load_embedder,
    load_tokenizer,
    peft_quietly,
    resolve_model_path,
)
from compeffdist_utils.models.pruning import kept_layers, prune_model, pruned_dir
from compeffdist_utils.models.specs import (
    EMBEDDED_SPECS,
    ModelSpecError,
    building_model_folder,
    embedded_minilm_dir,
    embedded_smollm_dir,
    resolve_alias,
)

__all__ = [
    "BF16_CPU_FLAGS",
    "EMBEDDED_SPECS",
    "ModelSpecError",
    "building_model_folder",
    "check_model_specs",
    "cpu_flags",
    "embed_texts",
    "embedded_minilm_dir",
    "embedded_smollm_dir",
    "fast_bf16",
    "kept_layers",
    "load_causal_lm",
    "load_embedder",
    "load_tokenizer",
    "peft_quietly",
    "pick_device",
    "prune_model",
    "pruned_dir",
    "resolve_alias",
    "resolve_dtype",
    "resolve_model_path",
]

"""The distilled student as a standalone transformers folder: a LoRA adapter merged into its base with
peft's ``merge_and_unload`` (or the fully fine-tuned weights as they are), saved with its tokenizer and
chat template, so ``AutoModelForCausalLM.from_pretrained(folder)`` needs neither peft nor the kit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compeffdist_utils.core.io import read_json
from compeffdist_utils.export.run_files import ExportError, RunFolder
from compeffdist_utils.models import load_causal_lm, peft_quietly


@dataclass
class ModelExport:
    """What was written: how the weights were made standalone, the base, the size and the dtype."""

    folder: Path
    kind: str  # "LoRA adapter merged into its base" or "full fine-tuning"
    base: str
    n_params: int
    dtype: str
    training: dict[str, Any]  # stage 06's summary.json


def standalone_model(adapter_or_model: Path, run: RunFolder) -> tuple[Any, Any, str]:
    """(model, tokenizer, kind): the trained student loaded as stage 07 loads it, LoRA merged, fp32 on CPU."""
    try:
        model, tok = load_causal_lm(str(adapter_or_model), run.params, dtype="float32", device="cpu")
    except (OSError, ValueError) as err:
        raise ExportError(f"the trained student in {adapter_or_model} does not load: {err}") from None
    if hasattr(model, "merge_and_unload"):  # a peft model: fold the adapter's deltas into the weights
        with peft_quietly():
            return model.merge_and_unload(), tok, "LoRA adapter merged into its base"
    return model, tok, "full fine-tuning"


def export_model(run: RunFolder, out: Path) -> ModelExport:
    """Write the standalone student into ``out`` (safetensors, config, generation config, tokenizer)."""
    model_dir = run.need("student/model")
    summary = run.json("student/summary.json")
    model, tok, kind = standalone_model(model_dir, run)
    tok.padding_side = "left"  # batched generation pads on the left; training did not use the saved value
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    adapter_cfg = model_dir / "adapter_config.json"
    base = (
        read_json(adapter_cfg)["base_model_name_or_path"]
        if adapter_cfg.is_file()
        else run.params.models.student
    )
    n_params = sum(p.numel() for p in model.parameters())
    return ModelExport(out, kind, str(base), n_params, str(model.dtype).replace("torch.", ""), summary)

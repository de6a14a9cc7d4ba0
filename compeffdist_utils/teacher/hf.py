"""The ``hf`` teacher: a local transformers model answering in batches.

Requests are grouped by decoding settings (a batch shares them), then by prompt length so a batch holds
prompts of similar size (less padding); generation is greedy or sampled with a seed derived from the batch,
so a rerun that misses the cache gets the same answers. The model is loaded only when a request misses the
cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from compeffdist_utils.core.config import Params
from compeffdist_utils.core.progress import generation_meter
from compeffdist_utils.models import load_causal_lm, resolve_dtype
from compeffdist_utils.teacher.base import TeacherBackend
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache
from compeffdist_utils.teacher.requests import ChatRequest


def _batch_seed(seed: int, keys: Sequence[str]) -> int:
    h = hashlib.sha256(json.dumps([seed, *keys]).encode()).hexdigest()
    return int(h[:8], 16)


class HFBackend(TeacherBackend):
    """A local transformers model, loaded on the first request that misses the cache."""

    backend_name = "hf"

    def __init__(self, model_spec: str, params: Params, cache: ResponseCache, batch_size: int = 8):

        super().__init__(model_spec, cache)
        dtype = resolve_dtype(params.models.teacher.dtype, params.models.teacher.device)
        if dtype != "float32":  # answers in another precision differ; fp32 keys stay as they were
            self.identity["dtype"] = dtype
        self.batch_size = batch_size
        self._model_and_tok: tuple[Any, Any] | None = None
        self._load = lambda: load_causal_lm(
            model_spec, params, dtype=params.models.teacher.dtype, device=params.models.teacher.device
        )

    @property
    def model_and_tokenizer(self) -> tuple[Any, Any]:
        # Loaded lazily: a rerun answered wholly from the cache never loads the model.
        if self._model_and_tok is None:
            self._model_and_tok = self._load()
        return self._model_and_tok

    def _batches(self, requests: list[ChatRequest], lengths: list[int]) -> list[list[int]]:
        """Indices of ``requests`` in batches of up to ``batch_size``: grouped by decoding settings (a batch
        shares them), then by prompt length to limit padding."""
        order = sorted(
            range(len(requests)),
            key=lambda i: (json.dumps(requests[i].decoding.model_dump(), sort_keys=True), lengths[i]),
        )
        batches: list[list[int]] = []
        for i in order:
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and requests[batches[-1][0]].decoding == requests[i].decoding
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _answer(self, requests: list[ChatRequest]) -> Iterator[tuple[int, CachedAnswer]]:
        import torch  # deferred: heavy, loaded only when a request misses the cache

        model, tok = self.model_and_tokenizer
        texts = [
            tok.apply_chat_template(r.as_messages(), tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        batches = self._batches(requests, lengths)
        for b, batch in enumerate(batches, 1):
            dec = requests[batch[0]].decoding
            enc = tok([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(model.device)
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": dec.max_new_tokens,
                "pad_token_id": tok.pad_token_id,
            }
            if dec.temperature > 0:
                torch.manual_seed(_batch_seed(dec.seed, [texts[i] for i in batch]))
                gen_kwargs.update(do_sample=True, temperature=dec.temperature, top_p=dec.top_p)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            held = self._reserve(len(batch), sum(lengths[i] for i in batch), dec.max_new_tokens)
            meter = generation_meter(
                f"teacher batch {b}/{len(batches)} · token", dec.max_new_tokens, len(batch)
            )
            if meter is not None:
                gen_kwargs["streamer"] = meter
            with torch.inference_mode():
                out = model.generate(**enc, **gen_kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            answers = []
            for row, i in enumerate(batch):
                ids = new[row].tolist()
                eos = tok.eos_token_id
                n = ids.index(eos) + 1 if eos in ids else len(ids)
                text = tok.decode(ids[:n], skip_special_tokens=True).strip()
                answers.append(CachedAnswer(text, lengths[i], n))
            self._settle(held, answers)
            yield from zip(batch, answers, strict=True)

"""The ``hf`` teacher: a local transformers model answering in batches.

Requests are grouped by decoding settings (a batch shares them), then by prompt length so a batch holds
prompts of similar size (less padding); a batch holds ``batch_size`` prompts, or with ``auto`` as many as
fit the device (:mod:`compeffdist_utils.models.batching`). Generation is greedy or sampled with a seed
derived from the batch, so a rerun that misses the cache gets the same answers at a fixed batch size
(with ``auto`` the batches follow the free memory, so sampled answers may differ; the cache keeps the
first ones). The model is loaded only when a request misses the
cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from compeffdist_utils.core.config import Params, TeacherParams
from compeffdist_utils.core.progress import generation_meter
from compeffdist_utils.models import load_causal_lm, resolve_dtype
from compeffdist_utils.models.batching import Batcher, BatchSize
from compeffdist_utils.models.specialist import weights_revision
from compeffdist_utils.teacher.base import TeacherBackend, teacher_identity
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache
from compeffdist_utils.teacher.requests import ChatRequest


def _batch_seed(seed: int, keys: Sequence[str]) -> int:
    h = hashlib.sha256(json.dumps([seed, *keys]).encode()).hexdigest()
    return int(h[:8], 16)


def hf_identity(model_spec: str) -> dict[str, str]:
    """A local model's cache identity: its spec, plus the weights' key where the spec outlives its weights."""
    identity = teacher_identity("hf", "local", model_spec)
    revision = weights_revision(model_spec)
    if revision is not None:  # other specs keep the keys they always had
        identity["weights"] = revision
    return identity


class HFBackend(TeacherBackend):
    """A local transformers model, loaded on the first request that misses the cache."""

    backend_name = "hf"

    def __init__(
        self,
        model_spec: str,
        params: Params,
        cache: ResponseCache,
        batch_size: BatchSize = 8,
        settings: TeacherParams | None = None,
    ):
        # settings: the teacher section it runs under (dtype, device); models.teacher unless given
        super().__init__(model_spec, cache)
        self.identity = hf_identity(model_spec)
        tp = settings or params.models.teacher
        dtype = resolve_dtype(tp.dtype, tp.device)
        if dtype != "float32":  # answers in another precision differ; fp32 keys stay as they were
            self.identity["dtype"] = dtype
        self.batch_size = batch_size
        self._model_and_tok: tuple[Any, Any] | None = None
        self._load = lambda: load_causal_lm(model_spec, params, dtype=tp.dtype, device=tp.device)

    @property
    def model_and_tokenizer(self) -> tuple[Any, Any]:
        # Loaded lazily: a rerun answered wholly from the cache never loads the model.
        if self._model_and_tok is None:
            self._model_and_tok = self._load()
        return self._model_and_tok

    def _order(self, requests: list[ChatRequest], lengths: list[int]) -> list[int]:
        """Indices grouped by decoding settings (a batch shares them), longest prompt first within a group
        (less padding; an ``auto`` batch that runs out of memory does so on its first, widest batch)."""
        return sorted(
            range(len(requests)),
            key=lambda i: (json.dumps(requests[i].decoding.model_dump(), sort_keys=True), -lengths[i]),
        )

    def _generate(
        self, requests: list[ChatRequest], texts: list[str], lengths: list[int], batch: list[int]
    ) -> list[CachedAnswer]:
        """Answers of one batch (same decoding settings); the budget's reservation is released if it fails."""
        import torch  # deferred: heavy, loaded only when a request misses the cache

        model, tok = self.model_and_tokenizer
        dec = requests[batch[0]].decoding
        enc = tok([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(model.device)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": dec.max_new_tokens, "pad_token_id": tok.pad_token_id}
        if dec.temperature > 0:
            torch.manual_seed(_batch_seed(dec.seed, [texts[i] for i in batch]))
            gen_kwargs.update(do_sample=True, temperature=dec.temperature, top_p=dec.top_p)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        held = self._reserve(len(batch), sum(lengths[i] for i in batch), dec.max_new_tokens)
        meter = generation_meter(f"teacher batch of {len(batch)} · token", dec.max_new_tokens, len(batch))
        if meter is not None:
            gen_kwargs["streamer"] = meter
        try:
            with torch.inference_mode():
                out = model.generate(**enc, **gen_kwargs)
        except BaseException:
            self._settle(held, [])  # nothing was answered: free the reservation (an OOM batch is rerun split)
            raise
        new = out[:, enc["input_ids"].shape[1] :]
        answers = []
        for row, i in enumerate(batch):
            ids = new[row].tolist()
            eos = tok.eos_token_id
            n = ids.index(eos) + 1 if eos in ids else len(ids)
            answers.append(CachedAnswer(tok.decode(ids[:n], skip_special_tokens=True).strip(), lengths[i], n))
        self._settle(held, answers)
        return answers

    def _answer(self, requests: list[ChatRequest]) -> Iterator[tuple[int, CachedAnswer]]:
        model, tok = self.model_and_tokenizer
        texts = [
            tok.apply_chat_template(r.as_messages(), tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        new_tokens = max(r.decoding.max_new_tokens for r in requests)
        batcher = Batcher(self.batch_size, model, "generate", new_tokens=new_tokens)
        for batch, answers in batcher.run(
            self._order(requests, lengths),
            lengths,
            lambda b: self._generate(requests, texts, lengths, b),
            same=lambda a, b: requests[a].decoding == requests[b].decoding,
        ):
            yield from zip(batch, answers, strict=True)

"""Teacher backends: chat messages + decoding settings in, text out, in order.

Two backends share one interface and one persistent cache (:mod:`compeffdist_utils.cache`):
- ``hf``: a local transformers model; batched generation with left padding, requests grouped by length
  so a batch holds prompts of similar size (less padding), greedy or seeded sampling.
- ``openai``: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, ``transformers serve``,
  hosted APIs) with bounded concurrency, timeouts and retries with backoff on 429/5xx/connection errors.

The API key is read from the environment variable named in params (``api_key_env``) when the backend
is built and is kept only inside the HTTP client: it is not part of cache keys, records or messages.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .cache import CachedAnswer, ResponseCache, request_key
from .config import DecodingParams, Params, TeacherParams


class TeacherUnavailableError(RuntimeError):
    """The teacher server could not be reached; the message names the URL."""


Messages = tuple[tuple[str, str], ...]  # (role, content) pairs: hashable and order-preserving


def conversation(request: str, worked_example: tuple[str, str] | None) -> Messages:
    """The chat for one request: optionally a solved (request, answer) exchange first, then the request.

    Small teachers follow a format best when they see it answered as an earlier turn (stages 01 and 03).
    """
    if worked_example is None:
        return (("user", request),)
    example_request, example_answer = worked_example
    return (("user", example_request), ("assistant", example_answer), ("user", request))


@dataclass(frozen=True)
class ChatRequest:
    messages: Messages
    decoding: DecodingParams
    tag: str = ""  # distinguishes deliberate repeats of the same prompt (e.g. several samples)

    @classmethod
    def user(
        cls, prompt: str, decoding: DecodingParams, system: str | None = None, tag: str = ""
    ) -> ChatRequest:
        msgs = ((("system", system),) if system else ()) + (("user", prompt),)
        return cls(msgs, decoding, tag)

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.as_messages(), "decoding": self.decoding.model_dump(), "tag": self.tag}


@dataclass
class Usage:
    """What the teacher cost in this process: answered from cache vs generated, and tokens."""

    requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_completion_tokens: int = 0
    by_desc: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, desc: str, hit: bool, answer: CachedAnswer) -> None:
        self.requests += 1
        d = self.by_desc.setdefault(desc, {"requests": 0, "cache_hits": 0, "completion_tokens": 0})
        d["requests"] += 1
        if hit:
            self.cache_hits += 1
            self.cached_completion_tokens += answer.completion_tokens
            d["cache_hits"] += 1
        else:
            self.cache_misses += 1
            self.prompt_tokens += answer.prompt_tokens
            self.completion_tokens += answer.completion_tokens
            d["completion_tokens"] += answer.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_completion_tokens": self.cached_completion_tokens,
            "by_step": self.by_desc,
        }


class TeacherBackend(ABC):
    """Answers chat requests in order, through the cache. Subclasses implement :meth:`_answer`."""

    backend_name: str = "base"

    def __init__(self, model: str, cache: ResponseCache, endpoint: str = "local"):
        self.model = model
        self.cache = cache
        self.identity = {"backend": self.backend_name, "endpoint": endpoint, "model": model}
        self.usage = Usage()

    def generate(self, requests: Sequence[ChatRequest], desc: str = "teacher") -> list[str]:
        """Answers for ``requests``, in order. Identical requests are asked once."""
        keys = [request_key(self.identity, r.as_dict()) for r in requests]
        found = self.cache.get_many(list(dict.fromkeys(keys)))
        todo: dict[str, ChatRequest] = {}
        for k, r in zip(keys, requests, strict=True):
            if k not in found and k not in todo:
                todo[k] = r
        fresh: dict[str, CachedAnswer] = {}
        if todo:
            items = list(todo.items())
            with tqdm(total=len(items), desc=f"{desc} ({len(found)} cached)", unit="req") as bar:
                for i, answer in self._answer([r for _, r in items]):
                    key, req = items[i]
                    self.cache.put(key, self.backend_name, self.model, req.as_dict(), answer)
                    fresh[key] = answer
                    bar.update(1)
        out = []
        seen_fresh: set[str] = set()
        for k in keys:
            hit = k in found or k in seen_fresh
            answer = found.get(k) or fresh[k]
            seen_fresh.add(k)
            self.usage.add(desc, hit, answer)
            out.append(answer.text)
        return out

    def chat(
        self,
        prompts: Sequence[str],
        decoding: DecodingParams,
        desc: str = "teacher",
        system: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> list[str]:
        """Convenience: one user message per prompt."""
        tags = tags or [""] * len(prompts)
        return self.generate(
            [ChatRequest.user(p, decoding, system, t) for p, t in zip(prompts, tags, strict=True)], desc
        )

    @abstractmethod
    def _answer(self, requests: list[ChatRequest]) -> Iterator[tuple[int, CachedAnswer]]:
        """Yield (index into ``requests``, answer) as answers arrive, in any order."""


def _batch_seed(seed: int, keys: Sequence[str]) -> int:
    h = hashlib.sha256(json.dumps([seed, *keys]).encode()).hexdigest()
    return int(h[:8], 16)


class HFBackend(TeacherBackend):
    backend_name = "hf"

    def __init__(self, model_spec: str, params: Params, cache: ResponseCache, batch_size: int = 8):
        from .models import load_causal_lm, resolve_dtype

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

    def _answer(self, requests: list[ChatRequest]) -> Iterator[tuple[int, CachedAnswer]]:
        import torch

        model, tok = self.model_and_tokenizer
        texts = [
            tok.apply_chat_template(r.as_messages(), tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        # Group by decoding settings (a batch shares them), then by length to limit padding.
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
        for batch in batches:
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
            with torch.inference_mode():
                out = model.generate(**enc, **gen_kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            for row, i in enumerate(batch):
                ids = new[row].tolist()
                eos = tok.eos_token_id
                n = ids.index(eos) + 1 if eos in ids else len(ids)
                text = tok.decode(ids[:n], skip_special_tokens=True).strip()
                yield i, CachedAnswer(text, lengths[i], n)


class OpenAIBackend(TeacherBackend):
    backend_name = "openai"

    def __init__(self, tp: TeacherParams, cache: ResponseCache):
        import openai

        assert tp.base_url is not None  # checked by TeacherParams
        super().__init__(tp.model, cache, endpoint=tp.base_url)
        self.base_url = tp.base_url
        self.max_concurrency = tp.max_concurrency
        api_key = "EMPTY"  # local servers ignore it; the client insists on one
        if tp.api_key_env:
            api_key = os.environ.get(tp.api_key_env, "")
            if not api_key:
                raise TeacherUnavailableError(
                    f"the teacher at {tp.base_url} needs an API key in the environment variable "
                    f"{tp.api_key_env}, which is not set"
                )
        # The client retries 429, 5xx and connection errors with exponential backoff.
        self._client = openai.OpenAI(
            base_url=tp.base_url, api_key=api_key, timeout=tp.timeout_s, max_retries=tp.max_retries
        )
        self._max_retries = tp.max_retries

    def _one(self, req: ChatRequest) -> CachedAnswer:
        import openai

        dec = req.decoding
        try:
            resp = self._client.chat.completions.create(
                model=self.model,
                messages=req.as_messages(),  # type: ignore[arg-type]
                max_tokens=dec.max_new_tokens,
                temperature=dec.temperature,
                top_p=dec.top_p,
                seed=dec.seed,
            )
        except (openai.APIConnectionError, openai.APITimeoutError) as err:
            raise TeacherUnavailableError(
                f"teacher server {self.base_url} is unreachable after {self._max_retries} retries "
                f"({type(err).__name__}); is it running? (model {self.model!r})"
            ) from None
        except openai.APIStatusError as err:
            raise TeacherUnavailableError(
                f"teacher server {self.base_url} answered HTTP {err.status_code} for model {self.model!r}: "
                f"{str(err.message)[:300]}"
            ) from None
        text = (resp.choices[0].message.content or "").strip() if resp.choices else ""
        pt = resp.usage.prompt_tokens if resp.usage else 0
        ct = resp.usage.completion_tokens if resp.usage else 0
        return CachedAnswer(text, int(pt or 0), int(ct or 0))

    def _answer(self, requests: list[ChatRequest]) -> Iterator[tuple[int, CachedAnswer]]:
        pool = ThreadPoolExecutor(max_workers=self.max_concurrency)
        futures = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        finally:
            # On an error, drop what has not started; what was answered is already cached.
            pool.shutdown(wait=True, cancel_futures=True)


def cache_path(params: Params) -> Path:
    return params.resolved_cache_dir() / "responses.sqlite"


def make_teacher(params: Params, cache: ResponseCache | None = None) -> TeacherBackend:
    """The teacher named in ``params.models.teacher``, writing through the persistent cache."""
    tp = params.models.teacher
    cache = cache or ResponseCache(cache_path(params))
    if tp.backend == "hf":
        return HFBackend(tp.model, params, cache, batch_size=tp.batch_size)
    return OpenAIBackend(tp, cache)

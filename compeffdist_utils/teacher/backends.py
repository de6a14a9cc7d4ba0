"""Teacher backends: chat messages + decoding settings in, text out, in order.

Two backends share one interface and one persistent cache (:mod:`compeffdist_utils.cache`):
- ``hf``: a local transformers model; batched generation with left padding, requests grouped by length
  so a batch holds prompts of similar size (less padding), greedy or seeded sampling.
- ``openai``: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, ``transformers serve``,
  hosted APIs) with bounded concurrency, timeouts and retries with backoff on 429/5xx/connection errors.
  A request the server rejects on its own (HTTP 400/413/422, e.g. a prompt over the context) is answered
  "" and counted as ``failed`` in the usage (not cached, so a rerun asks again); the stage goes on.

The API key is read from the environment variable named in params (``api_key_env``) when the backend
is built and is kept only inside the HTTP client (and as a string to redact): it is not part of cache keys,
records or messages, and error text from the server is redacted before it is raised.

Only well-formed completions are cached: a reply that is not chat-completion JSON (HTML, cut-off JSON,
no ``choices``, empty content) is retried like a server error and then fails the stage, naming the URL
and what came back, so a misbehaving server can never poison the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import DecodingParams, Params, TeacherParams
from compeffdist_utils.core.progress import format_rate, generation_meter, tqdm
from compeffdist_utils.core.redaction import redact
from compeffdist_utils.models import load_causal_lm, resolve_dtype
from compeffdist_utils.teacher.budget import TeacherBudget, TeacherBudgetExceeded
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache, request_key

log = logging.getLogger(__name__)

# HTTP statuses with which a server refuses one request for what it asks (a prompt over the context,
# a bad parameter), not because it is down or misconfigured: that request fails alone, the stage goes on.
REQUEST_REJECTED_STATUSES = (400, 413, 422)


class TeacherUnavailableError(RuntimeError):
    """The teacher server could not be reached; the message names the URL."""


class MalformedReplyError(ValueError):
    """An HTTP 200 reply that is not a usable chat completion; the message says what is wrong."""


def parse_completion(body: str) -> CachedAnswer:
    """The answer in a chat-completion JSON body, or :class:`MalformedReplyError` (never an empty answer)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise MalformedReplyError(f"not JSON ({err.msg} at character {err.pos})") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedReplyError("JSON without a non-empty 'choices' list")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise MalformedReplyError("choices[0].message.content is missing or not a string")
    if not content.strip():
        raise MalformedReplyError("an empty answer")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return CachedAnswer(
        content.strip(), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    )


MAX_FAILURE_EXAMPLES = 5

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
    cached_prompt_tokens: int = 0
    failed: int = 0  # requests the server rejected (answered "" and not cached), see OpenAIBackend
    failure_examples: list[str] = field(default_factory=list)  # the first few rejection messages
    by_desc: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, desc: str, hit: bool, answer: CachedAnswer) -> None:
        self.requests += 1
        d = self.by_desc.setdefault(desc, {"requests": 0, "cache_hits": 0, "completion_tokens": 0})
        d["requests"] += 1
        if answer.error is not None:
            self.failed += 1
            d["failed"] = d.get("failed", 0) + 1
            if len(self.failure_examples) < MAX_FAILURE_EXAMPLES:
                self.failure_examples.append(f"{desc}: {answer.error}")
        elif hit:
            self.cache_hits += 1
            self.cached_completion_tokens += answer.completion_tokens
            self.cached_prompt_tokens += answer.prompt_tokens
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
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "failed": self.failed,
            "failure_examples": self.failure_examples,
            "by_step": self.by_desc,
        }


class TeacherBackend(ABC):
    """Answers chat requests in order, through the cache. Subclasses implement :meth:`_answer`."""

    backend_name: str = "base"
    # A local model's empty answer is a real answer; a server's is treated as a failed reply.
    empty_answers_are_answers: bool = True

    def __init__(self, model: str, cache: ResponseCache, endpoint: str = "local"):
        self.model = model
        self.cache = cache
        self.identity = teacher_identity(self.backend_name, endpoint, model)
        self.usage = Usage()
        self.stage = ""  # the stage asking; recorded with each cached answer (``compeffdist cache drop``)
        self.budget: TeacherBudget | None = None  # set by Stage.teacher() when params.budget sets a limit

    def generate(self, requests: Sequence[ChatRequest], desc: str = "teacher") -> list[str]:
        """Answers for ``requests``, in order. Identical requests are asked once."""
        keys = [request_key(self.identity, r.as_dict()) for r in requests]
        found = self.cache.get_many(list(dict.fromkeys(keys)))
        if not self.empty_answers_are_answers:  # rows poisoned by older versions are asked again
            found = {k: a for k, a in found.items() if a.text}
        todo: dict[str, ChatRequest] = {}
        for k, r in zip(keys, requests, strict=True):
            if k not in found and k not in todo:
                todo[k] = r
        fresh: dict[str, CachedAnswer] = {}
        if self.budget is not None:
            self.budget.count_cached(found.values())
        if todo:
            items = list(todo.items())
            t0, tokens = time.monotonic(), 0
            with tqdm(total=len(items), desc=f"{desc} ({len(found)} cached)", unit="req") as bar:
                try:
                    for i, answer in self._answer([r for _, r in items]):
                        key, req = items[i]
                        if answer.error is None:
                            self.cache.put(
                                key, self.backend_name, self.model, req.as_dict(), answer, self.stage
                            )
                        fresh[key] = answer
                        tokens += answer.completion_tokens  # generated tokens per second: the teacher's speed
                        rate = format_rate(tokens / max(time.monotonic() - t0, 1e-6))
                        bar.set_postfix_str(f"{rate} tok/s", refresh=False)
                        bar.update(1)
                except TeacherBudgetExceeded:
                    assert self.budget is not None
                    self.budget.stop_record()  # again, now that the requests in flight are cached
                    raise
            rejected = [a.error for a in fresh.values() if a.error is not None]
            if rejected:
                log.warning(
                    "%s: the teacher server rejected %d of %d requests (answered empty, not cached; "
                    "counted in teacher usage as 'failed'); first: %s",
                    desc, len(rejected), len(items), rejected[0],
                )  # fmt: skip
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
        """Yield (index into ``requests``, answer) as answers arrive, in any order.

        Before sending uncached requests, call :meth:`_reserve` (it raises when the budget would be
        exceeded) and afterwards :meth:`_settle` with their answers.
        """

    def _reserve(self, n_requests: int, prompt_tokens: int, max_new_tokens: int) -> tuple[int, int]:
        if self.budget is None:
            return (0, 0)
        return self.budget.reserve(n_requests, prompt_tokens, max_new_tokens)

    def _settle(self, reserved: tuple[int, int], answers: Sequence[CachedAnswer]) -> None:
        if self.budget is not None:
            self.budget.settle(reserved, answers)


def teacher_identity(backend: str, endpoint: str, model: str) -> dict[str, str]:
    """Who answers, as part of every cache key: the plan computes the same keys without a backend."""
    return {"backend": backend, "endpoint": endpoint, "model": model}


def estimated_prompt_tokens(request: ChatRequest) -> int:
    """A generous guess of a request's prompt tokens where no tokenizer is at hand (3 characters per
    token, English text runs nearer 4, plus a few template tokens per message): the budget reserves it."""
    return sum(len(c) // 3 + 8 for _, c in request.messages)


def _batch_seed(seed: int, keys: Sequence[str]) -> int:
    h = hashlib.sha256(json.dumps([seed, *keys]).encode()).hexdigest()
    return int(h[:8], 16)


class HFBackend(TeacherBackend):
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


class OpenAIBackend(TeacherBackend):
    backend_name = "openai"
    empty_answers_are_answers = False

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
        self._secrets = (api_key,)
        self._probe_timeout_s = tp.probe_timeout_s
        self._probed = False

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _probe(self) -> None:
        """Fail fast on a server that accepts connections but never answers.

        The request timeout must be long (real generation takes minutes), so a stuck server would
        otherwise take timeout x retries to notice. Any HTTP answer to ``GET /models`` (even 404) shows
        the server is alive; connection errors are left to the requests, which retry them.
        """
        import openai

        if self._probed:
            return
        try:
            self._client.with_options(
                timeout=self._probe_timeout_s, max_retries=0
            ).models.with_raw_response.list()
        except openai.APITimeoutError:
            raise TeacherUnavailableError(
                f"teacher server {self.base_url} accepts connections but did not answer GET /models within "
                f"{self._probe_timeout_s:g} s; is it stuck or still loading? (models.teacher.probe_timeout_s)"
            ) from None
        except (openai.APIConnectionError, openai.APIStatusError):
            pass
        self._probed = True

    def _one(self, req: ChatRequest) -> CachedAnswer:
        import openai

        dec = req.decoding
        held = self._reserve(1, estimated_prompt_tokens(req), dec.max_new_tokens)
        answer: CachedAnswer | None = None
        try:
            for attempt in range(self._max_retries + 1):
                try:
                    raw = self._client.chat.completions.with_raw_response.create(
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
                    if (
                        err.status_code in REQUEST_REJECTED_STATUSES
                    ):  # this request alone: counted, not cached
                        message = self._redact(str(err.message)[:300])
                        return CachedAnswer("", 0, 0, error=f"HTTP {err.status_code}: {message}")
                    raise TeacherUnavailableError(
                        self._redact(
                            f"teacher server {self.base_url} answered HTTP {err.status_code} for model "
                            f"{self.model!r}: {str(err.message)[:300]}"
                        )
                    ) from None
                body = raw.text
                try:
                    answer = parse_completion(body)
                    return answer
                except MalformedReplyError as err:
                    problem = err
                if attempt < self._max_retries:
                    time.sleep(min(0.5 * 2**attempt, 8.0))
            raise TeacherUnavailableError(
                self._redact(
                    f"teacher server {self.base_url} sent a reply that is not a chat completion ({problem}) "
                    f"{self._max_retries + 1} times for model {self.model!r}; nothing was cached. "
                    f"It began: {body[:200]!r}"
                )
            )
        finally:  # settle what was answered; nothing answered releases the reservation
            self._settle(held, [answer] if answer is not None else [])

    def _answer(self, requests: list[ChatRequest]) -> Iterator[tuple[int, CachedAnswer]]:
        self._probe()
        pool = ThreadPoolExecutor(max_workers=self.max_concurrency)
        futures = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
        stop: TeacherBudgetExceeded | None = None
        try:
            for fut in as_completed(futures):
                try:
                    answer = fut.result()
                except TeacherBudgetExceeded as err:  # let the requests in flight come back and be cached
                    stop = stop or err
                    continue
                yield futures[fut], answer
            if stop is not None:
                raise stop
        finally:
            # On an error, drop what has not started; what was answered is already cached.
            pool.shutdown(wait=True, cancel_futures=True)


def cache_path(params: Params) -> Path:
    return params.resolved_cache_dir() / "responses.sqlite"


def make_teacher(params: Params, cache: ResponseCache | None = None, stage: str = "") -> TeacherBackend:
    """The teacher named in ``params.models.teacher``, writing through the persistent cache."""
    tp = params.models.teacher
    cache = cache or ResponseCache(cache_path(params))
    teacher: TeacherBackend
    if tp.backend == "hf":
        teacher = HFBackend(tp.model, params, cache, batch_size=tp.batch_size)
    else:
        teacher = OpenAIBackend(tp, cache)
    teacher.stage = stage
    return teacher

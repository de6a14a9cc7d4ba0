"""The ``openai`` teacher: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, ``transformers
serve``, hosted APIs) with bounded concurrency, timeouts and retries with backoff on 429/5xx/connection errors.

A request the server rejects on its own (HTTP 400/413/422, e.g. a prompt over the context) is answered ""
and counted as ``failed`` in the usage (not cached, so a rerun asks again); the stage goes on.

The API key is read from the environment variable named in params (``api_key_env``) when the backend
is built and is kept only inside the HTTP client (and as a string to redact): it is not part of cache keys,
records or messages, and error text from the server is redacted before it is raised.

Only well-formed completions are cached: a reply that is not chat-completion JSON (HTML, cut-off JSON,
no ``choices``, empty content) is retried like a server error and then fails the stage, naming the URL
and what came back, so a misbehaving server can never poison the cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from compeffdist_utils.core.config import TeacherParams
from compeffdist_utils.core.redaction import redact
from compeffdist_utils.teacher.base import TeacherBackend, TeacherUnavailableError
from compeffdist_utils.teacher.budget import TeacherBudgetExceeded
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache
from compeffdist_utils.teacher.requests import (
    ChatRequest,
    MalformedReplyError,
    estimated_prompt_tokens,
    parse_completion,
)

# HTTP statuses with which a server refuses one request for what it asks (a prompt over the context,
# a bad parameter), not because it is down or misconfigured: that request fails alone, the stage goes on.
REQUEST_REJECTED_STATUSES = (400, 413, 422)


class OpenAIBackend(TeacherBackend):
    """An OpenAI-compatible chat-completions server, asked ``max_concurrency`` requests at a time."""

    backend_name = "openai"
    empty_answers_are_answers = False

    def __init__(self, tp: TeacherParams, cache: ResponseCache):
        import openai  # deferred: heavy, only for the openai backend

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
        import openai  # deferred: heavy, only for the openai backend

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
        import openai  # deferred: heavy, only for the openai backend

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

"""The ``openai`` teacher: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, ``transformers
serve``, hosted APIs) with bounded concurrency, a total deadline per request, and retries with backoff.

How the defaults serve both a stuck server and a slow one: each request has ``timeout_s`` (120 s) in total,
connect + send + wait + read, dripping replies included (:mod:`.deadline`). A completion is not streamed, so
a real server sends its answer only when it is generated; 120 s covers a 1,048-token answer from a 70B
model at 9 tokens/s per request, slower than a busy vLLM server typically serves it. A timeout is
retried only while the server shows progress (another request answered while this one waited; see
:mod:`.attempts`), so a server that answers ``GET /models`` but never a completion fails the stage after
one ``timeout_s`` (about 2 minutes on defaults, not 10), naming the URL and what was waited for, while a
busy server that answers some requests late is waited for and retried. A slower server needs a larger
``timeout_s``, and the timeout error says so.

A request the server rejects on its own (HTTP 400/413/422, e.g. a prompt over the context) is answered ""
and counted as ``failed`` in the usage (not cached, so a rerun asks again); the stage goes on unless more
than ``max_failed_fraction`` of its requests failed (:mod:`.base`).

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
from compeffdist_utils.teacher.attempts import (
    REQUEST_REJECTED_STATUSES,
    RETRIED_STATUSES,
    Progress,
    backoff_s,
    connection_problem,
    timeout_problem,
)
from compeffdist_utils.teacher.base import TeacherBackend, TeacherUnavailableError
from compeffdist_utils.teacher.budget import TeacherBudgetExceeded
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache
from compeffdist_utils.teacher.deadline import request_deadline, with_deadlines
from compeffdist_utils.teacher.requests import (
    ChatRequest,
    MalformedReplyError,
    estimated_prompt_tokens,
    parse_completion,
)

__all__ = ["REQUEST_REJECTED_STATUSES", "OpenAIBackend"]


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
        # Retries are decided here (see :mod:`.attempts`), not by the client.
        self._client = openai.OpenAI(
            base_url=tp.base_url,
            api_key=api_key,
            timeout=tp.timeout_s,
            max_retries=0,
            http_client=with_deadlines(openai.DefaultHttpxClient(timeout=tp.timeout_s)),
        )
        self._max_retries = tp.max_retries
        self._timeout_s = tp.timeout_s
        self._progress = Progress()
        self.claim_lease_s = tp.timeout_s * (tp.max_retries + 1) + 60  # the longest one request may take
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
            with request_deadline(self._probe_timeout_s):
                self._client.with_options(timeout=self._probe_timeout_s).models.with_raw_response.list()
        except openai.APITimeoutError:
            raise TeacherUnavailableError(
                f"teacher server {self.base_url} accepts connections but did not answer GET /models within "
                f"{self._probe_timeout_s:g} s; is it stuck or still loading? (models.teacher.probe_timeout_s)"
            ) from None
        except (openai.APIConnectionError, openai.APIStatusError):
            pass
        self._probed = True

    def _one(self, req: ChatRequest) -> CachedAnswer:
        dec = req.decoding
        held = self._reserve(1, estimated_prompt_tokens(req), dec.max_new_tokens)
        answer: CachedAnswer | None = None
        try:
            answer = self._attempts(req)
            return answer
        finally:  # settle what was answered; nothing answered releases the reservation
            self._settle(held, [answer] if answer is not None else [])

    def _attempts(self, req: ChatRequest) -> CachedAnswer:
        """Ask until answered, retrying only what :mod:`.attempts` says is worth it."""
        import openai  # deferred: heavy, only for the openai backend

        problem = ""
        for attempt in range(self._max_retries + 1):
            t0, retry_after = time.monotonic(), None
            try:
                with request_deadline(self._timeout_s) as window:
                    raw = self._client.chat.completions.with_raw_response.create(
                        model=self.model,
                        messages=req.as_messages(),  # type: ignore[arg-type]
                        max_tokens=req.decoding.max_new_tokens,
                        temperature=req.decoding.temperature,
                        top_p=req.decoding.top_p,
                        seed=req.decoding.seed,
                    )
                    body = raw.text
            except openai.APITimeoutError:
                if not self._progress.answered_since(t0):  # nothing moved: the server is stuck
                    raise TeacherUnavailableError(
                        timeout_problem(self.base_url, self._timeout_s, window.bytes_received, attempt + 1)
                    ) from None
                problem = f"did not answer within timeout_s={self._timeout_s:g} s"
            except openai.APIConnectionError as err:
                problem = connection_problem(err)
            except openai.APIStatusError as err:
                message = str(err.message)[:300]
                if err.status_code in REQUEST_REJECTED_STATUSES:  # this request alone: counted, not cached
                    return CachedAnswer("", 0, 0, error=self._redact(f"HTTP {err.status_code}: {message}"))
                if err.status_code not in RETRIED_STATUSES:  # permanent: asking again cannot help
                    raise TeacherUnavailableError(
                        self._redact(
                            f"teacher server {self.base_url} answered HTTP {err.status_code} for model "
                            f"{self.model!r} (not retried: the status is permanent): {message}"
                        )
                    ) from None
                problem = f"answered HTTP {err.status_code}: {message}"
                retry_after = err.response.headers.get("retry-after")
            else:
                try:
                    answer = parse_completion(body)
                except MalformedReplyError as err:
                    problem = (
                        f"sent a reply that is not a chat completion ({err}); nothing was cached. "
                        f"It began: {body[:200]!r}"
                    )
                else:
                    self._progress.answered()
                    return answer
            if attempt < self._max_retries:
                time.sleep(backoff_s(attempt, retry_after))
        raise TeacherUnavailableError(
            self._redact(
                f"teacher server {self.base_url} {problem} (model {self.model!r}; "
                f"{self._max_retries + 1} attempt(s), {self._max_retries} retries)"
            )
        )

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

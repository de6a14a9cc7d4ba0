"""The teacher backend contract: chat requests in, answers out in order, through the persistent cache.

A backend (:mod:`.hf` a local model, :mod:`.openai` an OpenAI-compatible server) implements only
:meth:`TeacherBackend._answer`; the base class looks answers up in the cache, asks for the missing ones
once, stores what came back, counts usage and honours the run's token budget.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from compeffdist_utils.core.config import DecodingParams
from compeffdist_utils.core.progress import format_rate, tqdm
from compeffdist_utils.teacher.budget import TeacherBudget, TeacherBudgetExceeded
from compeffdist_utils.teacher.cache import CachedAnswer, ResponseCache, request_key
from compeffdist_utils.teacher.requests import ChatRequest, Usage
from compeffdist_utils.teacher.sharing import new_owner, wait_for_others

log = logging.getLogger(__name__)


class TeacherUnavailableError(RuntimeError):
    """The teacher server could not be reached; the message names the URL."""


class TeacherFailuresError(RuntimeError):
    """Too many of a step's requests failed, or too many answers could not be used; the message gives
    the counts, the threshold and the first error."""


def check_failed_fraction(what: str, failed: int, total: int, first: str, limit: float) -> None:
    """Fail a step in which more than ``limit`` (``models.teacher.max_failed_fraction``) of ``total``
    failed, or all of them did: a stage must not finish "ok" on answers it does not have."""
    if total == 0 or failed == 0 or (failed < total and failed <= limit * total):
        return
    raise TeacherFailuresError(
        f"{what}: {failed} of {total} failed ({failed / total:.0%}; the limit is "
        f"models.teacher.max_failed_fraction={limit:g}); first: {first}"
    )


def teacher_identity(backend: str, endpoint: str, model: str) -> dict[str, str]:
    """Who answers, as part of every cache key: the plan computes the same keys without a backend."""
    return {"backend": backend, "endpoint": endpoint, "model": model}


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
        self.max_failed_fraction = 0.2  # set from params by make_teacher
        self._owner = new_owner()  # claims keys in a cache shared with other runs (see .sharing)
        self.claim_lease_s = 900.0  # a claim not renewed (no answer) for this long is taken over

    def generate(self, requests: Sequence[ChatRequest], desc: str = "teacher") -> list[str]:
        """Answers for ``requests``, in order. Identical requests are asked once."""
        keys = [request_key(self.identity, r.as_dict()) for r in requests]
        found = self._cached(list(dict.fromkeys(keys)))
        todo: dict[str, ChatRequest] = {}
        for k, r in zip(keys, requests, strict=True):
            if k not in found and k not in todo:
                todo[k] = r
        fresh: dict[str, CachedAnswer] = {}
        if self.budget is not None:
            self.budget.count_cached(found.values())
        while todo:  # what another run sharing the cache is asking is waited for, not asked again
            mine, theirs = self.cache.claim(list(todo), self._owner, self.claim_lease_s)
            answered = self._cached(sorted(mine))  # by another run, since the first look
            try:
                ask = [(k, r) for k, r in todo.items() if k in mine and k not in answered]
                fresh.update(self._ask(ask, desc, len(found) + len(answered)))
            finally:
                self.cache.release(sorted(mine), self._owner)
            answered |= wait_for_others(self.cache, theirs, self._owner, self.empty_answers_are_answers)
            if self.budget is not None:
                self.budget.count_cached(answered.values())
            found.update(answered)
            todo = {k: todo[k] for k in theirs if k not in answered}  # released unanswered: ask them
        rejected = [a.error for a in fresh.values() if a.error is not None]
        if rejected:
            log.warning(
                "%s: the teacher server rejected %d of %d requests (answered empty, not cached; "
                "counted in teacher usage as 'failed'); first: %s",
                desc, len(rejected), len(fresh), rejected[0],
            )  # fmt: skip
            what = f"{desc}: requests the teacher server rejected (not cached; answered ones are)"
            n_unique = len(found) + len(fresh)
            check_failed_fraction(what, len(rejected), n_unique, rejected[0], self.max_failed_fraction)
        out = []
        seen_fresh: set[str] = set()
        for k in keys:
            hit = k in found or k in seen_fresh
            answer = found.get(k) or fresh[k]
            seen_fresh.add(k)
            self.usage.add(desc, hit, answer)
            out.append(answer.text)
        return out

    def _cached(self, keys: list[str]) -> dict[str, CachedAnswer]:
        found = self.cache.get_many(keys)
        if not self.empty_answers_are_answers:  # rows poisoned by older versions are asked again
            found = {k: a for k, a in found.items() if a.text}
        return found

    def _ask(self, items: list[tuple[str, ChatRequest]], desc: str, n_cached: int) -> dict[str, CachedAnswer]:
        """Ask the backend for ``items`` (key, request) and cache each answer as it arrives."""
        fresh: dict[str, CachedAnswer] = {}
        if not items:
            return fresh
        t0, tokens = time.monotonic(), 0
        with tqdm(total=len(items), desc=f"{desc} ({n_cached} cached)", unit="req") as bar:
            try:
                for i, answer in self._answer([r for _, r in items]):
                    key, req = items[i]
                    if answer.error is None:
                        self.cache.put(key, self.backend_name, self.model, req.as_dict(), answer, self.stage)
                        self.cache.renew(self._owner, self.claim_lease_s)  # still asking: keep the claims
                    fresh[key] = answer
                    tokens += answer.completion_tokens  # generated tokens per second: the teacher's speed
                    rate = format_rate(tokens / max(time.monotonic() - t0, 1e-6))
                    bar.set_postfix_str(f"{rate} tok/s", refresh=False)
                    bar.update(1)
            except TeacherBudgetExceeded:
                assert self.budget is not None
                self.budget.stop_record()  # again, now that the requests in flight are cached
                raise
        return fresh

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

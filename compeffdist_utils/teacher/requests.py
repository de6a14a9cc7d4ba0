"""What is asked of the teacher and what it costs: chat requests, a server's reply parsed into an answer,
and the usage counts of one process.

A request is its messages, decoding settings and a tag; together with the teacher's identity they make the
response cache's key (:func:`compeffdist_utils.teacher.cache.request_key`), so the plan can compute the same
keys without a backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from compeffdist_utils.core.config import DecodingParams
from compeffdist_utils.teacher.cache import CachedAnswer

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
    """One chat to answer: with the teacher's identity, the response cache's key."""

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


def estimated_prompt_tokens(request: ChatRequest) -> int:
    """A generous guess of a request's prompt tokens where no tokenizer is at hand (3 characters per
    token, English text runs nearer 4, plus a few template tokens per message): the budget reserves it."""
    return sum(len(c) // 3 + 8 for _, c in request.messages)


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

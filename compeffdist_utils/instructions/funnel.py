"""The bookkeeping every stage-03 step shares (docs/METHOD.md, step 4): the yield funnel (requests sent,
answers parsed, items read and kept, drops by reason; written to ``instructions/funnel.json``), the
teacher call, and the error for an empty pool. A teacher that answers junk costs counted drops, never a
crash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from compeffdist_utils.core.config import DecodingParams
from compeffdist_utils.teacher.backends import ChatRequest, Messages

STEPS = ("analysis", "ideation", "standardisation", "demonstrations", "dedup")


class Teacher(Protocol):
    """What the stage needs from a teacher: :meth:`backends.TeacherBackend.generate` (answers in order)."""

    def generate(self, requests: Sequence[ChatRequest], desc: str = ...) -> list[str]: ...


class EmptyPoolError(RuntimeError):
    """Stage 03 kept no instruction at all; the message names the step that dropped everything."""


# -- bookkeeping -----------------------------------------------------------------------------------------


@dataclass
class StepCounts:
    """One funnel step: requests sent, answers parsed, items read and kept, drops by reason."""

    requests: int = 0
    answers_parsed: int = 0
    items_parsed: int = 0
    items_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answers_parsed": self.answers_parsed,
            "items_parsed": self.items_parsed,
            "items_kept": self.items_kept,
            "dropped": dict(sorted(self.dropped.items())),
            "notes": dict(sorted(self.notes.items())),
        }


@dataclass
class Funnel:
    """The yield of every step, in order; ``pool`` holds the final counts per task type."""

    steps: dict[str, StepCounts] = field(default_factory=lambda: {s: StepCounts() for s in STEPS})
    pool: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, step: str) -> StepCounts:
        return self.steps[step]

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v.as_dict() for k, v in self.steps.items()}, "pool": self.pool}

    def describe(self) -> str:
        """One line per step, for error messages and logs."""
        lines = []
        for name, c in self.steps.items():
            drops = ", ".join(f"{k} {v}" for k, v in sorted(c.dropped.items())) or "none"
            lines.append(
                f"  {name}: {c.requests} requests, {c.answers_parsed} answers parsed, "
                f"{c.items_parsed} items parsed, {c.items_kept} kept (dropped: {drops})"
            )
        return "\n".join(lines)


def ask_teacher(
    teacher: Teacher,
    chats: list[Messages],
    decoding: DecodingParams,
    desc: str,
    tags: list[str] | None = None,
) -> list[str]:
    """The teacher's answers, without a call when an earlier step left nothing to ask about."""
    if not chats:
        return []
    tags = tags or [""] * len(chats)
    return teacher.generate(
        [ChatRequest(m, decoding, t) for m, t in zip(chats, tags, strict=True)], desc=desc
    )

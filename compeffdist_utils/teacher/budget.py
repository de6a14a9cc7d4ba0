"""A teacher budget: a stage stops cleanly before its next batch could take the run over its limit.

Why: at paper scale one run sends tens of thousands of requests to a 70B teacher. ``budget.max_teacher_tokens``
and/or ``budget.max_usd`` (with ``budget.price_in`` / ``price_out``) cap what the whole run may cost.

What counts: the tokens (prompt + completion) of every teacher answer the run uses, from the stages before
this one (read from ``manifest.json``) and from this stage, including answers read from the response
cache — they were paid for once, when this run stopped before, or by another run sharing the cache. So a
stop followed by a higher budget and a rerun reads the answered requests back (no second payment) and the
run's total never exceeds the limit, however often it is resumed.

How: before a backend sends uncached requests (an hf batch, or one request of the openai backend's
concurrent pool) it reserves their worst case, the prompt tokens plus ``max_new_tokens`` per request;
after the answer the reservation is replaced by the real count. A reservation that would cross a limit
is refused: nothing more is sent, the answers that came back are already in the cache, a stop record is
written beside the stage record (the runner marks the stage ``stopped: budget`` with its numbers) and
:class:`TeacherBudgetExceeded` is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compeffdist_utils.core.config import BudgetParams, Params
from compeffdist_utils.core.io import read_json, write_json
from compeffdist_utils.core.manifest import stage_record_path
from compeffdist_utils.teacher.cache import CachedAnswer


class TeacherBudgetExceeded(RuntimeError):
    """The next teacher batch would take the run over ``budget``; the message gives the numbers."""


def usd(prompt_tokens: float, completion_tokens: float, bp: BudgetParams) -> float | None:
    """Dollars for the tokens at the params' prices; None when a price is not set."""
    if bp.price_in is None or bp.price_out is None:
        return None
    return (prompt_tokens * bp.price_in + completion_tokens * bp.price_out) / 1e6


def usage_tokens(usage: dict[str, Any] | None) -> tuple[int, int]:
    """(prompt, completion) tokens of a stage's teacher usage, cached answers included."""
    u = usage or {}
    prompt = int(u.get("prompt_tokens", 0)) + int(u.get("cached_prompt_tokens", 0))
    return prompt, int(u.get("completion_tokens", 0)) + int(u.get("cached_completion_tokens", 0))


def budget_stop_path(run_dir: Path, stage_name: str) -> Path:
    """Where a budget stop is recorded: beside the stage record, read and cleared by the runner."""
    return stage_record_path(run_dir, stage_name).with_suffix(".budget.json")


def read_budget_stop(run_dir: Path, stage_name: str) -> dict[str, Any] | None:
    p = budget_stop_path(run_dir, stage_name)
    return read_json(p) if p.exists() else None


def earlier_stages_tokens(run_dir: Path, stage_name: str) -> tuple[int, int]:
    """(prompt, completion) teacher tokens of the stages before ``stage_name`` in the run's manifest."""
    manifest = run_dir / "manifest.json"
    if not manifest.exists():
        return 0, 0
    prompt = completion = 0
    for st in read_json(manifest).get("stages", []):
        if st.get("name", "") < stage_name:
            p, c = usage_tokens(st.get("teacher_usage"))
            prompt, completion = prompt + p, completion + c
    return prompt, completion


@dataclass
class TeacherBudget:
    """The run's teacher budget as one stage spends it (thread-safe: openai workers reserve in parallel)."""

    settings: BudgetParams
    before: tuple[int, int] = (0, 0)  # (prompt, completion) tokens of the earlier stages
    stop_path: Path | None = None
    usage: dict[str, int] = field(
        default_factory=lambda: {
            k: 0
            for k in (
                "cache_hits",
                "cache_misses",
                "prompt_tokens",
                "completion_tokens",
                "cached_prompt_tokens",
                "cached_completion_tokens",
            )  # fmt: skip
        }
    )
    reserved: tuple[int, int] = (0, 0)
    stopped: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_stage(cls, params: Params, run_dir: Path, stage_name: str) -> TeacherBudget | None:
        """The budget of a stage of this run, or None when params set no limit."""
        bp = params.budget
        if bp.max_teacher_tokens is None and bp.max_usd is None:
            return None
        budget_stop_path(run_dir, stage_name).unlink(missing_ok=True)
        return cls(bp, earlier_stages_tokens(run_dir, stage_name), budget_stop_path(run_dir, stage_name))

    def _totals(self, extra: tuple[int, int] = (0, 0)) -> tuple[int, int]:
        u = self.usage
        prompt = self.before[0] + u["prompt_tokens"] + u["cached_prompt_tokens"] + self.reserved[0] + extra[0]
        completion = (
            self.before[1]
            + u["completion_tokens"]
            + u["cached_completion_tokens"]
            + self.reserved[1]
            + extra[1]
        )
        return prompt, completion

    def count_cached(self, answers: Iterable[CachedAnswer]) -> None:
        """Answers read from the cache count at their recorded cost; they never stop a stage."""
        with self._lock:
            for a in answers:
                self.usage["cache_hits"] += 1
                self.usage["cached_prompt_tokens"] += a.prompt_tokens
                self.usage["cached_completion_tokens"] += a.completion_tokens

    def reserve(self, n_requests: int, prompt_tokens: int, max_new_tokens: int) -> tuple[int, int]:
        """Reserve the worst case of a batch, or record the stop and raise :class:`TeacherBudgetExceeded`."""
        want = (prompt_tokens, n_requests * max_new_tokens)
        with self._lock:
            if self.stopped is None:
                prompt, completion = self._totals(want)
                limit = self._exceeded(prompt, completion)
                if limit is None:
                    self.reserved = (self.reserved[0] + want[0], self.reserved[1] + want[1])
                    return want
                self.stopped = {
                    "limit": limit,
                    "next_batch": {"requests": n_requests, "tokens_at_most": sum(want)},
                }
        raise TeacherBudgetExceeded(self.stop_record()["message"])

    def settle(self, reserved: tuple[int, int], answers: Sequence[CachedAnswer]) -> None:
        """Replace a reservation by what the answers really cost (an empty list: nothing was answered)."""
        with self._lock:
            self.reserved = (self.reserved[0] - reserved[0], self.reserved[1] - reserved[1])
            for a in answers:
                self.usage["cache_misses"] += 1
                self.usage["prompt_tokens"] += a.prompt_tokens
                self.usage["completion_tokens"] += a.completion_tokens

    def _exceeded(self, prompt: int, completion: int) -> str | None:
        s = self.settings
        if s.max_teacher_tokens is not None and prompt + completion > s.max_teacher_tokens:
            return "max_teacher_tokens"
        cost = usd(prompt, completion, s)
        if s.max_usd is not None and cost is not None and cost > s.max_usd:
            return "max_usd"
        return None

    def stop_record(self) -> dict[str, Any]:
        """The numbers of the stop, as of now; written to ``stop_path`` (the backend calls this again once the
        requests already in flight have come back, so the record counts them)."""
        assert self.stopped is not None
        with self._lock:
            prompt, completion = self._totals()
            usage = dict(self.usage)
        limit, nxt = self.stopped["limit"], self.stopped["next_batch"]
        spent_usd = usd(prompt, completion, self.settings)
        record: dict[str, Any] = {
            "reason": "budget",
            "limit": limit,
            "max_teacher_tokens": self.settings.max_teacher_tokens,
            "max_usd": self.settings.max_usd,
            "run_tokens": prompt + completion,
            "run_usd": None if spent_usd is None else round(spent_usd, 6),
            "earlier_stages_tokens": sum(self.before),
            "stage_tokens": prompt + completion - sum(self.before),
            "next_batch": nxt,
            "teacher_usage": {"requests": usage["cache_hits"] + usage["cache_misses"], **usage},
        }
        record["message"] = (
            f"teacher budget reached ({limit} = {getattr(self.settings, limit)}): the run has used "
            f"{record['run_tokens']} teacher tokens"
            + (f" (${spent_usd:.4f})" if spent_usd is not None else "")
            + f"; the next batch of {nxt['requests']} request(s) could take up to {nxt['tokens_at_most']} more. "
            f"What was answered is cached: raise budget.{limit} and rerun to continue where it stopped."
        )
        if self.stop_path is not None:
            write_json(self.stop_path, record)
        return record

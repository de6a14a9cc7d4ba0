"""Stage 04: distillation data - instructions instantiated on real user texts, answered by the teacher.

A sample is an instruction of the pool applied to one corpus text, in the authors' form
``f"{prompt}\\n\\nInput: {text}"`` (docs/METHOD.md, step 5). How the authors paired instructions with texts is
not published; the kit's policy (:func:`pair_instructions_with_texts`) is explicit and parameterised by
``params.distill_data``:

- every instruction gets ``texts_per_instruction`` different texts;
- ``domain_mix: balanced`` gives every domain the same share of the samples (slot ``s`` of the dataset
  draws from domain ``s mod D``, domains in a seeded order), whatever the corpus sizes;
  ``proportional`` draws from all texts alike, so domains get their corpus share;
- texts are drawn from seeded, shuffled queues (one per domain, or one for all) that are refilled only
  when empty, so every text is used once before any text is used twice;
- slots are filled round by round (every instruction's first text, in a seeded order, then every
  instruction's second text, ...), so ``max_samples`` cuts whole rounds first and every instruction keeps
  at least one text while the cap allows;
- the same seed and inputs give the same pairs.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, Protocol

from compeffdist_utils.core.config import DecodingParams, DistillDataParams

POOL_FIELDS = ("instruction_id", "cluster_id", "task_name", "task_type", "prompt")
TEXT_FIELDS = ("text_id", "domain", "text")
DATASET_FIELDS = (
    "sample_id", "instruction_id", "cluster_id", "task_name", "task_type", "prompt",
    "text_id", "domain", "instruction", "output", "teacher_model", "decoding",
)  # fmt: skip


class ChatTeacher(Protocol):
    """What this stage needs from a teacher: :meth:`backends.TeacherBackend.chat` (answers in order)."""

    def chat(self, prompts: Sequence[str], decoding: DecodingParams, desc: str = ...) -> list[str]: ...


class DistillDataError(ValueError):
    """Inputs that cannot make a dataset (empty pool or corpus, records missing fields)."""


def sample_instruction(prompt: str, text: str) -> str:
    """The authors' sample form: the instruction's prompt, a blank line, then ``Input: {text}``."""
    return f"{prompt}\n\nInput: {text}"


def _check(records: Sequence[dict[str, Any]], fields: Sequence[str], what: str) -> None:
    if not records:
        raise DistillDataError(f"no {what} to pair: the {what} file is empty")
    for n, r in enumerate(records, 1):
        missing = [f for f in fields if f not in r]
        if missing:
            raise DistillDataError(f"{what} record {n} lacks field(s) {missing}: {str(r)[:200]}")


class _TextQueue:
    """Seeded shuffled queue of texts, refilled (reshuffled) only when empty."""

    def __init__(self, texts: list[dict[str, Any]], rng: random.Random):
        self.texts, self.rng = texts, rng
        self.ids = {t["text_id"] for t in texts}
        self.queue: deque[dict[str, Any]] = deque()

    def draw(self, exclude: set[str]) -> dict[str, Any] | None:
        """The next text whose id is not in ``exclude`` (skipped ones stay first in line), or None."""
        if len(self.ids & exclude) >= len(self.ids):
            return None
        skipped: list[dict[str, Any]] = []
        while True:
            if not self.queue:  # a new pass; texts skipped in this draw stay ahead of it
                held = {t["text_id"] for t in skipped}
                rest = [t for t in self.texts if t["text_id"] not in held]
                self.queue.extend(self.rng.sample(rest, len(rest)))
            t = self.queue.popleft()
            if t["text_id"] not in exclude:
                self.queue.extendleft(reversed(skipped))
                return t
            skipped.append(t)


def pair_instructions_with_texts(
    pool: Sequence[dict[str, Any]], texts: Sequence[dict[str, Any]], dp: DistillDataParams
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Samples (without outputs) by the policy in the module docstring, and a report of the pairing.

    A slot whose domain has no text left that this instruction has not already got takes the next
    domain that has one; a slot with no unused text anywhere is skipped and counted
    (``slots_without_unused_text``, only when the corpus has fewer texts than ``texts_per_instruction``).
    """
    _check(pool, POOL_FIELDS, "instruction")
    _check(texts, TEXT_FIELDS, "text")
    rng = random.Random(dp.seed)
    ordered = sorted(texts, key=lambda t: (str(t["domain"]), str(t["text_id"])))
    domains = sorted({str(t["domain"]) for t in ordered})
    rng.shuffle(domains)
    if dp.domain_mix == "balanced":
        queues = {d: _TextQueue([t for t in ordered if str(t["domain"]) == d], rng) for d in domains}
    else:
        queues = {"*": _TextQueue(ordered, rng)}
    keys = list(queues)
    used: dict[str, set[str]] = {str(p["instruction_id"]): set() for p in pool}
    if len(used) != len(pool):
        raise DistillDataError("instruction ids in the pool are not unique")
    total_slots = len(pool) * dp.texts_per_instruction
    budget = min(total_slots, dp.max_samples or total_slots)
    samples: list[dict[str, Any]] = []
    skipped = slot = 0
    for _ in range(dp.texts_per_instruction):
        for idx in rng.sample(range(len(pool)), len(pool)):
            if slot >= budget:
                break
            inst = pool[idx]
            seen = used[str(inst["instruction_id"])]
            start = slot % len(keys)
            slot += 1
            text = next(
                (t for k in keys[start:] + keys[:start] if (t := queues[k].draw(seen)) is not None), None
            )
            if text is None:
                skipped += 1
                continue
            seen.add(text["text_id"])
            samples.append(_sample(inst, text))
    report = {
        "instructions": len(pool),
        "texts": len(texts),
        "domains": sorted(domains),
        "slots": total_slots,
        "capped_by_max_samples": total_slots - budget,
        "slots_without_unused_text": skipped,
        "pairs": len(samples),
        "pairs_per_domain": dict(sorted(Counter(s["domain"] for s in samples).items())),
    }
    return samples, report


def _sample(inst: dict[str, Any], text: dict[str, Any]) -> dict[str, Any]:
    return {
        "sample_id": f"{inst['instruction_id']}__{text['text_id']}",
        **{k: inst[k] for k in POOL_FIELDS},
        "text_id": text["text_id"],
        "domain": text["domain"],
        "instruction": sample_instruction(inst["prompt"], text["text"]),
    }


def answer_samples(
    teacher: ChatTeacher,
    samples: Sequence[dict[str, Any]],
    decoding: DecodingParams,
    teacher_model: str,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The dataset: each sample with the teacher's answer and its provenance; empty answers dropped.

    Returns (records with the fields of ``DATASET_FIELDS``, {"answered", "empty_dropped", "kept"}); raises
    :class:`DistillDataError` when every answer is empty (a dataset of nothing would fail later stages).
    """
    answers = teacher.chat([s["instruction"] for s in samples], decoding, desc="04 distillation answers")
    dec = decoding.model_dump()
    dataset = [
        {**s, "output": a.strip(), "teacher_model": teacher_model, "decoding": dec}
        for s, a in zip(samples, answers, strict=True)
        if a.strip()
    ]
    if samples and not dataset:
        raise DistillDataError(
            f"the teacher ({teacher_model}) answered all {len(samples)} samples with empty text; check the "
            "teacher and distill_data.decoding (max_new_tokens)"
        )
    return dataset, {
        "answered": len(samples),
        "empty_dropped": len(samples) - len(dataset),
        "kept": len(dataset),
    }

"""Stage 07's prompts: the protocol's text per test example, fitted only when it would not fit the model.

Under every protocol a prompt is cut only when it exceeds its token limit: ``evaluation.max_prompt_tokens``
when set, else the model's context minus the tokens to be generated (:func:`prompt_limit`).
The authors' protocol never cuts; on the models the paper used (128k contexts) the limit is never hit.
Each cut is recorded in :attr:`Prompt.truncation`, counted per dataset (``truncated_prompts``) and
reported by the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.core.config import EvaluationParams
from compeffdist_utils.sentibench.protocol import Prompt, Protocol, Renderer, renderer, sample_demos
from compeffdist_utils.sentibench.tasks import BenchDataset, Example

MIN_DEMO_TOKENS = 32  # below this a shortened demo stops showing the task; drop it instead


def _cut(tokenizer: Any, ids: list[int], n: int) -> str:
    return tokenizer.decode(ids[: max(n, 0)]).rstrip() + " ..."


def _water_cap(lengths: Sequence[int], budget: int) -> int:
    """The largest per-demo cap c with sum(min(L, c)) <= budget (so short demos stay whole)."""
    lo, hi = 0, max(lengths, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_prompt(
    render: Renderer, name: str, example: Example, demos: list[Example], tokenizer: Any, max_tokens: int
) -> tuple[str, list[Example], dict[str, Any]]:
    """Render the prompt within ``max_tokens`` (counted with ``tokenizer``) without losing its shape.

    Order of sacrifice, chosen so the test sentence survives longest: (1) shorten the longest demo
    sentences to a common cap (marked " ..."), (2) when the cap would fall below MIN_DEMO_TOKENS, drop
    demos from the end, (3) only then cut the test sentence's tail. Demo answers, the instruction and
    the final cue are never cut. Returns the text, the demos used and what was cut.
    """

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=True))

    text = render(example.sentence, [(d.sentence, d) for d in demos])
    n_full = count(text)
    if n_full <= max_tokens:
        return text, demos, {}
    test_ids = tokenizer.encode(example.sentence, add_special_tokens=False)
    demo_ids = [tokenizer.encode(d.sentence, add_special_tokens=False) for d in demos]
    kept = list(demos)
    slack = 4

    def rooms() -> tuple[int, int]:
        """(tokens left for the sentences, of which for the demos) with the demos in ``kept``."""
        overhead = count(render("", [("", d) for d in kept]))
        room = max_tokens - overhead - slack
        return room, room - len(test_ids)

    for _attempt in range(6):
        room, demo_room = rooms()
        while kept and demo_room < MIN_DEMO_TOKENS * len(kept):
            kept.pop()
            room, demo_room = rooms()
        ids_kept = demo_ids[: len(kept)]
        cap = _water_cap([len(i) for i in ids_kept], demo_room) if kept else 0
        demo_sents = [
            d.sentence if len(i) <= cap else _cut(tokenizer, i, cap)
            for d, i in zip(kept, ids_kept, strict=True)
        ]
        test_budget = room if not kept else len(test_ids)
        test_sent = (
            example.sentence if len(test_ids) <= test_budget else _cut(tokenizer, test_ids, test_budget)
        )
        text = render(test_sent, list(zip(demo_sents, kept, strict=True)))
        excess = count(text) - max_tokens
        if excess <= 0:
            info = {
                "tokens_before": n_full,
                "demos_dropped": len(demos) - len(kept),
                "demo_cap_tokens": cap if any(len(i) > cap for i in ids_kept) else None,
                "test_cut_to_tokens": test_budget if len(test_ids) > test_budget else None,
            }
            return text, kept, info
        slack += excess + 2  # decode/encode boundary effects: retry with more headroom
    raise ValueError(
        f"{name}: cannot fit a prompt for example {example.uid} into {max_tokens} tokens (the instruction "
        "alone is too long); raise evaluation.max_prompt_tokens or use a model with a longer context"
    )


def prompt_limit(model: Any, tokenizer: Any, ep: EvaluationParams, new_tokens: int) -> int | None:
    """The most prompt tokens: ``evaluation.max_prompt_tokens`` when set, else the model's context
    (``max_position_embeddings``, or the tokenizer's ``model_max_length`` when that is a real limit)
    minus the tokens the answer needs. ``None`` when neither says: the prompt is never cut."""
    if ep.max_prompt_tokens is not None:
        return ep.max_prompt_tokens
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not context:
        context = getattr(tokenizer, "model_max_length", None)
        context = context if context and context < 10**7 else None  # transformers' "no limit" sentinel
    return None if context is None else max(int(context) - new_tokens, 1)


def build_prompts(
    ds: BenchDataset,
    examples: Sequence[Example],
    seed: int,
    shots: int,
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    protocol: Protocol = "authors",
) -> list[Prompt]:
    """One prompt per example; with a tokenizer and a limit, a prompt over the limit is fitted by
    :func:`fit_prompt` (and says so in its ``truncation``)."""
    out = []
    for ex, demos in zip(examples, sample_demos(ds, examples, seed, shots, protocol), strict=True):
        render = renderer(protocol, ds.spec, ex.target)
        if tokenizer is not None and max_prompt_tokens is not None:
            text, used, info = fit_prompt(render, ds.name, ex, demos, tokenizer, max_prompt_tokens)
        else:
            text, used, info = render(ex.sentence, [(d.sentence, d) for d in demos]), demos, {}
        out.append(
            Prompt(f"{ds.name}:{ex.uid}:seed{seed}", ds.name, seed, ex, [d.uid for d in used], text, info)
        )
    return out

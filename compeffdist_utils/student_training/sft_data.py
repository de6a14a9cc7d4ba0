"""Supervised fine-tuning data: distillation records -> token ids with the loss on the output only.

What one example looks like: the user turn is the instruction, the assistant turn the teacher output.
The prompt (everything up to and including the assistant header that ``add_generation_prompt`` renders)
and the answer are tokenised separately and concatenated, which is exactly the token boundary the model
sees at inference time (the prompt is tokenised alone and the model continues it). Labels are -100 on
the prompt and on padding, so the loss covers the output tokens and the end-of-turn marker.

Packing (``training.packing: true``) concatenates whole examples into blocks of at most ``max_length``
tokens (next-fit in data order; an example is never split). Each block carries ``position_ids`` that
restart at 0 for every example and no attention mask. With no attention mask, transformers (5.x) reads
the position restarts as sequence boundaries and builds a block-diagonal causal mask, so attention does
NOT cross example boundaries and every example gets the positions it would have alone: a packed batch
gives the same per-token losses as the unpacked one (tests/student_training/test_training.py checks this), with less
padding. Models whose attention ignores this convention would attend across examples; the kit's
default (Llama-family) models honour it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


@dataclass
class TokenizeReport:
    """How many records became training examples, and why the others did not."""

    n_records: int = 0
    n_examples: int = 0
    n_truncated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def render_prompt(tokenizer: Any, instruction: str) -> str:
    """The chat-formatted prompt for one instruction, ending with the assistant header."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"the student's tokenizer ({getattr(tokenizer, 'name_or_path', '?')}) has no chat template; "
            "the method trains with the chat template applied: use an instruct/chat model"
        )
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
    )


def tokenize_records(
    records: Sequence[dict[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[dict[str, list[int]]], TokenizeReport]:
    """Turn {instruction, output} records into {input_ids, labels} with the loss on the output only.

    Records without a non-empty string instruction and output are skipped and counted; so are records
    whose prompt leaves no room for a single output token. Longer answers are cut to ``max_length``
    (counted as truncated).
    """
    report = TokenizeReport(n_records=len(records))
    prompts: list[str] = []
    answers: list[str] = []
    for rec in records:
        instruction, output = rec.get("instruction"), rec.get("output")
        if not isinstance(instruction, str) or not instruction.strip():
            report.skip("missing instruction")
            continue
        if not isinstance(output, str) or not output.strip():
            report.skip("missing output")
            continue
        prompt = render_prompt(tokenizer, instruction)
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}, {"role": "assistant", "content": output}],
            tokenize=False,
        )
        if not full.startswith(prompt):
            raise ValueError(
                "the chat template renders the conversation with a different prefix than the generation "
                "prompt, so the output tokens cannot be located; this template is not supported"
            )
        prompts.append(prompt)
        answers.append(full[len(prompt) :])
    if not prompts:
        return [], report
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answers, add_special_tokens=False)["input_ids"]
    examples = []
    for p, a in zip(prompt_ids, answer_ids, strict=True):
        room = max_length - len(p)
        if room < 1:
            report.skip("prompt longer than max_length")
            continue
        if len(a) > room:
            a = a[:room]
            report.n_truncated += 1
        examples.append({"input_ids": p + a, "labels": [IGNORE_INDEX] * len(p) + a})
    report.n_examples = len(examples)
    return examples, report


def pack_examples(examples: Sequence[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Concatenate whole examples into blocks of at most ``max_length`` tokens (next-fit, in order).

    Each block has ``position_ids`` restarting at 0 per example; see the module docstring for why this
    keeps attention inside each example.
    """
    blocks: list[dict[str, list[int]]] = []
    cur: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for ex in examples:
        n = len(ex["input_ids"])
        if n > max_length:
            raise ValueError(f"an example of {n} tokens does not fit a block of {max_length}")
        if cur["input_ids"] and len(cur["input_ids"]) + n > max_length:
            blocks.append(cur)
            cur = {"input_ids": [], "labels": [], "position_ids": []}
        cur["input_ids"] += ex["input_ids"]
        cur["labels"] += ex["labels"]
        cur["position_ids"] += list(range(n))
    if cur["input_ids"]:
        blocks.append(cur)
    return blocks


class SFTCollator:
    """Right-pads a batch; packed blocks (with ``position_ids``) get no attention mask, others get one.

    Padding never carries loss (labels -100). In a packed batch the padding's positions restart at 0,
    so it forms its own segment and no real token attends to it.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        import torch  # deferred: heavy, only when batching for training

        width = max(len(f["input_ids"]) for f in features)
        packed = "position_ids" in features[0]
        ids, labels, extra = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            ids.append(f["input_ids"] + [self.pad_token_id] * pad)
            labels.append(f["labels"] + [IGNORE_INDEX] * pad)
            if packed:
                extra.append(f["position_ids"] + list(range(pad)))
            else:
                extra.append([1] * len(f["input_ids"]) + [0] * pad)
        batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}
        batch["position_ids" if packed else "attention_mask"] = torch.tensor(extra)
        return batch


def split_train_eval(
    records: Sequence[dict[str, Any]], eval_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A seeded held-out slice for the eval loss; at least one record on each side when possible."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_eval = round(len(records) * eval_fraction) if eval_fraction > 0 else 0
    if eval_fraction > 0 and len(records) >= 2:
        n_eval = min(max(n_eval, 1), len(records) - 1)
    held = set(order[:n_eval])
    train = [r for i, r in enumerate(records) if i not in held]
    return train, [records[i] for i in sorted(held)]

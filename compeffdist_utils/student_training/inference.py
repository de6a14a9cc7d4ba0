"""Answers of a trained student in the format it was trained on (chat template, one user turn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.student_training.sft_data import render_prompt


def chat_answers(
    model: Any, tokenizer: Any, instructions: Sequence[str], max_new_tokens: int = 64
) -> list[str]:
    """Greedy answers in the format the student was trained on (chat template, one user turn).

    Used to eyeball a trained student against its base on held-out instructions.
    """
    import torch  # deferred: heavy, only when generating

    device = next(model.parameters()).device
    answers = []
    for instruction in instructions:
        enc = tokenizer(render_prompt(tokenizer, instruction), return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(
                **enc.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        answers.append(
            tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        )
    return answers

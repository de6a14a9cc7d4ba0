"""Answers of a trained student in the format it was trained on (chat template, one user turn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compeffdist_utils.core.config import Params
from compeffdist_utils.models import load_causal_lm
from compeffdist_utils.student_training.sft_data import render_prompt, split_train_eval


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


def before_and_after(
    records: Sequence[dict[str, Any]], params: Params, model_dir: str, n: int = 2
) -> list[dict[str, str]]:
    """{instruction, teacher, base student, trained student} for ``n`` held-out records (the training's own
    held-out slice, else the first records): greedy answers of the base student and the trained one,
    at most 96 new tokens. One model is loaded at a time."""
    _, held_out = split_train_eval(records, params.training.eval_fraction, params.training.seed)
    shown = (held_out or list(records))[:n]
    instructions = [r["instruction"] for r in shown]
    max_new = min(96, params.distill_data.decoding.max_new_tokens)
    answers = {}
    for label, spec in (("base student", params.models.student), ("trained student", model_dir)):
        model, tokenizer = load_causal_lm(spec, params)
        answers[label] = chat_answers(model, tokenizer, instructions, max_new)
        del model
    return [
        {"instruction": inst, "teacher": r["output"], **{k: v[i] for k, v in answers.items()}}
        for i, (inst, r) in enumerate(zip(instructions, shown, strict=True))
    ]

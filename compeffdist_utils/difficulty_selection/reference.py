"""The rank score transcribed literally from docs/METHOD.md, step 6, kept only to verify the fast scorer.

One sample at a time, one unpadded forward pass in whatever dtype the model has (use fp32, as the
authors did), then a Python loop over the response tokens with a full descending sort of the
vocabulary per token. Slow by design: the tests and ``benchmarks/bench_difficulty.py`` compare
:mod:`compeffdist_utils.difficulty_selection.dataset_scores` against it. Conventions shared with the fast scorer: the same
tokenisation (:func:`~compeffdist_utils.difficulty_selection.scoring.encode_pairs`), r_t counts the tokens whose
probability is strictly greater than the gold token's, and probabilities are computed in float64
from the (fp32) logits, so that rounding in the softmax cannot move a nucleus boundary. No truncation.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from compeffdist_utils.difficulty_selection.scoring import encode_pairs, unconditional_prefix


def reference_token(logits_row: torch.Tensor, gold: int, nucleus_p: float = 0.95) -> dict[str, float]:
    """{rank r_t, nucleus n_t, score s_t, nll} for one position: the logits that predict the gold token."""
    probs = torch.softmax(logits_row.double(), dim=-1)
    sorted_probs, _ = torch.sort(probs, descending=True)
    cumulative = torch.cumsum(sorted_probs, dim=0)
    n_t = int((cumulative < nucleus_p).sum()) + 1
    r_t = int((probs > probs[gold]).sum())
    s_t = r_t / n_t if r_t < n_t else 1.0
    nll = -float(torch.log_softmax(logits_row.double(), dim=-1)[gold])
    return {"rank": r_t, "nucleus": n_t, "score": s_t, "nll": nll}


def reference_token_scores(
    model: Any, tokenizer: Any, instruction: str, output: str, nucleus_p: float = 0.95
) -> list[dict[str, float]]:
    """Per response token: {rank r_t, nucleus n_t, score s_t, nll}."""
    x_ids, y_ids = encode_pairs(tokenizer, [instruction], [output])[0]
    ids = x_ids + y_ids
    with torch.inference_mode():
        logits = model(torch.tensor([ids], device=model.device)).logits[0].float().cpu()
    # The logits at position t-1 predict token t.
    return [reference_token(logits[t - 1], ids[t], nucleus_p) for t in range(len(x_ids), len(ids))]


def reference_rank_score(tokens: list[dict[str, float]], include_rank0: bool = False) -> float:
    """Mean s_t of :func:`reference_token_scores` over tokens with s_t > 0 (all with ``include_rank0``);
    0 when there are none."""
    scores = [tok["score"] for tok in tokens]
    kept = scores if include_rank0 else [s for s in scores if s > 0]
    return sum(kept) / len(kept) if kept else 0.0


def reference_perplexities(model: Any, tokenizer: Any, instruction: str, output: str) -> dict[str, float]:
    """PPL(y | x), PPL(y) and IFD through the model's own loss (labels), independent of the fast path."""
    x_ids, y_ids = encode_pairs(tokenizer, [instruction], [output])[0]

    def ppl(prefix: list[int]) -> float:
        ids = torch.tensor([prefix + y_ids], device=model.device)
        labels = ids.clone()
        labels[0, : len(prefix)] = -100  # only the response is scored
        with torch.inference_mode():
            return math.exp(float(model(input_ids=ids, labels=labels).loss))

    cond, uncond = ppl(x_ids), ppl(unconditional_prefix(tokenizer))
    return {"ppl": cond, "ppl_uncond": uncond, "ifd": cond / uncond}

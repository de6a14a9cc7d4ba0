"""Difficulty scores for distillation samples: the rank score of docs/METHOD.md, step 6, and its baselines.

For a sample (x = instruction, y = teacher output) the scoring LM reads the raw concatenation x + y
(no chat template). For every response token t with gold id y_t, p_t is the softmax of the logits
at position t-1 (they predict token t), and

- n_t = (number of tokens whose descending cumulative probability is < nucleus_p) + 1, the size of
  the smallest top set whose mass reaches nucleus_p;
- r_t = the 0-based rank of y_t = the number of vocabulary entries with probability STRICTLY greater
  than p_t(y_t). Ties therefore count in the gold token's favour (a gold token tied with the top
  token has rank 0), where a position in a sorted list would depend on the sort's tie order. Ties
  are rare in fp32 but common in bf16;
- s_t = r_t / n_t if r_t < n_t (the gold token is inside the nucleus) else 1.0.

rank = mean of s_t over tokens with s_t > 0 (tokens the model already ranks first are left out), 0
when there are none; with ``include_rank0`` the mean runs over all response tokens. Higher = harder.
The same forward pass gives PPL(y | x). PPL(y) comes from a second pass over y alone, preceded by the
tokenizer's BOS token when it has one, so the first response token is predicted in both passes (a
tokenizer without BOS leaves the first token out of PPL(y)). IFD = PPL(y | x) / PPL(y); length = the
response's token count.

Tokenisation: x and y are tokenised separately (x as a document, with the special tokens the
tokenizer adds there; y without any) and the ids are concatenated, so the scored response tokens are
exactly the output's own tokens. Tokenising x + y as one string could merge characters across the
seam and make "the response tokens" ill-defined. When x + y exceed ``max_length`` tokens, the
response keeps at least half of the window (its tail is cut) and the instruction loses its start.

How the per-token statistics are computed fast and exactly is :mod:`.token_stats`; scoring a whole
dataset through the score cache is :mod:`.dataset_scores`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.config import DifficultyParams
from compeffdist_utils.difficulty_selection.token_stats import response_token_stats

if TYPE_CHECKING:
    import torch


# -- tokenisation ------------------------------------------------------------------------------------
def encode_pairs(
    tokenizer: Any, instructions: Sequence[str], outputs: Sequence[str]
) -> list[tuple[list[int], list[int]]]:
    """(instruction ids, response ids) per sample, tokenised separately: the response ids are y's own."""
    xs = tokenizer(list(instructions), add_special_tokens=True)["input_ids"]
    ys = tokenizer(list(outputs), add_special_tokens=False)["input_ids"]
    return [(list(x), list(y)) for x, y in zip(xs, ys, strict=True)]


def unconditional_prefix(tokenizer: Any) -> list[int]:
    """What precedes y in the PPL(y) pass: BOS when the tokenizer has one, else nothing."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return [int(bos)] if bos is not None else []


def fit_to_window(x: list[int], y: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Cut (x, y) to ``max_length`` tokens: y keeps >= half the window (its end goes), x loses its start."""
    if len(x) + len(y) <= max_length:
        return x, y
    y_keep = min(len(y), max(max_length - len(x), max_length // 2))
    x_keep = max_length - y_keep
    return x[len(x) - x_keep :], y[:y_keep]


# -- per-sample scores --------------------------------------------------------------------------------
@dataclass
class RawScore:
    """Sums from which every score follows; this is what the cache stores."""

    length: int  # response tokens before truncation
    n_tokens: int  # response tokens scored
    n_nonzero: int  # of those, tokens with s_t > 0
    sum_s: float
    nll_sum: float  # conditional pass
    n_uncond: int  # response tokens predicted in the unconditional pass
    nll_uncond_sum: float
    truncated: bool

    def scores(self, include_rank0: bool) -> dict[str, Any]:
        if include_rank0:
            rank = self.sum_s / self.n_tokens
        else:
            rank = self.sum_s / self.n_nonzero if self.n_nonzero else 0.0
        ppl = math.exp(self.nll_sum / self.n_tokens)
        ppl_uncond = math.exp(self.nll_uncond_sum / self.n_uncond) if self.n_uncond else None
        return {
            "rank": rank,
            "ifd": ppl / ppl_uncond if ppl_uncond else None,
            "ppl": ppl,
            "ppl_uncond": ppl_uncond,
            "length": self.length,
            "n_tokens": self.n_tokens,
            "n_nonzero": self.n_nonzero,
            "truncated": self.truncated,
        }


def _segment_sum(values: torch.Tensor, owner: torch.Tensor, n: int) -> list[float]:
    import torch  # deferred: heavy, only when scoring

    out = torch.zeros(n, dtype=torch.float64, device=values.device)
    return out.index_add_(0, owner, values.double()).tolist()


def score_encoded(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[list[int], list[int]]],
    settings: DifficultyParams,
    lengths: Sequence[int] | None = None,
) -> list[RawScore]:
    """Score one batch of already-windowed (instruction ids, response ids) pairs: two forward passes."""
    import torch  # deferred: heavy, only when scoring

    if any(not y for _, y in pairs):
        raise ValueError("every response needs at least one token")
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    lengths = lengths or [len(y) for _, y in pairs]
    with torch.inference_mode():
        cond = response_token_stats(
            model,
            [x + y for x, y in pairs],
            [len(y) for _, y in pairs],
            pad_id,
            settings.nucleus_p,
            settings.vocab_chunk,
        )
        start = unconditional_prefix(tokenizer)
        uncond_n = [len(y) - (0 if start else 1) for _, y in pairs]
        scored = [b for b, n in enumerate(uncond_n) if n > 0]
        uncond_nll = [0.0] * len(pairs)
        if scored:
            unc = response_token_stats(
                model,
                [start + pairs[b][1] for b in scored],
                [uncond_n[b] for b in scored],
                pad_id,
                settings.nucleus_p,
                settings.vocab_chunk,
                need_rank=False,
            )
            for b, v in zip(scored, _segment_sum(unc.nll, unc.owner, len(scored)), strict=True):
                uncond_nll[b] = v
        s_t = cond.token_scores()
        assert cond.rank is not None
        sum_s = _segment_sum(s_t, cond.owner, len(pairs))
        nonzero = _segment_sum((cond.rank > 0).double(), cond.owner, len(pairs))
        nll = _segment_sum(cond.nll, cond.owner, len(pairs))
    return [
        RawScore(
            length=lengths[b],
            n_tokens=len(y),
            n_nonzero=int(nonzero[b]),
            sum_s=sum_s[b],
            nll_sum=nll[b],
            n_uncond=max(uncond_n[b], 0),
            nll_uncond_sum=uncond_nll[b],
            truncated=lengths[b] > len(y),
        )
        for b, (_, y) in enumerate(pairs)
    ]


def token_breakdown(
    model: Any, tokenizer: Any, instruction: str, output: str, settings: DifficultyParams
) -> list[dict[str, Any]]:
    """Per response token of one sample: its text, p(gold), r_t, n_t and s_t (to show how a score arises)."""
    import torch  # deferred: heavy, only when scoring

    x, y = fit_to_window(*encode_pairs(tokenizer, [instruction], [output])[0], settings.max_length)
    with torch.inference_mode():
        st = response_token_stats(model, [x + y], [len(y)], 0, settings.nucleus_p, settings.vocab_chunk)
    assert st.rank is not None and st.nucleus is not None
    rows = zip(
        y, st.nll.tolist(), st.rank.tolist(), st.nucleus.tolist(), st.token_scores().tolist(), strict=True
    )
    return [
        {"token": tokenizer.decode([t]), "p_gold": math.exp(-nll), "rank": r, "nucleus": n, "score": s}
        for t, nll, r, n, s in rows
    ]

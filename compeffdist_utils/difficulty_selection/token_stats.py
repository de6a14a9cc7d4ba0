"""Per-token statistics of a scoring LM, exactly and fast: -log p(gold), the gold token's rank r_t and
the nucleus size n_t (definitions in :mod:`.scoring`), for many response tokens at once.

Why it is fast (the reference in :mod:`.reference` sorts the full vocabulary per token):
- batches sorted by length, left-padded with attention masks and explicit position ids, and the
  model asked only for the last ``longest response + 1`` positions' logits (``logits_to_keep``);
- every response token of a batch is processed at once, in slices of ``vocab_chunk`` vocabulary
  columns and row groups sized to match, so the working memory beyond the logits stays bounded;
- r_t needs no sort: it is a count of logits above the gold logit (softmax is strictly monotone, so
  this is the count of probabilities above the gold probability);
- n_t is exact without a full sort: a running top-k (k = 64) over the slices gives the k largest
  probabilities in order; if their cumulative sum reaches nucleus_p, the first k cumulative sums are
  those of the full sort and n_t is read off them. Rows whose top-k mass stays below nucleus_p
  (high-entropy positions) are redone with an 8x larger k, as one top-k over whole rows in row groups
  of bounded size, until it is reached or k is the whole vocabulary;
- log-sum-exp is accumulated online over the slices (max + rescaled sum), giving log p_t(y_t) for
  the perplexities without materialising a softmax.
Precision: a nucleus boundary sits where a cumulative sum crosses nucleus_p, so tiny rounding can
move n_t by one at high-entropy positions. The candidates' probabilities are therefore computed in
float64 from the logits, and the normaliser from fp32 exponentials summed in float64 (their rounding
averages out over the vocabulary); the reference uses float64 throughout, and the two agree exactly on
the same logits in the tests. What remains is the batched forward pass itself: its logits differ from
an unpadded single-sample pass by ~1e-5, which can still move a boundary in rare cases.
On a CPU the forward passes dominate the cost (see ``benchmarks/bench_difficulty.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_FIRST_TOPK = 64  # nucleus sizes of peaked positions fit; flatter ones grow the top-k
_TOPK_GROWTH = 8
_WORK_ELEMENTS = 1 << 24  # per temporary (64 MB in fp32): rows per group = this // vocab columns


@dataclass
class TokenStats:
    """One row per scored token: which sequence it belongs to, -log p(gold), r_t and n_t."""

    owner: torch.Tensor  # int64 [N]
    nll: torch.Tensor  # float32 [N]
    rank: torch.Tensor | None = None  # int64 [N]
    nucleus: torch.Tensor | None = None  # int64 [N]

    def token_scores(self) -> torch.Tensor:
        """s_t = r_t / n_t inside the nucleus, 1.0 outside (float64)."""
        import torch  # deferred: heavy, only when scoring

        assert self.rank is not None and self.nucleus is not None
        r = self.rank.double()
        return torch.where(self.rank < self.nucleus, r / self.nucleus.double(), torch.ones_like(r))


def _row_groups(n_rows: int, width: int) -> list[slice]:
    step = max(1, _WORK_ELEMENTS // max(width, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _top_logits(flat: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest logits of each row, in descending order: one top-k over whole rows, in row groups
    of bounded size (for large k this is far cheaper than merging per-slice top-k's)."""
    import torch  # deferred: heavy, only when scoring

    groups = _row_groups(rows.numel(), flat.shape[1] + k)
    return torch.cat([flat[rows[g]].float().topk(k, dim=1).values for g in groups])


def _nucleus_from_top(top: torch.Tensor, lse: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_t, whether the top-k mass reached p), from the top logits in descending order."""
    import torch  # deferred: heavy, only when scoring

    cum = torch.cumsum(torch.exp(top.double() - lse[:, None]), dim=1)
    return (cum < p).sum(dim=1) + 1, cum[:, -1] >= p


def vocab_stats(
    flat: torch.Tensor,
    rows: torch.Tensor,
    gold: torch.Tensor,
    nucleus_p: float,
    vocab_chunk: int,
    need_rank: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(nll, r_t, n_t) for the logits rows ``flat[rows]`` with gold ids ``gold``, exactly, no full sort."""
    import torch  # deferred: heavy, only when scoring

    n_rows, vocab = rows.numel(), flat.shape[1]
    nll = torch.empty(n_rows, dtype=torch.float32, device=flat.device)
    rank = torch.zeros(n_rows, dtype=torch.long, device=flat.device) if need_rank else None
    nucleus = torch.zeros(n_rows, dtype=torch.long, device=flat.device) if need_rank else None
    for g in _row_groups(n_rows, min(vocab_chunk, vocab) + _FIRST_TOPK):
        r_rows, r_gold = rows[g], gold[g]
        z_gold = flat[r_rows, r_gold].float()
        run_max = torch.full_like(z_gold, -math.inf)
        run_sum = torch.zeros_like(z_gold, dtype=torch.float64)
        best: torch.Tensor | None = None
        k = min(_FIRST_TOPK, vocab)
        for a in range(0, vocab, vocab_chunk):
            z = flat[r_rows, a : a + vocab_chunk].float()
            new_max = torch.maximum(run_max, z.amax(dim=1))
            # fp32 exponentials (vectorised; float64 ones cost ~20x more here) summed in float64, so
            # their rounding errors average out over the vocabulary instead of accumulating.
            chunk_sum = torch.exp(z - new_max[:, None]).sum(dim=1, dtype=torch.float64)
            run_sum = run_sum * torch.exp(run_max.double() - new_max.double()) + chunk_sum
            run_max = new_max
            if need_rank:
                assert rank is not None
                rank[g] += (z > z_gold[:, None]).sum(dim=1, dtype=torch.int32)
                top = z.topk(min(k, z.shape[1]), dim=1).values
                if best is not None:
                    both = torch.cat([best, top], dim=1)
                    top = both.topk(min(k, both.shape[1]), dim=1).values
                best = top
        lse = run_max.double() + torch.log(run_sum)
        nll[g] = (lse - z_gold.double()).float()
        if not need_rank:
            continue
        assert best is not None and nucleus is not None
        n_t, done = _nucleus_from_top(best, lse, nucleus_p)
        while k < vocab and not bool(done.all()):
            k = min(k * _TOPK_GROWTH, vocab)
            todo = (~done).nonzero().squeeze(1)
            n_sub, done_sub = _nucleus_from_top(_top_logits(flat, r_rows[todo], k), lse[todo], nucleus_p)
            n_t[todo] = n_sub
            done[todo] = done_sub | (k >= vocab)
        nucleus[g] = n_t
    return nll, rank, nucleus


def _padded_logits(model: Any, sequences: Sequence[list[int]], keep: int, pad_id: int) -> torch.Tensor:
    """Logits [B, keep, V] of the last ``keep`` positions of left-padded ``sequences``."""
    import torch  # deferred: heavy, only when scoring

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for b, seq in enumerate(sequences):
        ids[b, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[b, width - len(seq) :] = 1
    # Explicit positions: every sequence starts at 0 whatever its padding (matters for absolute embeddings).
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    dev = model.device
    inputs = {"input_ids": ids.to(dev), "attention_mask": mask.to(dev), "position_ids": positions.to(dev)}
    try:
        logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits
    except TypeError:  # a model whose forward has no logits_to_keep
        logits = model(**inputs, use_cache=False).logits
    return logits[:, -keep:, :] if logits.shape[1] != keep else logits


def response_token_stats(
    model: Any,
    sequences: Sequence[list[int]],
    n_scored: Sequence[int],
    pad_id: int,
    nucleus_p: float = 0.95,
    vocab_chunk: int = 8192,
    need_rank: bool = True,
) -> TokenStats:
    """Per-token statistics for the last ``n_scored[b]`` tokens of each sequence, in one padded batch.

    Rows come out sequence by sequence, tokens in order. A sequence with ``n_scored`` 0 has no rows.
    """
    import torch  # deferred: heavy, only when scoring

    if any(n >= len(s) for s, n in zip(sequences, n_scored, strict=True)):
        raise ValueError("each scored token needs a token before it (n_scored < len(sequence))")
    keep = max(n_scored) + 1
    logits = _padded_logits(model, sequences, keep, pad_id)
    flat = logits.reshape(-1, logits.shape[-1])
    rows, gold, owner = [], [], []
    for b, (seq, n) in enumerate(zip(sequences, n_scored, strict=True)):
        # Position keep-1 is the last token; the logits at keep-1-n .. keep-2 predict the last n tokens.
        rows.extend(b * keep + i for i in range(keep - 1 - n, keep - 1))
        gold.extend(seq[len(seq) - n :])
        owner.extend([b] * n)
    dev = flat.device
    rows_t = torch.tensor(rows, dtype=torch.long, device=dev)
    gold_t = torch.tensor(gold, dtype=torch.long, device=dev)
    nll, rank, nucleus = vocab_stats(flat, rows_t, gold_t, nucleus_p, vocab_chunk, need_rank)
    return TokenStats(torch.tensor(owner, dtype=torch.long, device=dev), nll, rank, nucleus)

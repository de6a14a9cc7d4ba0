"""Difficulty scores for distillation samples: the rank score of method.md stage 6 and its baselines.

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

Why it is fast (the reference in :mod:`difficulty_reference` sorts the full vocabulary per token):
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

Scores are cached in SQLite per (scorer identity, sample content hash); the cache keeps raw sums, so
``include_rank0`` can change without rescoring. The scorer identity includes the hash of this module's
code and of the package modules it imports (:mod:`code_hash`), so a changed definition rescores.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compeffdist_utils.core.config import DifficultyParams, Params
from compeffdist_utils.core.hashing import code_hash
from compeffdist_utils.core.progress import tqdm
from compeffdist_utils.core.samples import content_hash, require_samples
from compeffdist_utils.models import load_causal_lm, resolve_alias

if TYPE_CHECKING:
    import torch

CACHE_VERSION = 1
_FIRST_TOPK = 64  # nucleus sizes of peaked positions fit; flatter ones grow the top-k
_TOPK_GROWTH = 8
_WORK_ELEMENTS = 1 << 24  # per temporary (64 MB in fp32): rows per group = this // vocab columns


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


# -- per-token statistics -----------------------------------------------------------------------------
@dataclass
class TokenStats:
    """One row per scored token: which sequence it belongs to, -log p(gold), r_t and n_t."""

    owner: torch.Tensor  # int64 [N]
    nll: torch.Tensor  # float32 [N]
    rank: torch.Tensor | None = None  # int64 [N]
    nucleus: torch.Tensor | None = None  # int64 [N]

    def token_scores(self) -> torch.Tensor:
        """s_t = r_t / n_t inside the nucleus, 1.0 outside (float64)."""
        import torch

        assert self.rank is not None and self.nucleus is not None
        r = self.rank.double()
        return torch.where(self.rank < self.nucleus, r / self.nucleus.double(), torch.ones_like(r))


def _row_groups(n_rows: int, width: int) -> list[slice]:
    step = max(1, _WORK_ELEMENTS // max(width, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _top_logits(flat: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest logits of each row, in descending order: one top-k over whole rows, in row groups
    of bounded size (for large k this is far cheaper than merging per-slice top-k's)."""
    import torch

    groups = _row_groups(rows.numel(), flat.shape[1] + k)
    return torch.cat([flat[rows[g]].float().topk(k, dim=1).values for g in groups])


def _nucleus_from_top(top: torch.Tensor, lse: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_t, whether the top-k mass reached p), from the top logits in descending order."""
    import torch

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
    import torch

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
    import torch

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
    import torch

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
    import torch

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
    import torch

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
    import torch

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


# -- cache ----------------------------------------------------------------------------------------------
def scorer_identity(model: Any, tokenizer: Any, settings: DifficultyParams) -> str:
    """A hash of what determines the raw sums: the code, weights, tokenizer, dtype, nucleus_p and max_length.

    The weights are fingerprinted by every tensor's name, shape, dtype and first/last 1024 values:
    a fine-tuned or LoRA-adapted model differs there, and hashing whole multi-GB models would be slow.
    The folder a model was loaded from is left out, so the same weights hit the cache anywhere.
    """
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                CACHE_VERSION,
                code_hash(["difficulty_selection.scoring"]),
                type(model).__name__,
                settings.nucleus_p,
                settings.max_length,
            ]
        ).encode()
    )
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        h.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        h.update(flat[:1024].float().cpu().numpy().tobytes())
        h.update(flat[-1024:].float().cpu().numpy().tobytes())
    probe = "Ünïcødé probe: The café's 3 reviews weren't great!\n\tOK? 12345 <tag>"
    tok_probe = [len(tokenizer), unconditional_prefix(tokenizer), encode_pairs(tokenizer, [probe], [probe])]
    h.update(json.dumps(tok_probe).encode())
    return h.hexdigest()


class ScoreCache:
    """SQLite store of :class:`RawScore` per (scorer identity, sample content hash), committed per batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS difficulty (scorer TEXT NOT NULL, sample TEXT NOT NULL, "
            "raw TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (scorer, sample))"
        )
        self._conn.commit()

    def get_many(self, scorer: str, keys: Sequence[str]) -> dict[str, RawScore]:
        found: dict[str, RawScore] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT sample, raw FROM difficulty WHERE scorer = ? AND sample IN ({marks})",
                [scorer, *chunk],
            )
            found.update({key: RawScore(**json.loads(raw)) for key, raw in rows})
        return found

    def put_many(self, scorer: str, items: dict[str, RawScore]) -> None:
        now = time.time()
        self._conn.executemany(
            "INSERT OR REPLACE INTO difficulty VALUES (?, ?, ?, ?)",
            [(scorer, key, json.dumps(asdict(raw)), now) for key, raw in items.items()],
        )
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the dataset entry point ----------------------------------------------------------------------------
def load_scorer(params: Params, run_dir: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of ``difficulty.scorer`` (default: the student) in ``difficulty.dtype``."""

    spec = resolve_alias(params.difficulty.scorer or "student", params, run_dir)
    return load_causal_lm(spec, params, dtype=params.difficulty.dtype)


def score_dataset(
    records: Sequence[dict[str, Any]],
    model: Any,
    tokenizer: Any,
    settings: DifficultyParams,
    cache_path: str | Path | None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Scores for every record, in input order: {sample_id, rank, ifd, ppl, ppl_uncond, length, n_tokens,
    n_nonzero, truncated}. Identical content is scored once; ``cache_path`` None scores without a cache.
    """

    samples = require_samples(records, "score_dataset")
    keys = [content_hash(s["instruction"], s["output"]) for s in samples]
    text_of = {k: (s["instruction"], s["output"]) for k, s in zip(keys, samples, strict=True)}
    ident = scorer_identity(model, tokenizer, settings)
    cache = ScoreCache(cache_path) if cache_path is not None else None
    try:
        found = cache.get_many(ident, list(text_of)) if cache else {}
        todo = [k for k in text_of if k not in found]
        if todo:
            pairs = encode_pairs(tokenizer, [text_of[k][0] for k in todo], [text_of[k][1] for k in todo])
            empty = [k for k, (_, y) in zip(todo, pairs, strict=True) if not y]
            if empty:
                raise ValueError(f"{len(empty)} output(s) tokenise to nothing, e.g. {text_of[empty[0]][1]!r}")
            windows = [fit_to_window(x, y, settings.max_length) for x, y in pairs]
            full_len = [len(y) for _, y in pairs]
            order = sorted(range(len(todo)), key=lambda i: -(len(windows[i][0]) + len(windows[i][1])))
            bar = tqdm(total=len(todo), desc="difficulty scores", unit="sample", disable=not progress)
            for i in range(0, len(order), settings.batch_size):
                batch = order[i : i + settings.batch_size]
                raws = score_encoded(
                    model, tokenizer, [windows[j] for j in batch], settings, [full_len[j] for j in batch]
                )
                new = {todo[j]: raw for j, raw in zip(batch, raws, strict=True)}
                found.update(new)
                if cache:
                    cache.put_many(ident, new)
                bar.update(len(batch))
            bar.close()
    finally:
        if cache:
            cache.close()
    return [
        {"sample_id": s["sample_id"], **found[k].scores(settings.include_rank0)}
        for s, k in zip(samples, keys, strict=True)
    ]
